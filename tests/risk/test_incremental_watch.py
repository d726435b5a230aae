"""The margin hook after every command is incremental: an open loan somewhere does not
make every command value every borrower. Only the accounts a command touched, and the
borrowers exposed to a market whose mark moved far enough to matter, are valued; and
that never misses an account falling below maintenance."""
from __future__ import annotations

from typing import Any

import pytest

from venue import commands as C
from venue.factory import build_engine
from venue.margin import Liquidation
from venue.snapshot import dump_engine, load_engine
from venue.types import BUY, IOC

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, move_to, open_market


class Counting:
    """Counts the margin book's full valuations (``health``) of each account from now on."""

    def __init__(self, h: RiskHarness) -> None:
        self.book = h.margin
        self.base = dict(self.book.valuations)

    @property
    def calls(self) -> dict[str, int]:
        base = self.base
        return {a: n - base.get(a, 0) for a, n in self.book.valuations.items() if n != base.get(a, 0)}


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    move_to(h, "3000", "ETH-USD")
    return h


def churn(h: RiskHarness, n: int, symbol: str = "BTC-USD", price: str = "99000") -> None:
    """Orders that change a book (rest and cancel) without trading."""
    for i in range(n):
        h.order(LP, BUY, "0.01", price, symbol=symbol, clid=f"ch{h.seq}")
        h.do(C.MassCancel(f"mc{h.seq}", account=LP, symbol=symbol, side=BUY))


def test_a_borrower_with_no_position_in_a_market_is_not_valued_as_its_book_changes(h: RiskHarness) -> None:
    h.margin_account("m1")
    h.buy("m1", "0.5", "50000")  # a resting bid paid with a USD loan: it holds no BTC yet
    assert h.engine.ledger.loans
    count = Counting(h)
    churn(h, 20)
    assert count.calls == {}
    h.check()


def test_a_borrower_far_from_maintenance_is_not_valued_on_small_moves(h: RiskHarness) -> None:
    h.margin_account("m1", leverage=2)
    h.buy("m1", "0.1", "100000.01", tif=IOC)  # 10,000 of BTC on 10,000 of collateral: far from maintenance
    count = Counting(h)
    for px in ("100100", "99900", "100050", "99950"):
        move_to(h, px)
    assert count.calls.get("m1", 0) == 0
    h.check()


def test_the_cushion_never_hides_a_fall_below_maintenance(h: RiskHarness) -> None:
    """Many small moves, each within the cushion of the last valuation but together
    beyond it: the account is valued again in time and liquidated."""
    h.margin_account("m1")
    h.buy("m1", "0.95", "100000.01", tif=IOC)
    count = Counting(h)
    seen: list[str] = []
    px = 100000
    while not seen and px > 90000:
        px -= 100
        for e in move_to(h, str(px)):
            if isinstance(e, Liquidation) and e.account == "m1":
                seen.append(e.stage)
        h.check()  # (includes: no borrower below maintenance unless being liquidated)
    assert seen and seen[0] == "started"
    assert px >= 94000  # at the first mark below the liquidation price (about 94,200)
    assert 0 < count.calls["m1"]
    h.check()


def test_the_exposure_index_is_rebuilt_from_a_snapshot(h: RiskHarness) -> None:
    h.margin_account("m1")
    h.margin_account("m2")
    h.buy("m1", "0.95", "100000.01", tif=IOC)
    h.sell("m2", "2", "2999.99", symbol="ETH-USD", tif=IOC)
    book = h.margin
    assert book._exposed == {"BTC": {"m1"}, "ETH": {"m2"}}
    e2 = load_engine(dump_engine(h.engine), build_engine())
    assert e2.extensions["margin"]._exposed == book._exposed
    h.engine = e2
    ev = move_to(h, "94000")  # the restored engine still watches m1
    assert [e.stage for e in ev if isinstance(e, Liquidation)][:1] == ["started"]
    h.check()
