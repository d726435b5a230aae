"""Market data through a real Redis (127.0.0.1:6379): a consumer of the stream holds
exactly the engine's book after a random flow (L2 full depth and L3), a newcomer heals
from the snapshot key after the stream was trimmed, the pub/sub channel carries every
increment in order, and Redis failing costs the venue nothing."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from marketdata import Book, FeedSpec, MarketData
from marketdata.redis_fanout import RedisBookConsumer, RedisPublisher, keys
from md_flow import ASK, BID, SYMBOLS, Flow, engine_levels, engine_orders
from venue.core import Venue


@pytest.fixture
def rds() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    client.ping()  # the test machines run Redis (.ci/services starts it); fail loudly if not
    yield client
    client.close()


@pytest.fixture
def prefix(rds: redis.Redis) -> Iterator[str]:
    p = f"mdtest-{uuid.uuid4().hex[:12]}"
    yield p
    for k in rds.scan_iter(f"{p}:*"):
        rds.delete(k)


@pytest.fixture
def venue(tmp_path: Any) -> Iterator[tuple[Venue, MarketData, Flow]]:
    v = Venue(str(tmp_path / "v"), fsync=False)
    v.open()
    md = MarketData()
    md.attach(v)
    v.start()
    flow = Flow(31)
    for p in flow.setup:
        v.execute(p.cmd)
    yield v, md, flow
    v.stop(snapshot=False)
    md.close()


def run_flow(v: Venue, flow: Flow, n: int) -> None:
    """``n`` commands of the flow, mostly queued at once (large batches), some waited for
    (batch boundaries everywhere)."""
    for i in range(n):
        cmd = flow.command()
        flow.process(cmd)  # a shadow engine keeps the flow's choices plausible
        if flow.rng.random() < 0.15:
            v.execute(cmd)
        else:
            v.submit(cmd)


def wait_until(cond: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


def caught_up(v: Venue, md: MarketData, c: RedisBookConsumer, spec: FeedSpec) -> bool:
    """The consumer holds the feed's latest increment (the hub having applied everything)."""
    if md.seq != v.query(lambda e: e.seq):
        return False
    c.poll(block_ms=50)
    return c.replica is not None and c.replica.synced and c.replica.rpt_seq == md.snapshot(spec).rpt_seq


@pytest.mark.parametrize("book", [Book.L2, Book.L3])
def test_a_stream_consumer_holds_the_engine_book(rds: redis.Redis, prefix: str, venue: Any, book: Book) -> None:
    v, md, flow = venue
    pub = RedisPublisher(md, rds, book=book, prefix=prefix, maxlen=4000, snapshot_every=300)
    pub.start()
    try:
        early = {s: RedisBookConsumer(rds, s, prefix=prefix) for s in SYMBOLS}
        for _ in range(6):
            run_flow(v, flow, 400)
            for c in early.values():
                c.poll()
        late = {s: RedisBookConsumer(rds, s, prefix=prefix) for s in SYMBOLS}
        for sym in SYMBOLS:
            spec = FeedSpec(sym, book, 0, True)
            for c in (early[sym], late[sym]):
                wait_until(lambda: caught_up(v, md, c, spec))
                rep = c.replica
                assert rep is not None and c.inconsistent == 0  # no entry contradicted the book it held
                want = v.query(lambda e: (engine_levels(e, sym, BID), engine_levels(e, sym, ASK),
                                          engine_orders(e, sym, BID), engine_orders(e, sym, ASK), e.markets[sym].halted))
                assert (rep.levels(BID), rep.levels(ASK)) == (want[0], want[1]), sym
                if book == Book.L3:
                    assert (rep.orders(BID), rep.orders(ASK)) == (want[2], want[3]), sym
                assert rep.halted == want[4]
        assert pub.errors == 0 and pub.published > 300
        assert rds.xlen(keys(prefix, SYMBOLS[0])[1]) <= 4000 + 200  # trimmed (approximately) to maxlen
    finally:
        pub.stop()


def test_a_newcomer_after_trimming_heals_from_the_snapshot(rds: redis.Redis, prefix: str, venue: Any) -> None:
    v, md, flow = venue
    pub = RedisPublisher(md, rds, prefix=prefix, maxlen=200, snapshot_every=50)
    pub.start()
    try:
        slow = RedisBookConsumer(rds, SYMBOLS[0], prefix=prefix)
        run_flow(v, flow, 100)
        wait_until(lambda: slow.sync())
        run_flow(v, flow, 2500)  # the slow consumer reads nothing meanwhile: the stream is trimmed past it
        spec = FeedSpec(SYMBOLS[0], Book.L2, 0, True)
        before = slow.resyncs
        wait_until(lambda: caught_up(v, md, slow, spec))
        assert slow.resyncs > before  # it saw the hole and took the snapshot again
        assert slow.replica is not None and slow.inconsistent == 0
        want = v.query(lambda e: (engine_levels(e, SYMBOLS[0], BID), engine_levels(e, SYMBOLS[0], ASK)))
        assert (slow.replica.levels(BID), slow.replica.levels(ASK)) == want
    finally:
        pub.stop()


def test_the_channel_carries_every_increment_in_order(rds: redis.Redis, prefix: str, venue: Any) -> None:
    v, md, flow = venue
    ps = rds.pubsub()
    ps.subscribe(keys(prefix, SYMBOLS[0])[0])
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    pub = RedisPublisher(md, rds, prefix=prefix)
    pub.start()
    try:
        run_flow(v, flow, 1500)
        spec = FeedSpec(SYMBOLS[0], Book.L2, 0, True)
        wait_until(lambda: md.seq == v.query(lambda e: e.seq))
        last = md.snapshot(spec).rpt_seq
        got: list[dict] = []
        while not got or got[-1].get("rpt_seq") != last:
            m = ps.get_message(timeout=10)
            assert m is not None, "the channel went quiet before the last increment"
            got.append(json.loads(m["data"]))
        assert got[0]["type"] == "reset"
        incs = [g for g in got if g["type"] == "increment"]
        assert [g["rpt_seq"] for g in incs] == list(range(got[0]["rpt_seq"] + 1, last + 1))
        assert all(g["symbol"] == SYMBOLS[0] for g in incs)
        assert sum(len(g["trades"]) for g in incs) > 0
    finally:
        ps.close()
        pub.stop()


def test_a_lagging_publisher_starts_again_from_a_snapshot(rds: redis.Redis, prefix: str, venue: Any) -> None:
    v, md, flow = venue
    pub = RedisPublisher(md, rds, prefix=prefix, max_pending=2, maxlen=5000, snapshot_every=100)
    c = RedisBookConsumer(rds, SYMBOLS[0], prefix=prefix)
    pub.start()
    try:
        for _ in range(10):
            run_flow(v, flow, 300)
            c.poll()
        spec = FeedSpec(SYMBOLS[0], Book.L2, 0, True)
        wait_until(lambda: caught_up(v, md, c, spec))
        want = v.query(lambda e: (engine_levels(e, SYMBOLS[0], BID), engine_levels(e, SYMBOLS[0], ASK)))
        assert c.replica is not None and (c.replica.levels(BID), c.replica.levels(ASK)) == want
        assert c.inconsistent == 0
        resets = [e for e in rds.xrange(keys(prefix, SYMBOLS[0])[1]) if e[1][b"type"] == b"reset"]
        assert len(resets) > 1  # the publisher lagged at least once and began anew
    finally:
        pub.stop()


def test_redis_down_costs_the_venue_nothing_and_publication_recovers(rds: redis.Redis, prefix: str,
                                                                       venue: Any) -> None:
    v, md, flow = venue
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    pub = RedisPublisher(md, dead, prefix=prefix)
    pub.start()
    try:
        run_flow(v, flow, 500)
        wait_until(lambda: md.seq == v.query(lambda e: e.seq) and pub.errors > 0)
        before = md.seq
        cmd = flow.command()
        flow.process(cmd)
        assert v.execute(cmd).seq == before + 1  # the venue goes on
        pub.client = rds  # Redis is back
        run_flow(v, flow, 300)
        c = RedisBookConsumer(rds, SYMBOLS[0], prefix=prefix)
        wait_until(lambda: caught_up(v, md, c, FeedSpec(SYMBOLS[0], Book.L2, 0, True)))
        assert c.replica is not None and c.inconsistent == 0
        want = v.query(lambda e: (engine_levels(e, SYMBOLS[0], BID), engine_levels(e, SYMBOLS[0], ASK)))
        assert (c.replica.levels(BID), c.replica.levels(ASK)) == want
    finally:
        pub.stop()
        dead.close()



def test_a_garbage_stream_entry_is_refused_and_the_consumer_heals(rds: redis.Redis, prefix: str, venue: Any,
                                                                  caplog: Any) -> None:
    v, md, flow = venue
    pub = RedisPublisher(md, rds, prefix=prefix, snapshot_every=20, maxlen=1000)
    pub.start()
    try:
        c = RedisBookConsumer(rds, SYMBOLS[0], prefix=prefix)
        run_flow(v, flow, 200)
        wait_until(lambda: c.sync())
        rds.xadd(keys(prefix, SYMBOLS[0])[1], {"type": "increment", "rpt_seq": 1, "msg": "{not json"})
        run_flow(v, flow, 400)
        spec = FeedSpec(SYMBOLS[0], Book.L2, 0, True)
        wait_until(lambda: caught_up(v, md, c, spec))
        assert "undecodable market-data message" in caplog.text and c.inconsistent >= 1
        want = v.query(lambda e: (engine_levels(e, SYMBOLS[0], BID), engine_levels(e, SYMBOLS[0], ASK)))
        assert c.replica is not None and (c.replica.levels(BID), c.replica.levels(ASK)) == want
    finally:
        pub.stop()


def test_an_instrument_defined_later_is_published_too(rds: redis.Redis, prefix: str, venue: Any) -> None:
    from venue import commands as C
    from venue.instruments import DEFAULT_ASSETS, Instrument
    from venue.types import BUY, LIMIT, SELL

    v, md, flow = venue
    pub = RedisPublisher(md, rds, prefix=prefix)
    pub.start()
    try:
        a = {x.code: x for x in DEFAULT_ASSETS}
        new = Instrument.create("NEW-USD", a["BTC"], a["USD"], "0.01", "0.001", "0.001", "1000", "0.00000001", "1000000000")
        assert v.execute(C.DefineInstrument(new.to_record())).events
        for i in range(40):
            side = BUY if i % 2 else SELL
            v.execute(C.NewOrder(flow.rng.choice(("A0", "B1")), f"n{i}", "NEW-USD", side, LIMIT, 1 + i % 7,
                                 500 + (i % 9) - 4))
        c = RedisBookConsumer(rds, "NEW-USD", prefix=prefix)
        wait_until(lambda: caught_up(v, md, c, FeedSpec("NEW-USD", Book.L2, 0, True)))
        want = v.query(lambda e: (engine_levels(e, "NEW-USD", BID), engine_levels(e, "NEW-USD", ASK)))
        assert c.replica is not None and (c.replica.levels(BID), c.replica.levels(ASK)) == want
        assert want[0] or want[1]
        assert c.inconsistent == 0
    finally:
        pub.stop()
