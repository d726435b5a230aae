"""Every refusal path of the engine: its code, its text, and that nothing changed."""
from __future__ import annotations

from typing import Any

import pytest

from venue import commands as C
from venue.events import CommandRejected, OrderRejected
from venue.instruments import Instrument
from venue.types import BUY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT, Reject

from tests.venue.harness import T0, Harness, only

SYM = "BTC-USD"
MINI = "MINI-USD"  # BTC against USD with a minimum of 0.001 BTC and a maximum of 10


@pytest.fixture(scope="module")
def base() -> Harness:
    h = Harness()
    led = h.engine.ledger
    mini = Instrument.create(MINI, led.assets["BTC"], led.assets["USD"], "0.01", "0.00001", "0.001", "10", "10", "100000")
    h.ok(C.DefineInstrument(mini.to_record()))
    h.account("A", usd="1000", btc="1")
    h.account("B", usd="1000000", btc="100")
    h.ok(C.CreateAccount("OFF", "F1"))
    h.ok(C.SetAccountEnabled("OFF", False, "compliance"))
    h.ok(C.CreateAccount("POOR", "F1"))  # no balance at all
    h.ok(C.NewOrder("B", "open-1", SYM, SELL, LIMIT, 100_000, price=10_000))  # an ask at 100.00
    h.ok(C.NewOrder("B", "done-1", SYM, SELL, LIMIT, 1_000, price=10_000, tif=IOC))  # cancelled at once
    h.ok(C.Halt("ETH-USD", reason="test"))
    return h


def state(h: Harness) -> dict[str, str]:
    return {k: v for k, v in h.engine.state_hashes().items() if k != "engine"}


def refuse(h: Harness, cmd: Any) -> OrderRejected:
    before = state(h)
    n = len(h.engine.orders)
    ev = h.do(cmd)
    assert state(h) == before and len(h.engine.orders) == n  # nothing changed
    return only(ev, OrderRejected)


def new(qty: int = 1_000, price: int = 10_000, **kw: Any) -> C.NewOrder:
    fields: dict[str, Any] = dict(account="A", cl_ord_id="x", symbol=SYM, side=BUY, ord_type=LIMIT, qty=qty, price=price)
    fields.update(kw)
    return C.NewOrder(**fields)


CASES = [
    (new(account="nobody"), Reject.UNKNOWN_ACCOUNT, "unknown account nobody"),
    (new(account="OFF"), Reject.ACCOUNT_DISABLED, "account OFF is disabled"),
    (new(symbol="DOGE-USD"), Reject.UNKNOWN_SYMBOL, "unknown symbol DOGE-USD"),
    (new(symbol="ETH-USD"), Reject.INSTRUMENT_HALTED, "ETH-USD is halted"),
    (new(side=3), Reject.INVALID_SIDE, "invalid side 3"),
    (new(side=0), Reject.INVALID_SIDE, "invalid side 0"),
    (new(qty=0), Reject.INVALID_QUANTITY, "quantity must be positive"),
    (new(qty=-5), Reject.INVALID_QUANTITY, "quantity must be positive"),
    (new(symbol=MINI, qty=99), Reject.QTY_BELOW_MIN, "quantity 0.00099 is below the minimum 0.00100 of MINI-USD"),
    (new(symbol=MINI, qty=1_000_001), Reject.QTY_ABOVE_MAX, "quantity 10.00001 is above the maximum 10.00000 of MINI-USD"),
    (new(price=0), Reject.INVALID_PRICE, "a limit order needs a positive price"),
    (new(price=-1), Reject.INVALID_PRICE, "a limit order needs a positive price"),
    (new(ord_type=STOP_LIMIT, price=0, stop_px=5), Reject.INVALID_PRICE, "a limit order needs a positive price"),
    (new(ord_type=MARKET, price=10_000), Reject.INVALID_PRICE, "a market order carries no price"),
    (new(ord_type=STOP, price=10_000, stop_px=5), Reject.INVALID_PRICE, "a market order carries no price"),
    (new(ord_type=7), Reject.INVALID_ORDER_TYPE, "unsupported order type 7"),
    (new(ord_type=STOP_LIMIT, stop_px=0), Reject.INVALID_STOP_PRICE, "a stop order needs a positive stop price"),
    (new(ord_type=STOP, price=0, stop_px=-3), Reject.INVALID_STOP_PRICE, "a stop order needs a positive stop price"),
    (new(stop_px=9_000), Reject.INVALID_STOP_PRICE, "only stop orders carry a stop price"),
    (new(tif=2), Reject.INVALID_TIME_IN_FORCE, "unsupported time in force 2"),
    (new(tif=GTD, expire_ts=0), Reject.INVALID_EXPIRE_TIME, "GTD expire time must be in the future"),
    (new(tif=IOC, post_only=True), Reject.UNSUPPORTED, "post-only needs a limit order that may rest (not IOC/FOK)"),
    (new(ord_type=STOP, price=0, stop_px=11_000, post_only=True), Reject.UNSUPPORTED,
     "post-only needs a limit order that may rest (not IOC/FOK)"),
    (new(qty=1_000, display_qty=1_000), Reject.INVALID_DISPLAY_QTY,
     "display quantity must be at least the minimum and less than the order quantity"),
    (new(symbol=MINI, qty=1_000, display_qty=50), Reject.INVALID_DISPLAY_QTY,
     "display quantity must be at least the minimum and less than the order quantity"),
    (new(tif=FOK, display_qty=10), Reject.INVALID_DISPLAY_QTY, "an iceberg must be a limit order that may rest"),
    (new(stp=6), Reject.INVALID_STP, "invalid self-trade prevention mode 6"),
    (new(stp=-1), Reject.INVALID_STP, "invalid self-trade prevention mode -1"),
    (new(cl_ord_id=""), Reject.BAD_COMMAND, "ClOrdID is required"),
    (new(account="B", cl_ord_id="open-1"), Reject.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID open-1"),
    (new(account="B", cl_ord_id="done-1"), Reject.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID done-1"),
    (new(side=SELL, ord_type=MARKET, price=0), Reject.NO_LIQUIDITY, "no liquidity on the other side of BTC-USD"),
    (new(qty=1, price=100), Reject.NOTIONAL_BELOW_MIN, "notional 0.00001 is below the minimum 1 USD"),
    (new(qty=10**8, price=2 * 10**6), Reject.NOTIONAL_ABOVE_MAX, "notional 20000000 is above the maximum 10000000 USD"),
    (new(ord_type=STOP, price=0, stop_px=1, qty=1_000), Reject.NOTIONAL_BELOW_MIN,
     "notional 0.0001 is below the minimum 1 USD"),
    (new(post_only=True, price=10_000), Reject.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"),
    (new(qty=1_000_000, price=10_001), Reject.INSUFFICIENT_FUNDS, "insufficient USD: needs 1000.1, available 1000"),
    (new(side=SELL, qty=100_001, price=20_000), Reject.INSUFFICIENT_FUNDS, "insufficient BTC: needs 1.00001, available 1"),
    (new(account="POOR", qty=1_000, price=20_000), Reject.INSUFFICIENT_FUNDS, "insufficient USD: needs 2, available 0"),
    (new(account="POOR", side=SELL, qty=1_000, price=20_000), Reject.INSUFFICIENT_FUNDS,
     "insufficient BTC: needs 0.01, available 0"),
]


@pytest.mark.parametrize("cmd, code, text", CASES, ids=[f"{i}-{Reject(c).name}" for i, (_, c, _) in enumerate(CASES)])
def test_new_order_refusal(base: Harness, cmd: C.NewOrder, code: int, text: str) -> None:
    r = refuse(base, cmd)
    assert (r.code, r.text, r.cmd) == (code, text, cmd)
    assert r.firm == ("" if cmd.account == "nobody" else "F1")
    assert r.seq == base.seq and r.ts == base.ts and r.exec_n == 1


def test_insufficient_funds_counts_the_taker_fee() -> None:
    h = Harness()
    h.account("A", usd="100.05", taker_ppm=500)
    h.ok(C.NewOrder("A", "b", SYM, BUY, LIMIT, 100_000, price=10_000))
    assert h.bal("A", "USD") == (0, 100_05 * 10**6)
    h2 = Harness()
    h2.account("A", usd="100.049", taker_ppm=500)
    r = only(h2.buy("A", "1", "100.00"), OrderRejected)
    assert (r.code, r.text) == (Reject.INSUFFICIENT_FUNDS, "insufficient USD: needs 100.05, available 100.049")


def test_stop_would_trigger() -> None:
    h = Harness()
    h.account("A")
    h.account("B")
    h.sell("B", "1", "100.00")
    h.buy("A", "1", "100.00")
    for cmd, text in [
        (C.NewOrder("A", "s1", SYM, BUY, STOP, 1_000, stop_px=9_999), "stop price 99.99 would trigger at once (last 100.00)"),
        (C.NewOrder("A", "s2", SYM, SELL, STOP_LIMIT, 1_000, price=9_000, stop_px=10_001),
         "stop price 100.01 would trigger at once (last 100.00)"),
    ]:
        r = refuse(h, cmd)
        assert (r.code, r.text) == (Reject.STOP_WOULD_TRIGGER, text)


def test_risk_hook_refusal() -> None:
    class MaxQty:
        def check_new(self, engine: Any, cmd: C.NewOrder, acct: Any, mkt: Any, price: int) -> tuple[int, str] | None:
            return (int(Reject.MAX_POSITION), "too big") if cmd.qty > 5_000 else None

    h = Harness()
    h.account("A")
    h.engine.risk = MaxQty()
    r = refuse(h, C.NewOrder("A", "r", SYM, BUY, LIMIT, 5_001, price=10_000))
    assert (r.code, r.text) == (Reject.MAX_POSITION, "too big")
    h.ok(C.NewOrder("A", "r", SYM, BUY, LIMIT, 5_000, price=10_000))


ADMIN = [
    (C.DefineAsset("USD", 2), Reject.BAD_COMMAND, "asset 'USD' exists or is empty"),
    (C.DefineAsset("", 2), Reject.BAD_COMMAND, "asset '' exists or is empty"),
    (C.DefineAsset("SOL", 31), Reject.BAD_COMMAND, "asset decimals must be within 0..30"),
    (C.DefineAsset("SOL", -1), Reject.BAD_COMMAND, "asset decimals must be within 0..30"),
    (C.CreateFirm("F1"), Reject.DUPLICATE_FIRM, "firm 'F1' exists or is empty"),
    (C.CreateFirm(""), Reject.DUPLICATE_FIRM, "firm '' exists or is empty"),
    (C.CreateAccount("Z", "NOFIRM"), Reject.UNKNOWN_FIRM, "unknown firm NOFIRM"),
    (C.CreateAccount("A", "F1"), Reject.DUPLICATE_ACCOUNT, "account 'A' exists or is empty"),
    (C.CreateAccount("", "F1"), Reject.DUPLICATE_ACCOUNT, "account '' exists or is empty"),
    (C.CreateAccount("Z", "F1", taker_ppm=-1), Reject.INVALID_FEES, "taker fee must be within [0, 100%)"),
    (C.CreateAccount("Z", "F1", taker_ppm=10**6), Reject.INVALID_FEES, "taker fee must be within [0, 100%)"),
    (C.CreateAccount("Z", "F1", maker_ppm=-101, taker_ppm=100), Reject.INVALID_FEES,
     "maker fee must be within [-taker, taker] (a rebate is paid from the taker fee)"),
    (C.CreateAccount("Z", "F1", maker_ppm=101, taker_ppm=100), Reject.INVALID_FEES,
     "maker fee must be within [-taker, taker] (a rebate is paid from the taker fee)"),
    (C.CreateAccount("Z", "F1", stp=0), Reject.INVALID_STP, "invalid self-trade prevention mode 0"),
    (C.CreateAccount("Z", "F1", stp=6), Reject.INVALID_STP, "invalid self-trade prevention mode 6"),
    (C.CreateAccount("Z", "F1", kind=3), Reject.BAD_COMMAND, "account kind must be cash or margin, leverage 1..10"),
    (C.CreateAccount("Z", "F1", leverage=11), Reject.BAD_COMMAND, "account kind must be cash or margin, leverage 1..10"),
    (C.SetFees("nobody", 0, 0), Reject.UNKNOWN_ACCOUNT, "unknown account nobody"),
    (C.SetFees("A", 5, 4), Reject.INVALID_FEES, "maker fee must be within [-taker, taker] (a rebate is paid from the taker fee)"),
    (C.SetAccountEnabled("nobody", True), Reject.UNKNOWN_ACCOUNT, "unknown account nobody"),
    (C.Halt("DOGE-USD"), Reject.UNKNOWN_SYMBOL, "unknown symbol DOGE-USD"),
    (C.Resume("DOGE-USD"), Reject.UNKNOWN_SYMBOL, "unknown symbol DOGE-USD"),
    (C.DefineInstrument({"symbol": "X"}), Reject.BAD_COMMAND, None),
]


@pytest.mark.parametrize("cmd, code, text", ADMIN, ids=[f"{i}-{type(c).__name__}" for i, (c, _, _) in enumerate(ADMIN)])
def test_admin_refusal(base: Harness, cmd: Any, code: int, text: str | None) -> None:
    before = state(base)
    r = only(base.do(cmd), CommandRejected)
    assert r.code == code and r.cmd == cmd
    if text is not None:
        assert r.text == text
    assert state(base) == before


def test_unknown_command_is_refused(base: Harness) -> None:
    class Foreign(tuple):
        pass

    r = only(base.do(Foreign()), CommandRejected)
    assert (r.code, r.text) == (Reject.BAD_COMMAND, "unknown command Foreign")


def bad_records() -> list[tuple[dict, str]]:
    from venue.instruments import default_instruments

    good = default_instruments()[0].to_record() | {"symbol": "NEW-USD"}
    return [
        (good | {"symbol": "BTC-USD"}, "instrument BTC-USD exists"),
        (good | {"base": "XYZ"}, "NEW-USD: unknown asset"),
        (good | {"notional_mult": 11}, "NEW-USD: sizes do not agree with the assets' decimals"),
        (good | {"base_per_lot": 999}, "NEW-USD: sizes do not agree with the assets' decimals"),
        (good | {"tick_size": "abc"}, "bad instrument record"),
        (good | {"tick_size": "NaN"}, "bad instrument record"),
        (good | {"tick_size": "0", "notional_mult": 0}, "bad instrument record"),
        (good | {"tick_size": "-0.01", "notional_mult": -10}, "bad instrument record"),
        (good | {"lot_size": "0", "base_per_lot": 0, "notional_mult": 0}, "bad instrument record"),
        (good | {"min_qty": "1"}, "bad instrument record"),
        (good | {"min_qty": 0}, "bad instrument record"),
        (good | {"max_qty": 0}, "bad instrument record"),
        (good | {"min_notional": -1}, "bad instrument record"),
        (good | {"max_notional": 10}, "bad instrument record"),
        (good | {"market_band_ppm": 0}, "bad instrument record"),
        (good | {"market_band_ppm": 10**6}, "bad instrument record"),
        (good | {"market_band_ppm": 1.5}, "bad instrument record"),
        (good | {"price_decimals": True}, "bad instrument record"),
        (good | {"extra": 1}, "bad instrument record"),
        ({k: v for k, v in good.items() if k != "lot_size"}, "bad instrument record"),
        (good | {"symbol": ""}, "bad instrument record"),
        (good | {"symbol": 5}, "bad instrument record"),
    ]


@pytest.mark.parametrize("record, text", bad_records(), ids=lambda x: str(x)[:40] if isinstance(x, str) else "")
def test_bad_instrument_records_are_refused_not_a_crash(base: Harness, record: dict, text: str) -> None:
    before = state(base)
    r = only(base.do(C.DefineInstrument(record)), CommandRejected)
    assert r.code in (Reject.BAD_COMMAND, Reject.UNKNOWN_ASSET) and r.text.startswith(text)
    assert state(base) == before


def test_good_instrument_record_is_applied() -> None:
    from venue.instruments import default_instruments

    h = Harness()
    rec = default_instruments()[0].to_record() | {"symbol": "NEW-USD"}
    h.ok(C.DefineInstrument(rec))
    assert h.engine.markets["NEW-USD"].inst.to_record() == rec


def test_expire_time_in_the_past_vs_now() -> None:
    h = Harness()
    h.account("A")
    assert only(h.do(new(tif=GTD, expire_ts=T0)), OrderRejected).code == Reject.INVALID_EXPIRE_TIME
    h.ok(new(tif=GTD, expire_ts=T0 + 1, cl_ord_id="g"))
    h.ok(new(tif=GTC, expire_ts=T0 - 5, cl_ord_id="ignored"))  # only GTD reads the expire time
    assert h.engine.orders[h.seq].expire_ts == 0


def test_amend_refusals_on_limits_and_risk() -> None:
    from venue.events import CancelRejected

    h = Harness()
    led = h.engine.ledger
    mini = Instrument.create(MINI, led.assets["BTC"], led.assets["USD"], "0.01", "0.00001", "0.001", "10", "10", "100000")
    h.ok(C.DefineInstrument(mini.to_record()))
    h.account("A")
    h.ok(C.NewOrder("A", "m", MINI, BUY, LIMIT, 1_000, price=200_000))
    oid = h.seq
    r = only(h.do(C.AmendOrder("A", "", order_id=oid, qty=99)), CancelRejected)
    assert (r.code, r.text) == (Reject.QTY_BELOW_MIN, "quantity 0.00099 is outside [0.00100, 10.00000]")

    class NoBigger:
        def check_amend(self, engine: Any, cmd: C.AmendOrder, o: Any, price: int, leaves: int) -> tuple[int, str] | None:
            return (int(Reject.CREDIT_LIMIT), "credit limit") if leaves > o.leaves else None

    h.engine.risk = NoBigger()
    r = only(h.do(C.AmendOrder("A", "", order_id=oid, qty=2_000)), CancelRejected)
    assert (r.code, r.text, r.order_id) == (Reject.CREDIT_LIMIT, "credit limit", oid)
    assert h.engine.orders[oid].qty == 1_000
    h.ok(C.AmendOrder("A", "", order_id=oid, qty=500))
