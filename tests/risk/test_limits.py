"""Every pre-trade limit and its refusal: its own reject code and a text that names the
limit, where it was set and the value; the narrowest scope applying; amendments checked
the same way; the limit commands' own refusals; state in snapshots and hashes."""
from __future__ import annotations

import pytest

from venue.engine import Engine
from venue.events import AdminApplied, CancelRejected, CommandRejected, Execution, OrderRejected
from venue.factory import build_engine
from venue.risk import SetRiskLimits
from venue.snapshot import dump_engine, load_engine
from venue.types import IOC, MARKET, STOP_LIMIT, Reject
from venue import commands as C

from tests.risk.helpers import RiskHarness
from tests.venue.harness import rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness(pool=False)
    h.account("a1", "F1")
    h.account("a2", "F1")
    h.account("b1", "F2")
    return h


def limits(h: RiskHarness, scope: str, target: str, symbol: str = "", **kw: int) -> list:
    return h.ok(SetRiskLimits(scope, target, symbol, **kw))


def accepted(events: list) -> Execution:
    ex = [e for e in events if isinstance(e, Execution)]
    assert ex and not any(isinstance(e, OrderRejected) for e in events), events
    return ex[0]


def test_min_and_max_quantity_of_an_account(h: RiskHarness) -> None:
    limits(h, "account", "a1", "BTC-USD", min_qty=h.lots("0.01"), max_qty=h.lots("2"))
    r = rejected(h.buy("a1", "0.005", "50000"))
    assert r.code == Reject.QTY_BELOW_MIN
    assert r.text == "quantity 0.00500 is below the account a1 BTC-USD minimum quantity 0.01000"
    r = rejected(h.buy("a1", "2.5", "50000"))
    assert r.code == Reject.QTY_ABOVE_MAX and "account a1 BTC-USD maximum quantity 2.00000" in r.text
    accepted(h.buy("a1", "2", "50000"))
    accepted(h.buy("a2", "2.5", "50000"))  # another account of the firm is not limited
    accepted(h.buy("a1", "0.005", "2000", symbol="ETH-USD"))  # nor another symbol
    h.check()


def test_min_and_max_notional_of_a_firm(h: RiskHarness) -> None:
    limits(h, "firm", "F1", "BTC-USD", min_notional=h.atoms("USD", "100"), max_notional=h.atoms("USD", "50000"))
    r = rejected(h.buy("a2", "0.001", "50000"))  # 50 USD
    assert r.code == Reject.NOTIONAL_BELOW_MIN
    assert r.text == "notional 50 USD is below the firm F1 BTC-USD minimum notional 100"
    r = rejected(h.sell("a1", "1.1", "50000"))
    assert r.code == Reject.NOTIONAL_ABOVE_MAX and "firm F1 BTC-USD maximum notional 50000" in r.text
    accepted(h.buy("b1", "1.1", "50000"))  # firm F2 is not limited
    accepted(h.buy("a1", "1", "50000"))


def test_price_band_around_the_last_trade_or_the_mid(h: RiskHarness) -> None:
    limits(h, "instrument", "BTC-USD", price_band_ppm=50_000)  # 5%
    accepted(h.buy("a1", "1", "1000"))  # no trade, one-sided book: no reference, no check
    accepted(h.sell("b1", "1", "60000"))
    # mid of 1000 and 60000 is 30500: 5% band 28975 .. 32025
    r = rejected(h.buy("a2", "0.1", "33000"))
    assert r.code == Reject.PRICE_BAND
    assert r.text == "price 33000.00 is outside the BTC-USD price band of 5% around the mid 30500.00 (28975.00 to 32025.00)"
    accepted(h.buy("a2", "0.1", "32000"))
    accepted(h.buy("a2", "0.1", ord_type=MARKET))  # market orders have the protection band: a trade at 60000
    r = rejected(h.sell("a1", "0.1", "56000"))  # band 57000 .. 63000 around the last trade
    assert r.code == Reject.PRICE_BAND and "around the last trade 60000.00 (57000.00 to 63000.00)" in r.text
    accepted(h.sell("a1", "0.1", "57000"))
    r = rejected(h.sell("a1", "0.1", "50000", ord_type=STOP_LIMIT, stop="58000"))
    assert r.code == Reject.PRICE_BAND  # a stop-limit's limit price is banded too
    h.check()


def test_max_open_orders_of_an_account_on_every_symbol(h: RiskHarness) -> None:
    limits(h, "account", "a1", max_open_orders=3)
    accepted(h.buy("a1", "0.1", "100"))
    accepted(h.buy("a1", "0.1", "101"))
    accepted(h.buy("a1", "0.1", "10", symbol="ETH-USD"))
    r = rejected(h.buy("a1", "0.1", "102"))
    assert r.code == Reject.MAX_OPEN_ORDERS and r.text == "3 open orders: the account a1 maximum of open orders is 3"
    oid = next(iter(h.engine.ledger.accounts["a1"].orders))
    h.ok(C.CancelOrder("a1", "x1", order_id=oid))
    accepted(h.buy("a1", "0.1", "102"))


def test_max_open_orders_of_a_firm_counts_all_its_accounts(h: RiskHarness) -> None:
    limits(h, "firm", "F1", "BTC-USD", max_open_orders=2)
    accepted(h.buy("a1", "0.1", "100"))
    accepted(h.buy("a2", "0.1", "100"))
    r = rejected(h.buy("a1", "0.1", "100"))
    assert r.code == Reject.MAX_OPEN_ORDERS and "firm F1 BTC-USD" in r.text
    accepted(h.buy("a1", "0.1", "10", symbol="ETH-USD"))


def test_gross_open_notional_credit_limit(h: RiskHarness) -> None:
    limits(h, "account", "a1", "BTC-USD", max_open_notional=h.atoms("USD", "10000"))
    accepted(h.buy("a1", "0.1", "40000"))  # 4000
    accepted(h.sell("a1", "0.1", "50000"))  # 5000: buys and sells both count
    r = rejected(h.buy("a1", "0.1", "20000"))  # 2000 more
    assert r.code == Reject.CREDIT_LIMIT
    assert r.text == "gross open notional would be 11000 USD: the account a1 BTC-USD credit limit is 10000"
    accepted(h.buy("a1", "0.05", "20000"))  # 1000: exactly at the limit


def test_max_position_long_counts_holdings_and_open_buys(h: RiskHarness) -> None:
    # a1 holds 100 BTC already (the harness deposit)
    limits(h, "account", "a1", "BTC-USD", max_position=h.lots("101"))
    accepted(h.buy("a1", "0.6", "100"))
    r = rejected(h.buy("a1", "0.5", "100"))
    assert r.code == Reject.MAX_POSITION
    assert r.text == ("the long position could reach 101.10000 BTC: the account a1 BTC-USD maximum position is "
                      "101.00000")
    accepted(h.buy("a1", "0.4", "100"))
    accepted(h.sell("a1", "50", "90000"))  # selling reduces the position


def test_narrowest_scope_applies(h: RiskHarness) -> None:
    limits(h, "instrument", "BTC-USD", max_open_orders=1)
    limits(h, "firm", "F1", max_open_orders=3)  # every symbol
    limits(h, "firm", "F1", "BTC-USD", max_open_orders=2)  # narrower than the firm's every-symbol limit
    limits(h, "account", "a2", max_open_orders=4)  # narrower still
    rules = h.risk.rules(h.engine.ledger.accounts["a1"], "BTC-USD")
    assert rules is not None and (rules["max_open_orders"].scope, rules["max_open_orders"].value) == ("firm", 2)
    for _ in range(2):
        accepted(h.buy("a1", "0.1", "100"))
    r = rejected(h.buy("a1", "0.1", "100"))  # the firm's BTC-USD limit, counted over the firm
    assert r.code == Reject.MAX_OPEN_ORDERS and r.text == "2 open orders: the firm F1 BTC-USD maximum of open orders is 2"
    accepted(h.buy("a2", "0.1", "100"))  # a2's own limit (4, counted on a2 alone) is narrower than the firm's
    r = rejected(h.buy("a1", "0.1", "10", symbol="ETH-USD"))  # the firm's every-symbol limit: 3 open in F1
    assert r.text == "3 open orders: the firm F1 maximum of open orders is 3"
    accepted(h.buy("b1", "0.1", "100"))  # firm F2 has nothing of its own: the instrument's 1 per account
    r = rejected(h.buy("b1", "0.1", "100"))
    assert r.text == "1 open orders: the BTC-USD maximum of open orders is 1"


def test_limits_commands_refused_with_a_reason(h: RiskHarness) -> None:
    cases = [
        (SetRiskLimits("desk", "a1", "BTC-USD", max_qty=1), "limit scope must be one of"),
        (SetRiskLimits("account", "nobody", "BTC-USD", max_qty=1), "unknown account nobody"),
        (SetRiskLimits("firm", "NOPE", "", max_open_orders=1), "unknown firm NOPE"),
        (SetRiskLimits("instrument", "NOPE-USD", "", max_qty=1), "unknown symbol NOPE-USD"),
        (SetRiskLimits("account", "a1", "XYZ", max_qty=1), "unknown symbol XYZ"),
        (SetRiskLimits("account", "a1", "", max_qty=1), "max_qty is in the instrument's units: name a symbol"),
        (SetRiskLimits("account", "a1", "BTC-USD", max_qty=-5), "max_qty must be -1 (keep), 0 (remove) or positive"),
        (SetRiskLimits("account", "a1", "BTC-USD", min_qty=10, max_qty=5), "min_qty is above max_qty"),
        (SetRiskLimits("instrument", "BTC-USD", "", price_band_ppm=1_000_000), "the price band must be below 100%"),
    ]
    before = h.engine.state_hashes()
    for cmd, text in cases:
        (ev,) = h.do(cmd)
        assert isinstance(ev, CommandRejected) and text in ev.text, (cmd, ev)
    assert h.engine.state_hashes() | {"engine": ""} == before | {"engine": ""}


def test_keep_and_remove(h: RiskHarness) -> None:
    limits(h, "account", "a1", "BTC-USD", max_qty=h.lots("1"), max_open_orders=5)
    limits(h, "account", "a1", "BTC-USD", max_qty=0)  # remove one, keep the other
    assert h.risk.limit_sets() == [{"scope": "account", "target": "a1", "symbol": "BTC-USD", "max_open_orders": 5}]
    accepted(h.buy("a1", "3", "100"))
    limits(h, "account", "a1", "BTC-USD", max_open_orders=0)
    assert h.risk.limit_sets() == [] and h.risk.rules(h.engine.ledger.accounts["a1"], "BTC-USD") is None


def test_amendments_are_checked_against_the_limits(h: RiskHarness) -> None:
    accepted(h.sell("b1", "1", "60000"))
    accepted(h.buy("b1", "1", "60000", tif=IOC))  # last trade 60000
    o = accepted(h.buy("a1", "1", "59000"))
    limits(h, "account", "a1", "BTC-USD", max_qty=h.lots("2"), price_band_ppm=20_000,
           max_open_notional=h.atoms("USD", "100000"))
    (ev,) = h.do(C.AmendOrder("a1", "r1", order_id=o.info.order_id, qty=h.lots("3")))
    assert isinstance(ev, CancelRejected) and ev.code == Reject.QTY_ABOVE_MAX
    (ev,) = h.do(C.AmendOrder("a1", "r2", order_id=o.info.order_id, price=h.px("50000")))
    assert isinstance(ev, CancelRejected) and ev.code == Reject.PRICE_BAND
    (ev,) = h.do(C.AmendOrder("a1", "r3", order_id=o.info.order_id, qty=h.lots("1.9")))
    assert isinstance(ev, CancelRejected) and ev.code == Reject.CREDIT_LIMIT  # 1.9 x 59000 > 100000
    h.ok(C.AmendOrder("a1", "r4", order_id=o.info.order_id, qty=h.lots("1.5")))
    h.check()


def test_applied_lists_every_limit_with_its_scope_and_use(h: RiskHarness) -> None:
    limits(h, "firm", "F1", "BTC-USD", max_open_orders=10, max_open_notional=h.atoms("USD", "1000000"))
    limits(h, "account", "a1", "BTC-USD", max_position=h.lots("500"))
    accepted(h.buy("a1", "1", "100"))
    accepted(h.buy("a2", "1", "100"))
    rows = {r["name"]: r for r in h.risk.applied("a1", "BTC-USD")}
    assert rows["max_open_orders"] == {"name": "max_open_orders", "value": 10, "scope": "firm", "target": "F1",
                                       "symbol": "BTC-USD", "used": 2}
    assert rows["max_open_notional"]["used"] == 2 * h.atoms("USD", "100")
    assert rows["max_position"]["used"] == h.lots("100")  # the deposit: 100 BTC
    assert rows["max_qty"]["scope"] == "instrument"  # the instrument's own bounds are listed too
    assert rows["market_band_ppm"]["value"] == h.inst().market_band_ppm


def test_limits_live_in_snapshots_and_hashes(h: RiskHarness) -> None:
    limits(h, "firm", "F2", max_open_orders=7)
    limits(h, "instrument", "ETH-USD", price_band_ppm=10_000)
    e2: Engine = load_engine(dump_engine(h.engine), build_engine())
    assert e2.state_hashes() == h.engine.state_hashes()
    assert e2.extensions["risk"].limit_sets() == h.risk.limit_sets()
    limits(h, "firm", "F2", max_open_orders=8)
    assert e2.state_hashes()["risk"] != h.engine.state_hashes()["risk"]


def test_admin_events(h: RiskHarness) -> None:
    (ev,) = h.do(SetRiskLimits("account", "a1", "BTC-USD", max_qty=5))
    assert isinstance(ev, AdminApplied)


def test_max_position_short_counts_loans_and_open_sells() -> None:
    """A margin account's short: what it owes the pool counts, and so do its open sells."""
    from tests.risk.market import move_to, open_market

    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1", usd="100000")
    limits(h, "account", "m1", "BTC-USD", max_position=h.lots("1"))
    accepted(h.sell("m1", "0.6", "99999.99", tif=IOC))  # short 0.6: borrowed
    accepted(h.sell("m1", "0.3", "105000"))  # open: the short could reach 0.9
    r = rejected(h.sell("m1", "0.2", "105000"))
    assert r.code == Reject.MAX_POSITION
    assert r.text == ("the short position could reach 1.10000 BTC: the account m1 BTC-USD maximum position is "
                      "1.00000")
    accepted(h.sell("m1", "0.1", "105000"))  # exactly 1
    accepted(h.buy("m1", "0.5", "100000.01", tif=IOC))  # buying back reduces it
    h.check()


def test_market_order_notional_is_taken_at_the_touch_not_the_protection_cap(h: RiskHarness) -> None:
    """A market buy's notional for the limits is its quantity at the best ask (60000):
    1 BTC is 60000, within a 61000 maximum, though its 5% cap (63000) is not."""
    h.sell("b1", "5", "60000")
    limits(h, "account", "a1", "BTC-USD", max_notional=h.atoms("USD", "61000"), min_notional=h.atoms("USD", "59000"))
    accepted(h.buy("a1", "1", ord_type=MARKET))
    r = rejected(h.buy("a1", "1.1", ord_type=MARKET))
    assert r.code == Reject.NOTIONAL_ABOVE_MAX
    assert r.text == "notional 66000 USD is above the account a1 BTC-USD maximum notional 61000"
    h.check()
