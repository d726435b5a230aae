"""TradeCaptureReportRequest (AD) on the drop-copy session, answered from the venue's SQL
store over real sockets: the trades of a time range (two TransactTimes, one, a
TradeDate), of a symbol, an account or one trade; only trades with a side of an entitled
firm and only those sides; the reports rebuild each account's position and fees exactly;
the answers are the same after the venue restarts (history comes from the store, not
from memory); bad or unauthorized requests are refused with the reason."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Iterator

import pytest
import quickfix as fix

from cli.demo import ASSETS
from sessions.codec import parse_utc
from sessions.server import FixConfig
from sessions.trade_capture import Refused, parse_request
from tests.dropcopy.world import World
from tests.mdsessions.fixbook import entries, fields
from tests.sessions.fixclients import Msg, RawClient, logged_on
from venue import commands as C
from venue.types import BUY, LIMIT, SELL, AccountKind

ENTITLED_ACCOUNTS = ("ALPHA-1", "BETA-1")
DICTIONARY = FixConfig(data_dir="").dictionary


def fix_time(ns: int) -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9 // 1000:06d}"


def cross(w: World, maker: str, taker: str, symbol: str, lots: int, ticks: int, tag: str) -> None:
    w.venue.execute(C.NewOrder(maker, f"m-{tag}", symbol, BUY, LIMIT, lots, ticks))
    w.venue.execute(C.NewOrder(taker, f"t-{tag}", symbol, SELL, LIMIT, lots, ticks))


@pytest.fixture(scope="module")
def history(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    data_dir = str(tmp_path_factory.mktemp("tradecapture") / "venue")
    w = World(data_dir)
    w.venue.execute(C.CreateAccount("GAMMA-2", "GAMMA", int(AccountKind.CASH), 0, 0))
    for asset, amount in (("USD", "1000000"), ("BTC", "100"), ("ETH", "1000")):
        w.venue.execute(C.Deposit(f"g2-{asset}", "GAMMA-2", asset, ASSETS[asset].to_atoms(amount)))
    phase_a: list[Any] = []
    n0 = len(w.trades)
    for i in range(8):
        cross(w, ("ALPHA-1", "BETA-1")[i % 2], ("BETA-1", "ALPHA-1")[i % 2], "BTC-USD", 100 + i, 4_000_000 + i, f"a{i}")
    for i in range(4):
        cross(w, ("GAMMA-1", "ALPHA-1")[i % 2], ("ALPHA-1", "GAMMA-1")[i % 2], "BTC-USD", 50, 4_000_100, f"ag{i}")
    for i in range(3):
        cross(w, "GAMMA-1", "GAMMA-2", "BTC-USD", 70, 4_000_200, f"gg{i}")
    phase_a = w.trades[n0:]
    time.sleep(0.05)
    n1 = len(w.trades)
    for i in range(6):
        cross(w, "BETA-1", "ALPHA-1", "ETH-USD", 1000 + i, 300_000 + i, f"b{i}")
    for i in range(3):
        cross(w, "GAMMA-1", "BETA-1", "ETH-USD", 500, 300_100, f"bg{i}")
    phase_b = w.trades[n1:]
    w.settle()
    state = {"world": w, "data_dir": data_dir, "a": phase_a, "b": phase_b}
    try:
        yield state
    finally:
        state["world"].stop()


def entitled(trades: list[Any]) -> list[str]:
    return [f"{t.seq}-{t.trade_n}" for t in trades
            if t.maker_account in ENTITLED_ACCOUNTS or t.taker_account in ENTITLED_ACCOUNTS]


def ask(c: RawClient, req_id: str, extra: list[tuple[int, object]]) -> tuple[Msg, list[Msg]]:
    c.send("AD", [(568, req_id), (569, 1)] + extra)
    ack = c.expect("AQ", X568=req_id)
    reports = []
    if ack[750] == "0":
        for _ in range(int(ack[748])):
            reports.append(c.expect("AE", timeout=10, X568=req_id))
    return ack, reports


def dates(*bounds: int) -> list[tuple[int, object]]:
    out: list[tuple[int, object]] = [(580, len(bounds))]
    for ns in bounds:
        out += [(75, time.strftime("%Y%m%d", time.gmtime(ns // 10**9))), (60, fix_time(ns))]
    return out


@pytest.fixture
def broker(history: dict[str, Any]) -> Iterator[RawClient]:
    w = history["world"]
    w.wait_offline("BROKER-DC")
    c = logged_on(w.dc, "BROKER-DC", "broker", "broker-demo")
    yield c
    c.close()


def test_time_ranges_return_exactly_their_trades(history: dict[str, Any], broker: RawClient) -> None:
    a, b = history["a"], history["b"]
    a_from, b_from = a[0].ts, b[0].ts
    ack, reps = ask(broker, "range-a", dates(a_from, b_from))
    assert ack[749] == "0" and ack[750] == "0"
    assert [r[571] for r in reps] == entitled(a)
    assert len(reps) == 12 and reps[-1].get(912) == "Y" and all(r.get(912) != "Y" for r in reps[:-1])
    ack, reps = ask(broker, "from-b", dates(b_from))
    assert [r[571] for r in reps] == entitled(b) and len(reps) == 9
    ack, reps = ask(broker, "all", [])
    assert [r[571] for r in reps] == entitled(a + b)
    today = time.strftime("%Y%m%d", time.gmtime(a_from // 10**9))
    ack, reps = ask(broker, "today", [(580, 1), (75, today)])
    assert [r[571] for r in reps] == entitled(a + b)
    ack, reps = ask(broker, "long-ago", [(580, 2), (75, "20200101"), (75, "20200102")])
    assert ack[750] == "0" and ack[748] == "0" and not reps


def test_filters_by_symbol_account_trade_and_order(history: dict[str, Any], broker: RawClient) -> None:
    a, b = history["a"], history["b"]
    _, reps = ask(broker, "eth", [(55, "ETH-USD")])
    assert [r[571] for r in reps] == entitled(b)
    _, reps = ask(broker, "beta", [(453, 1), (448, "BETA-1"), (447, "D"), (452, 24)])
    assert [r[571] for r in reps] == [f"{t.seq}-{t.trade_n}" for t in a + b if "BETA-1" in (t.maker_account, t.taker_account)]
    for r in reps:  # only BETA-1's side
        _, sides = entries(fields(r.raw), 552, 54)
        assert [s[1] for s in sides] == ["BETA-1"]
    one = b[2]
    _, reps = ask(broker, "one", [(880, f"{one.seq}-{one.trade_n}")])
    assert [r[571] for r in reps] == [f"{one.seq}-{one.trade_n}"]
    _, reps = ask(broker, "order", [(37, one.taker_order_id)])
    assert [r[571] for r in reps] == [f"{one.seq}-{one.trade_n}"]


def test_reports_show_only_entitled_sides_and_rebuild_positions(history: dict[str, Any], broker: RawClient) -> None:
    w = history["world"]
    trades = history["a"] + history["b"]
    _, reps = ask(broker, "positions", [])
    got: dict[tuple[str, str], Decimal] = {}
    for r in reps:
        top, sides = entries(fields(r.raw), 552, 54)
        assert top[570] == "Y" and top[880] == top[571] and int(top[552]) == len(sides)
        for s in sides:
            assert s[1] in ENTITLED_ACCOUNTS  # GAMMA's sides never shown
            sign = 1 if s[54] == "1" else -1
            base, quote = top[55].split("-")
            got[(s[1], base)] = got.get((s[1], base), Decimal(0)) + sign * Decimal(top[32])
            got[(s[1], quote)] = (got.get((s[1], quote), Decimal(0)) - sign * Decimal(top[32]) * Decimal(top[31])
                                  - Decimal(s[12]))
            assert s[1057] == ("Y" if s[11].startswith("t-") else "N")  # the taker is the aggressor
    want: dict[tuple[str, str], Decimal] = {}
    insts = w.venue.query(lambda e: {s: m.inst for s, m in e.markets.items()})
    for t in trades:
        inst = insts[t.symbol]
        qty, px = inst.lots_to_qty(t.qty), inst.ticks_to_price(t.price)
        taker_sign = 1 if t.aggressor_side == BUY else -1
        for acct, sign, fee in ((t.taker_account, taker_sign, t.taker_fee), (t.maker_account, -taker_sign, t.maker_fee)):
            if acct not in ENTITLED_ACCOUNTS:
                continue
            want[(acct, inst.base)] = want.get((acct, inst.base), Decimal(0)) + sign * qty
            want[(acct, inst.quote)] = (want.get((acct, inst.quote), Decimal(0)) - sign * qty * px
                                        - ASSETS[inst.quote].from_atoms(fee))
    assert got == want
    one_sided = [r for r in reps if entries(fields(r.raw), 552, 54)[0][552] == "1"]
    assert len(one_sided) == 4 + 3  # ALPHA against GAMMA, BETA against GAMMA


def test_date_entries_follow_trdcapdtgrp(history: dict[str, Any], broker: RawClient) -> None:
    """FIX 4.4 TrdCapDtGrp: each NoDates entry is a TradeDate and/or a TransactTime; two
    entries are the start and the end."""
    a, b = history["a"], history["b"]
    a_from, b_from = a[0].ts, b[0].ts
    _, reps = ask(broker, "times", [(580, 2), (60, fix_time(a_from)), (60, fix_time(b_from))])
    assert [r[571] for r in reps] == entitled(a)
    _, reps = ask(broker, "time", [(580, 1), (60, fix_time(b_from))])
    assert [r[571] for r in reps] == entitled(b)
    day = time.strftime("%Y%m%d", time.gmtime(a_from // 10**9))
    next_day = time.strftime("%Y%m%d", time.gmtime(a_from // 10**9 + 86_400))
    _, reps = ask(broker, "dates", [(580, 2), (75, day), (75, next_day)])
    assert [r[571] for r in reps] == entitled(a + b)
    _, reps = ask(broker, "one-day", [(580, 2), (75, day), (75, day)])  # the end date is included
    assert [r[571] for r in reps] == entitled(a + b)
    b_day = time.strftime("%Y%m%d", time.gmtime(b_from // 10**9))
    _, reps = ask(broker, "date-to-time", [(580, 2), (75, day), (75, b_day), (60, fix_time(b_from))])
    assert [r[571] for r in reps] == entitled(a)  # from a date to a date and time


@pytest.mark.parametrize("dates_", [
    [(580, 2), (60, "20240102-00:00:00"), (60, "20240101-00:00:00")],  # the end before the start
    [(580, 1), (75, "20240102"), (60, "20240103-12:00:00")],  # one entry whose date and time disagree
    [(580, 0), (75, "20240102")],  # more entries than NoDates says (the group's first field starts one)
], ids=["reversed", "date-time-disagree", "count"])
def test_date_entries_that_make_no_range_are_refused(broker: RawClient, dates_: list) -> None:
    broker.send("AD", [(568, "bad-dates"), (569, 1)] + dates_)
    m = broker.expect("AQ", X568="bad-dates") if dates_[0][1] else broker.expect("3")
    if m.type == "AQ":
        assert m[750] == "2" and m[749] == "99" and m.get(58)
    else:  # QuickFIX's dictionary validation refuses a count mismatch before the application sees it
        assert m[373] == "16"


def test_a_miscounted_date_group_is_refused_not_read_as_an_open_range() -> None:
    """``580=2|75=D|60=T`` holds *one* entry (a date and a time): not a range from D to T,
    nor an open-ended start. QuickFIX's validation refuses it on the wire (373=16, above);
    the business layer must not read it loosely either, as a message parsed by QuickFIX
    without validation shows."""
    dd = fix.DataDictionary(DICTIONARY)
    body = "35=AD|49=BROKER-DC|56=VENUE|34=2|52=20261204-12:00:00|568=r|569=1|580=2|75=20261203|60=20261204-12:00:00|"
    payload = body.replace("|", "\x01")
    msg = fix.Message(f"8=FIX.4.4\x019={len(payload)}\x01{payload}10=000\x01", dd, False)
    assert msg.groupCount(580) == 1
    with pytest.raises(Refused) as e:
        parse_request(msg, ("ALPHA",), lambda a: "ALPHA", lambda s: True)
    assert e.value.result == "99" and "NoDates" in e.value.text
    one = payload.replace("580=2", "580=1").replace("75=20261203", "75=20261204")
    ok = fix.Message(f"8=FIX.4.4\x019={len(one)}\x01{one}10=000\x01", dd, False)
    q = parse_request(ok, ("ALPHA",), lambda a: "ALPHA", lambda s: True)
    assert q.ts_from == parse_utc("20261204-12:00:00") and q.ts_to == 0  # one entry: from then on


def test_the_ack_carries_the_instrument_block(broker: RawClient) -> None:
    """FIX 4.4's TradeCaptureReportRequestAck requires the Instrument block: the request's
    Symbol, or [N/A] when it named none; every AQ and AE passes the dictionary."""
    dd = fix.DataDictionary(DICTIONARY)
    for req, extra, symbol in (("sym", [(55, "ETH-USD")], "ETH-USD"), ("nosym", [], "[N/A]"),
                               ("badsym", [(55, "NOPE-USD")], "NOPE-USD"), ("refused", [(263, 1)], "[N/A]")):
        ack, reps = ask(broker, req, extra)
        assert ack[55] == symbol, (req, ack)
        for m in [ack] + reps:
            fix.DataDictionary.validate(fix.Message(m.raw.decode(), dd, False), dd, dd)


@pytest.mark.parametrize("extra,result", [
    ([(453, 1), (448, "GAMMA"), (447, "D"), (452, 1)], "9"),  # a firm it is not entitled to
    ([(453, 1), (448, "GAMMA-1"), (447, "D"), (452, 24)], "9"),  # an account of such a firm
    ([(55, "NOPE-USD")], "1"),
    ([(263, 1)], "99"),  # live trade capture: the drop copy is the live feed
    ([(580, 2), (75, "20240102"), (75, "20240101")], "99"),  # the end before the start
    ([(880, "not-a-trade")], "99"),
])
def test_bad_requests_are_refused_with_a_reason(broker: RawClient, extra: list, result: str) -> None:
    broker.send("AD", [(568, "bad"), (569, 1)] + extra)
    ack = broker.expect("AQ", X568="bad")
    assert ack[750] == "2" and ack[749] == result and ack.get(58)


def test_unsupported_request_type_is_refused(broker: RawClient) -> None:
    broker.send("AD", [(568, "t2"), (569, 2)])
    ack = broker.expect("AQ", X568="t2")
    assert ack[750] == "2" and ack[749] == "8"


def test_history_comes_from_the_store_after_a_restart(history: dict[str, Any]) -> None:
    w = history["world"]
    w.wait_offline("BROKER-DC")
    c = logged_on(w.dc, "BROKER-DC", "broker", "broker-demo")
    try:
        _, before = ask(c, "before", [])
    finally:
        c.close()
    w.wait_offline("BROKER-DC")
    w.stop()
    w2 = World(history["data_dir"])
    history["world"] = w2
    c = logged_on(w2.dc, "BROKER-DC", "broker", "broker-demo")
    try:
        _, after = ask(c, "after", [])
    finally:
        c.close()
    assert [r[571] for r in after] == [r[571] for r in before] == entitled(history["a"] + history["b"])

    def content(m: Msg) -> list[tuple[int, str]]:
        return [(k, v) for k, v in fields(m.raw) if k not in (9, 10, 34, 52, 568)]

    assert [content(x) for x in before] == [content(y) for y in after]
