"""Drop copy: every execution report of the firms a broker clears, as it happens.

A drop-copy session (role ``drop_copy``) sees the firms listed in its
``SessionRecord.entitled_firms``. After each durable batch (on the application's outbox
thread, right after the order-entry sessions were answered, so in the same order) every
entitled drop-copy session is sent a copy of each ExecutionReport of any account of
those firms, whatever caused it: FIX order entry, operator cancels, mass cancels and the
kill switch, GTD/Day expiry on a Tick, stop triggers, liquidation. Engine refusals of a
new order (OrdStatus 8, an account of the firm named) are copied too. A copy is the
order-entry report itself, same ExecID (``{seq}-{exec_n}``, stable across restarts),
with CopyMsgIndicator(797)=Y.

Copies go out whether the broker is logged on or not. QuickFIX persists each one in the
session's FileStore under its MsgSeqNum (PersistMessages=Y), so a broker that was
offline gets what it missed through the ordinary sequence gap and ResendRequest when it
logs on again without ResetSeqNumFlag (copies then carry PossDupFlag=Y: deduplicate by
ExecID). A broker that lost its own store, or resets, rebuilds its trades with a
TradeCaptureReportRequest (:mod:`sessions.trade_capture`).

A broker reading too slowly is disconnected once the gateway holds more than
``max_backlog`` bytes for it: its copies go on into its store, it recovers them on its
next logon, and the outbox thread never waits for a slow reader.

What it does not copy: refusals at the FIX edge that never became a command (a
throttled message, an unknown symbol, an account the order-entry session may not use);
they exist only on the order-entry session. A drop-copy session cannot trade: the
application answers its order messages with BusinessMessageReject(380=6).
"""
from __future__ import annotations

import logging
from typing import Callable

import quickfix as fix

from sessions import codec
from sessions.application import SessionCtx, VenueApplication
from venue.events import Execution, OrderRejected
from venue.sequencer import Processed

log = logging.getLogger("sessions.dropcopy")

MAX_BACKLOG = 4 * 1024 * 1024  # bytes the gateway may hold for a broker before it is disconnected


class DropCopy:
    """Sends copies of execution reports to the entitled drop-copy sessions."""

    def __init__(self, app: VenueApplication, backlog: Callable[[str], int] | None = None,
                 disconnect: Callable[[str], None] | None = None, max_backlog: int = MAX_BACKLOG) -> None:
        self.app = app
        self.backlog = backlog
        self.disconnect = disconnect
        self.max_backlog = max_backlog
        self.copies = 0  # copies handed to QuickFIX (sent, or stored for a broker offline)
        self.disconnected = 0  # slow brokers cut off
        self._cut: dict[str, int] = {}  # CompID -> its logon count when it was cut off
        self._by_firm: dict[str, tuple[SessionCtx, ...]] = {}
        self._version: tuple[int, int] = (-1, -1)
        app.batch_listeners.append(self.on_batch)

    def sessions_for(self, firm: str) -> tuple[SessionCtx, ...]:
        """The enabled drop-copy sessions entitled to ``firm`` (cached per registry version)."""
        app = self.app
        version = (app.registry.version, len(app.ctx))
        if version != self._version:
            by_firm: dict[str, list[SessionCtx]] = {}
            for ctx in list(app.ctx.values()):
                rec = app.registry.sessions.get(ctx.comp_id, ctx.rec)
                if rec.role != "drop_copy" or not rec.enabled:
                    continue
                for f in rec.entitled_firms:
                    by_firm.setdefault(f, []).append(ctx)
            self._by_firm = {f: tuple(v) for f, v in by_firm.items()}
            self._version = version
        return self._by_firm.get(firm, ())

    def on_batch(self, batch: list[Processed]) -> None:
        """A durable batch (outbox thread): copy its execution reports."""
        sessions_for = self.sessions_for
        for p in batch:
            for ev in p.events:
                t = type(ev)
                if t is Execution:
                    targets = sessions_for(ev.info.firm)
                    if targets:
                        inst = self.app.instrument(ev.info.symbol)
                        if inst is not None:
                            self._send(targets, codec.execution_report(ev, inst, self.app.asset(inst.quote)))
                elif t is OrderRejected and ev.firm:
                    targets = sessions_for(ev.firm)
                    if targets:
                        self._send(targets, codec.order_reject_report(ev, self.app.instrument(ev.cmd.symbol)))

    def _send(self, targets: tuple[SessionCtx, ...], msg: fix.Message) -> None:
        msg.setField(797, "Y")
        for ctx in targets:
            if ctx.logged_on and self.backlog is not None and self.disconnect is not None \
                    and self._cut.get(ctx.comp_id) != ctx.logons and self.backlog(ctx.comp_id) > self.max_backlog:
                self._cut[ctx.comp_id] = ctx.logons
                log.warning("drop copy %s reads too slowly: disconnected (it recovers by resend on its next logon)",
                            ctx.comp_id)
                self.disconnected += 1
                self.disconnect(ctx.comp_id)
            # sendToTarget fills the header (MsgSeqNum included) on each call: one message serves every target
            self.app.send(ctx, msg)
            self.copies += 1
