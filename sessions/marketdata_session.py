"""Market-data sessions: the book and the tape over FIX 4.4, from :mod:`marketdata`.

Requests a session of role ``market_data`` may send, and what it gets back:

- SecurityListRequest (x), 559 SecurityListRequestType 4 (all) or 0 (one Symbol):
  SecurityList (y) with each instrument's tick size, lot size and limits
  (:func:`sessions.mdfix.security_list`); other types get 560=1 (unsupported).
- MarketDataRequest (V): 262 MDReqID, 263 SubscriptionRequestType 0 (snapshot),
  1 (snapshot + updates) or 2 (unsubscribe that MDReqID), 264 MarketDepth (0 = full
  book, N = best N levels), 267/269 MDEntryTypes among 0 bid, 1 offer, 2 trade,
  146/55 one or more symbols, 265 MDUpdateType 1 (incremental; absent means 1),
  266 AggregatedBook: Y or absent = price levels (L2), **N = order by order (L3)**,
  every resting order with its OrderID(37) in time priority (full depth only).
  Each symbol of a subscription gets a W first, then X messages; MDReqID is echoed.
- SecurityStatusRequest (e): 324, 55, 263 0 (the status now) or 1 (now, then every
  change) or 2 (stop): SecurityStatus (f). Every V subscription also gets an f when its
  instrument halts or resumes, and after a W of a halted book; such an f carries the
  subscription's MDReqID in 324 SecurityStatusReqID, so that a client with several
  subscriptions of one symbol knows whose RptSeq it continues.
- A request that cannot be served gets MarketDataRequestReject (Y) with 281
  MDReqRejReason (0 unknown symbol, 1 duplicate MDReqID, 2 too many subscriptions,
  5 unsupported depth, 6 unsupported MDUpdateType, 8 unsupported MDEntryType) and Text;
  an unknown MDReqID to unsubscribe gets Y with Text only.

Sequencing: every W carries RptSeq(83), the number of the last increment of that
book it already contains; every X entry and every f carry the RptSeq of the increment
they belong to (one increment: one durable batch's changes to that book, so several
entries share a number). Numbers belong to (MDReqID, symbol) and rise by one per
increment: a client applies entries whose RptSeq is its last + 1 (or equal to it, the
rest of the same increment), and one that sees a bigger jump has a gap. It heals with a
snapshot: the venue sends a fresh W by itself whenever it skipped anything (a lagging
session), or the client asks for one with a V 263=0 of the same shape (same
numbering) and applies the X entries numbered after it, or unsubscribes and subscribes
again.

Fan-out: every W and X is built once per feed and range of increments and sent to each
subscriber of that feed with only MDReqID(262) set, so 100 subscribers of one shape cost
one build and 100 sends, not 100 builds; its entries travel inside QuickFIX as one
preformatted field (:meth:`sessions.mdfix.FixBuilder.carried`), so a send copies one
string rather than serialising every field of every entry again. An X holds
at most ``max_entries`` entries: a larger increment is split over several X (its entries
keep its RptSeq); besides keeping messages small for the client, this keeps each
QuickFIX send below what the loopback hop to the gateway takes at once (sends of
hundreds of KB stalled there for the 40 ms of a delayed ACK, each). A subscription
gets whatever increments are due in one delivery (so a session that fell behind catches
up in few messages), and with ``conflate`` (seconds; 0 by default) at most one delivery
per interval: the increments of many small batches then go out together, fewer and
larger messages for at most that much more delay. Nothing is merged or renumbered.

Slow consumers: the hub delivers to every session on its one dispatcher thread and
never queues beyond ``max_pending`` increments per subscriber (then it sends a new
snapshot instead). On the FIX side, a session whose client reads slower than the venue
writes (the logon gateway holds more than ``max_backlog`` bytes for it) is *stalled*:
nothing is sent to it, so neither QuickFIX nor the gateway queue grows, until it has
read most of what was buffered; then each of its subscriptions restarts with a new W.
Market-data sessions do not persist what they send (PersistMessages=N): a resend
request gets a gap fill, and the client resubscribes or asks for a snapshot.

The module keeps no market state of its own: books, numbering and snapshots are the
hub's; it only parses requests, keeps who subscribed to what, and encodes
(:mod:`sessions.mdfix`).
"""
from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
import threading
import time
from typing import Any, Callable

import quickfix as fix

from marketdata import ASK, BID, Book, FeedSpec, MarketData, MarketDataError, Snapshot, Subscription, UnknownSymbol
from sessions import codec, mdfix
from sessions.mdfix import pairs
from sessions.application import SessionCtx, VenueApplication

log = logging.getLogger("sessions.marketdata")

MAX_BACKLOG = 1024 * 1024  # bytes the gateway may hold for a client before its session is stalled
MAX_SUBSCRIPTIONS = 200  # (MDReqID, symbol) pairs per session
MAX_ENTRIES = 500  # entries per X; more are split over several messages
CONFLATE = 0.0  # seconds between two deliveries to one subscription (see the module docstring)
SEND_BATCH = 512  # messages per call into QuickFIX, at most
_REQ_ID = "?"  # MDReqID of a shared W or X until set for each subscriber
_BUILT_KEPT = 64  # shared messages kept: enough for every feed of one dispatcher round


class _Sub:
    """One (request, symbol) of a session and its hub subscription."""

    __slots__ = ("owner", "kind", "req_id", "symbol", "inst", "hub", "closed", "told_halted", "need_w", "answered")

    def __init__(self, owner: _Session, kind: str, req_id: str, inst: Any) -> None:
        self.owner = owner
        self.kind = kind  # "V": book and trades; "e": status only
        self.req_id = req_id
        self.symbol = inst.symbol
        self.inst = inst
        self.hub: Subscription | None = None
        self.closed = False
        self.told_halted = False  # what the client was last told about a halt
        self.need_w = False  # something was skipped: send nothing until a new snapshot
        self.answered = False  # e: the first status went out (solicited)


class _Session:
    __slots__ = ("ctx", "subs", "stalled")

    def __init__(self, ctx: SessionCtx) -> None:
        self.ctx = ctx
        self.subs: dict[tuple[str, str], list[_Sub]] = {}  # (kind, request id) -> one per symbol
        self.stalled = False

    def count(self) -> int:
        return sum(len(v) for v in self.subs.values())


class MarketDataSessions:
    """The market-data requests of every ``market_data`` session of one application."""

    def __init__(self, app: VenueApplication, md: MarketData, dictionary: str,
                 backlog: Callable[[str], int] | None = None, *, max_backlog: int = MAX_BACKLOG, max_subscriptions: int = MAX_SUBSCRIPTIONS,
                 max_entries: int = MAX_ENTRIES, conflate: float = CONFLATE) -> None:
        self.app = app
        self.md = md
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.max_subscriptions = max_subscriptions
        self.max_entries = max_entries
        self.conflate = conflate  # seconds: at most one delivery (W/X) per subscription per this interval
        self.sent = 0  # W, X and f messages handed to QuickFIX
        self.built = 0  # W and X messages built (each serves every subscriber of its feed at that point)
        self.stalls = 0  # times a session was stalled
        self.skipped = 0  # hub messages not sent to a stalled session (replaced by a snapshot)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self.fix = mdfix.FixBuilder(dictionary)
        # W and X built once per feed and range, reused for each subscriber (dispatcher thread only)
        self._built: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._list_ids = itertools.count(1)
        # what the dispatcher sends in a round, sent together at its end (see _send)
        self._out: list[tuple[Any, ...]] = []
        md.round_listeners.append(self._flush)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="md-sessions-watch", daemon=True)
        h = app.handlers["market_data"]
        h["x"] = self.on_security_list_request
        h["V"] = self.on_market_data_request
        h["e"] = self.on_security_status_request
        app.logout_listeners.append(self.on_logout)

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        if self._flush in self.md.round_listeners:
            self.md.round_listeners.remove(self._flush)
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            self._close_all(s)

    def status(self) -> dict[str, Any]:
        with self._lock:
            subs = {c: s.count() for c, s in self._sessions.items()}
        return {"subscriptions": subs, "sent": self.sent, "built": self.built, "stalls": self.stalls,
                "skipped": self.skipped}

    # -- SecurityListRequest (x) -----------------------------------------------------
    def on_security_list_request(self, msg: fix.Message, ctx: SessionCtx) -> None:
        d = codec.fields_of(msg)
        req_id, kind = d["320"], d["559"]
        insts = self.md.instruments()
        text = ""
        if kind == "4":
            result = "0" if insts else "2"
        elif kind == "0" and d.get("55"):
            insts = [i for i in insts if i.symbol == d["55"]]
            result = "0" if insts else "2"
            text = "" if insts else f"unknown symbol {d['55']}"
        else:
            result, insts, text = "1", [], "SecurityListRequestType must be 4 (all) or 0 (with a Symbol)"
        halted = {i.symbol: self.md.halted(i.symbol) for i in insts}
        assets = {i.quote: self.app.asset(i.quote) for i in insts}
        self.app.send(ctx, self.fix.message("y", mdfix.security_list(req_id, f"SL-{next(self._list_ids)}", result,
                                                                     insts, halted, assets, text)))

    # -- MarketDataRequest (V) -------------------------------------------------------
    def on_market_data_request(self, msg: fix.Message, ctx: SessionCtx) -> None:
        fields = pairs(msg)
        d = dict(fields)
        req_id, sub_type = d["262"], d["263"]
        if sub_type == "2":
            if not self._unsubscribe(ctx, "V", req_id):
                self._reject(ctx, req_id, None, f"no subscription with MDReqID {req_id}")
            return
        specs = self._specs(fields, d, sub_type)
        if isinstance(specs, tuple):
            self._reject(ctx, req_id, *specs)
            return
        if sub_type == "0":
            for spec in specs:
                try:
                    snap = self.md.snapshot(spec)
                except MarketDataError as e:
                    self._reject(ctx, req_id, None, str(e))
                    return
                inst = self.app.instrument(spec.symbol)
                assert inst is not None  # checked by _specs
                self.app.send(ctx, self.fix.message("W", mdfix.snapshot_body(snap, inst, req_id)))
                if snap.halted:
                    self.app.send(ctx, self.fix.message("f", mdfix.security_status(
                        spec.symbol, mdfix.HALTED, snap.rpt_seq, snap.ts, req_id=req_id, unsolicited=False)))
            return
        refusal = self._subscribe(ctx, "V", req_id, specs)
        if refusal is not None:
            self._reject(ctx, req_id, *refusal)

    def _reject(self, ctx: SessionCtx, req_id: str, reason: str | None, text: str) -> None:
        self.app.send(ctx, self.fix.message("Y", mdfix.md_reject(req_id, reason, text)))

    def _specs(self, fields: list[tuple[str, str]], d: dict[str, str],
               sub_type: str) -> list[FeedSpec] | tuple[str | None, str]:
        """The feeds a V asks for, or (MDReqRejReason, text)."""
        if sub_type not in ("0", "1"):
            return mdfix.UNSUPPORTED_SUBSCRIPTION_TYPE, "SubscriptionRequestType must be 0, 1 or 2"
        if sub_type == "1" and d.get("265", "1") != "1":
            return mdfix.UNSUPPORTED_UPDATE_TYPE, "MDUpdateType must be 1 (incremental refresh)"
        types = {v for t, v in fields if t == "269"}
        bad = types - {"0", "1", "2"}
        if bad or not types:
            return mdfix.UNSUPPORTED_ENTRY_TYPE, "MDEntryType must be 0 (bid), 1 (offer) or 2 (trade)"
        try:
            depth = int(d["264"])
        except ValueError:
            depth = -1
        if depth < 0:
            return mdfix.UNSUPPORTED_DEPTH, "MarketDepth must be 0 (full book) or a number of levels"
        per_order = d.get("266", "Y") == "N"
        book = int(Book.NONE)
        if "0" in types or "1" in types:
            book = int(Book.L3) if per_order else int(Book.L2)
        if book == Book.L3 and depth:
            return mdfix.UNSUPPORTED_DEPTH, "an order-by-order book (AggregatedBook=N) is full depth only: MarketDepth 0"
        sides = 0 if ("0" in types) == ("1" in types) else (BID if "0" in types else ASK)
        symbols = list(dict.fromkeys(v for t, v in fields if t == "55"))
        if not symbols:
            return mdfix.UNKNOWN_SYMBOL, "no Symbol in NoRelatedSym"
        for s in symbols:
            if self.app.instrument(s) is None:
                return mdfix.UNKNOWN_SYMBOL, f"unknown symbol {s}"
        return [FeedSpec(s, book, depth if book == Book.L2 else 0, "2" in types, sides) for s in symbols]

    # -- SecurityStatusRequest (e) ---------------------------------------------------
    def on_security_status_request(self, msg: fix.Message, ctx: SessionCtx) -> None:
        d = codec.fields_of(msg)
        req_id, sub_type, symbol = d["324"], d["263"], d.get("55", "")
        seq = msg.getHeader().getField(34)
        if sub_type not in ("0", "1", "2"):  # the dictionary refuses it first; not a subscription either way
            self.app.send(ctx, codec.business_reject("e", seq, "0", "SubscriptionRequestType must be 0, 1 or 2",
                                                     req_id))
            return
        if sub_type == "2":
            if not self._unsubscribe(ctx, "e", req_id):
                self.app.send(ctx, codec.business_reject("e", seq, "1", f"no status subscription {req_id}", req_id))
            return
        if self.app.instrument(symbol) is None:
            self.app.send(ctx, codec.business_reject("e", seq, "2", f"unknown symbol {symbol!r}", req_id))
            return
        if sub_type == "0":
            try:
                halted = self.md.halted(symbol)
            except UnknownSymbol as e:
                self.app.send(ctx, codec.business_reject("e", seq, "2", str(e), req_id))
                return
            self.app.send(ctx, self.fix.message("f", mdfix.security_status(
                symbol, mdfix.HALTED if halted else mdfix.READY, None, time.time_ns(), req_id=req_id,
                unsolicited=False)))
            return
        refusal = self._subscribe(ctx, "e", req_id, [FeedSpec(symbol, int(Book.NONE), 0, False, 0)])
        if refusal is not None:
            self.app.send(ctx, codec.business_reject("e", seq, "0", refusal[1], req_id))

    # -- subscriptions ---------------------------------------------------------------
    def _subscribe(self, ctx: SessionCtx, kind: str, req_id: str, specs: list[FeedSpec]) -> tuple[str | None, str] | None:
        with self._lock:
            sess = self._sessions.get(ctx.comp_id)
            if sess is None or sess.ctx is not ctx:
                sess = self._sessions[ctx.comp_id] = _Session(ctx)
            if (kind, req_id) in sess.subs:
                return mdfix.DUPLICATE_REQ_ID, f"MDReqID {req_id} is already subscribed"
            if sess.count() + len(specs) > self.max_subscriptions:
                return mdfix.INSUFFICIENT_CAPACITY, f"at most {self.max_subscriptions} subscriptions per session"
            subs = [_Sub(sess, kind, req_id, self.app.instrument(s.symbol)) for s in specs]
            sess.subs[(kind, req_id)] = subs
        try:
            for sub, spec in zip(subs, specs):
                sub.hub = self.md.subscribe(spec, self._sink(sub), interval=self.conflate if kind == "V" else 0.0)
        except MarketDataError as e:
            self._unsubscribe(ctx, kind, req_id)
            return None, str(e)
        return None

    def _sink(self, sub: _Sub) -> Callable[[list[Any]], None]:
        return lambda msgs: self._deliver(sub, msgs)

    def _unsubscribe(self, ctx: SessionCtx, kind: str, req_id: str) -> bool:
        with self._lock:
            sess = self._sessions.get(ctx.comp_id)
            subs = sess.subs.pop((kind, req_id), None) if sess is not None else None
        if not subs:
            return False
        for s in subs:
            s.closed = True
            if s.hub is not None:
                s.hub.close()
        return True

    def on_logout(self, ctx: SessionCtx) -> None:
        if ctx.rec.role != "market_data":
            return
        with self._lock:
            sess = self._sessions.pop(ctx.comp_id, None)
        if sess is not None:
            self._close_all(sess)

    @staticmethod
    def _close_all(sess: _Session) -> None:
        for subs in sess.subs.values():
            for s in subs:
                s.closed = True
                if s.hub is not None:
                    s.hub.close()

    # -- delivery (the hub's dispatcher thread) --------------------------------------
    def _deliver(self, sub: _Sub, msgs: list[Any]) -> None:
        sess = sub.owner
        ctx = sess.ctx
        if sub.closed or not ctx.logged_on:
            return
        if not sess.stalled and self.backlog is not None and self.backlog(ctx.comp_id) > self.max_backlog:
            sess.stalled = True
            self.stalls += 1
            log.info("market data %s reads too slowly: stalled until it catches up", ctx.comp_id)
        if sess.stalled:  # nothing goes out; the watcher asks for a snapshot once the client caught up
            self.skipped += len(msgs)
            sub.need_w = True
            return
        if sub.need_w and type(msgs[0]) is not Snapshot:  # increments after a skip: wait for the snapshot
            self.skipped += len(msgs)
            if sub.hub is not None:
                sub.hub.request_snapshot()
            return
        sub.need_w = False
        if sub.kind == "e":
            self._deliver_status(sub, msgs)
            return
        inst, req_id, send = sub.inst, sub.req_id, self._send
        i, n = 0, len(msgs)
        while i < n:
            m = msgs[i]
            if type(m) is Snapshot:
                send(ctx, self._shared_w(m, inst), req_id)
                if m.halted or sub.told_halted:
                    send(ctx, self.fix.message("f", mdfix.security_status(
                        sub.symbol, mdfix.HALTED if m.halted else mdfix.RESUMED, m.rpt_seq, m.ts, req_id=req_id)))
                    sub.told_halted = m.halted
                i += 1
                continue
            j = i + 1  # a run of increments, up to the first that carries a status change
            while j < n and not msgs[j - 1].statuses and type(msgs[j]) is not Snapshot:
                j += 1
            for x in self._shared_x(msgs, i, j, inst):
                send(ctx, x, req_id)
            for st in msgs[j - 1].statuses:
                send(ctx, self.fix.message("f", mdfix.status_change(st, msgs[j - 1].rpt_seq, req_id)))
                sub.told_halted = st.halted
            i = j

    # -- messages built once, sent to every subscriber of a feed ---------------------
    def _shared_x(self, msgs: list[Any], i: int, j: int, inst: Any) -> list[fix.Message]:
        """The X messages of increments ``msgs[i:j]`` (one feed, consecutive RptSeq): their
        entries in order, at most ``max_entries`` per message (an increment may be split:
        its entries keep its RptSeq). Built once per feed and range, parsed once by
        QuickFIX, and sent to every subscriber at that point of the feed with only its
        MDReqID set: the subscribers of a feed are served one after the other by the
        dispatcher, so a small cache serves them all; a session that fell behind gets its
        backlog conflated into as few messages as the range allows."""
        first, last = msgs[i], msgs[j - 1]
        key = ("X", first.spec, first.rpt_seq, last.rpt_seq)
        cache = self._built
        got = cache.get(key)
        if got is not None:
            cache.move_to_end(key)
            return got  # type: ignore[no-any-return]
        entries: list[str] = []
        for k in range(i, j):
            entries += mdfix.increment_entries(msgs[k], inst)
        step = self.max_entries
        got = [mdfix.FixBuilder.carried("X", [(262, _REQ_ID)], 268, entries[a:a + step])
               for a in range(0, len(entries), step)]
        self.built += len(got)
        self._remember(key, got)
        return got

    def _shared_w(self, snap: Snapshot, inst: Any) -> fix.Message:
        """The W of a snapshot, built once for every subscriber that gets this snapshot."""
        key = ("W", snap.spec, snap.rpt_seq, snap.seq)
        got = self._built.get(key)
        if got is None:
            got = mdfix.FixBuilder.carried("W", [(55, inst.symbol), (83, str(snap.rpt_seq)), (262, _REQ_ID)], 268,
                                           mdfix.snapshot_entries(snap, inst))
            self.built += 1
            self._remember(key, got)
        return got  # type: ignore[no-any-return]

    def _remember(self, key: tuple[Any, ...], built: Any) -> None:
        cache = self._built
        cache[key] = built
        if len(cache) > _BUILT_KEPT:
            cache.popitem(last=False)

    def _deliver_status(self, sub: _Sub, msgs: list[Any]) -> None:
        for m in msgs:
            if type(m) is Snapshot:
                status = mdfix.HALTED if m.halted else mdfix.READY
                self._send(sub.owner.ctx, self.fix.message("f", mdfix.security_status(
                    sub.symbol, status, m.rpt_seq, m.ts, req_id=sub.req_id, unsolicited=sub.answered)))
                sub.answered = True
            else:
                for st in m.statuses:
                    self._send(sub.owner.ctx, self.fix.message("f", mdfix.security_status(
                        st.symbol, mdfix.HALTED if st.halted else mdfix.RESUMED, m.rpt_seq, st.ts, st.reason,
                        req_id=sub.req_id)))

    def _send(self, ctx: SessionCtx, msg: fix.Message, req_id: str | None = None) -> None:
        """Dispatcher thread: send ``msg`` (a shared W or X with its MDReqID ``req_id`` set
        at the send) at the end of this round of the dispatcher, with everything else it
        sends in the round, in one call into QuickFIX (VenueApplication.send_many)."""
        out = self._out
        out.append((msg, ctx.sid) if req_id is None else (msg, ctx.sid, 262, req_id))
        self.sent += 1
        if len(out) >= SEND_BATCH:
            self._flush()

    def _flush(self) -> None:
        out = self._out
        if out:
            self._out = []
            self.app.send_many(out)

    # -- the watcher: stalled sessions that caught up get new snapshots --------------
    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            if self.backlog is None:
                continue
            with self._lock:
                stalled = [s for s in self._sessions.values() if s.stalled]
            for sess in stalled:
                if not sess.ctx.logged_on or self.backlog(sess.ctx.comp_id) > self.max_backlog // 4:
                    continue
                with self._lock:
                    subs = [s for v in sess.subs.values() for s in v]
                sess.stalled = False
                for s in subs:
                    if s.need_w and not s.closed and s.hub is not None:
                        s.hub.request_snapshot()
