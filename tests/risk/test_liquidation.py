"""Liquidation against thin and empty books: the price limit is fixed from the mark
and the liquidation stalls beyond it; its own fills do not drag the mark (and with it
everyone else) down the book; what is left when the account is bankrupt at the mark is
taken over by the insurance fund; a short the lending pool cannot finance is bought back
with the fund's money. Invariants are checked after every step."""
from __future__ import annotations

from typing import Any

import pytest

from venue import commands as C
from venue.events import Trade
from venue.margin import INSURANCE_ACCOUNT, Liquidation, MarginTransfer
from venue.types import IOC, SELL, ExecKind

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from tests.venue.harness import execs

THIN = ("94000", "89000", "84000", "79000", "74000", "69000", "64000", "59000", "54000", "49000", "44000", "20000")


def stages(events: list[Any], account: str = "m1") -> list[str]:
    return [e.stage for e in events if isinstance(e, Liquidation) and e.account == account]


def transfers(events: list[Any], kind: str) -> list[MarginTransfer]:
    return [e for e in events if isinstance(e, MarginTransfer) and e.kind == kind]


def liq_trades(events: list[Any], account: str = "m1") -> list[Trade]:
    return [t for t in events if isinstance(t, Trade) and t.liquidation and t.taker_account == account]


def mark(h: RiskHarness, symbol: str = "BTC-USD") -> int:
    return h.margin.mark(h.engine.markets[symbol])


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.buy("m1", "0.95", "100000.01", tif=IOC)  # ~9.5x long
    h.check()
    return h


def thin_bids(h: RiskHarness) -> None:
    """The audit's book: the LP's bids gone, 0.01 BTC bid every 5,000 USD down to 20,000."""
    h.account("thin", "F2", usd="10000000", btc="0", eth="0")
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD"))
    for px in THIN:
        h.buy("thin", "0.01", px)
    h.sell(LP, "1", "95000")  # an ask, so there is a mid


def test_a_liquidation_does_not_walk_a_thin_book(h: RiskHarness) -> None:
    h.margin_account("m2", leverage=5)
    h.buy("m2", "0.3", "100000.01", tif=IOC)  # 3x: safe unless the mark falls below ~70,000
    thin_bids(h)
    ev = h.sell(TAKER, "0.01", "94000", tif=IOC)  # one trade at 94,000: the mark falls to 93,060
    m0 = h.px("93060")
    limit = h.engine.markets["BTC-USD"].band_cap(SELL, m0)  # 5% under the mark
    assert stages(ev) == ["started", "stalled"]
    fills = liq_trades(ev)
    assert [t.price for t in fills] == [h.px("89000")]  # the one bid within the limit; 84,000 is beyond
    assert all(t.price >= limit for t in fills)
    orders = {e.info.price for e in ev if getattr(e, "info", None) is not None and e.info.liquidation}
    assert orders == {limit}  # every liquidation order of the command carries the same fixed limit
    # its fills did not drag the mark: it stays 1% under the last trade that was not a liquidation
    assert mark(h) == m0 and mark(h) >= limit
    assert not stages(ev, "m2") and "m2" not in h.margin.liquidating
    assert h.margin.report("m1")["state"] == "stalled"
    h.check()
    # the next command fixes the limit again from the (undragged) mark: still no bid within it
    ev = h.buy("thin", "0.01", "30000")
    assert not liq_trades(ev) and mark(h) == m0
    h.check()


def test_liquidation_trades_do_not_set_the_marks_reference_but_other_trades_do(h: RiskHarness) -> None:
    thin_bids(h)
    h.sell(TAKER, "0.01", "94000", tif=IOC)
    assert h.engine.markets["BTC-USD"].last_px == h.px("89000")  # the tape shows the liquidation
    assert mark(h) == h.px("93060")  # the mark does not follow it
    h.do(C.MassCancel("mc2", account="thin"))
    assert mark(h) == h.px("94000")  # one-sided book: the last trade that was not a liquidation
    h.sell(LP, "0.01", "94500")  # a plain sell rests ...
    h.buy(TAKER, "0.01", "94500", tif=IOC)  # ... and a plain trade sets the reference again
    assert mark(h) == h.px("94500") and "BTC-USD" not in h.margin.liq_ref
    h.check()


def test_bankrupt_at_the_mark_with_no_bids_the_insurance_fund_takes_over(h: RiskHarness) -> None:
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD"))
    h.buy(LP, "0.01", "80000")
    fund_usd, fund_btc = h.total(INSURANCE_ACCOUNT, "USD"), h.total(INSURANCE_ACCOUNT, "BTC")
    owed = h.engine.ledger.loan("m1", "USD")
    ev = h.sell(TAKER, "0.01", "80000", tif=IOC)  # the last bid goes at 80,000: m1 is worth less than it owes
    assert stages(ev) == ["started", "taken_over", "bankrupt"]
    (took,) = transfers(ev, "takeover")
    assert (took.account, took.asset, took.amount, took.counterparty) == ("m1", "BTC", h.atoms("BTC", "0.95"),
                                                                        INSURANCE_ACCOUNT)
    bust = [e for e in ev if isinstance(e, Liquidation)][-1]
    assert bust.covered == owed and bust.written_off == 0  # the fund paid the debt the coins leave
    assert h.total(INSURANCE_ACCOUNT, "USD") == fund_usd - owed
    assert h.total(INSURANCE_ACCOUNT, "BTC") == fund_btc + h.atoms("BTC", "0.95")
    assert h.engine.ledger.loans == {} and h.margin.report("m1")["gross"] == 0
    assert "m1" not in h.margin.liquidating
    h.check()


def test_a_stalled_account_that_is_not_bankrupt_is_not_taken_over(h: RiskHarness) -> None:
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD"))
    h.buy(LP, "0.01", "90000")
    ev = h.sell(TAKER, "0.01", "90000", tif=IOC)  # equity at 90,000 is still positive
    assert stages(ev) == ["started", "stalled"] and not transfers(ev, "takeover")
    h.check()


def short_with_a_dry_pool(h: RiskHarness, eth: str = "0") -> None:
    h.fund_pool(usd="0.01", btc="1000", eth="10000", insurance="1000000")
    open_market(h)
    move_to(h, "100000")
    move_to(h, "3000", "ETH-USD")
    h.margin_account("m1")
    if eth != "0":
        h.ok(C.Deposit("m1-eth", "m1", "ETH", h.atoms("ETH", eth)))
    h.sell("m1", "0.95" if eth == "0" else "1.4", "99999.99", tif=IOC)
    h.check()


def test_a_short_the_pool_cannot_finance_is_bought_back_with_the_insurance_fund() -> None:
    h = RiskHarness(pool=False)
    short_with_a_dry_pool(h)
    fund = h.total(INSURANCE_ACCOUNT, "USD")
    ev = move_to(h, "115000")
    assert stages(ev)[0] == "started" and "covered" in stages(ev) and stages(ev)[-1] == "bankrupt"
    assert h.engine.ledger.loans == {} and h.total("m1", "USD") == 0 and h.total("m1", "BTC") == 0
    covers = transfers(ev, "cover")
    paid = fund - h.total(INSURANCE_ACCOUNT, "USD")
    assert paid == sum(c.amount for c in covers) > 0
    assert paid == sum(e.covered for e in ev if isinstance(e, Liquidation))  # every cover reported
    assert not transfers(ev, "write_off")
    h.check()


def test_the_fund_pays_for_a_buy_back_only_once_nothing_is_left_to_sell() -> None:
    h = RiskHarness(pool=False)
    short_with_a_dry_pool(h, eth="2")
    ev = move_to(h, "116000")
    assert stages(ev)[0] == "started" and stages(ev)[-1] in ("bankrupt", "closed")
    first_cover = next(i for i, e in enumerate(ev) if isinstance(e, MarginTransfer) and e.kind == "cover")
    eth_sales = [i for i, t in enumerate(ev) if isinstance(t, Trade) and t.liquidation and t.symbol == "ETH-USD"]
    assert eth_sales and max(eth_sales) < first_cover  # the ETH went first
    assert h.total("m1", "ETH") < h.atoms("ETH", "0.0001") and h.engine.ledger.loans == {}
    h.check()


def test_the_fund_never_pays_for_a_buy_back_it_has_not_got_the_money_for() -> None:
    h = RiskHarness(pool=False)
    h.fund_pool(usd="0.01", btc="1000", eth="10000", insurance="0.00000001")
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.sell("m1", "0.95", "99999.99", tif=IOC)
    ev = move_to(h, "115000")
    assert stages(ev) == ["started", "stalled"]  # no money anywhere: it waits, nobody pays
    assert h.total(INSURANCE_ACCOUNT, "USD") >= 0
    h.check()


def test_the_largest_position_is_reduced_first() -> None:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    move_to(h, "3000", "ETH-USD")
    h.margin_account("m1")
    h.buy("m1", "0.6", "100000.01", tif=IOC)  # 60,000 of BTC
    h.buy("m1", "10", "3000.01", symbol="ETH-USD", tif=IOC)  # 30,000 of ETH: 9x in all
    h.check()
    ev = move_to(h, "90000")  # BTC falls: 54,000 of BTC is still the larger position
    assert stages(ev)[0] == "started"
    orders = [e.info.symbol for e in execs(ev, ExecKind.NEW) if e.info.liquidation]
    assert orders and orders[0] == "BTC-USD"
    h.check()


def test_a_restored_account_keeps_a_cushion_above_its_initial_margin(h: RiskHarness) -> None:
    """A liquidation cuts a quarter more than the bare arithmetic needs, so the account is
    not left on the edge of its initial margin (to be liquidated again by the next tick)."""
    for px in ("99000", "97000", "95000", "94500"):
        assert not stages(move_to(h, px))
    ev = move_to(h, "94000")
    assert stages(ev) == ["started", "restored"]
    r = h.margin.report("m1")
    assert r["equity"] * 100 >= r["initial"] * 125  # about 1.37x with the 25% margin; 1.00x without it
    h.check()
