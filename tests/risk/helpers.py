"""The venue's engine as the venue builds it (risk and margin installed), driven by hand
through :class:`tests.venue.harness.Harness`, plus the pieces the risk tests share."""
from __future__ import annotations

from typing import Any

from venue import commands as C
from venue.events import CommandRejected, OrderRejected
from venue.factory import build_engine
from venue.genesis import genesis_commands
from venue.margin import INSURANCE_ACCOUNT, LENDING_ACCOUNT, MarginBook
from venue.risk import RiskBook
from venue.types import AccountKind

from tests.venue.harness import Harness


class RiskHarness(Harness):
    """A Harness whose engine is ``venue.factory.build_engine()``."""

    def __init__(self, pool: bool = True) -> None:
        super().__init__(genesis=False)
        self.engine = build_engine()
        for c in genesis_commands():
            self.ok(c)
        self.ok(C.CreateFirm("F1", "first firm"))
        self.ok(C.CreateFirm("F2", "second firm"))
        if pool:
            self.fund_pool()

    @property
    def risk(self) -> RiskBook:
        return self.engine.extensions["risk"]

    @property
    def margin(self) -> MarginBook:
        return self.engine.extensions["margin"]

    def fund_pool(self, usd: str = "100000000", btc: str = "1000", eth: str = "10000", insurance: str = "1000000") -> None:
        for asset, amount in (("USD", usd), ("BTC", btc), ("ETH", eth)):
            self.ok(C.Deposit(f"pool-{asset}-{self.seq}", LENDING_ACCOUNT, asset, self.atoms(asset, amount)))
        self.ok(C.Deposit(f"ins-{self.seq}", INSURANCE_ACCOUNT, "USD", self.atoms("USD", insurance)))

    def margin_account(self, aid: str, firm: str = "F1", leverage: int = 10, usd: str = "10000",
                       taker_ppm: int = 0, maker_ppm: int = 0) -> str:
        self.ok(C.CreateAccount(aid, firm, int(AccountKind.MARGIN), maker_ppm, taker_ppm, 1, leverage))
        if usd != "0":
            self.ok(C.Deposit(f"dep-{aid}-USD", aid, "USD", self.atoms("USD", usd)))
        return aid

    def refused(self, events: list[Any]) -> OrderRejected | CommandRejected:
        bad = [e for e in events if isinstance(e, (OrderRejected, CommandRejected))]
        assert len(bad) == 1, events
        return bad[0]

    def check(self) -> None:
        self.engine.check_invariants()
