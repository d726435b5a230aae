"""End to end over real sockets: a FIX market-data client (a QuickFIX initiator that
validates every message against the venue's data dictionary) that applies the W and then
every X it receives holds exactly the engine's book after a seeded random order flow
(limit, iceberg, post-only, IOC/FOK, market, stops, GTD/Day expiry, cancels, amends, mass
cancels, halts and resumes): at depth 1, 3 (bids only) and 5, at full depth, order by
order (L3), and the trades-only tape; RptSeq never jumps. Consumers of the Redis streams
published from the same market data rebuild the same books (real Redis on
127.0.0.1:6379)."""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Iterator

import pytest
import redis

from marketdata import Book
from marketdata.redis_fanout import RedisBookConsumer, RedisPublisher
from tests.marketdata.md_flow import ASK, BID, SYMBOLS, Flow, engine_levels, engine_orders
from tests.mdsessions.fixbook import FixMdClient, as_ticks, send
from tests.mdsessions.venues import MdVenue, wait_until
from tests.sessions.fixclients import QfClient
from venue.events import Trade

# MDReqID -> (MarketDepth, MDEntryTypes, AggregatedBook)
SUBSCRIPTIONS = {
    "full": (0, "012", "Y"),
    "top1": (1, "01", "Y"),
    "top5": (5, "012", "Y"),
    "bids3": (3, "0", "Y"),
    "orders": (0, "012", "N"),
    "tape": (0, "2", "Y"),
}


@pytest.fixture(scope="module", params=[True, False], ids=["md-process", "in-process"])
def world(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """The market-data sessions in a process of their own (as ``venue demo`` runs them)
    and in the venue's process."""
    d = tmp_path_factory.mktemp("mdbooks")
    # max_pending: no lag snapshots, every increment reaches the client (checked below)
    mv = MdVenue(str(d / "venue"), Flow(2024), process=request.param, max_pending=1_000_000)
    trades: dict[str, list[str]] = {s: [] for s in SYMBOLS}
    mv.venue.subscribe(lambda batch: [trades[ev.symbol].append(f"{ev.seq}-{ev.trade_n}")
                                      for p in batch for ev in p.events if type(ev) is Trade])
    rds = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    rds.ping()  # the test machines run Redis (.ci/services starts it)
    prefix = f"mdsess-{uuid.uuid4().hex[:10]}"
    pubs = [RedisPublisher(mv.md, rds, book=int(Book.L2), prefix=prefix + "-l2"),
            RedisPublisher(mv.md, rds, book=int(Book.L3), prefix=prefix + "-l3")]
    for p in pubs:
        p.start()
    client = QfClient(mv.port, "MD-CLIENT", "md", "md-demo", str(d / "client"))
    try:
        assert client.wait_logon(), "MD-CLIENT did not log on"
        yield {"mv": mv, "client": client, "trades": trades, "rds": rds, "prefix": prefix, "pubs": pubs}
    finally:
        client.stop()
        for p in pubs:
            p.stop()
        for k in rds.scan_iter(f"{prefix}*"):
            rds.delete(k)
        rds.close()
        mv.stop()


def request(req_id: str, depth: int, types: str, aggregated: str, symbols: tuple[str, ...],
            sub_type: str = "1") -> list[tuple[int, object]]:
    f: list[tuple[int, object]] = [(262, req_id), (263, sub_type), (264, depth)]
    if sub_type == "1":
        f.append((265, 1))
    f += [(266, aggregated), (267, len(types))] + [(269, t) for t in types]
    return f + [(146, len(symbols))] + [(55, s) for s in symbols]


def drain(client: QfClient, book: FixMdClient) -> None:
    while not client.app.inbox.empty():
        book.apply(client.app.inbox.get().raw)


def engine_view(e: Any, sym: str) -> dict[str, Any]:
    return {"bids": engine_levels(e, sym, BID), "asks": engine_levels(e, sym, ASK),
            "bid_orders": engine_orders(e, sym, BID), "ask_orders": engine_orders(e, sym, ASK),
            "halted": e.markets[sym].halted, "inst": e.markets[sym].inst}


def matches(fb: Any, want: dict[str, Any], depth: int, types: str, aggregated: str) -> bool:
    inst = want["inst"]
    if fb.halted != want["halted"]:
        return False
    if "0" not in types and "1" not in types:
        return not fb.levels["0"] and not fb.levels["1"] and not fb.orders
    bids = [tuple(x) for x in want["bids"]][: depth or None] if "0" in types else []
    asks = [tuple(x) for x in want["asks"]][: depth or None] if "1" in types else []
    if as_ticks(inst, fb.book_levels("0")) != bids or as_ticks(inst, fb.book_levels("1")) != asks:
        return False
    if aggregated == "N":
        for side, key in (("0", "bid_orders"), ("1", "ask_orders")):
            got = [(int(o), inst.price_to_ticks(str(p)), inst.qty_to_lots(str(q))) for o, p, q in fb.book_orders(side)]
            if got != [(o.order_id, o.price, o.qty) for o in want[key]]:
                return False
    return True


def test_the_fix_client_holds_the_engine_book_after_a_random_flow(world: dict[str, Any]) -> None:
    mv, client = world["mv"], world["client"]
    book = FixMdClient()
    for req, (depth, types, agg) in SUBSCRIPTIONS.items():
        send(client, "V", request(req, depth, types, agg, SYMBOLS))
    wait_until(lambda: (drain(client, book), len(book.books) == len(SUBSCRIPTIONS) * len(SYMBOLS))[1],
               what="a W for every subscription")
    for _ in range(5):
        mv.run_flow(600)
    # wait until every book equals the engine's (the flow is over: the books only converge)
    final = {sym: mv.venue.query(lambda e, s=sym: engine_view(e, s)) for sym in SYMBOLS}

    def all_match() -> bool:
        drain(client, book)
        return all(matches(book.books[(req, sym)], final[sym], *SUBSCRIPTIONS[req])
                   for req in SUBSCRIPTIONS for sym in SYMBOLS)

    try:
        wait_until(all_match, timeout=60, what="the client's books to equal the engine's")
    finally:
        drain(client, book)
    assert not book.rejects
    for (req, sym), fb in book.books.items():
        assert fb.gaps == 0, (req, sym)
        assert fb.snapshots == 1, (req, sym)  # no resnapshot was needed: every X was applied in order
        if "2" in SUBSCRIPTIONS[req][1]:
            assert fb.trade_ids == world["trades"][sym], (req, sym)  # every trade once, in order
        else:
            assert not fb.trade_ids
    assert sum(len(v) for v in world["trades"].values()) > 200  # the flow traded
    assert any(s.get(326) == "2" for s in book.statuses) and any(s.get(326) == "3" for s in book.statuses)
    full = book.books[("full", SYMBOLS[0])]
    assert len(full.levels["0"]) > 5 and len(full.levels["1"]) > 5  # a book worth comparing
    assert mv.server.md_sessions is not None and mv.server.md_sessions.stalls == 0


def test_redis_stream_consumers_rebuild_the_same_books(world: dict[str, Any]) -> None:
    mv = world["mv"]
    rds, prefix = world["rds"], world["prefix"]
    final = {sym: mv.venue.query(lambda e, s=sym: engine_view(e, s)) for sym in SYMBOLS}
    for sym in SYMBOLS:
        inst = final[sym]["inst"]
        l2 = RedisBookConsumer(rds, sym, prefix=prefix + "-l2")
        l3 = RedisBookConsumer(rds, sym, prefix=prefix + "-l3")

        def level_tuples(levels: list[Any]) -> list[tuple[int, int, int]]:
            return [tuple(x) for x in levels]

        def same() -> bool:
            l2.poll(block_ms=20)
            l3.poll(block_ms=20)
            return all(c.replica is not None and c.replica.synced
                       and level_tuples(c.replica.levels(BID)) == level_tuples(final[sym]["bids"])
                       and level_tuples(c.replica.levels(ASK)) == level_tuples(final[sym]["asks"])
                       and c.replica.halted == final[sym]["halted"] for c in (l2, l3))

        wait_until(same, what=f"the Redis consumers of {sym}")
        assert l3.replica is not None
        assert l3.replica.orders(BID) == final[sym]["bid_orders"]
        assert l3.replica.orders(ASK) == final[sym]["ask_orders"]
        assert Decimal(str(inst.tick_size)) > 0
    assert all(p.errors == 0 and p.published > 100 for p in world["pubs"])


def test_a_snapshot_request_continues_the_numbering_and_unsubscribe_stops_updates(world: dict[str, Any]) -> None:
    mv, client = world["mv"], world["client"]
    book = FixMdClient()
    sym = SYMBOLS[0]
    send(client, "V", request("again", 0, "01", "Y", (sym,)))
    wait_until(lambda: (drain(client, book), ("again", sym) in book.books)[1], what="the W of 'again'")
    mv.run_flow(200)
    wait_until(lambda: (drain(client, book),
                        matches(book.books[("again", sym)], mv.venue.query(lambda e: engine_view(e, sym)), 0, "01", "Y"))[1],
               what="'again' to follow the flow")
    live = book.books[("again", sym)]
    # a one-off snapshot of the same shape carries the subscription's own numbering
    send(client, "V", request("peek", 0, "01", "Y", (sym,), sub_type="0"))
    w = client.expect("W", timeout=10, X262="peek")
    drain(client, book)
    assert int(w[83]) == live.rpt
    send(client, "V", [(262, "again"), (263, 2), (264, 0), (267, 1), (269, 0), (146, 1), (55, sym)])
    before = book.books[("again", sym)].rpt
    mv.run_flow(200)
    mv.venue.query(lambda e: e.seq)
    wait_until(lambda: mv.md.seq == mv.venue.query(lambda e: e.seq), what="the hub to catch up")
    import time

    time.sleep(0.5)
    drain(client, book)
    assert book.books[("again", sym)].rpt == before  # nothing after the unsubscribe
