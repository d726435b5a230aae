"""The mark price (the mid bounded by the last trade) and the margin book's state: its
liquidations survive a snapshot, and its marks are in its state hash."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue.factory import build_engine
from venue.margin import Liquidation
from venue.snapshot import dump_engine, load_engine
from venue.types import IOC

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from tests.venue.harness import rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.buy("m1", "0.95", "100000.01", tif=IOC)  # the last trade; liquidation price about 94,200
    return h


def requote(h: RiskHarness, bid: str, ask: str) -> list:
    """The LP moves its quotes without trading."""
    ev = h.do(C.MassCancel(f"rq{h.seq}", account=LP, symbol="BTC-USD"))
    ev += h.buy(LP, "1", bid)
    ev += h.sell(LP, "1", ask)
    return ev


def test_stale_quotes_far_from_the_tape_move_the_mark_one_percent_at_most(h: RiskHarness) -> None:
    mkt = h.engine.markets["BTC-USD"]
    ev = requote(h, "50000", "60000")  # mid 55000
    assert h.margin.mark(mkt) == h.px("99000.01")  # 1% under the last trade (100000.01), rounded up to a tick
    assert not [e for e in ev if isinstance(e, Liquidation)]  # m1 is not liquidated on quotes alone
    requote(h, "150000", "160000")
    assert h.margin.mark(mkt) == h.px("101000.01")  # 1% over it, rounded down
    requote(h, "99990", "100010")
    assert h.margin.mark(mkt) == h.px("100000")  # within the bound: the mid
    h.check()


def test_a_stalled_liquidation_survives_a_snapshot(h: RiskHarness) -> None:
    h.do(C.MassCancel("all", account=LP))
    h.buy(LP, "0.001", "90000")
    h.sell(TAKER, "0.001", "90000", tif=IOC)  # the last bid is gone: the liquidation stalls
    assert h.margin.liquidating == {"m1": "stalled"}
    e2 = load_engine(dump_engine(h.engine), build_engine())
    assert e2.extensions["margin"].liquidating == {"m1": "stalled"}
    assert e2.state_hashes() == h.engine.state_hashes()
    h.engine = e2
    assert rejected(h.buy("m1", "0.001", "80000")).text == "account m1 is being liquidated"
    ev = h.buy(LP, "10", "89000")  # a bid arrives: the restored engine goes on with it
    assert [e.stage for e in ev if isinstance(e, Liquidation)][-1] in ("restored", "bankrupt", "closed")
    h.check()


def test_the_marks_are_in_the_margin_state_hash(h: RiskHarness) -> None:
    book = h.margin
    assert book.marks.get("BTC-USD")
    before = book.state_hash()
    book.marks["BTC-USD"] += 1
    assert book.state_hash() != before
    book.marks["BTC-USD"] -= 1
    assert book.state_hash() == before
