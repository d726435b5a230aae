"""The market-data hub: books, tape and statistics kept from the venue's durable events,
and the in-process fan-out to subscribers.

:class:`MarketData` is a :meth:`venue.core.Venue.subscribe` listener. On the publishing
thread (the one that ran the sequencer's step), under its lock, it applies each durable batch to its books
(:mod:`marketdata.book`), the tape and the bars (:mod:`marketdata.stats`), builds one
increment per feed that changed (:mod:`marketdata.feeds`), appends it to the feed's ring
and wakes the dispatcher thread. That is all the publishing thread pays, whatever the
number of subscribers: it never touches a subscriber, never builds a snapshot for one
and never waits for one.

Each subscriber holds a cursor into its feed's ring: the RptSeq it last received. The
dispatcher thread hands each push subscriber what lies after its cursor
(``sink(messages)``) and wakes pull subscribers, which read on their own thread with
``poll``/``take`` (a consumer serving several subscriptions passes one shared ``wake``
event). A push sink must be quick (encode, hand to a socket buffer); one that blocks
delays every push subscriber.

A subscriber more than ``max_pending`` increments behind (or behind what the ring still
holds) is lagging: its next read is a new snapshot, numbered with the feed's current
RptSeq, built under the hub's lock at a batch boundary, instead of the backlog. So the
backlog of a slow subscriber is bounded and stored once per feed, and its cost is one
snapshot, never the engine's time.

The hub does not know FIX or Redis; it keeps no history beyond a bounded tape and bars;
it does not recover trades from before the venue's last snapshot unless fed them
(:meth:`MarketData.on_replay`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

from marketdata.book import InstrumentBook
from marketdata.errors import BadRequest, MarketDataError, Unavailable, UnknownSymbol
from marketdata.feeds import Feed
from marketdata.messages import (
    ASK, BID, Book, BookOrder, FeedSpec, Increment, Message, Snapshot, StatusChange, TradePrint,
)
from marketdata.stats import Bar, Ticker, TradeStats
from venue import commands as C
from venue.events import AdminApplied, Execution, InstrumentStatus, Trade
from venue.instruments import Instrument
from venue.types import FX_ADD, FX_REMOVE, FX_REQUEUE, FX_UPDATE

log = logging.getLogger("marketdata.hub")

Sink = Callable[[list[Message]], None]
_L3 = int(Book.L3)
_new = tuple.__new__  # builds a NamedTuple from a full tuple without its Python-level __new__ (hot path)
_BOOKS = (int(Book.NONE), int(Book.L2), _L3)


class BookState(NamedTuple):
    """The engine's books as plain data, captured on the sequencer's thread."""

    seq: int
    ts: int
    instruments: list[Instrument]
    halted: dict[str, bool]
    orders: dict[str, list[BookOrder]]  # per symbol: bids best level first, then asks; FIFO in a level


class HubState(NamedTuple):
    """A hub's books and tape, for a hub in another process (:meth:`MarketData.follow`)."""

    books: BookState
    tapes: dict[str, list[tuple[Any, ...]]]  # per symbol: the tape's trades, as Trade values


def capture(engine: Any) -> BookState:
    """Read the engine's books (call on the sequencer's thread, or before it runs)."""
    orders: dict[str, list[BookOrder]] = {}
    for sym, mkt in engine.markets.items():
        rows = orders[sym] = []
        for side in (mkt.book.bids, mkt.book.asks):
            for lvl in side.sorted_levels():
                for o in lvl.live():
                    rows.append(BookOrder(o.id, o.side, lvl.price, o.visible))
    return BookState(engine.seq, engine.ts, [m.inst for m in engine.markets.values()],
                     {s: m.halted for s, m in engine.markets.items()}, orders)


def _print(t: Trade) -> TradePrint:
    """The public part of an engine Trade (no accounts, no fees)."""
    return _new(TradePrint, (t.symbol, t.seq, t.trade_n, t.ts, t.price, t.qty, t.aggressor_side))


OP_END, OP_TRADE, OP_STATUS, OP_DEFINE = -1, -2, -3, -4  # the other ops are the book effects FX_*


def book_ops(batch: list[Any], after: int, *, portable: bool = False) -> list[tuple[Any, ...]]:
    """What market data takes from durable batches (those after seq ``after``), as a
    flat list of tuples, in order: ``(FX_ADD|FX_UPDATE|FX_REMOVE|FX_REQUEUE, symbol,
    order_id, side, price, visible)`` for an order's book effect, ``(OP_TRADE, trade)``,
    ``(OP_STATUS, status)``, ``(OP_DEFINE, instrument record)`` and, closing each
    command, ``(OP_END, seq, ts)``. ``portable``: trades and statuses as plain tuples,
    for a hub in another process (:meth:`MarketData.follow`)."""
    ops: list[tuple[Any, ...]] = []
    add = ops.append
    execution, trade, status = Execution, Trade, InstrumentStatus
    for p in batch:
        if p.seq <= after:
            continue
        for ev in p.events:
            t = type(ev)
            if t is execution:
                fx = ev.book
                if fx:
                    info = ev.info
                    add((fx, info.symbol, info.order_id, info.side, info.price, ev.visible))
            elif t is trade:
                add((OP_TRADE, ev._values() if portable else ev))
            elif t is status:
                add((OP_STATUS, tuple(ev)))
            elif t is AdminApplied and type(ev.cmd) is C.DefineInstrument:
                add((OP_DEFINE, dict(ev.cmd.record)))
        add((OP_END, p.seq, p.ts))
    return ops


class Subscription:
    """One subscriber of one feed: a cursor into the feed's ring, read by push or pull."""

    __slots__ = ("id", "spec", "feed", "hub", "cursor", "max_pending", "needs_snapshot", "sink", "wake", "closed",
                 "resnapshots", "sink_errors", "interval", "next_push")

    def __init__(self, sid: int, hub: MarketData, feed: Feed, sink: Sink | None, max_pending: int,
                 wake: threading.Event | None, interval: float = 0.0) -> None:
        self.id = sid
        self.spec = feed.spec
        self.feed = feed
        self.hub = hub
        self.cursor = 0  # the RptSeq of the last message delivered
        self.max_pending = max_pending
        self.needs_snapshot = True  # the first read is a snapshot
        self.sink = sink
        self.wake = wake or threading.Event()
        self.closed = False
        self.resnapshots = 0  # times it lagged and got a snapshot instead of its backlog
        self.sink_errors = 0
        self.interval = interval  # push: at most one delivery per this many seconds (0 = at once)
        self.next_push = 0.0  # monotonic time before which it gets nothing more (its increments wait)

    def take(self) -> list[Message]:
        """Whatever is due now (a snapshot first when one is due); never waits."""
        return self.hub._take(self)

    def poll(self, timeout: float | None = None) -> list[Message]:
        """Wait up to ``timeout`` seconds for messages (pull mode)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self.wake.clear()
            msgs = self.hub._take(self)
            if msgs or self.closed:
                return msgs
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            if not self.wake.wait(remaining):
                return []

    def request_snapshot(self) -> None:
        """Skip the backlog: the next delivery is a new snapshot (after a gap the consumer saw)."""
        self.hub._resnapshot(self)

    def close(self) -> None:
        """Unsubscribe. Nothing more is delivered."""
        self.hub._unsubscribe(self)


class MarketData:
    """Books (L2/L3), trades tape, ticker and bars per instrument, and the fan-out."""

    def __init__(self, *, max_pending: int = 1024, tape_size: int = 1000, bars_keep: int = 1500) -> None:
        self.max_pending = max_pending
        self.tape_size = tape_size
        self.bars_keep = bars_keep
        self.seq = 0  # the last venue command applied
        self.ts = 0  # its time stamp: "now" for the ticker
        self.failed: BaseException | None = None  # why the books were last found inconsistent
        self.resyncs = 0
        self._lock = threading.Lock()
        self._books: dict[str, InstrumentBook] = {}
        self._stats: dict[str, TradeStats] = {}
        self._tape: dict[str, deque[Trade]] = {}  # the engine's events; public as TradePrint
        self._feeds: dict[str, dict[FeedSpec, Feed]] = {}
        self._loaded = False
        self._buffer: list[list[Any]] | None = None  # batches that arrive while loading
        self._replayed: list[Trade] = []
        self._venue: Any = None
        self._next_id = 0
        self._ready: list[Subscription] = []  # subscribers due a snapshot, for the dispatcher
        self._flagged: list[Feed] = []  # feeds with new increments since the dispatcher last looked
        self._dispatch_wake = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._closed = False
        # called by the dispatcher after each round of pushes (a sink that gathers its
        # sends flushes them there)
        self.round_listeners: list[Callable[[], None]] = []
        # hubs in other processes (:meth:`follow`): each gets every batch's book_ops
        self._followers: list[Callable[[Any], None]] = []

    # ================================================================ loading
    def load(self, state: BookState) -> None:
        """Take the books from a :func:`capture` (e.g. of an engine recovered but not yet
        running), then follow the batches after ``state.seq``."""
        with self._lock:
            self._load(state)

    def attach(self, venue: Any) -> None:
        """Follow ``venue`` (opened, running or not): subscribe to its durable batches and
        load its books, without a gap or a double between the two."""
        if venue.engine is None:
            raise Unavailable("open() the venue before attaching market data")
        self._venue = venue
        with self._lock:
            self._buffer = []
        venue.subscribe(self.on_batch)
        self._reload()

    def resync(self) -> None:
        """Reload the books from the attached venue (after an inconsistency, or on demand).
        Every subscriber gets a new snapshot. Call from any thread but the journal's."""
        with self._lock:
            if self._buffer is None:
                self._buffer = []
        self._reload()

    def _reload(self) -> None:
        venue = self._venue
        if venue is None:
            raise Unavailable("no venue attached to resync from")
        state = capture(venue.engine) if venue.sequencer is None else venue.query(capture)
        with self._lock:
            buffered = self._buffer or []
            self._buffer = None
            self._load(state)
            for batch in buffered:
                self._apply_checked(batch)

    def _load(self, state: BookState) -> None:
        for inst in state.instruments:
            if inst.symbol not in self._books:
                self._define(inst)
        for sym, orders in state.orders.items():
            b = self._books[sym]
            b.load(orders)
            b.halted = state.halted.get(sym, False)
        self.seq, self.ts = state.seq, max(self.ts, state.ts)
        for t in self._replayed:
            if t.symbol in self._stats:
                self._stats[t.symbol].add(t)
                self._tape[t.symbol].append(t)
        self._replayed = []
        self._loaded = True
        self.failed = None
        if self._followers:  # reloaded: the followers start over from here
            hs = self._state()
            for fn in self._followers:
                fn(hs)
        for sym, feeds in self._feeds.items():
            book = self._books[sym]
            for spec, feed in list(feeds.items()):
                feed.windows = Feed(spec, book).windows
                feed.snap_cache = None
                for sub in feed.subs:
                    sub.needs_snapshot = True
                    self._ready.append(sub)
        if self._ready:
            self._dispatch_wake.set()

    def follow(self, fn: Callable[[Any], None]) -> HubState | None:
        """Let ``fn`` follow this hub: the state now (``None`` while the books are not
        loaded yet: try again), then ``fn(ops)`` with the :func:`book_ops` of every later
        batch, on the publishing thread under the hub's lock (``fn`` must only hand them
        on), with neither a gap nor a double between the two; should this hub ever reload
        its books, ``fn(state)`` with the new state. For a hub in another process: it
        :meth:`load_state` s each state and :meth:`apply_ops` each list of ops."""
        with self._lock:
            if not self._loaded or self._buffer is not None:
                return None
            if fn not in self._followers:
                self._followers.append(fn)
            return self._state()

    def unfollow(self, fn: Callable[[Any], None]) -> None:
        with self._lock:
            if fn in self._followers:
                self._followers.remove(fn)

    def _state(self) -> HubState:
        books = self._books.values()
        state = BookState(self.seq, self.ts, [b.inst for b in books], {b.symbol: b.halted for b in books},
                          {b.symbol: b.orders(BID) + b.orders(ASK) for b in books})
        return HubState(state, {sym: [t._values() for t in tape] for sym, tape in self._tape.items()})

    def load_state(self, hs: HubState) -> None:
        """Take a :meth:`follow` state (another process's hub): books, statuses and tape."""
        with self._lock:
            self._replayed = [Trade(*t) for rows in hs.tapes.values() for t in rows]
            for tape in self._tape.values():
                tape.clear()
            self._load(hs.books)
        self._dispatch_wake.set()

    def apply_ops(self, ops: list[tuple[Any, ...]]) -> None:
        """Apply the :func:`book_ops` a followed hub handed on (see :meth:`follow`)."""
        with self._lock:
            if not self._loaded:
                return
            try:
                self._apply_ops(ops)
            except Exception as e:
                log.critical("market data lost track of the followed hub at seq %s: %r", self.seq, e, exc_info=True)
                self.failed = e
                self._loaded = False
                raise
        if self._flagged or self._ready:
            self._dispatch_wake.set()

    def _define(self, inst: Instrument) -> None:
        self._books[inst.symbol] = InstrumentBook(inst)
        self._stats[inst.symbol] = TradeStats(inst.symbol, inst.notional_mult, self.bars_keep)
        self._tape[inst.symbol] = deque(maxlen=self.tape_size)

    def on_replay(self, p: Any) -> None:
        """``Venue.open(on_replay=...)``: keep the replayed trades for the tape and bars
        (the books come from the engine once it is recovered)."""
        for ev in p.events:
            if type(ev) is Trade:
                self._replayed.append(ev)
        self.ts = max(self.ts, p.ts)

    # ================================================================ the publishing thread
    def on_batch(self, batch: list[Any]) -> None:
        """The :meth:`venue.core.Venue.subscribe` listener: one durable batch, in order."""
        with self._lock:
            if self._buffer is not None:
                self._buffer.append(batch)
                return
            if not self._loaded:
                return
            self._apply_checked(batch)
        if self._flagged or self._ready:
            self._dispatch_wake.set()

    def _apply_checked(self, batch: list[Any]) -> None:
        try:
            self._apply(batch)
        except Exception as e:  # the books no longer follow the engine: reload them
            log.critical("market data lost track of the engine at seq %s: %r; reloading", self.seq, e, exc_info=True)
            self.failed = e
            self._buffer = []  # the reload's capture already holds this batch (it is durable)
            self._loaded = False
            self.resyncs += 1
            if self._venue is not None:
                threading.Thread(target=self._resync_quietly, name="marketdata-resync", daemon=True).start()

    def _resync_quietly(self) -> None:
        try:
            self._reload()
        except Exception:
            log.exception("market data could not reload its books; it stays unavailable")

    def _apply(self, batch: list[Any]) -> None:
        ops = book_ops(batch, self.seq, portable=bool(self._followers))
        for fn in self._followers:
            fn(ops)
        self._apply_ops(ops)

    def _apply_ops(self, ops: list[tuple[Any, ...]]) -> None:
        """Apply :func:`book_ops` (under the lock), then publish what changed."""
        books = self._books
        last, ts = self.seq, self.ts
        fx_add, fx_update, fx_remove = FX_ADD, FX_UPDATE, FX_REMOVE  # locals: hot loop
        for op in ops:
            k = op[0]
            if k == fx_add:
                books[op[1]].add(op[2], op[3], op[4], op[5])
            elif k == fx_remove:
                books[op[1]].remove(op[2])
            elif k == fx_update:
                books[op[1]].update(op[2], op[5])
            elif k == OP_END:
                last, ts = op[1], op[2]
            elif k == FX_REQUEUE:
                b = books[op[1]]
                b.remove(op[2])
                b.add(op[2], op[3], op[4], op[5])
            elif k == OP_TRADE:
                tr = op[1] if type(op[1]) is Trade else Trade(*op[1])
                books[tr.symbol].trades.append(tr)
            elif k == OP_STATUS:
                st = InstrumentStatus(*op[1])
                b = books[st.symbol]
                b.halted = st.halted
                b.statuses.append(StatusChange(st.symbol, st.halted, st.reason, st.seq, st.ts))
            elif k == OP_DEFINE:
                self._define(Instrument.from_record(op[1]))
        self.seq, self.ts = last, ts
        for b in books.values():
            if b.changed():
                self._publish(b)

    def _publish(self, b: InstrumentBook) -> None:
        """Account for one instrument's batch: tape, bars, and an increment per feed."""
        sym = b.symbol
        if b.trades:
            self._tape[sym].extend(b.trades)
            add = self._stats[sym].add
            for tr in b.trades:
                add(tr)
        feeds = self._feeds.get(sym)
        if feeds:
            best = {BID: min(b.bids.dirty) if b.bids.dirty else None,
                    ASK: min(b.asks.dirty) if b.asks.dirty else None}
            prints = tuple([_print(t) for t in b.trades])  # one tuple shared by every feed's increment
            st = tuple(b.statuses)
            seq, ts = self.seq, self.ts
            for feed in feeds.values():
                inc = feed.build(b, best, prints, st, seq, ts)
                if inc is not None:
                    self._fan_out(feed, inc)
        b.clear_changes()

    def _fan_out(self, feed: Feed, inc: Increment) -> None:
        feed.push(inc)
        if not feed.flagged:
            feed.flagged = True
            self._flagged.append(feed)

    # ================================================================ subscribers
    def subscribe(self, spec: FeedSpec, sink: Sink | None = None, *, max_pending: int | None = None,
                  wake: threading.Event | None = None, interval: float = 0.0) -> Subscription:
        """Subscribe to one feed. The first message is a :class:`Snapshot`, then
        :class:`Increment` messages follow its RptSeq. With ``sink`` the dispatcher thread
        pushes ``sink(messages)``; without, read with ``poll``/``take``. A subscriber more
        than ``max_pending`` increments behind gets a new snapshot instead.

        ``interval`` (push only) conflates: the sink is called at most once per that many
        seconds, with every increment since its last call (in order, nothing merged or
        renumbered), so a subscriber whose sink costs something per call (a FIX message
        per session) pays it once per interval, not once per batch of the venue. It adds
        at most ``interval`` to the delay; a snapshot due is never held back."""
        spec = self._check(spec)
        mp = self.max_pending if max_pending is None else max_pending
        if type(mp) is not int or mp < 1:
            raise BadRequest("max_pending must be a whole number >= 1")
        if not isinstance(interval, (int, float)) or not 0 <= interval <= 10:
            raise BadRequest("interval must be from 0 to 10 seconds")
        with self._lock:
            if self._closed:
                raise Unavailable("market data is closed")
            book = self._books.get(spec.symbol)
            if book is None:
                if not self._books:
                    raise Unavailable("market data is not loaded yet (attach it to the venue first)")
                raise UnknownSymbol(f"unknown symbol {spec.symbol}")
            feeds = self._feeds.setdefault(spec.symbol, {})
            feed = feeds.get(spec)
            if feed is None:
                feed = feeds[spec] = Feed(spec, book, mp)
                if spec.book == _L3 and book.log is None:
                    book.log = []
            feed.cap = max(feed.cap, mp)
            self._next_id += 1
            sub = Subscription(self._next_id, self, feed, sink, mp, wake, float(interval) if sink else 0.0)
            feed.subs.append(sub)
            self._start_dispatcher()
            if sink is not None:
                self._ready.append(sub)
        if sink is not None:
            self._dispatch_wake.set()
        else:
            sub.wake.set()
        return sub

    def snapshot(self, spec: FeedSpec) -> Snapshot:
        """A snapshot of one feed without subscribing (FIX SubscriptionRequestType 0)."""
        spec = self._check(spec)
        with self._lock:
            if not self._loaded:
                raise Unavailable("market data is not loaded")
            book = self._books.get(spec.symbol)
            if book is None:
                raise UnknownSymbol(f"unknown symbol {spec.symbol}")
            feed = self._feeds.get(spec.symbol, {}).get(spec) or Feed(spec, book)
            return feed.snapshot(book, self.seq, self.ts, self._last_trade(spec.symbol))

    @staticmethod
    def _check(spec: FeedSpec) -> FeedSpec:
        if not isinstance(spec, FeedSpec):
            raise BadRequest("a subscription needs a FeedSpec")
        if not isinstance(spec.symbol, str) or not spec.symbol:
            raise BadRequest("a subscription needs a symbol")
        if spec.book not in _BOOKS:
            raise BadRequest(f"unknown book kind {spec.book!r}; use 0 (none), 2 (levels) or 3 (orders)")
        if type(spec.depth) is not int or spec.depth < 0:
            raise BadRequest(f"depth must be a whole number >= 0 (0 = full book), not {spec.depth!r}")
        if spec.book == _L3 and spec.depth:
            raise BadRequest("an order-by-order (L3) book is full depth only")
        if spec.sides not in (0, BID, ASK):
            raise BadRequest(f"sides must be 0 (both), 1 (bids) or 2 (offers), not {spec.sides!r}")
        return FeedSpec(spec.symbol, int(spec.book), spec.depth if spec.book else 0, bool(spec.trades),
                        int(spec.sides))

    def _last_trade(self, symbol: str) -> TradePrint | None:
        tape = self._tape.get(symbol)
        return _print(tape[-1]) if tape else None

    def _take(self, sub: Subscription) -> list[Message]:
        with self._lock:
            return self._take_locked(sub)

    def _take_locked(self, sub: Subscription) -> list[Message]:
        if sub.closed or not self._loaded or self._buffer is not None:
            return []  # a snapshot follows the load
        feed = sub.feed
        if sub.cursor == feed.rpt_seq and not sub.needs_snapshot:
            return []
        backlog = None
        if not sub.needs_snapshot and feed.rpt_seq - sub.cursor <= sub.max_pending:
            backlog = feed.since(sub.cursor)
        if backlog is None:  # first read, asked for, or lagging: a snapshot instead of the backlog
            if not sub.needs_snapshot:
                sub.resnapshots += 1
            sub.needs_snapshot = False
            cached = feed.snap_cache
            if cached is not None and cached[0] == self.seq and cached[1].rpt_seq == feed.rpt_seq:
                snap = cached[1]
            else:
                sym = feed.spec.symbol
                snap = feed.snapshot(self._books[sym], self.seq, self.ts, self._last_trade(sym))
                feed.snap_cache = (self.seq, snap)
            sub.cursor = feed.rpt_seq
            return [snap]
        sub.cursor = feed.rpt_seq
        return backlog

    def _resnapshot(self, sub: Subscription) -> None:
        with self._lock:
            if sub.closed:
                return
            sub.needs_snapshot = True
            self._ready.append(sub)
        self._dispatch_wake.set()

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub.closed:
                return
            sub.closed = True
            feed = sub.feed
            feed.subs.remove(sub)
            feeds = self._feeds.get(sub.spec.symbol, {})
            if not feed.subs and feeds.get(feed.spec) is feed:
                del feeds[feed.spec]
                if feed.spec.book == _L3 and not any(s.book == _L3 for s in feeds):
                    self._books[feed.spec.symbol].log = None
        sub.wake.set()

    # ================================================================ the dispatcher thread
    def _start_dispatcher(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch, name="marketdata-dispatch", daemon=True)
            self._dispatcher.start()

    def _dispatch(self) -> None:
        """Hand push subscribers what is due, wake pull subscribers; until closed. A push
        subscriber with an ``interval`` that was served less than that long ago waits
        (``held``) until its time comes, its increments gathering in the feed's ring."""
        wake = self._dispatch_wake
        held: dict[Subscription, float] = {}  # conflating subscribers -> when they are due
        while True:
            wake.wait(max(0.0, min(held.values()) - time.monotonic()) if held else None)
            wake.clear()
            if self._closed:
                return
            work: list[tuple[Subscription, list[Message]]] = []
            wakes: list[threading.Event] = []
            now = time.monotonic()
            with self._lock:
                flagged, self._flagged = self._flagged, []
                ready, self._ready = self._ready, []
                for feed in flagged:
                    feed.flagged = False
                due = [sub for sub, at in held.items() if at <= now]
                for sub in due:
                    del held[sub]
                for sub in [s for feed in flagged for s in feed.subs] + ready + due:
                    if sub.sink is None:
                        wakes.append(sub.wake)
                        continue
                    if sub.next_push > now and not sub.needs_snapshot:
                        held.setdefault(sub, sub.next_push)
                        continue
                    msgs = self._take_locked(sub)
                    if msgs:
                        work.append((sub, msgs))
                        if sub.interval:
                            sub.next_push = now + sub.interval
            for w in wakes:
                w.set()
            for sub, msgs in work:
                if not sub.closed:
                    try:
                        sub.sink(msgs)  # type: ignore[misc]
                    except Exception:
                        sub.sink_errors += 1
                        log.exception("market-data sink of subscription %s failed", sub.id)
            if work:
                for fn in tuple(self.round_listeners):
                    try:
                        fn()
                    except Exception:
                        log.exception("market-data round listener %r failed", fn)

    def close(self) -> None:
        """Stop the dispatcher and close every subscription."""
        with self._lock:
            subs = [s for feeds in self._feeds.values() for f in feeds.values() for s in f.subs]
            self._closed = True
        for s in subs:
            s.close()
        self._dispatch_wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(5)

    # ================================================================ reads
    def instruments(self) -> list[Instrument]:
        """Every instrument, in the order they were defined (for a SecurityList)."""
        with self._lock:
            return [b.inst for b in self._books.values()]

    def instrument(self, symbol: str) -> Instrument:
        b = self._books.get(symbol)
        if b is None:
            raise UnknownSymbol(f"unknown symbol {symbol}")
        return b.inst

    def halted(self, symbol: str) -> bool:
        b = self._books.get(symbol)
        if b is None:
            raise UnknownSymbol(f"unknown symbol {symbol}")
        return b.halted

    def ticker(self, symbol: str, now_ts: int | None = None) -> Ticker:
        """The 24-hour ticker as of event time ``now_ts`` (default: the last event seen)."""
        with self._lock:
            st = self._stats.get(symbol)
            if st is None:
                raise UnknownSymbol(f"unknown symbol {symbol}")
            b = self._books[symbol]
            return st.ticker(self.ts if now_ts is None else now_ts, b.best_bid(), b.best_ask())

    def bars(self, symbol: str, interval: str, limit: int = 0) -> list[Bar]:
        with self._lock:
            st = self._stats.get(symbol)
            if st is None:
                raise UnknownSymbol(f"unknown symbol {symbol}")
            return st.bars(interval, limit)

    def tape(self, symbol: str, limit: int = 0) -> list[TradePrint]:
        """The latest trades, oldest first (at most ``tape_size``)."""
        with self._lock:
            tape = self._tape.get(symbol)
            if tape is None:
                raise UnknownSymbol(f"unknown symbol {symbol}")
            rows = list(tape)
        return [_print(t) for t in (rows[-limit:] if limit else rows)]

    def subscriptions(self) -> int:
        with self._lock:
            return sum(len(f.subs) for feeds in self._feeds.values() for f in feeds.values())


__all__ = ["MarketData", "Subscription", "BookState", "HubState", "book_ops", "capture", "MarketDataError"]
