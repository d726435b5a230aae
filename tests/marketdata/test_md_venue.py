"""Market data on the real durable pipeline: attached to a Venue (before it starts, or
while commands flow), fed by the journal thread, subscribers pushed by the dispatcher,
recovery after a restart, and a reload when asked."""
from __future__ import annotations

import threading
import time
from typing import Any

from marketdata import Book, BookReplica, FeedSpec, MarketData, Snapshot, capture
from md_flow import ASK, BID, SYMBOLS, Flow
from venue.core import Venue
from venue.events import Trade


def wait_until(cond: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.005)


def same_as_engine(md: MarketData, v: Venue) -> None:
    state = v.query(capture)
    wait_until(lambda: md.seq >= state.seq)
    assert md.seq == state.seq
    for sym in SYMBOLS:
        snap = md.snapshot(FeedSpec(sym, Book.L3))
        assert list(snap.orders) == state.orders[sym], sym


class Pushed:
    """A push subscriber that applies everything to a replica."""

    def __init__(self, md: MarketData, spec: FeedSpec) -> None:
        self.replica = BookReplica(spec)
        self.lock = threading.Lock()
        self.sub = md.subscribe(spec, self.sink)

    def sink(self, msgs: list) -> None:
        with self.lock:
            for m in msgs:
                self.replica.apply(m)


def submit_flow(v: Venue, flow: Flow, n: int) -> None:
    """``n`` commands of the flow, mostly queued at once (large batches), some waited for
    (batch boundaries everywhere)."""
    for i in range(n):
        cmd = flow.command()
        flow.process(cmd)  # a shadow engine keeps the flow's choices plausible
        if flow.rng.random() < 0.15:
            v.execute(cmd)
        else:
            v.submit(cmd)


def test_attached_before_start_and_while_commands_flow(tmp_path: Any) -> None:
    v = Venue(str(tmp_path / "v"), fsync=False)
    v.open()
    md = MarketData()
    md.attach(v)
    v.start()
    try:
        flow = Flow(21)
        for p in flow.setup:
            v.execute(p.cmd)
        l3 = Pushed(md, FeedSpec(SYMBOLS[0], Book.L3))
        l2 = Pushed(md, FeedSpec(SYMBOLS[0], Book.L2, 5))
        submit_flow(v, flow, 800)
        late = MarketData()
        t = threading.Thread(target=late.attach, args=(v,))
        t.start()  # attaches while the next commands are processed
        submit_flow(v, flow, 1500)
        t.join(20)
        same_as_engine(md, v)
        same_as_engine(late, v)
        state = v.query(capture)
        wait_until(lambda: md.seq == state.seq)
        wait_until(lambda: all(x.replica.rpt_seq == md.snapshot(x.sub.spec).rpt_seq for x in (l3, l2)))
        with l3.lock:
            assert l3.replica.orders(BID) + l3.replica.orders(ASK) == state.orders[SYMBOLS[0]]
        with l2.lock:
            got = l2.replica.levels(BID), l2.replica.levels(ASK)
        want = v.query(lambda e: (e.markets[SYMBOLS[0]].book.depth(BID, 5), e.markets[SYMBOLS[0]].book.depth(ASK, 5)))
        assert [tuple(x) for x in got[0]] == want[0] and [tuple(x) for x in got[1]] == want[1]
        late.close()
    finally:
        v.stop(snapshot=False)
        md.close()


def test_restart_recovers_books_and_replayed_trades(tmp_path: Any) -> None:
    d = str(tmp_path / "v")
    v = Venue(d, fsync=False)
    v.open()
    trades: list = []
    v.subscribe(lambda batch: trades.extend(ev for p in batch for ev in p.events if type(ev) is Trade))
    v.start()
    flow = Flow(22)
    for p in flow.setup:
        v.execute(p.cmd)
    submit_flow(v, flow, 1000)
    before = v.query(capture)
    trades_before = v.query(lambda e: e.seq)
    v.stop(snapshot=False)
    assert trades_before == before.seq

    v2 = Venue(d, fsync=False)
    md = MarketData()
    v2.open(on_replay=md.on_replay)
    md.attach(v2)
    v2.start()
    try:
        assert md.seq == before.seq
        for sym in SYMBOLS:
            assert list(md.snapshot(FeedSpec(sym, Book.L3)).orders) == before.orders[sym]
        replayed = [f"{t.seq}-{t.trade_n}" for t in trades if t.symbol == SYMBOLS[0]]
        assert replayed and [t.trade_id for t in md.tape(SYMBOLS[0])] == replayed[-md.tape_size:]
        submit_flow(v2, flow, 300)
        same_as_engine(md, v2)
    finally:
        v2.stop(snapshot=False)


def test_resync_gives_every_subscriber_a_new_snapshot(tmp_path: Any) -> None:
    v = Venue(str(tmp_path / "v"), fsync=False)
    v.open()
    md = MarketData()
    md.attach(v)
    v.start()
    try:
        flow = Flow(23)
        for p in flow.setup:
            v.execute(p.cmd)
        submit_flow(v, flow, 300)
        sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 3))
        first = sub.poll(5)
        assert type(first[0]) is Snapshot
        md.resync()
        msgs = []
        wait_until(lambda: bool(msgs.extend(sub.take()) or any(type(m) is Snapshot for m in msgs)))
        same_as_engine(md, v)
        assert md.resyncs == 0 and md.failed is None
    finally:
        v.stop(snapshot=False)
        md.close()


def test_an_inconsistent_event_makes_the_books_reload_from_the_engine(tmp_path: Any, caplog: Any) -> None:
    from venue.events import Execution, OrderInfo
    from venue.sequencer import Processed
    from venue.types import FX_REMOVE

    v = Venue(str(tmp_path / "v"), fsync=False)
    v.open()
    md = MarketData()
    md.attach(v)
    v.start()
    try:
        flow = Flow(24)
        for p in flow.setup:
            v.execute(p.cmd)
        submit_flow(v, flow, 300)
        same_as_engine(md, v)
        sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 0))
        assert type(sub.poll(5)[0]) is Snapshot
        info = OrderInfo(999_999, "A0", "FA", SYMBOLS[0], 1, 2, 1, 100, 0, 1, 0, "ghost", 0, 1, False, "", 0)
        ghost = Execution(md.seq + 1, md.ts, 1, 4, info, 4, "ghost", "", 0, 0, 0, 0, book=FX_REMOVE)
        md.on_batch([Processed(md.seq + 1, md.ts, None, [ghost], None)])  # an order the book never held
        assert md.resyncs == 1
        assert "lost track of the engine" in caplog.text
        wait_until(lambda: md.failed is None)
        submit_flow(v, flow, 300)
        same_as_engine(md, v)
        msgs: list = []
        wait_until(lambda: bool(msgs.extend(sub.take()) or any(type(m) is Snapshot for m in msgs)))
    finally:
        v.stop(snapshot=False)
        md.close()
