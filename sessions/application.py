"""The QuickFIX Application: a thin adapter between FIX sessions and the venue.

Callbacks only decode, check entitlements and throttle, and hand a command to the venue's
sequencer (``Venue.submit``); they never touch engine state. Replies travel back from
durable engine events through :class:`Outbox`, one thread that builds and sends messages
in event order (a reply is never sent before the command it answers is journaled).

Edge refusals (a request that cannot become a command: unknown symbol, off-tick price,
an account the session may not use, a throttled message) are answered through the same
ordered path (``Venue.call``), so they never overtake answers to earlier requests.

Other modules plug into it: they add handlers per role (``handlers``: trade capture,
market data, sessions.risk_session's margin, positions, limits and kill switch), routes
for the engine events they answer (``event_routes``) and the names of the messages a
role that may not send them is refused with a BusinessMessageReject (``message_names``).

A Python exception must never escape a callback: QuickFIX would end the process. Only
QuickFIX's own reject exceptions (UnsupportedMessageType, IncorrectTagValue,
FieldNotFound, RejectLogon) are raised on purpose; anything else is logged and the
failing message gets a BusinessMessageReject, and every other session goes on.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any, Callable

import quickfix as fix

from sessions import codec
from sessions.codec import EdgeReject
from venue import commands as C
from venue.access import AccessRegistry, SessionRecord
from venue.core import Venue
from venue.errors import VenueError
from venue.events import CancelRejected, Execution, MassCancelReport, OrderRejected
from venue.instruments import Asset, Instrument
from venue.sequencer import Processed
from venue.types import TERMINAL, CancelReason, ExecKind, Reject

log = logging.getLogger("sessions.application")

ORDER_MSG_TYPES = frozenset({"D", "F", "G", "H", "q", "AF"})
SEND_BATCH = 256  # the outbox sends at most this many messages per call into QuickFIX


class SessionCtx:
    """What the application knows of one FIX session."""

    __slots__ = ("comp_id", "sid", "rec", "tokens", "last", "cod", "logged_on", "mass_types", "accounts",
                 "accounts_version", "refused", "logons", "ext", "closing")

    def __init__(self, comp_id: str, sid: fix.SessionID, rec: SessionRecord) -> None:
        self.comp_id = comp_id
        self.sid = sid
        self.rec = rec
        self.tokens = float(rec.msg_rate or 0)
        self.last = time.monotonic()
        self.cod = "S" if rec.cancel_on_disconnect else "N"
        self.logged_on = False
        self.mass_types: dict[str, str] = {}
        self.accounts: tuple[str, ...] = ()
        self.accounts_version = -1
        self.refused = 0
        self.logons = 0
        self.ext = False  # the Logon asked for the venue's extension tags (25005=Y, see codec)
        self.closing = False  # the venue is logging this session out (see VenueApplication.log_out)


class Outbox:
    """Builds and sends, in order, everything the venue says to FIX sessions: the replies
    of each durable batch, and jobs (answers that must follow what was submitted before).

    A batch is routed at once on the thread that publishes it (the one that ran the
    sequencer's step: on the order path the FIX inbox's) when nothing is waiting before
    it; otherwise it queues behind what is waiting and the outbox's own thread routes it. Jobs always go through the thread. Either way one lock makes the
    routing one at a time, in the order batches and jobs were handed in. Routing on the
    publishing thread saves a hand-off of the interpreter lock per batch: measured with
    bench/fix_order_entry.py's client paced at 5,000 orders/s, three runs each,
    interleaved, p99 4.8, 5.2, 7.4 ms against 4.9, 6.8, 8.7 ms through the thread."""

    def __init__(self, route: Callable[[list[Processed]], None]) -> None:
        self._route = route
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fix-outbox", daemon=True)
        self._routing = threading.RLock()  # one routing at a time
        self._count = threading.Lock()
        self._waiting = 0  # items handed in and not yet run (under _count)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(10)

    def on_batch(self, batch: list[Processed]) -> None:
        """The venue listener (publishing thread). Never waits for a job the thread runs."""
        with self._count:
            inline = not self._waiting
            self._waiting += 1
        if inline:
            self._run_counted(batch)
        else:
            self._q.put(batch)

    def put(self, job: Callable[[], Any]) -> None:
        with self._count:
            self._waiting += 1
        self._q.put(job)

    def _run_counted(self, item: Any) -> None:
        """Run one batch or job (in turn with any other), then count it done."""
        try:
            with self._routing:
                if isinstance(item, list):
                    self._route(item)
                else:
                    item()
        except Exception:
            log.exception("outbox: failed to send")
        finally:
            with self._count:
                self._waiting -= 1

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            self._run_counted(item)


INBOX_BATCH = 512  # the inbox takes at most this many queued callbacks at a time
INBOX_LIMIT = 65536  # queued callbacks beyond which QuickFIX's connection threads wait


class Inbox:
    """One thread that takes QuickFIX's queued callbacks (fromApp, onLogon, onLogout; QuickFIX
    patch 6, fix_config/build_quickfix.py) in batches and runs them in order.

    Called back directly, every message made its connection thread take the interpreter
    lock: under load those threads mostly waited for it, each message a hand-off between
    the lock's holders. Queued, the connection threads parse, validate and count sequence
    numbers without the lock, and this thread decodes and submits a batch in one hold. A
    session's messages, its logon and its logout keep their order (cancel-on-disconnect
    never overtakes an order sent before the disconnect); the queue is bounded, a full one
    leaving the client's bytes in the socket."""

    def __init__(self, app: "VenueApplication") -> None:
        self._app = app
        self._thread = threading.Thread(target=self._run, name="fix-inbox", daemon=True)
        self._stopping = False
        self.running = False

    def start(self) -> None:
        self._app.queueCallbacks(True, INBOX_LIMIT)
        self.running = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Call once QuickFIX's acceptors are stopped: runs what is left, then stops queueing."""
        if not self.running:
            return
        self._stopping = True
        self._thread.join(timeout)
        self._app.queueCallbacks(False)
        self.running = False

    def _run(self) -> None:
        take = self._app.takeQueued
        run = self._app.run_queued
        while True:
            items = take(INBOX_BATCH, 0.1)
            if items is None:
                return
            if items:
                try:
                    run(items)
                except Exception:  # a bug: the callbacks guard themselves; never let the inbox die of it
                    log.exception("inbox: running %d queued callbacks failed; going on", len(items))
            elif self._stopping:
                return


class VenueApplication(fix.Application):
    def __init__(self, venue: Venue, registry: AccessRegistry) -> None:
        super().__init__()
        self.venue = venue
        self.registry = registry
        self.ctx: dict[str, SessionCtx] = {}
        self._verified: dict[str, tuple[str, str, float, dict[int, str]]] = {}
        self._oe_by_firm: dict[str, tuple[SessionCtx, ...]] = {}
        self._oe_version: tuple[int, int] = (-1, -1)
        self._verified_lock = threading.Lock()
        self._exec_ids = itertools.count(1)
        self._exec_base = time.time_ns() // 1_000_000
        self.outbox = Outbox(self._route_batch)
        self.inbox = Inbox(self)
        self._batch: list[tuple[Any, ...]] | None = None  # the outbox's sends not yet made
        self._batch_thread = 0
        # open orders whose NewOrderSingle carried 25001: their reports echo it (outbox thread
        # only; after a restart the echo is lost for orders entered before it)
        self._stp_echo: set[int] = set()
        self.handlers: dict[str, dict[str, Callable[[fix.Message, SessionCtx], None]]] = {
            "order_entry": {"D": self.on_new_order, "F": self.on_cancel, "G": self.on_replace,
                            "H": self.on_status, "q": self.on_mass_cancel, "AF": self.on_mass_status},
            "risk": {"H": self.on_status, "AF": self.on_mass_status, "q": self.on_mass_cancel},
            "drop_copy": {},
            "market_data": {},
        }
        self.batch_listeners: list[Callable[[list[Processed]], None]] = []  # drop copy, market data
        # event type -> its router (outbox thread), for events other modules answer (kill switch reports)
        self.event_routes: dict[type, Callable[[Any], None]] = {}
        # MsgType -> its name, for the BusinessMessageReject a role that may not send it gets
        self.message_names: dict[str, str] = {}
        self.logon_listeners: list[Callable[[SessionCtx], None]] = []
        self.logout_listeners: list[Callable[[SessionCtx], None]] = []
        self.messages_in = 0

    # -- helpers -------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument | None:
        engine = self.venue.engine
        mkt = engine.markets.get(symbol) if engine is not None else None
        return mkt.inst if mkt is not None else None

    def asset(self, code: str) -> Asset:
        assert self.venue.engine is not None
        return self.venue.engine.ledger.assets[code]

    def exec_id(self) -> str:
        return f"X{self._exec_base}-{next(self._exec_ids)}"

    def allowed_accounts(self, ctx: SessionCtx) -> tuple[str, ...]:
        v = (self.registry.version, len(self.venue.engine.ledger.accounts) if self.venue.engine else 0)
        if ctx.accounts_version != v:
            ctx.rec = self.registry.sessions.get(ctx.comp_id, ctx.rec)
            ctx.accounts = self.registry.session_accounts(ctx.rec)
            ctx.accounts_version = v  # type: ignore[assignment]
        return ctx.accounts

    def resolve_account(self, msg: fix.Message | dict[str, str], ctx: SessionCtx) -> str | EdgeReject:
        """The account a request names (Account(1)) or the session's default, if the
        session may use it. ``msg`` is the message or its fields (codec.fields_of)."""
        if isinstance(msg, dict):
            acct = msg.get("1") or ctx.rec.default_account
        else:
            acct = msg.getField(1) if msg.isSetField(1) else ctx.rec.default_account
        if not acct:
            return EdgeReject(Reject.UNKNOWN_ACCOUNT, "Account(1) is required: this session has no default account")
        if acct not in self.allowed_accounts(ctx):
            return EdgeReject(Reject.NOT_ENTITLED, f"account {acct} is not permitted for this session")
        return acct

    def send(self, ctx_or_sid: SessionCtx | fix.SessionID, msg: fix.Message | str) -> None:
        """Send ``msg``, a Message or its FIX string (codec.raw_message) (any thread).
        While the outbox routes a batch, its own sends wait and go out together at the end
        of the batch (or every SEND_BATCH messages), in order, through one
        :meth:`send_many`: a message must not change once handed in."""
        sid = ctx_or_sid.sid if isinstance(ctx_or_sid, SessionCtx) else ctx_or_sid
        batch = self._batch
        if batch is not None and threading.get_ident() == self._batch_thread:
            batch.append((msg, sid))
            if len(batch) >= SEND_BATCH:
                self._send_batch()
            return
        if isinstance(msg, str):
            msg = fix.Message(msg, False)
        try:
            fix.Session.sendToTarget(msg, sid)
            self.outbox.sent += 1
        except fix.SessionNotFound:
            log.warning("no FIX session %s to send to", sid)

    def send_many(self, items: list[tuple[Any, ...]]) -> None:
        """Send each ``(message, SessionID)`` or ``(message, SessionID, tag, value)`` (the
        message's field ``tag`` set to ``value`` first), in order, in one call into
        QuickFIX that lets go of the interpreter lock once: a thread that lets go of it
        queues behind the busy threads to take it back, and one send per message paid
        that every time (QuickFIX patch 5, fix_config/build_quickfix.py). A message may
        be its FIX string: QuickFIX parses it after letting go of the lock (patch 7)."""
        if not items:
            return
        try:
            missing = fix.Session.sendToTargets(items)
        except RuntimeError:  # one message failed (the others went out): not expected
            log.exception("sending %d messages failed", len(items))
            return
        self.outbox.sent += len(items) - len(missing)
        for i in missing:
            log.warning("no FIX session %s to send to", items[i][1])

    def _send_batch(self) -> None:
        batch = self._batch
        if batch:
            self._batch = []
            self.send_many(batch)

    def answer_after(self, ctx: SessionCtx, build: Callable[[], fix.Message]) -> None:
        """Send ``build()`` after everything already submitted has been answered."""
        job = lambda: self.send(ctx, build())  # noqa: E731
        try:
            self.venue.call(lambda _e: None, lambda _r: self.outbox.put(job))
        except VenueError:
            self.outbox.put(job)

    def log_out(self, ctx: SessionCtx, reason: str) -> bool:
        """Log ``ctx``'s session out, once: QuickFIX sends the Logout on its next timer tick
        (within a second) and disconnects when the client answers or LogoutTimeout passes;
        messages arriving meanwhile are dropped unanswered. QuickFIX's Session.logout also
        disables the session, for good: the next Logon the gateway admits enables it again
        (:meth:`note_verified`). False if the session was already being logged out."""
        if ctx.closing:
            return False
        ctx.closing = True
        try:
            fix.Session.lookupSession(ctx.sid).logout(reason)
        except Exception:
            log.exception("logout of %s failed", ctx.comp_id)
        return True

    def log_out_all(self, reason: str, timeout: float) -> None:
        """Log every logged-on session out and wait (up to ``timeout`` seconds) until
        they are off."""
        for ctx in list(self.ctx.values()):
            if ctx.logged_on:
                self.log_out(ctx, reason)
        self.wait_logged_off(timeout)

    def wait_logged_off(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(c.logged_on for c in self.ctx.values()):
            time.sleep(0.02)

    def submit(self, ctx: SessionCtx, cmd: Any, refuse: Callable[[int, str], fix.Message]) -> None:
        try:
            self.venue.submit(cmd)
        except VenueError as e:
            code = getattr(e, "code", Reject.BAD_COMMAND)
            self.outbox.put(lambda: self.send(ctx, refuse(code, f"venue unavailable: {e}")))

    # -- QuickFIX callbacks ----------------------------------------------------------
    def onCreate(self, sid: fix.SessionID) -> None:
        comp = sid.getTargetCompID().getValue()
        rec = self.registry.sessions.get(comp)
        if rec is not None:
            self.ctx[comp] = SessionCtx(comp, sid, rec)

    def onLogon(self, sid: fix.SessionID) -> None:
        try:
            ctx = self.ctx.get(sid.getTargetCompID().getValue())
            if ctx is not None:
                ctx.logged_on = True
                ctx.closing = False
                ctx.logons += 1
                for fn in self.logon_listeners:
                    fn(ctx)
        except Exception:
            log.exception("onLogon")

    def onLogout(self, sid: fix.SessionID) -> None:
        try:
            ctx = self.ctx.get(sid.getTargetCompID().getValue())
            if ctx is None or not ctx.logged_on:
                return
            ctx.logged_on = False
            for fn in self.logout_listeners:
                fn(ctx)
            if ctx.rec.role == "order_entry" and ctx.cod in ("Y", "S"):
                cmd = C.MassCancel(cl_ord_id=f"COD-{ctx.comp_id}", reason=int(CancelReason.DISCONNECT),
                                   session=ctx.comp_id if ctx.cod == "S" else "",
                                   accounts=",".join(self.allowed_accounts(ctx)))
                try:
                    self.venue.submit(cmd)
                except VenueError:
                    log.warning("cancel-on-disconnect of %s not submitted: venue unavailable", ctx.comp_id)
        except Exception:
            log.exception("onLogout")

    def toAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        pass

    def toApp(self, msg: fix.Message, sid: fix.SessionID) -> None:
        pass

    def note_verified(self, comp_id: str, fields: dict[int, str]) -> None:
        """The gateway checked this Logon (called before it forwards the bytes; the gateway
        admits one connection per CompID, so no earlier one of this session is live). A
        session the venue logged out (throttle, disabled then enabled again) was left
        disabled by QuickFIX, which would refuse this Logon: enable it."""
        with self._verified_lock:
            self._verified[comp_id] = (fields.get(34, ""), fields.get(52, ""), time.monotonic() + 30, fields)
        ctx = self.ctx.get(comp_id)
        if ctx is not None:
            session = fix.Session.lookupSession(ctx.sid)
            if session is not None and not session.isEnabled():
                session.logon()

    def fromAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        if msg.getHeader().getField(35) != "A":
            return
        comp = sid.getTargetCompID().getValue()
        session = fix.Session.lookupSession(sid)
        if session is not None and session.isLoggedOn():
            # A Logon inside an established session: FIX 4.4 lets a side reset the sequence
            # numbers in session with ResetSeqNumFlag=Y (QuickFIX lets nothing else through
            # here, and has reset them already). It came over the connection the gateway
            # admitted, QuickFIX giving a session to one connection at a time, so it needs
            # no check of its own: QuickFIX answers with a Logon 141=Y, the session goes on.
            log.info("session %s reset its sequence numbers in session", comp)
            return
        with self._verified_lock:
            v = self._verified.pop(comp, None)
        hdr = msg.getHeader()
        seq = hdr.getField(34) if hdr.isSetField(34) else ""
        st = hdr.getField(52) if hdr.isSetField(52) else ""
        if v is None or v[0] != seq or v[1] != st or v[2] < time.monotonic():
            log.warning("logon of %s did not come through the gateway: refused", comp)
            raise fix.RejectLogon("logon not verified")
        ctx = self.ctx.get(comp)
        rec = self.registry.sessions.get(comp)
        if ctx is None or rec is None:
            raise fix.RejectLogon("unknown session")
        ctx.rec = rec
        ctx.accounts_version = -1
        cod = v[3].get(codec.TAG_COD)
        ctx.cod = cod if cod in ("Y", "S", "N") else ("S" if rec.cancel_on_disconnect else "N")
        ctx.ext = v[3].get(codec.TAG_EXTENSIONS) == "Y"
        ctx.tokens = float(rec.msg_rate or 0)
        ctx.last = time.monotonic()

    def run_queued(self, items: list[tuple[int, fix.Message | None, fix.SessionID, str]]) -> None:
        """Run callbacks QuickFIX queued (the inbox thread, see :class:`Inbox`), in order.
        A queued fromApp cannot hand QuickFIX a reject exception: the reject QuickFIX would
        have sent for it is sent here. A message comes with its FIX string, formatted by
        QuickFIX without the interpreter lock (codec.fields_of reads it).

        The commands the batch submits are run by this thread at its end (Venue.batch):
        engine, journal, fsync and the ExecutionReports, with no other thread between."""
        with self.venue.batch():
            self._run_queued(items)

    def _run_queued(self, items: list[tuple[int, fix.Message | None, fix.SessionID, str]]) -> None:
        for kind, msg, sid, raw in items:
            if kind == 0:
                assert msg is not None
                msg.raw = raw
                try:
                    self.fromApp(msg, sid)
                except Exception as e:  # the reject exceptions fromApp raises on purpose
                    self._reject_queued(msg, sid, e)
            elif kind == 1:
                self.onLogon(sid)  # never raises
            else:
                self.onLogout(sid)  # never raises

    def _reject_queued(self, msg: fix.Message, sid: fix.SessionID, e: Exception) -> None:
        try:
            hdr = msg.getHeader()
            mt = hdr.getField(35)
            seq = hdr.getField(34)
            if isinstance(e, fix.UnsupportedMessageType):
                m = codec.business_reject(mt, seq, "3", "Unsupported Message Type")
            else:
                reason, text = ((5, "Value is incorrect (out of range) for this tag")
                                if isinstance(e, fix.IncorrectTagValue) else
                                (6, "Incorrect data format for value") if isinstance(e, fix.IncorrectDataFormat)
                                else (1, "Required tag missing"))
                m = codec.session_reject(seq, mt, int(getattr(e, "field", 0) or 0), reason, text)
            self.send(sid, m)
        except Exception:
            log.exception("could not reject a queued message")

    def fromApp(self, msg: fix.Message, sid: fix.SessionID) -> None:
        ctx = None
        mt = ""
        try:
            self.messages_in += 1
            mt = msg.getHeader().getField(35)
            ctx = self.ctx.get(sid.getTargetCompID().getValue())
            if ctx is None:
                raise fix.UnsupportedMessageType()
            if ctx.closing:  # logged out by the venue: the Logout is on its way
                return
            handler = self.handlers.get(ctx.rec.role, {}).get(mt)
            if handler is None:
                if mt in ORDER_MSG_TYPES:
                    self.send(ctx, codec.business_reject(mt, msg.getHeader().getField(34), "6",
                                                         f"{ctx.rec.role.replace('_', '-')} sessions cannot trade"))
                    return
                name = self.message_names.get(mt)
                if name is not None:
                    role = ctx.rec.role.replace("_", "-")
                    self.send(ctx, codec.business_reject(mt, msg.getHeader().getField(34), "6",
                                                         f"{role} sessions cannot send {name}"))
                    return
                raise fix.UnsupportedMessageType()
            if not self._throttle(ctx, msg, mt):
                return
            handler(msg, ctx)
        except (fix.UnsupportedMessageType, fix.IncorrectTagValue, fix.FieldNotFound, fix.IncorrectDataFormat,
                fix.RequiredTagMissing):
            raise
        except Exception as e:  # never let QuickFIX see it: it would end the process
            log.exception("fromApp %s failed", mt)
            if ctx is not None:
                try:
                    seq = msg.getHeader().getField(34)
                    self.send(ctx, codec.business_reject(mt or "?", seq, "0", f"internal error: {type(e).__name__}"))
                except Exception:
                    log.exception("could not reject a failed message")

    # -- throttle ----------------------------------------------------------------------
    def _throttle(self, ctx: SessionCtx, msg: fix.Message, mt: str) -> bool:
        """Token bucket of ``msg_rate`` per second. Over the limit a message is refused;
        a whole second's worth over it logs the session out."""
        rate = ctx.rec.msg_rate
        if not rate:
            return True
        now = time.monotonic()
        ctx.tokens = min(float(rate), ctx.tokens + (now - ctx.last) * rate)
        ctx.last = now
        if ctx.tokens >= 1.0:
            ctx.tokens -= 1.0
            return True
        ctx.tokens -= 1.0
        ctx.refused += 1
        text = f"throttled: more than {rate} messages per second"
        if ctx.tokens < -rate:
            if self.log_out(ctx, f"{text}; logged out"):
                log.warning("session %s far over its message rate: logged out", ctx.comp_id)
            return False
        seq = msg.getHeader().getField(34)
        if mt == "D":
            raw = codec.raw_fields(msg, (11, 1, 55, 54, 38, 40, 44))
            m = codec.reject_report(None, Reject.THROTTLED, text, None, self.exec_id(), time.time_ns(), raw,
                                    ext=ctx.ext)
        elif mt in ("F", "G"):
            m = codec.cancel_reject(None, cl_ord_id=msg.getField(11) if msg.isSetField(11) else "",
                                    orig=msg.getField(41) if msg.isSetField(41) else "",
                                    response_to="2" if mt == "G" else "1", code=Reject.THROTTLED, text=text,
                                    ext=ctx.ext)
        else:
            m = codec.business_reject(mt, seq, "0", text)
        self.send(ctx, m)
        return False

    # -- order entry -------------------------------------------------------------------
    def on_new_order(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        acct = self.resolve_account(f, ctx)
        inst = self.instrument(f["55"])
        cmd = acct if isinstance(acct, EdgeReject) else codec.decode_new_order(f, inst, acct, ctx.comp_id)
        if isinstance(cmd, EdgeReject):
            raw = {t: f[str(t)] for t in (11, 1, 55, 54, 38, 40, 44) if str(t) in f}
            rej = cmd
            self.answer_after(ctx, lambda: codec.reject_report(None, rej.code, rej.text, inst, self.exec_id(),
                                                               time.time_ns(), raw, ext=ctx.ext))
            return
        self.submit(ctx, cmd, lambda code, text: codec.reject_report(cmd, code, text, inst, self.exec_id(),
                                                                     time.time_ns(), ext=ctx.ext))

    def _cancel_refusal(self, f: dict[str, str], response_to: str, ctx: SessionCtx) -> Callable[[int, str], fix.Message]:
        clid = f["11"]
        orig = f.get("41", "")
        oid = f.get("37", "NONE")
        return lambda code, text: codec.cancel_reject(None, cl_ord_id=clid, orig=orig, order_id=oid,
                                                      response_to=response_to, code=code, text=text, ext=ctx.ext)

    def on_cancel(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        refuse = self._cancel_refusal(f, "1", ctx)
        acct = self.resolve_account(f, ctx)
        if isinstance(acct, EdgeReject):
            rej = acct
            self.answer_after(ctx, lambda: refuse(rej.code, rej.text))
            return
        order_id = codec.decode_order_id(f)
        orig = f.get("41", "")
        if order_id < 0 and not orig:
            self.answer_after(ctx, lambda: refuse(Reject.UNKNOWN_ORDER, "unknown order"))
            return
        cmd = C.CancelOrder(acct, f["11"], max(order_id, 0), orig, f.get("55", ""), ctx.comp_id)
        self.submit(ctx, cmd, refuse)

    def on_replace(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        refuse = self._cancel_refusal(f, "2", ctx)
        acct = self.resolve_account(f, ctx)
        inst = self.instrument(f["55"])
        if isinstance(acct, EdgeReject) or inst is None:
            rej = acct if isinstance(acct, EdgeReject) else EdgeReject(Reject.UNKNOWN_SYMBOL, "unknown symbol")
            self.answer_after(ctx, lambda: refuse(rej.code, rej.text))
            return
        r = codec.decode_replace(f, inst)
        if isinstance(r, EdgeReject):
            bad = r
            self.answer_after(ctx, lambda: refuse(bad.code, bad.text))
            return
        order_id = max(codec.decode_order_id(f), 0)
        orig = f.get("41", "")
        symbol = inst.symbol

        def open_order(engine: Any) -> tuple[Any, int] | None:  # as the engine's amend finds it
            o = engine.find_order(acct, order_id, "" if order_id else orig)
            if o is None or engine.orders.get(o.id) is not o or o.acct.id != acct or o.info.symbol != symbol:
                return None
            return o.info, o.status

        try:
            found = self._now(open_order)
        except (VenueError, TimeoutError) as e:
            text = f"venue unavailable: {e}"
            self.answer_after(ctx, lambda: refuse(Reject.BAD_COMMAND, text))
            return
        stop_px = r.stop_px
        if found is not None:  # (if not, the engine answers: unknown order, already filled, ...)
            info, status = found
            why = codec.replace_conflict(r, info)
            if why is not None:
                self.answer_after(ctx, lambda: codec.cancel_reject(
                    None, cl_ord_id=f["11"], orig=orig, order_id=str(info.order_id), status=status, response_to="2",
                    code=Reject.UNSUPPORTED, text=why, ext=ctx.ext))
                return
            if stop_px == info.stop_px:
                stop_px = 0  # restated unchanged (the engine refuses any stop price once triggered)
        cmd = C.AmendOrder(acct, f["11"], order_id, orig, symbol, r.qty, r.price, stop_px, ctx.comp_id)
        self.submit(ctx, cmd, refuse)

    def _now(self, fn: Callable[[Any], Any], timeout: float = 5.0) -> Any:
        """``fn(engine)`` run between commands, its result awaited here (it is not
        journaled: a read needs no durability). Called on a session's QuickFIX thread, it
        sees every command that session sent before, and nothing the session sends after
        can overtake what the caller then submits."""
        box: list[Any] = []
        done = threading.Event()

        def run(engine: Any) -> None:
            try:
                box.append(fn(engine))
            except Exception as e:  # a bug in fn: the caller's answer
                box.append(e)
            done.set()

        self.venue.call(run, lambda _r: None)
        self.venue.kick()  # the inbox runs it now (its batch's commands before it), or the sequencer does
        if not done.wait(timeout):
            raise TimeoutError("the venue did not answer in time")
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def on_status(self, msg: fix.Message, ctx: SessionCtx) -> None:
        acct = self.resolve_account(msg, ctx)
        clid = msg.getField(11) if msg.isSetField(11) else ""
        order_id = codec.decode_order_id(codec.fields_of(msg))
        raw = codec.raw_fields(msg, (11, 1, 55, 54))
        req_id = msg.getField(790) if msg.isSetField(790) else ""

        def unknown(text: str) -> fix.Message:
            m = codec.reject_report(None, Reject.UNKNOWN_ORDER, text, None, self.exec_id(), time.time_ns(), raw,
                                    ext=ctx.ext)
            m.setField(150, "I")
            m.setField(103, "5")
            if req_id:
                m.setField(790, req_id)
            return m

        if isinstance(acct, EdgeReject):
            rej = acct
            self.answer_after(ctx, lambda: unknown(rej.text))
            return

        def find(engine: Any) -> codec.OrderView | None:
            o = engine.find_order(acct, max(order_id, 0), clid)
            return codec.order_view(o) if o is not None else None

        def reply(view: Any) -> None:
            def job() -> None:
                if isinstance(view, codec.OrderView):
                    inst = self.instrument(view.info.symbol)
                    assert inst is not None
                    m = codec.status_report(view, inst, self.exec_id(), time.time_ns(), req_id_tag=790, req_id=req_id,
                                            stp=ctx.ext or view.info.order_id in self._stp_echo)
                else:
                    m = unknown("unknown order")
                self.send(ctx, m)
            self.outbox.put(job)

        try:
            self.venue.call(find, reply)
        except VenueError:
            self.outbox.put(lambda: self.send(ctx, unknown("venue unavailable")))

    def on_mass_status(self, msg: fix.Message, ctx: SessionCtx) -> None:
        req_id = msg.getField(584)
        req_type = msg.getField(585)
        symbol = msg.getField(55) if msg.isSetField(55) else ""
        side_s = msg.getField(54) if msg.isSetField(54) else ""
        side = codec.SIDE_IN.get(side_s, 0)
        msg_account = msg.getField(1) if msg.isSetField(1) else ""
        seq = msg.getHeader().getField(34)

        def refuse(reason: str, text: str) -> None:  # FIX 4.4 has no reject of its own for an AF
            self.answer_after(ctx, lambda: codec.business_reject("AF", seq, reason, text, req_id))

        if req_type not in ("1", "7"):
            return refuse("0", f"MassStatusReqType {req_type} is not supported (1: a security, 7: all orders)")
        if req_type == "1" and not symbol:
            return refuse("5", "Symbol(55) is required for MassStatusReqType 1")
        if msg_account:
            acct = self.resolve_account(msg, ctx)
            if isinstance(acct, EdgeReject):  # another firm's (or no such) account: refused, not "no orders"
                return refuse("6", acct.text)
            accounts: tuple[str, ...] = (acct,)
        else:
            accounts = self.allowed_accounts(ctx)

        def find(engine: Any) -> list[codec.OrderView]:
            out = []
            for aid in accounts:
                a = engine.ledger.accounts.get(aid)
                for o in (a.orders.values() if a else ()):
                    if (symbol and o.info.symbol != symbol) or (side and o.side != side):
                        continue
                    out.append(codec.order_view(o))
            out.sort(key=lambda v: v.info.order_id)
            return out

        def reply(views: Any) -> None:
            def job() -> None:
                now = time.time_ns()
                if not isinstance(views, list):
                    self.send(ctx, codec.business_reject("AF", seq, "4", "venue unavailable", req_id))
                    return
                if not views:
                    self.send(ctx, codec.mass_status_empty(req_id, self.exec_id(), now, symbol, side_s,
                                                           msg_account, ext=ctx.ext))
                    return
                for i, v in enumerate(views):
                    inst = self.instrument(v.info.symbol)
                    assert inst is not None
                    self.send(ctx, codec.status_report(v, inst, self.exec_id(), now, mass_req=req_id,
                                                       total=len(views), last=i == len(views) - 1,
                                                       stp=ctx.ext or v.info.order_id in self._stp_echo))
            self.outbox.put(job)

        try:
            self.venue.call(find, reply)
        except VenueError:
            reply(None)

    def on_mass_cancel(self, msg: fix.Message, ctx: SessionCtx) -> None:
        clid = msg.getField(11)
        req_type = msg.getField(530)
        symbol = msg.getField(55) if msg.isSetField(55) else ""
        side = codec.SIDE_IN.get(msg.getField(54), 0) if msg.isSetField(54) else 0

        def refuse(code: int, text: str) -> fix.Message:
            ev = MassCancelReport(0, time.time_ns(), C.MassCancel(clid, symbol=symbol, side=side), 0, int(code), text)
            m = codec.mass_cancel_report(ev, req_type)
            m.setField(37, "NONE")
            return m

        if req_type not in ("1", "7"):
            self.answer_after(ctx, lambda: refuse(Reject.UNSUPPORTED, "MassCancelRequestType must be 1 (security) or 7 (all orders)"))
            return
        if req_type == "1" and not symbol:
            self.answer_after(ctx, lambda: refuse(Reject.UNKNOWN_SYMBOL, "Symbol(55) is required for type 1"))
            return
        if msg.isSetField(1):
            acct = self.resolve_account(msg, ctx)
            if isinstance(acct, EdgeReject):
                rej = acct
                self.answer_after(ctx, lambda: refuse(rej.code, rej.text))
                return
            accounts = acct
        else:
            accounts = ",".join(self.allowed_accounts(ctx))
        if not accounts:
            self.answer_after(ctx, lambda: refuse(Reject.UNKNOWN_ACCOUNT, "this session has no accounts"))
            return
        ctx.mass_types[clid] = req_type
        cmd = C.MassCancel(cl_ord_id=clid, symbol=symbol if req_type == "1" else "", side=side, accounts=accounts,
                           requester=ctx.comp_id)
        self.submit(ctx, cmd, refuse)

    # -- routing events to sessions (outbox thread) ----------------------------------
    def _route_batch(self, batch: list[Processed]) -> None:
        self._batch_thread = threading.get_ident()
        self._batch = []
        try:
            self._route_events(batch)
            self._send_batch()  # the sessions' own reports go out before the drop copies are built
            for fn in self.batch_listeners:
                try:
                    fn(batch)
                except Exception:
                    log.exception("batch listener failed")
        finally:
            try:
                self._send_batch()
            finally:
                self._batch = None

    def _route_events(self, batch: list[Processed]) -> None:
        for p in batch:
            for ev in p.events:
                t = type(ev)
                if t is Execution:
                    self._route_execution(ev, p.cmd)
                elif t is OrderRejected:
                    self._route_reject(ev)
                elif t is CancelRejected:
                    ctx = self.ctx.get(ev.cmd.session)
                    if ctx is not None:
                        self.send(ctx, codec.cancel_reject(ev, ext=ctx.ext))
                elif t is MassCancelReport:
                    self._route_mass_cancel(ev)
                else:
                    route = self.event_routes.get(t)
                    if route is not None:
                        route(ev)

    def _route_execution(self, ev: Execution, cmd: Any) -> None:
        info = ev.info
        inst = self.instrument(info.symbol)
        if inst is None:
            return
        oid = info.order_id
        echo = self._stp_echo
        if ev.kind == ExecKind.NEW and type(cmd) is C.NewOrder and cmd.stp:
            echo.add(oid)  # the order carried 25001 (decode_new_order sets stp only then)
        stp = oid in echo
        if stp and ev.status in TERMINAL:
            echo.discard(oid)
        quote = self.asset(inst.quote)
        ctx = self.ctx.get(info.session)
        if ctx is not None and ctx.rec.role == "order_entry":
            self.send(ctx, codec.execution_report(ev, inst, quote, None, stp, ctx.ext, raw=True))
            return
        # entered elsewhere (operator, liquidation): to the firm's order-entry sessions with the account
        for c in self._oe_sessions_of(info.firm):
            if info.account in self.allowed_accounts(c):
                self.send(c, codec.execution_report(ev, inst, quote, None, False, c.ext, raw=True))

    def _oe_sessions_of(self, firm: str) -> tuple[SessionCtx, ...]:
        """The order-entry sessions of ``firm`` (indexed per registry version: a venue with
        many market-data or drop-copy sessions must not scan them for every execution)."""
        version = (self.registry.version, len(self.ctx))
        if version != self._oe_version:
            by_firm: dict[str, list[SessionCtx]] = {}
            for c in list(self.ctx.values()):
                rec = self.registry.sessions.get(c.comp_id, c.rec)
                if rec.role == "order_entry":
                    by_firm.setdefault(rec.firm, []).append(c)
            self._oe_by_firm = {f: tuple(v) for f, v in by_firm.items()}
            self._oe_version = version
        return self._oe_by_firm.get(firm, ())

    def _route_reject(self, ev: OrderRejected) -> None:
        ctx = self.ctx.get(ev.cmd.session)
        if ctx is not None:
            self.send(ctx, codec.order_reject_report(ev, self.instrument(ev.cmd.symbol), ext=ctx.ext))

    def _route_mass_cancel(self, ev: MassCancelReport) -> None:
        cmd = ev.cmd
        ctx = self.ctx.get(cmd.requester)
        if ctx is not None:
            rt = ctx.mass_types.pop(cmd.cl_ord_id, "7")
            self.send(ctx, codec.mass_cancel_report(ev, rt))
