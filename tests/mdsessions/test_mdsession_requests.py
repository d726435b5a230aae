"""Market-data session requests over real sockets (the demo's MD-CLIENT): SecurityList
with tick size, lot size and limits; snapshots of price levels and of orders (L3) with
their content checked against what was entered; every MarketDataRequestReject reason;
unsubscribe; SecurityStatus on halt and resume, pushed and on request; subscriptions end
with the session; a market-data session cannot trade."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Iterator

import pytest
import quickfix as fix

from marketdata import Book, FeedSpec
from tests.mdsessions.fixbook import entries, fields
from sessions.marketdata_session import MAX_SUBSCRIPTIONS, MarketDataSessions
from sessions.server import FixConfig
from tests.mdsessions.venues import MdVenue, wait_until
from tests.sessions.fixclients import RawClient, logged_on, order
from venue import commands as C
from venue.types import BUY, LIMIT, SELL


@pytest.fixture(scope="module")
def mv(tmp_path_factory: Any) -> Iterator[MdVenue]:
    v = MdVenue(str(tmp_path_factory.mktemp("mdrequests") / "venue"))
    yield v
    v.stop()


@pytest.fixture
def md(mv: MdVenue) -> Iterator[RawClient]:
    mv.wait_offline("MD-CLIENT")
    c = logged_on(mv.port, "MD-CLIENT", "md", "md-demo")
    yield c
    c.close()


@pytest.fixture
def book(mv: MdVenue) -> Iterator[list[int]]:
    """A few resting orders on ETH-USD (order ids returned, in entry order); cancelled after."""
    ids = []
    for acct, side, lots, ticks in (("ALPHA-1", BUY, 10_000, 299_000), ("BETA-1", BUY, 5_000, 299_000),
                                    ("ALPHA-1", BUY, 20_000, 298_950), ("BETA-1", SELL, 7_000, 300_100)):
        p = mv.venue.execute(C.NewOrder(acct, f"r{len(ids)}", "ETH-USD", side, LIMIT, lots, ticks))
        ids.append(p.seq)
    yield ids
    mv.venue.execute(C.MassCancel("clean", accounts="ALPHA-1,BETA-1"))


def v_request(req_id: str, sub_type: str, depth: int, types: str, symbols: tuple[str, ...],
              extra: list[tuple[int, object]] | None = None) -> list[tuple[int, object]]:
    f: list[tuple[int, object]] = [(262, req_id), (263, sub_type), (264, depth)] + (extra or [])
    f += [(267, len(types))] + [(269, t) for t in types]
    return f + [(146, len(symbols))] + [(55, s) for s in symbols]


def test_security_list_has_tick_lot_and_limits(mv: MdVenue, md: RawClient) -> None:
    md.send("x", [(320, "all"), (559, 4)])
    y = md.expect("y")
    assert y[560] == "0" and y[320] == "all" and y[893] == "Y"
    _, rows = entries(fields(y.raw), 146, 55)
    insts = mv.venue.query(lambda e: {s: m.inst for s, m in e.markets.items()})
    assert sorted(r[55] for r in rows) == sorted(insts) and int(y[146]) == len(insts)
    quote = mv.venue.query(lambda e: {a: e.ledger.assets[a] for a in e.ledger.assets})
    for r in rows:
        i = insts[r[55]]
        assert Decimal(r[969]) == i.tick_size and Decimal(r[561]) == i.lot_size
        assert Decimal(r[562]) == i.lots_to_qty(i.min_qty) and Decimal(r[1140]) == i.lots_to_qty(i.max_qty)
        assert Decimal(r[25003]) == quote[i.quote].from_atoms(i.min_notional)
        assert Decimal(r[25004]) == quote[i.quote].from_atoms(i.max_notional)
        assert r[15] == i.quote and r[326] == "17"
    md.send("x", [(320, "one"), (559, 0), (55, "ETH-BTC")])
    y = md.expect("y", X320="one")
    assert y[560] == "0" and y[146] == "1" and y[55] == "ETH-BTC"
    md.send("x", [(320, "nope"), (559, 0), (55, "NOPE")])
    assert md.expect("y", X320="nope")[560] == "2"
    md.send("x", [(320, "type"), (559, 1)])
    y = md.expect("y", X320="type")
    assert y[560] == "1" and 146 not in y


def test_snapshot_of_levels_and_of_orders(mv: MdVenue, md: RawClient, book: list[int]) -> None:
    md.send("V", v_request("lv", "0", 0, "01", ("ETH-USD",)))
    w = md.expect("W", X262="lv")
    top, rows = entries(fields(w.raw), 268, 269)
    assert top[55] == "ETH-USD" and int(top[268]) == len(rows) == 3
    got = [(r[269], Decimal(r[270]), Decimal(r[271]), int(r[346])) for r in rows]
    assert got == [("0", Decimal("2990"), Decimal("1.5"), 2), ("0", Decimal("2989.5"), Decimal("2"), 1),
                   ("1", Decimal("3001"), Decimal("0.7"), 1)]
    md.send("V", v_request("top1", "0", 1, "0", ("ETH-USD",)))
    _, rows = entries(fields(md.expect("W", X262="top1").raw), 268, 269)
    assert [(r[269], r[270]) for r in rows] == [("0", "2990")]
    md.send("V", v_request("ord", "0", 0, "01", ("ETH-USD",), [(266, "N")]))
    _, rows = entries(fields(md.expect("W", X262="ord").raw), 268, 269)
    assert [(r[269], int(r[37]), Decimal(r[271])) for r in rows] == [
        ("0", book[0], Decimal("1")), ("0", book[1], Decimal("0.5")), ("0", book[2], Decimal("2")),
        ("1", book[3], Decimal("0.7"))]  # order by order, time priority within a level


@pytest.mark.parametrize("fields_,reason", [
    (v_request("r1", "1", 0, "01", ("NOPE-USD",)), "0"),
    (v_request("r2", "1", 0, "4", ("ETH-USD",)), "8"),  # opening price: not offered
    (v_request("r3", "1", 5, "01", ("ETH-USD",), [(266, "N")]), "5"),  # L3 is full depth only
    (v_request("r4", "1", 0, "01", ("ETH-USD",), [(265, 0)]), "6"),  # full refresh updates: not offered
])
def test_bad_requests_are_rejected_with_a_reason(md: RawClient, fields_: list, reason: str) -> None:
    md.send("V", fields_)
    y = md.expect("Y")
    assert y[262] == fields_[0][1] and y[281] == reason and y[58]


def test_duplicate_and_unknown_request_ids(md: RawClient, mv: MdVenue) -> None:
    md.send("V", v_request("dup", "1", 0, "01", ("BTC-USD",)))
    md.expect("W", X262="dup")
    md.send("V", v_request("dup", "1", 0, "2", ("ETH-USD",)))
    assert md.expect("Y", X262="dup")[281] == "1"
    md.send("V", v_request("never", "2", 0, "01", ("BTC-USD",)))
    y = md.expect("Y", X262="never")
    assert 281 not in y and "never" in y[58]
    # the subscription still works: a change is an X of MDReqID dup
    mv.venue.execute(C.NewOrder("ALPHA-1", "dup-1", "BTC-USD", BUY, LIMIT, 100, 3_000_000))
    x = md.expect("X", X262="dup")
    _, rows = entries(fields(x.raw), 268, 279)
    assert rows[0][279] == "0" and rows[0][270] == "30000" and rows[0][83] == "1"
    md.send("V", v_request("dup", "2", 0, "01", ("BTC-USD",)))
    md.send("x", [(320, "unsubscribed"), (559, 4)])  # handled after the unsubscribe, in order
    md.expect("y", X320="unsubscribed")
    mv.venue.execute(C.MassCancel("dup-clean", accounts="ALPHA-1"))
    wait_until(lambda: mv.md.seq == mv.venue.query(lambda e: e.seq), what="the hub to apply the cancel")
    time.sleep(0.3)  # an X, if one were (wrongly) due, would be on its way by now
    md.send("x", [(320, "marker"), (559, 4)])
    md.expect("y", X320="marker")
    assert not [m for m in md.inbox if m.type == "X"]


def test_too_many_subscriptions(mv: MdVenue, md: RawClient) -> None:
    mv.configure(max_subscriptions=2)
    try:
        md.send("V", v_request("many", "1", 0, "01", ("BTC-USD", "ETH-USD", "ETH-BTC")))
        assert md.expect("Y", X262="many")[281] == "2"
    finally:
        mv.configure(max_subscriptions=MAX_SUBSCRIPTIONS)


def test_halt_and_resume_reach_subscribers_as_security_status(mv: MdVenue, md: RawClient) -> None:
    md.send("V", v_request("h", "1", 0, "012", ("ETH-BTC",)))
    w = md.expect("W", X262="h")
    md.send("e", [(324, "st"), (55, "ETH-BTC"), (263, 1)])
    first = md.expect("f", X324="st")
    assert first[326] == "17" and first[325] == "N"
    mv.venue.execute(C.Halt("ETH-BTC", reason="maintenance"))
    f1 = md.expect("f", X324="h")
    assert f1[326] == "2" and f1[58] == "maintenance" and int(f1[83]) == int(w[83]) + 1 and f1[325] == "Y"
    assert md.expect("f", X324="st")[326] == "2"
    md.send("e", [(324, "now"), (55, "ETH-BTC"), (263, 0)])
    now = md.expect("f", X324="now")
    assert now[326] == "2" and now[325] == "N"
    mv.venue.execute(C.Resume("ETH-BTC", "maintenance over"))
    f2 = md.expect("f", X324="h")
    assert f2[326] == "3" and int(f2[83]) == int(f1[83]) + 1
    assert md.expect("f", X324="st")[326] == "3"
    md.send("e", [(324, "st"), (55, "ETH-BTC"), (263, 2)])
    md.send("e", [(324, "bad"), (55, "NOPE"), (263, 0)])
    j = md.expect("j")
    assert j[372] == "e" and j[380] == "2"


def test_a_halted_book_snapshot_is_followed_by_its_status(mv: MdVenue, md: RawClient) -> None:
    mv.venue.execute(C.Halt("BTC-USD", reason="halted for the test"))
    try:
        md.send("V", v_request("hs", "1", 0, "01", ("BTC-USD",)))
        w = md.expect("W", X262="hs")
        f = md.expect("f", X324="hs")
        assert f[326] == "2" and f[83] == w[83]
    finally:
        mv.venue.execute(C.Resume("BTC-USD"))
    assert md.expect("f", X324="hs")[326] == "3"


def test_subscriptions_end_with_the_session(mv: MdVenue) -> None:
    mv.wait_offline("MD-CLIENT")
    base = mv.md_status()["hub_subscriptions"]
    c = logged_on(mv.port, "MD-CLIENT", "md", "md-demo")
    c.send("V", v_request("s1", "1", 0, "012", ("BTC-USD", "ETH-USD")))
    c.expect("W")
    c.expect("W")
    assert mv.md_status()["hub_subscriptions"] == base + 2
    c.send("5", [])
    c.expect("5")
    c.close()
    wait_until(lambda: mv.md_status()["hub_subscriptions"] == base, what="the subscriptions to close")
    assert mv.md.snapshot(FeedSpec("BTC-USD", int(Book.L2))).spec.symbol == "BTC-USD"


def test_a_market_data_session_cannot_trade(mv: MdVenue, md: RawClient) -> None:
    md.send("D", order("md1", "BTC-USD", "1", "1", "30000"))
    j = md.expect("j")
    assert j[372] == "D" and j[380] == "6"


def test_bad_enumerations_are_refused_and_never_subscribe(mv: MdVenue, md: RawClient, tmp_path: Any) -> None:
    """On the wire QuickFIX's dictionary refuses values outside FIX 4.4's enumerations
    (session Reject, 373=5) before the venue sees them. The handlers refuse them too
    (they would otherwise be taken for a subscription), as a message QuickFIX parsed
    without validation shows (called directly: in a venue whose market-data sessions
    run in its own process)."""
    md.send("V", v_request("enum", "5", 0, "01", ("ETH-USD",)))
    r = md.expect("3")
    assert r[373] == "5" and r[371] == "263"
    own = MdVenue(str(tmp_path / "inproc"), process=False)
    try:
        md = logged_on(own.port, "MD-CLIENT", "md", "md-demo")
        _bad_enumerations_reach_the_handlers(own, md)
        md.close()
    finally:
        own.stop()


def _bad_enumerations_reach_the_handlers(mv: MdVenue, md: RawClient) -> None:
    sessions = mv.server.md_sessions
    assert isinstance(sessions, MarketDataSessions)
    ctx = mv.server.app.ctx["MD-CLIENT"]
    before = mv.md.subscriptions()
    dd = fix.DataDictionary(FixConfig(data_dir="").dictionary)
    for msg_type, body in (("e", "324=st5|55=ETH-USD|263=5|"),
                           ("V", "262=v5|263=5|264=0|267=1|269=0|146=1|55=ETH-USD|")):
        payload = f"35={msg_type}|49=MD-CLIENT|56=VENUE|34=99|52=20261204-12:00:00|{body}".replace("|", "\x01")
        msg = fix.Message(f"8=FIX.4.4\x019={len(payload)}\x01{payload}10=000\x01", dd, False)
        handler = sessions.on_security_status_request if msg_type == "e" else sessions.on_market_data_request
        handler(msg, ctx)
    j = md.expect("j")
    assert j[372] == "e" and "SubscriptionRequestType" in j[58]
    y = md.expect("Y", X262="v5")
    assert y[281] == "4"  # unsupported SubscriptionRequestType
    assert mv.md.subscriptions() == before
