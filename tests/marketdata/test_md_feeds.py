"""Subscribers that apply a snapshot and then every increment hold exactly the engine's
book, at depth N, at full depth and order by order, with and without trades; RptSeq has
no holes; a lagging subscriber is resnapshotted, never queued without bound."""
from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from marketdata import (
    BadRequest, Book, BookInconsistent, BookOrder, BookReplica, FeedSpec, Increment, LevelUpdate, MarketData,
    OrderUpdate, PriceLevel, SequenceGap, Snapshot, UnknownSymbol, capture,
)
from marketdata.messages import CHANGE, DELETE, NEW
from md_flow import ASK, BID, SYMBOLS, Flow, engine_levels, engine_orders
from venue.events import InstrumentStatus, Trade

SPECS = [
    FeedSpec(SYMBOLS[0], Book.L2, 1),
    FeedSpec(SYMBOLS[0], Book.L2, 3),
    FeedSpec(SYMBOLS[0], Book.L2, 10, trades=False),
    FeedSpec(SYMBOLS[0], Book.L2, 0),
    FeedSpec(SYMBOLS[0], Book.L2, 5, sides=BID),
    FeedSpec(SYMBOLS[0], Book.L2, 0, sides=ASK, trades=False),
    FeedSpec(SYMBOLS[0], Book.L3),
    FeedSpec(SYMBOLS[0], Book.L3, sides=BID),
    FeedSpec(SYMBOLS[1], Book.L2, 2),
    FeedSpec(SYMBOLS[1], Book.L3, trades=False),
    FeedSpec(SYMBOLS[0], Book.NONE, trades=True),
]


class Client:
    """A pull subscriber that applies what it reads to a replica and checks RptSeq."""

    def __init__(self, md: MarketData, spec: FeedSpec, max_pending: int | None = None) -> None:
        self.sub = md.subscribe(spec, max_pending=max_pending)
        self.replica = BookReplica(self.sub.spec)
        self.trade_ids: list[str] = []
        self.statuses: list[bool] = []
        self.snapshots = 0
        self.most = 0

    def read(self) -> None:
        msgs = self.sub.take()
        self.most = max(self.most, len(msgs))
        for m in msgs:
            if type(m) is Snapshot:
                self.snapshots += 1
            else:
                assert m.rpt_seq == self.replica.rpt_seq + 1, "RptSeq must rise by one"
                self.trade_ids += [t.trade_id for t in m.trades]
                self.statuses += [s.halted for s in m.statuses]
            self.replica.apply(m)


def check(client: Client, flow: Flow, where: str) -> None:
    spec, rep, e = client.replica.spec, client.replica, flow.engine
    assert rep.synced, where
    for side in (BID, ASK):
        shown = spec.book and (not spec.sides or spec.sides == side)
        want = engine_levels(e, spec.symbol, side, spec.depth) if shown else []
        assert rep.levels(side) == want, f"{where}: {spec} side {side}"
        if spec.book == Book.L3:
            assert rep.orders(side) == (engine_orders(e, spec.symbol, side) if shown else []), f"{where}: {spec}"
    assert rep.halted == e.markets[spec.symbol].halted, where


@pytest.mark.parametrize("seed", range(4))
def test_every_shape_of_subscriber_holds_the_engine_book(seed: int) -> None:
    flow = Flow(seed)
    md = MarketData()
    md.load(capture(flow.engine))
    rng = random.Random(seed)
    clients = [Client(md, s) for s in SPECS]
    late: list[Client] = []
    all_trades: dict[str, list[str]] = {s: [] for s in SYMBOLS}
    halts: dict[str, list[bool]] = {s: [] for s in SYMBOLS}
    joined_at: dict[int, int] = {}
    for i in range(300):
        batch = list(flow.steps(rng.randint(1, 12)))
        for p in batch:
            for ev in p.events:
                if type(ev) is Trade:
                    all_trades[ev.symbol].append(f"{ev.seq}-{ev.trade_n}")
                elif type(ev) is InstrumentStatus:
                    halts[ev.symbol].append(ev.halted)
        md.on_batch(batch)
        if i % 50 == 25:  # subscribers join mid-flow
            c = Client(md, rng.choice(SPECS))
            joined_at[id(c)] = len(all_trades[c.sub.spec.symbol])
            late.append(c)
        for c in clients + late:
            c.read()
            check(c, flow, f"seed {seed} batch {i}")
    for c in clients:
        assert c.snapshots == 1
        spec = c.sub.spec
        assert c.trade_ids == (all_trades[spec.symbol] if spec.trades else [])
        assert c.statuses == halts[spec.symbol]
    for c in late:
        spec = c.sub.spec
        if spec.trades:
            assert c.trade_ids == all_trades[spec.symbol][joined_at[id(c)]:]
    assert sum(len(v) for v in all_trades.values()) > 50


@pytest.mark.parametrize("seed", range(3))
def test_l3_increments_carry_each_batchs_net_change(seed: int) -> None:
    """In big batches orders come and go within a batch: the L3 increment carries only
    what changed from one batch to the next (an order appears at most once, or as a
    DELETE then a NEW when it lost its place), and a replica still holds the engine's
    book with each level in time priority."""
    flow = Flow(100 + seed)
    md = MarketData()
    md.load(capture(flow.engine))
    rng = random.Random(seed)
    c = Client(md, FeedSpec(SYMBOLS[0], Book.L3))
    c.read()
    entries = 0
    for i in range(40):
        md.on_batch(list(flow.steps(rng.randint(50, 300))))
        msgs = c.sub.take()
        for m in msgs:
            if type(m) is Increment:
                entries += len(m.orders)
                kinds: dict[int, list[int]] = {}
                for u in m.orders:
                    kinds.setdefault(u.order_id, []).append(u.action)
                for oid, seen in kinds.items():
                    assert seen in ([NEW], [CHANGE], [DELETE], [DELETE, NEW]), f"order {oid}: {seen}"
            c.replica.apply(m)
        check(c, flow, f"seed {seed} batch {i}")
    assert entries > 100


def test_subscribers_of_one_shape_share_numbers_and_messages() -> None:
    flow = Flow(3)
    md = MarketData()
    md.load(capture(flow.engine))
    spec = FeedSpec(SYMBOLS[0], Book.L2, 5)
    a, b = md.subscribe(spec), md.subscribe(spec)
    a.take(), b.take()
    md.on_batch(list(flow.steps(200)))
    ma, mb = a.take(), b.take()
    assert ma and all(x is y for x, y in zip(ma, mb, strict=True))


def test_a_conflating_push_subscriber_gets_everything_at_most_once_per_interval() -> None:
    """``interval``: the sink is called at most once per interval with every increment
    since the last call (in RptSeq order, none merged), and the replica ends with the
    engine's book; a subscriber without an interval gets each batch at once."""
    flow = Flow(21)
    md = MarketData()
    md.load(capture(flow.engine))
    interval = 0.1
    calls: list[float] = []
    rep = BookReplica(FeedSpec(SYMBOLS[0], Book.L3))
    lock = threading.Lock()

    def sink(msgs: list) -> None:
        with lock:
            calls.append(time.monotonic())
            for m in msgs:
                rep.apply(m)  # raises on a gap or a contradiction: counted in sink_errors

    eager: list[float] = []
    try:
        sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L3), sink, interval=interval)
        md.subscribe(FeedSpec(SYMBOLS[0], Book.L3), lambda msgs: eager.append(time.monotonic()))
        time.sleep(0.05)
        start = time.monotonic()
        while time.monotonic() - start < 0.6:
            md.on_batch(list(flow.steps(3)))
            time.sleep(0.003)
        last = md.snapshot(FeedSpec(SYMBOLS[0], Book.L3)).rpt_seq
        deadline = time.monotonic() + 5
        while rep.rpt_seq < last and time.monotonic() < deadline:
            time.sleep(0.01)
        with lock:
            assert sub.sink_errors == 0 and rep.synced and rep.rpt_seq == last > 10
            for side in (BID, ASK):
                assert rep.orders(side) == engine_orders(flow.engine, SYMBOLS[0], side)
            gaps = [b - a for a, b in zip(calls, calls[1:])]
        assert len(calls) <= 0.7 / interval + 2 and min(gaps) >= interval * 0.9, gaps
        assert len(eager) > 3 * len(calls)  # the other subscriber was served at every batch
    finally:
        md.close()


def test_a_lagging_subscriber_is_resnapshotted_with_a_bounded_queue() -> None:
    flow = Flow(11)
    md = MarketData()
    md.load(capture(flow.engine))
    rng = random.Random(5)
    bound = 4
    slow = Client(md, FeedSpec(SYMBOLS[0], Book.L3), max_pending=bound)
    fast = Client(md, FeedSpec(SYMBOLS[0], Book.L2, 0))
    slow.read()
    for i in range(400):
        md.on_batch(list(flow.steps(rng.randint(1, 5))))
        fast.read()
        if i % 37 == 0:  # reads rarely: falls behind
            slow.read()
            check(slow, flow, f"batch {i}")
    slow.read()
    check(slow, flow, "end")
    assert slow.sub.resnapshots > 3
    assert slow.snapshots == slow.sub.resnapshots + 1
    assert slow.most <= bound
    assert fast.snapshots == 1 and fast.sub.resnapshots == 0


def test_a_gap_is_detected_and_healed_by_a_snapshot() -> None:
    flow = Flow(12)
    md = MarketData()
    md.load(capture(flow.engine))
    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 0))
    rep = BookReplica(sub.spec)
    for m in sub.take():
        rep.apply(m)
    md.on_batch(list(flow.steps(30)))
    lost = sub.take()  # a consumer drops these
    assert lost
    md.on_batch(list(flow.steps(30)))
    incs = [m for m in sub.take() if type(m) is Increment]
    with pytest.raises(SequenceGap):
        rep.apply(incs[0])
    assert not rep.synced
    sub.request_snapshot()
    for m in sub.take():
        rep.apply(m)
    assert rep.synced
    assert rep.levels(BID) == engine_levels(flow.engine, SYMBOLS[0], BID)
    assert rep.levels(ASK) == engine_levels(flow.engine, SYMBOLS[0], ASK)


def _inc(spec: FeedSpec, rpt: int, levels: tuple = (), orders: tuple = ()) -> Increment:
    return Increment(spec, rpt, rpt, rpt, levels, orders, (), (), {})


@pytest.mark.parametrize("book,bad", [
    (Book.L2, LevelUpdate(NEW, BID, 100, 5, 1)),  # a New for a level already held
    (Book.L2, LevelUpdate(CHANGE, BID, 99, 5, 1)),  # a Change for a level not held
    (Book.L2, LevelUpdate(DELETE, ASK, 100, 0, 0)),  # a Delete for a level not held
    (Book.L3, OrderUpdate(NEW, 7, BID, 100, 5)),  # a New for an order already held
    (Book.L3, OrderUpdate(CHANGE, 8, BID, 100, 5)),  # a Change for an order not held
    (Book.L3, OrderUpdate(DELETE, 8, ASK, 101, 0)),  # a Delete for an order not held
])
def test_a_replica_refuses_an_entry_that_contradicts_its_book(book: Book, bad: Any) -> None:
    spec = FeedSpec("X-Y", book, 0)
    rep = BookReplica(spec)
    orders = (BookOrder(7, BID, 100, 3),) if book == Book.L3 else ()
    rep.apply(Snapshot(spec, 4, 4, 4, False, (PriceLevel(100, 3, 1),), (), orders, None))
    good = (LevelUpdate(CHANGE, BID, 100, 4, 1),) if book == Book.L2 else (OrderUpdate(CHANGE, 7, BID, 100, 4),)
    rep.apply(_inc(spec, 5, *((good, ()) if book == Book.L2 else ((), good))))
    assert rep.levels(BID) == [PriceLevel(100, 4, 1)]
    with pytest.raises(BookInconsistent):
        rep.apply(_inc(spec, 6, *(((bad,), ()) if book == Book.L2 else ((), (bad,)))))
    assert not rep.synced


def test_unsubscribe_stops_delivery() -> None:
    flow = Flow(13)
    md = MarketData()
    md.load(capture(flow.engine))
    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L3))
    assert sub.take()
    sub.close()
    md.on_batch(list(flow.steps(100)))
    assert sub.take() == []
    assert md.subscriptions() == 0


def test_snapshot_only() -> None:
    flow = Flow(14)
    for _ in flow.steps(300):
        pass
    md = MarketData()
    md.load(capture(flow.engine))
    snap = md.snapshot(FeedSpec(SYMBOLS[0], Book.L2, 2, sides=ASK))
    assert snap.seq == flow.engine.seq
    assert list(snap.asks) == engine_levels(flow.engine, SYMBOLS[0], ASK, 2) and snap.bids == ()


@pytest.mark.parametrize("spec, what", [
    (FeedSpec("NOPE-USD"), UnknownSymbol),
    (FeedSpec(SYMBOLS[0], Book.L3, 5), BadRequest),
    (FeedSpec(SYMBOLS[0], Book.L2, -1), BadRequest),
    (FeedSpec(SYMBOLS[0], 7), BadRequest),
    (FeedSpec(SYMBOLS[0], Book.L2, 0, sides=9), BadRequest),
    (FeedSpec("", Book.L2), BadRequest),
    ((SYMBOLS[0], 2, 0, True, 0, "extra"), BadRequest),
])
def test_bad_requests_are_refused_with_a_reason(spec: FeedSpec, what: type) -> None:
    flow = Flow(15)
    md = MarketData()
    md.load(capture(flow.engine))
    with pytest.raises(what) as e:
        md.subscribe(spec)  # type: ignore[arg-type]
    assert str(e.value)
    with pytest.raises(what):
        md.snapshot(spec)  # type: ignore[arg-type]
    assert md.subscriptions() == 0


def test_push_subscribers_get_snapshot_then_increments_on_the_dispatcher_thread() -> None:
    flow = Flow(16)
    md = MarketData()
    md.load(capture(flow.engine))
    got: list = []
    threads: set[str] = set()
    lock = threading.Lock()

    def sink(msgs: list) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            got.extend(msgs)

    def delivered_up_to(rpt_seq: int) -> bool:
        with lock:
            return bool(got) and got[-1].rpt_seq == rpt_seq

    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L3), sink)
    for _ in range(40):
        md.on_batch(list(flow.steps(10)))
    end = time.monotonic() + 10
    while not delivered_up_to(md.snapshot(sub.spec).rpt_seq) and time.monotonic() < end:
        time.sleep(0.005)
    rep = BookReplica(sub.spec)
    for m in got:
        rep.apply(m)
    assert type(got[0]) is Snapshot
    assert rep.orders(BID) == engine_orders(flow.engine, SYMBOLS[0], BID)
    assert rep.orders(ASK) == engine_orders(flow.engine, SYMBOLS[0], ASK)
    assert threads == {"marketdata-dispatch"}
    md.close()


def test_a_failing_sink_does_not_stop_the_others() -> None:
    flow = Flow(17)
    md = MarketData()
    md.load(capture(flow.engine))
    good: list = []
    done = threading.Event()

    def bad(msgs: list) -> None:
        raise RuntimeError("a broken session")

    def ok(msgs: list) -> None:
        good.extend(msgs)
        if good[-1].seq == flow.engine.seq:
            done.set()

    b = md.subscribe(FeedSpec(SYMBOLS[0]), bad)
    md.subscribe(FeedSpec(SYMBOLS[0]), ok)
    md.on_batch(list(flow.steps(100)))
    assert done.wait(10)
    assert b.sink_errors >= 1
    md.close()


def test_a_blocked_sink_never_holds_up_the_listener_and_heals_with_a_snapshot() -> None:
    flow = Flow(18)
    md = MarketData(max_pending=5)
    md.load(capture(flow.engine))
    gate = threading.Event()
    got: list = []

    def stuck(msgs: list) -> None:
        got.extend(msgs)
        gate.wait(30)  # a session whose socket does not drain

    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 0), stuck)
    end = time.monotonic() + 10
    while not got and time.monotonic() < end:
        time.sleep(0.005)
    assert type(got[0]) is Snapshot  # the dispatcher is now stuck inside the sink
    for _ in range(200):  # the journal thread's listener goes on regardless
        md.on_batch(list(flow.steps(3)))
    assert md.seq == flow.engine.seq
    gate.set()
    end = time.monotonic() + 10
    while sub.resnapshots == 0 and time.monotonic() < end:
        time.sleep(0.005)
    while got[-1].rpt_seq != md.snapshot(sub.spec).rpt_seq and time.monotonic() < end:
        time.sleep(0.005)
    assert sub.resnapshots == 1  # its backlog was replaced by one snapshot
    rep = BookReplica(sub.spec)
    for m in got:
        rep.apply(m)
    assert rep.levels(BID) == engine_levels(flow.engine, SYMBOLS[0], BID)
    assert rep.levels(ASK) == engine_levels(flow.engine, SYMBOLS[0], ASK)
    md.close()


def test_poll_waits_for_the_next_increment_or_times_out() -> None:
    flow = Flow(19)
    md = MarketData()
    md.load(capture(flow.engine))
    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 0))
    assert type(sub.poll(5)[0]) is Snapshot
    assert sub.poll(0.05) == []
    batch = list(flow.steps(60))
    threading.Timer(0.05, md.on_batch, args=(batch,)).start()
    msgs = sub.poll(10)
    assert msgs and all(type(m) is Increment for m in msgs)
    sub.close()
    assert sub.poll(1) == []


@pytest.mark.parametrize("seed", range(3))
def test_a_hub_that_follows_another_through_pickles_serves_the_engine_book(seed: int) -> None:
    """A hub in another process (sessions.md_process) follows the venue's hub: it loads
    the state :meth:`MarketData.follow` returns and applies the ops of every later batch,
    both crossing a pipe as pickles. Its subscribers hold the engine's book and see every
    trade once; a follower that joins mid-flow, and one whose source hub reloads its books
    (a new state in the stream), go on without a gap."""
    import pickle

    flow = Flow(200 + seed)
    source = MarketData()
    source.load(capture(flow.engine))
    rng = random.Random(seed)
    for _ in range(40):  # the source has history (books, a tape) before anyone follows
        source.on_batch(list(flow.steps(rng.randint(1, 12))))
    hub = MarketData()
    pipe: list[bytes] = []
    first = source.follow(pipe.append)  # what the parent does: hand on, nothing more
    assert first is not None
    hub.load_state(pickle.loads(pickle.dumps(first)))
    clients = [Client(hub, s) for s in SPECS]
    for c in clients:
        c.read()  # the first snapshot, before any batch
    all_trades: dict[str, list[str]] = {s: [] for s in SYMBOLS}
    reload_trades: list[str] = []
    for i in range(200):
        batch = list(flow.steps(rng.randint(1, 12)))
        before = {s: len(all_trades[s]) for s in SYMBOLS}
        for p in batch:
            for ev in p.events:
                if type(ev) is Trade:
                    all_trades[ev.symbol].append(f"{ev.seq}-{ev.trade_n}")
        source.on_batch(batch)
        if i == 100:  # a reload of the source: a new state follows, and every subscriber gets
            source.load(capture(flow.engine))  # a new snapshot (this batch's trades are in none)
            reload_trades = [t for s in SYMBOLS for t in all_trades[s][before[s]:]]
        for item in pipe:
            got = pickle.loads(pickle.dumps(item))
            if isinstance(got, list):
                hub.apply_ops(got)
            else:
                hub.load_state(got)
        pipe.clear()
        assert hub.seq == source.seq == flow.engine.seq
        for c in clients:
            c.read()
            check(c, flow, f"seed {seed} batch {i}")
    for c in clients:
        spec = c.sub.spec
        assert c.snapshots == 2  # the first, and the one after the reload
        if spec.trades:
            assert c.trade_ids == [t for t in all_trades[spec.symbol] if t not in reload_trades]
    assert sum(len(v) for v in all_trades.values()) > 30
    assert hub.tape(SYMBOLS[0])[-1] == source.tape(SYMBOLS[0])[-1]
    source.unfollow(pipe.append)
    source.on_batch(list(flow.steps(3)))
    assert pipe == []
