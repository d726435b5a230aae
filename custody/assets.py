"""What custody can hold: on-chain assets and how their amounts meet the ledger's atoms.

An on-chain asset has a symbol (ETH, USDC, BTC), a chain, its own decimals (wei, token
units, satoshi) and the ledger asset it is credited to (USDC is credited to the venue's
USD, a token unit being 100 USD atoms). A ledger amount converts to the chain only when
it is a whole number of chain units: a withdrawal of a fraction of a token unit is
refused, never rounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from custody.errors import ConfigError, InvalidInput
from venue.instruments import to_decimal

ETHEREUM = "ethereum"
BITCOIN = "bitcoin"


@dataclass(frozen=True)
class ChainAsset:
    symbol: str  # on-chain name, custody's key for the asset
    chain: str  # ETHEREUM | BITCOIN
    chain_decimals: int
    ledger_asset: str  # the venue's asset code it is credited to
    ledger_decimals: int
    token: str = ""  # ERC-20 contract address (Ethereum tokens only)

    def __post_init__(self) -> None:
        if self.ledger_decimals < self.chain_decimals:
            raise ConfigError(f"{self.symbol}: the ledger asset {self.ledger_asset} has fewer decimals "
                              f"({self.ledger_decimals}) than the chain ({self.chain_decimals}); deposits would lose dust")

    @property
    def native(self) -> bool:
        return not self.token

    @property
    def scale(self) -> int:
        return 10 ** (self.ledger_decimals - self.chain_decimals)

    def to_ledger(self, chain_units: int) -> int:
        return chain_units * self.scale

    def to_chain(self, atoms: int) -> int:
        if atoms % self.scale:
            raise InvalidInput("precision", f"{self.symbol} amounts are whole multiples of 1e-{self.chain_decimals}")
        return atoms // self.scale

    def parse(self, amount: Decimal | str | int) -> int:
        """A user's amount in the asset's units (``"1.5"`` ETH) as chain units, exactly."""
        try:
            d = to_decimal(amount, f"{self.symbol} amount")
        except (TypeError, ValueError) as e:
            raise InvalidInput("amount", str(e)) from e
        units = d.scaleb(self.chain_decimals)
        if units != units.to_integral_value():
            raise InvalidInput("precision", f"{self.symbol} amount {d} has more than {self.chain_decimals} decimals")
        if units <= 0:
            raise InvalidInput("amount", f"{self.symbol} amount must be positive")
        return int(units)

    def fmt(self, chain_units: int) -> str:
        s = format(Decimal(chain_units).scaleb(-self.chain_decimals), "f")
        return s.rstrip("0").rstrip(".") if "." in s else s
