"""Money held for a pending withdrawal is on its way out: it is no margin collateral from
the moment it is held, a hold is margin-checked like a withdrawal, and completing it
changes nothing the margin counts (so the insurance fund never pays for it)."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue.events import CommandRejected, FundingPosted
from venue.factory import build_engine
from venue.margin import INSURANCE_ACCOUNT, Liquidation
from venue.snapshot import dump_engine, load_engine
from venue.types import IOC, Reject

from tests.risk.helpers import RiskHarness
from tests.risk.market import move_to, open_market
from tests.venue.harness import execs, rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")  # 10,000 USD at 10x
    return h


def usd(h: RiskHarness, amount: str) -> int:
    return h.atoms("USD", amount)


def test_held_money_is_no_collateral_for_new_orders(h: RiskHarness) -> None:
    h.ok(C.HoldWithdrawal("wd1", "m1", "USD", usd(h, "9000")))
    assert h.margin.report("m1")["equity"] == usd(h, "1000")
    r = rejected(h.buy("m1", "0.95", "100000.01", tif=IOC))
    assert r.code == Reject.MARGIN_INSUFFICIENT
    execs(h.buy("m1", "0.09", "100000.01", tif=IOC))  # 10x the 1,000 left is fine
    h.check()


def test_completing_a_held_withdrawal_costs_the_insurance_fund_nothing(h: RiskHarness) -> None:
    """The audit's case: hold 9,000 of 10,000, buy at 10x on the 10,000, let the price fall
    a little, complete the withdrawal: the fund paid 1,850 for it."""
    h.ok(C.HoldWithdrawal("wd1", "m1", "USD", usd(h, "9000")))
    h.buy("m1", "0.95", "100000.01", tif=IOC)
    move_to(h, "97000")
    fund = h.total(INSURANCE_ACCOUNT, "USD")
    before = h.margin.report("m1")
    ev = h.do(C.CompleteWithdrawal("wd1"))
    assert not [e for e in ev if isinstance(e, Liquidation)]
    after = h.margin.report("m1")
    assert (after["equity"], after["gross"]) == (before["equity"], before["gross"])
    assert h.total(INSURANCE_ACCOUNT, "USD") == fund
    h.check()


def test_a_hold_that_would_break_the_initial_margin_is_refused_like_a_withdrawal(h: RiskHarness) -> None:
    h.sell("m1", "0.5", "99999.99", tif=IOC)  # short 50,000 of BTC: 5,000 of initial margin
    (w,) = h.do(C.Withdraw("w1", "m1", "USD", usd(h, "6000")))
    (hold,) = h.do(C.HoldWithdrawal("w2", "m1", "USD", usd(h, "6000")))
    assert isinstance(w, CommandRejected) and isinstance(hold, CommandRejected)
    assert hold.code == w.code == Reject.MARGIN_INSUFFICIENT
    assert hold.text == w.text == "withdrawing 6000 USD would leave equity below the initial margin of 5000 USD"
    # two holds that each fit but not together: the second one sees the first
    assert isinstance(h.do(C.HoldWithdrawal("w3", "m1", "USD", usd(h, "3000")))[0], FundingPosted)
    (second,) = h.do(C.HoldWithdrawal("w4", "m1", "USD", usd(h, "3000")))
    assert isinstance(second, CommandRejected) and second.code == Reject.MARGIN_INSUFFICIENT
    h.check()


def test_held_coins_are_neither_collateral_nor_position(h: RiskHarness) -> None:
    h.ok(C.Deposit("m1-btc", "m1", "BTC", h.atoms("BTC", "0.5")))
    assert h.margin.report("m1")["equity"] == usd(h, "60000")
    h.ok(C.HoldWithdrawal("wd2", "m1", "BTC", h.atoms("BTC", "0.5")))
    r = h.margin.report("m1")
    assert (r["equity"], r["gross"]) == (usd(h, "10000"), 0)
    btc = next(a for a in r["assets"] if a["asset"] == "BTC")
    assert (btc["held"], btc["withdrawing"], btc["net"]) == (h.atoms("BTC", "0.5"), h.atoms("BTC", "0.5"), 0)
    assert rejected(h.buy("m1", "1.4", "100000.01", tif=IOC)).code == Reject.MARGIN_INSUFFICIENT
    # nor can a reduce-only sell count them as a long to reduce
    assert rejected(h.sell("m1", "0.5", "100000", reduce_only=True)).code == Reject.REDUCE_ONLY
    h.check()


def test_a_released_hold_is_collateral_again(h: RiskHarness) -> None:
    h.ok(C.HoldWithdrawal("wd1", "m1", "USD", usd(h, "9000")))
    h.ok(C.ReleaseWithdrawal("wd1"))
    assert h.engine.ledger.withdrawing == {}
    assert h.margin.report("m1")["equity"] == usd(h, "10000")
    execs(h.buy("m1", "0.95", "100000.01", tif=IOC))
    h.check()


def test_the_ledger_indexes_pending_withdrawals_in_its_hash_and_snapshots(h: RiskHarness) -> None:
    led = h.engine.ledger
    h.ok(C.HoldWithdrawal("a", "m1", "USD", usd(h, "100")))
    h.ok(C.HoldWithdrawal("b", "m1", "USD", usd(h, "200")))
    h.ok(C.HoldWithdrawal("c", "m1", "USD", usd(h, "300")))
    h.ok(C.CompleteWithdrawal("a"))
    h.ok(C.ReleaseWithdrawal("b"))
    assert led.withdrawing == {"m1": {"USD": usd(h, "300")}}
    assert led.pending_withdrawal("m1", "USD") == usd(h, "300") and led.pending_withdrawal("m1", "BTC") == 0
    hashed = led.state_hash()
    led.withdrawing["m1"]["USD"] += 1  # the index is part of the ledger's state hash
    assert led.state_hash() != hashed
    led.withdrawing["m1"]["USD"] -= 1
    e2 = load_engine(dump_engine(h.engine), build_engine())  # a snapshot rebuilds it from the funding records
    assert e2.ledger.withdrawing == led.withdrawing
    assert e2.state_hashes() == h.engine.state_hashes()
    e2.check_invariants()
    h.check()
