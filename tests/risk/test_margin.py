"""Margin accounts: borrowing against collateral, initial margin counting open orders,
repayment, shorts, withdrawals and leverage under margin, reduce-only orders, and
liquidation (restored, closed, bankrupt with the insurance fund, written off, stalled).
The engine's own invariants (holds, conservation, loans, the pool's books, nobody below
maintenance outside a liquidation) are checked after every step."""
from __future__ import annotations

from typing import Any

import pytest

from venue import commands as C
from venue.events import CommandRejected, Execution, FundingPosted, Trade
from venue.margin import INSURANCE_ACCOUNT, LENDING_ACCOUNT, Liquidation, MarginTransfer, SetLeverage
from venue.types import BUY, IOC, MARKET, SELL, CancelReason, ExecKind, Reject

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from tests.venue.harness import execs, rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.check()
    return h


def transfers(events: list[Any], kind: str | None = None) -> list[MarginTransfer]:
    return [e for e in events if isinstance(e, MarginTransfer) and (kind is None or e.kind == kind)]


def stages(events: list[Any], account: str = "m1") -> list[str]:
    return [e.stage for e in events if isinstance(e, Liquidation) and e.account == account]


def usd(h: RiskHarness, amount: str) -> int:
    return h.atoms("USD", amount)


def test_a_buy_borrows_the_quote_it_lacks(h: RiskHarness) -> None:
    ev = h.buy("m1", "0.9", "100000.01", tif=IOC)  # lifts the LP's ask at 100000.01
    (b,) = transfers(ev, "borrow")
    assert (b.account, b.asset, b.amount, b.counterparty) == ("m1", "USD", usd(h, "80000.009"), LENDING_ACCOUNT)
    assert h.engine.ledger.loans == {"m1": {"USD": usd(h, "80000.009")}}
    assert h.total("m1", "BTC") == h.atoms("BTC", "0.9") and h.bal("m1", "USD") == (0, 0)
    r = h.margin.report("m1")
    assert r["equity"] == usd(h, "10000") - usd(h, "0.009")  # bought a tick above the mark of 100000
    h.check()


def test_initial_margin_is_checked_and_names_the_numbers(h: RiskHarness) -> None:
    before = h.engine.ledger.state_hash()
    r = rejected(h.buy("m1", "1", "100000.01", tif=IOC))
    assert r.code == Reject.MARGIN_INSUFFICIENT
    assert r.text == ("initial margin: equity 9999.99 USD (open orders filled) is below the 10000 USD that 10x "
                      "needs for a gross position of 100000")
    assert h.engine.ledger.state_hash() == before  # nothing borrowed for a refused order


def test_open_orders_count_toward_initial_margin_and_a_cancel_repays(h: RiskHarness) -> None:
    a = execs(h.buy("m1", "0.5", "99000"))[0]
    execs(h.buy("m1", "0.5", "98000"))  # 1 BTC at a mark of 100000 needs exactly 10000
    assert h.engine.ledger.loan("m1", "USD") == usd(h, "88500")
    r = rejected(h.buy("m1", "0.01", "97000"))
    assert r.code == Reject.MARGIN_INSUFFICIENT
    ev = h.do(C.CancelOrder("m1", "x", order_id=a.info.order_id))
    (rp,) = transfers(ev, "repay")
    assert rp.amount == usd(h, "49500")
    assert h.engine.ledger.loan("m1", "USD") == usd(h, "39000")
    execs(h.buy("m1", "0.01", "97000"))
    h.check()


def test_a_short_sale_borrows_the_base_and_buying_back_repays(h: RiskHarness) -> None:
    ev = h.sell("m1", "0.5", "99999.99", tif=IOC)
    (b,) = transfers(ev, "borrow")
    assert (b.asset, b.amount) == ("BTC", h.atoms("BTC", "0.5"))
    assert h.engine.ledger.loans == {"m1": {"BTC": h.atoms("BTC", "0.5")}}
    assert h.total("m1", "USD") == usd(h, "10000") + usd(h, "49999.995")
    h.check()
    ev = h.buy("m1", "0.5", "100000.01", tif=IOC)
    (rp,) = transfers(ev, "repay")
    assert (rp.asset, rp.amount) == ("BTC", h.atoms("BTC", "0.5"))
    assert h.engine.ledger.loans == {} and h.total("m1", "BTC") == 0
    assert h.total("m1", "USD") == usd(h, "9999.99")  # paid the spread
    h.check()


def test_withdrawals_keep_the_initial_margin(h: RiskHarness) -> None:
    h.sell("m1", "0.5", "99999.99", tif=IOC)  # short 50000: 5000 of initial margin on ~10000 equity
    (ev,) = h.do(C.Withdraw("w1", "m1", "USD", usd(h, "6000")))
    assert isinstance(ev, CommandRejected) and ev.code == Reject.MARGIN_INSUFFICIENT
    assert ev.text == "withdrawing 6000 USD would leave equity below the initial margin of 5000 USD"
    (ev,) = h.do(C.Withdraw("w2", "m1", "USD", usd(h, "4000")))
    assert isinstance(ev, FundingPosted)
    h.check()


def test_leverage_changes(h: RiskHarness) -> None:
    h.buy("m1", "0.4", "100000.01", tif=IOC)
    (ev,) = h.do(SetLeverage("m1", 2))
    assert isinstance(ev, CommandRejected) and ev.text == "equity does not cover the initial margin at 2x"
    assert h.engine.ledger.accounts["m1"].leverage == 10
    h.ok(SetLeverage("m1", 5))
    assert h.margin.report("m1")["initial"] == usd(h, "8000")
    assert h.refused(h.do(SetLeverage(LP, 5))).text == "lp is not a margin account"
    assert h.refused(h.do(SetLeverage("m1", 11))).text == "leverage must be 1..10"
    h.check()


def test_the_pool_lends_only_what_it_has() -> None:
    h = RiskHarness(pool=False)
    open_market(h)
    move_to(h, "100000")
    h.fund_pool(usd="1000")
    h.margin_account("m1")
    r = rejected(h.buy("m1", "0.2", "100000.01", tif=IOC))
    assert r.text == "the lending pool cannot lend 10000.002 USD (it has 1000)"
    h.check()


def test_nothing_is_lent_without_a_mark() -> None:
    h = RiskHarness()
    h.margin_account("m1")
    h.account("s1", usd="0", btc="10")
    h.sell("s1", "1", "100000")  # one-sided book, no trade: no mark
    r = rejected(h.buy("m1", "0.2", "100000", tif=IOC))
    assert r.text == "no mark price for BTC: cannot margin"
    execs(h.buy("m1", "0.05", "100000", tif=IOC))  # its own money: fine


def test_reduce_only_orders(h: RiskHarness) -> None:
    h.buy("m1", "0.5", "100000.01", tif=IOC)
    r = rejected(h.sell("m1", "0.6", "110000", reduce_only=True))
    assert r.code == Reject.REDUCE_ONLY
    assert r.text == "reduce-only sell of 0.60000 exceeds the long position left to reduce (0.50000 BTC)"
    ro = execs(h.sell("m1", "0.5", "110000", reduce_only=True))[0]
    assert rejected(h.sell("m1", "0.1", "110000", reduce_only=True)).code == Reject.REDUCE_ONLY
    assert rejected(h.buy("m1", "0.1", "90000", reduce_only=True)).code == Reject.REDUCE_ONLY  # no short
    assert rejected(h.buy(LP, "0.1", "90000", reduce_only=True)).code == Reject.REDUCE_ONLY  # cash: never short
    # a plain sell takes the position to zero (it borrows: the reduce-only order holds the coins)
    ev = h.sell("m1", "0.5", "99999.99", tif=IOC)
    (c,) = execs(ev, ExecKind.CANCELLED, order_id=ro.info.order_id)
    assert c.reason == CancelReason.REDUCE_ONLY
    h.check()


def long_position(h: RiskHarness, taker_ppm: int = 0) -> None:
    h.buy("m1", "0.95", "100000.01", tif=IOC)  # ~9.5x
    h.check()


def test_a_long_is_liquidated_below_maintenance_and_restored(h: RiskHarness) -> None:
    long_position(h)
    resting = execs(h.buy("m1", "0.001", "90000"))[0]
    liq_px = next(a for a in h.margin.report("m1")["assets"] if a["asset"] == "BTC")["liquidation_price"]
    assert h.px("94000") < liq_px < h.px("94500")
    for px in ("99000", "97000", "95000", "94500"):
        assert not stages(move_to(h, px))
        h.check()
    ev = move_to(h, "94000")
    assert stages(ev) == ["started", "restored"]
    start = next(e for e in ev if isinstance(e, Liquidation))
    assert start.equity < start.maintenance
    (c,) = execs(ev, ExecKind.CANCELLED, order_id=resting.info.order_id)
    assert c.reason == CancelReason.LIQUIDATION
    fills = [e for e in execs(ev, ExecKind.FILL) if e.info.account == "m1"]
    assert fills and all(e.info.liquidation and e.info.side == SELL and not e.info.session for e in fills)
    trades = [t for t in ev if isinstance(t, Trade) and t.taker_account == "m1"]
    assert trades and all(t.liquidation for t in trades)
    r = h.margin.report("m1")
    assert r["state"] == "normal" and r["equity"] * 10 >= r["gross"]  # back at the initial margin
    assert 0 < h.total("m1", "BTC") < h.atoms("BTC", "0.95")
    h.check()


def test_a_gap_makes_the_account_bankrupt_and_the_insurance_fund_pays() -> None:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    long_position(h)
    fund_before = h.total(INSURANCE_ACCOUNT, "USD")
    ev = move_to(h, "80000")  # the LP requotes 20% lower at once: no chance to sell in between
    assert stages(ev)[0] == "started" and stages(ev)[-1] == "bankrupt"
    bust = [e for e in ev if isinstance(e, Liquidation)][-1]
    (cover,) = transfers(ev, "cover")
    assert cover.counterparty == INSURANCE_ACCOUNT and cover.amount == bust.covered > 0 and bust.written_off == 0
    assert h.total(INSURANCE_ACCOUNT, "USD") == fund_before - cover.amount
    assert h.engine.ledger.loans == {}
    r = h.margin.report("m1")
    assert r["equity"] >= 0 and r["gross"] == 0 and r["state"] == "normal"
    h.check()


def test_what_the_fund_cannot_pay_the_pool_writes_off() -> None:
    h = RiskHarness(pool=False)
    h.fund_pool(insurance="1")
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    long_position(h)
    ev = move_to(h, "80000")
    bust = [e for e in ev if isinstance(e, Liquidation)][-1]
    assert bust.stage == "bankrupt" and bust.covered == usd(h, "1") and bust.written_off > 0
    (wo,) = transfers(ev, "write_off")
    assert wo.amount == bust.written_off and h.engine.ledger.written_off == {"USD": wo.amount}
    assert h.total(INSURANCE_ACCOUNT, "USD") == 0
    h.check()


def test_a_liquidation_without_bids_stalls_and_resumes_when_they_come(h: RiskHarness) -> None:
    long_position(h)
    h.do(C.MassCancel("all", account=LP))
    h.buy(LP, "0.001", "90000")
    ev = h.sell(TAKER, "0.001", "90000", tif=IOC)  # the last bid is gone, the last trade at 90000
    assert stages(ev) == ["started", "stalled"]
    h.check()
    assert rejected(h.buy("m1", "0.001", "80000")).text == "account m1 is being liquidated"
    (w,) = h.do(C.Withdraw("w", "m1", "BTC", 1000))
    assert isinstance(w, CommandRejected) and w.text == "account m1 is being liquidated"
    ev = h.buy(LP, "10", "89000")  # a bid arrives: the liquidation goes on in the same command
    assert stages(ev)[-1] in ("restored", "bankrupt", "closed")
    assert h.margin.report("m1")["state"] == "normal"
    h.check()


def test_a_short_is_liquidated_by_buying_back(h: RiskHarness) -> None:
    h.sell("m1", "0.9", "99999.99", tif=IOC)
    assert h.engine.ledger.loans == {"m1": {"BTC": h.atoms("BTC", "0.9")}}
    ev: list[Any] = []
    for px in ("102000", "104000", "105000", "106000"):
        ev = move_to(h, px)
        if stages(ev):
            break
        h.check()
    assert stages(ev)[0] == "started"
    fills = [e for e in execs(ev, ExecKind.FILL) if e.info.account == "m1"]
    assert fills and all(e.info.side == BUY and e.info.liquidation for e in fills)
    assert h.engine.ledger.loan("m1", "BTC") < h.atoms("BTC", "0.9")
    h.check()


def test_every_margin_event_keeps_the_pool_balanced(h: RiskHarness) -> None:
    long_position(h)
    move_to(h, "80000")
    led = h.engine.ledger
    pool = led.accounts[LENDING_ACCOUNT]
    deposited = sum(r[3] for r in led.funding.values() if r[1] == LENDING_ACCOUNT and r[2] == "USD")
    assert pool.bal["USD"].avail + led.lent.get("USD", 0) + led.written_off.get("USD", 0) == deposited
    assert isinstance(h.do(C.Deposit("more", "m1", "USD", usd(h, "1")))[0], FundingPosted)
    h.check()


def test_execution_events_of_liquidations_carry_the_flag(h: RiskHarness) -> None:
    long_position(h)
    ev = move_to(h, "94000")
    new = [e for e in execs(ev, ExecKind.NEW) if e.info.liquidation]
    assert new and all(e.info.account == "m1" and e.info.cl_ord_id.startswith("LIQ-") for e in new)
    assert all(isinstance(e, Execution) for e in new)


def test_market_orders_are_margined_at_the_slippage_allowance_not_the_protection_cap(h: RiskHarness) -> None:
    """The touch is 100000.01: margined at its 5% cap (105000.01) a 10x account's market
    buy stopped at ~6.6x; at the 1% allowance (101000.01) 9x passes and 9.5x does not."""
    r = rejected(h.buy("m1", "0.95", ord_type=MARKET))
    assert r.code == Reject.MARGIN_INSUFFICIENT
    assert r.text == ("initial margin: equity 9049.9905 USD (open orders filled) is below the 9500 USD that 10x "
                      "needs for a gross position of 95000")
    ev = h.buy("m1", "0.9", ord_type=MARKET)
    (b,) = transfers(ev, "borrow")
    assert b.amount == usd(h, "84500.009")  # it still holds (and borrows) up to its cap, 105000.01 ...
    (f,) = [e for e in execs(ev, ExecKind.FILL) if e.info.account == "m1"]
    assert f.last_px == h.px("100000.01") and f.last_qty == h.lots("0.9")
    assert h.engine.ledger.loans == {"m1": {"USD": usd(h, "80000.009")}}  # ... and repays what the fill did not use
    rejected(h.sell("m1", "1", ord_type=MARKET))  # flipping to a 10x short: the same allowance
    h.check()
