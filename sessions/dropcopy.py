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

Entitlement, not connection, decides what is copied, and it is read as it stood when
each execution happened: this module keeps its own table of drop-copy sessions and
their firms, changed by the session commands (CreateSession, UpdateSession) of the
batch, in sequence order, between the executions around them.
An execution is copied to the sessions entitled to its firm at that point of the
sequence, however late the outbox thread gets to it, and whatever the registry says
by then. So a change of entitlement takes effect exactly at the command that made it
(at a batch boundary or inside a batch alike): executions before it are copied under
the old entitlement, those after it under the new one. (The table starts from the
registry when the first batch arrives; only executions of that first batch that precede
a session command in it could be read under the newer entitlement.)

A disabled session keeps its entitlement: disabling takes its logon away (the venue logs
it out and the gateway refuses it), not its copies. As a real venue's drop copy, whose
entitlement record outlives a suspended connection, the venue goes on storing copies
for it, so that when it is enabled again and logs on without ResetSeqNumFlag it gets
everything it missed by resend, without a gap, as after any absence. Taking a firm out
of ``entitled_firms`` (UpdateSession) is what stops its copies.

Copies go out whether the broker is logged on or not. QuickFIX persists each one in the
session's FileStore under its MsgSeqNum (PersistMessages=Y), so a broker that was
offline gets what it missed through the ordinary sequence gap and ResendRequest when it
logs on again without ResetSeqNumFlag (copies then carry PossDupFlag=Y: deduplicate by
ExecID). A broker that lost its own store, or resets, rebuilds its trades with a
TradeCaptureReportRequest (:mod:`sessions.trade_capture`). A session created while the
venue runs exists in QuickFIX a moment after its CreateSession (its acceptor is added
on another thread): copies due to it before then are held here (at most
``max_held`` per session) and handed to QuickFIX, in order, as soon as it exists.

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
from collections import deque
from typing import Callable

import quickfix as fix

from sessions import codec
from sessions.application import SessionCtx, VenueApplication
from venue.access import CreateSession, UpdateSession
from venue.events import AdminApplied, Execution, OrderRejected
from venue.sequencer import Processed

log = logging.getLogger("sessions.dropcopy")

MAX_BACKLOG = 4 * 1024 * 1024  # bytes the gateway may hold for a broker before it is disconnected
MAX_HELD = 100_000  # copies held for a session QuickFIX does not know yet
_ENTITLEMENT_COMMANDS = (CreateSession, UpdateSession)


def _firms(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


class DropCopy:
    """Sends copies of execution reports to the entitled drop-copy sessions."""

    def __init__(self, app: VenueApplication, backlog: Callable[[str], int] | None = None,
                 disconnect: Callable[[str], None] | None = None, max_backlog: int = MAX_BACKLOG,
                 max_held: int = MAX_HELD) -> None:
        self.app = app
        self.backlog = backlog
        self.disconnect = disconnect
        self.max_backlog = max_backlog
        self.max_held = max_held
        self.copies = 0  # copies handed to QuickFIX (sent, or stored for a broker offline)
        self.disconnected = 0  # slow brokers cut off
        self.dropped = 0  # copies held for a session QuickFIX never created, beyond max_held
        self._cut: dict[str, int] = {}  # CompID -> its logon count when it was cut off
        # CompID -> entitled firms of every drop-copy session as of the last event copied (outbox
        # thread only; enabled or not: disabling does not stop copies); None until the first batch
        self._firms: dict[str, tuple[str, ...]] | None = None
        self._by_firm: dict[str, tuple[str, ...]] = {}  # firm -> CompIDs entitled to it
        self._held: dict[str, deque[fix.Message]] = {}  # CompID -> copies waiting for its QuickFIX session
        app.batch_listeners.append(self.on_batch)
        app.logon_listeners.append(self._on_logon)

    # -- entitlements, as of each event ------------------------------------------------
    def sessions_for(self, firm: str) -> tuple[str, ...]:
        """The drop-copy sessions (CompIDs) entitled to ``firm`` as of the last event
        copied, enabled or not."""
        return self._by_firm.get(firm, ())

    def _start(self) -> None:
        sessions = dict(self.app.registry.sessions)  # records are immutable; the copy is atomic
        self._firms = {c: r.entitled_firms for c, r in sessions.items() if r.role == "drop_copy"}
        self._index()

    def _index(self) -> None:
        by_firm: dict[str, list[str]] = {}
        for comp_id, firms in (self._firms or {}).items():
            for f in firms:
                by_firm.setdefault(f, []).append(comp_id)
        self._by_firm = {f: tuple(v) for f, v in by_firm.items()}

    def _session_command(self, cmd: CreateSession | UpdateSession) -> None:
        """Apply one successful session command (an AdminApplied) to the table."""
        firms = self._firms
        assert firms is not None
        if type(cmd) is CreateSession:
            if cmd.role != "drop_copy":
                return
        elif cmd.comp_id not in firms:  # an UpdateSession of another role
            return
        firms[cmd.comp_id] = _firms(cmd.entitled_firms)
        self._index()

    # -- the outbox thread -------------------------------------------------------------
    def on_batch(self, batch: list[Processed]) -> None:
        """A durable batch (outbox thread): copy its execution reports, each to the
        sessions entitled to its firm at that point of the sequence."""
        if self._firms is None:
            self._start()
        if self._held:
            self._release()
        for p in batch:
            for ev in p.events:
                t = type(ev)
                if t is Execution:
                    targets = self._by_firm.get(ev.info.firm)
                    if targets:
                        inst = self.app.instrument(ev.info.symbol)
                        if inst is not None:
                            self._send(targets, codec.execution_report(ev, inst, self.app.asset(inst.quote)),
                                       codec.is_liquidation(ev))
                elif t is OrderRejected and ev.firm:
                    targets = self._by_firm.get(ev.firm)
                    if targets:
                        self._send(targets, codec.order_reject_report(ev, self.app.instrument(ev.cmd.symbol)))
                elif t is AdminApplied and type(ev.cmd) in _ENTITLEMENT_COMMANDS:
                    self._session_command(ev.cmd)

    def _send(self, targets: tuple[str, ...], msg: fix.Message, liquidation: bool = False) -> None:
        """``liquidation``: a liquidation's report, which sessions that logged on with
        25005=Y get with 25010 LiquidationIndicator=Y (every copy has its Text)."""
        msg.setField(797, "Y")
        marked = None
        for comp_id in targets:
            ctx = self.app.ctx.get(comp_id)
            m = msg
            if liquidation and ctx is not None and ctx.ext:
                if marked is None:
                    marked = fix.Message(msg)
                    marked.setField(codec.TAG_LIQUIDATION, "Y")
                m = marked
            held = self._held.get(comp_id)
            if ctx is None or held:
                self._hold(comp_id, m)
                continue
            self._send_one(ctx, m)

    def _send_one(self, ctx: SessionCtx, msg: fix.Message) -> None:
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

    # -- copies for a session QuickFIX does not know yet -------------------------------
    def _hold(self, comp_id: str, msg: fix.Message) -> None:
        held = self._held.setdefault(comp_id, deque())
        if len(held) >= self.max_held:
            held.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("drop copy %s has no FIX session yet: %d copies dropped (trade capture has them)",
                            comp_id, self.dropped)
        held.append(fix.Message(msg))  # its own copy: the same message goes on to other targets

    def _release(self) -> None:
        """Hand held copies, in order, to the sessions QuickFIX now knows (outbox thread)."""
        for comp_id in list(self._held):
            ctx = self.app.ctx.get(comp_id)
            if ctx is None:
                continue
            held = self._held.pop(comp_id)
            log.info("drop copy %s: %d copies held until its FIX session existed", comp_id, len(held))
            for msg in held:
                self._send_one(ctx, msg)

    def _on_logon(self, ctx: SessionCtx) -> None:
        """A session that has copies held gets them now, in order with the rest: the
        release runs on the outbox thread, like every copy."""
        if ctx.comp_id in self._held:
            self.app.outbox.put(self._release)
