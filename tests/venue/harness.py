"""A small driver for the engine in tests: stamps sequence numbers and times, seeds the
default assets and instruments, and turns Decimal strings into ticks and lots.

It drives only the public entry point :meth:`venue.engine.Engine.process`; reading state
back uses the engine's own query helpers (balances, the book's levels).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from venue import commands as C
from venue.engine import Engine
from venue.events import Execution, OrderRejected, Trade
from venue.genesis import genesis_commands
from venue.instruments import Instrument
from venue.types import BUY, GTC, LIMIT, SELL

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC, in ns
SYM = "BTC-USD"


class Harness:
    """One engine fed by hand. ``do`` processes one command at the next sequence number."""

    def __init__(self, genesis: bool = True) -> None:
        self.engine = Engine()
        self.ts = T0
        self.log: list[tuple[int, Any, list[Any]]] = []
        if genesis:
            for c in genesis_commands():
                self.ok(c)
            self.ok(C.CreateFirm("F1", "first firm"))
            self.ok(C.CreateFirm("F2", "second firm"))

    # -- driving ---------------------------------------------------------------------
    @property
    def seq(self) -> int:
        return self.engine.seq

    def do(self, cmd: Any, ts: int | None = None) -> list[Any]:
        if ts is not None:
            self.ts = ts
        events = self.engine.process(self.engine.seq + 1, self.ts, cmd)
        self.log.append((self.engine.seq, cmd, events))
        return events

    def ok(self, cmd: Any) -> list[Any]:
        """``do`` and insist it was not refused."""
        events = self.do(cmd)
        bad = [e for e in events if type(e).__name__ in ("CommandRejected", "OrderRejected", "CancelRejected")]
        assert not bad, bad
        return events

    def account(self, aid: str, firm: str = "F1", maker_ppm: int = 0, taker_ppm: int = 0, stp: int = 1,
                usd: str = "1000000", btc: str = "100", eth: str = "1000") -> str:
        self.ok(C.CreateAccount(aid, firm, 1, maker_ppm, taker_ppm, stp))
        for asset, amount in (("USD", usd), ("BTC", btc), ("ETH", eth)):
            if Decimal(amount):
                self.ok(C.Deposit(f"dep-{aid}-{asset}", aid, asset, self.atoms(asset, amount)))
        return aid

    # -- conversions -----------------------------------------------------------------
    def inst(self, symbol: str = SYM) -> Instrument:
        return self.engine.markets[symbol].inst

    def px(self, price: str, symbol: str = SYM) -> int:
        return self.inst(symbol).price_to_ticks(price)

    def lots(self, qty: str, symbol: str = SYM) -> int:
        return self.inst(symbol).qty_to_lots(qty)

    def atoms(self, asset: str, amount: str) -> int:
        return self.engine.ledger.assets[asset].to_atoms(amount)

    # -- orders ----------------------------------------------------------------------
    def order(self, account: str, side: int, qty: str, price: str | None = None, *, clid: str | None = None,
              ord_type: int = LIMIT, symbol: str = SYM, tif: int = GTC, stop: str | None = None,
              **kw: Any) -> list[Any]:
        c = C.NewOrder(
            account, clid or f"c{self.engine.seq + 1}", symbol, side, ord_type, self.lots(qty, symbol),
            price=self.px(price, symbol) if price is not None else 0,
            stop_px=self.px(stop, symbol) if stop is not None else 0, tif=tif, **kw)
        return self.do(c)

    def buy(self, account: str, qty: str, price: str | None = None, **kw: Any) -> list[Any]:
        return self.order(account, BUY, qty, price, **kw)

    def sell(self, account: str, qty: str, price: str | None = None, **kw: Any) -> list[Any]:
        return self.order(account, SELL, qty, price, **kw)

    # -- reading ---------------------------------------------------------------------
    def bal(self, account: str, asset: str) -> tuple[int, int]:
        b = self.engine.ledger.accounts[account].balance(asset)
        return b.avail, b.held

    def total(self, account: str, asset: str) -> int:
        a, h = self.bal(account, asset)
        return a + h

    def book(self, side: int, symbol: str = SYM) -> list[tuple[int, list[tuple[int, int, int]]]]:
        """[(price, [(order id, leaves, visible), ...in FIFO order]), ...] best level first."""
        book = self.engine.markets[symbol].book
        bs = book.bids if side == BUY else book.asks
        return [(lvl.price, [(o.id, o.leaves, o.visible) for o in lvl.live()]) for lvl in bs.sorted_levels()]

    def ids(self, side: int, symbol: str = SYM) -> list[int]:
        """Resting order ids of one side in priority order."""
        return [oid for _, orders in self.book(side, symbol) for oid, _, _ in orders]


# -- picking events apart ------------------------------------------------------------
def execs(events: list[Any], kind: int | None = None, order_id: int | None = None) -> list[Execution]:
    return [e for e in events if isinstance(e, Execution) and (kind is None or e.kind == kind)
            and (order_id is None or e.info.order_id == order_id)]


def trades(events: list[Any]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


def fills(events: list[Any]) -> list[tuple[int, int, int, int]]:
    """(maker id, taker id, price, qty) of each trade, in order."""
    return [(t.maker_order_id, t.taker_order_id, t.price, t.qty) for t in trades(events)]


def rejected(events: list[Any]) -> OrderRejected:
    (r,) = [e for e in events if isinstance(e, OrderRejected)]
    return r


def only(events: list[Any], cls: type) -> Any:
    found = [e for e in events if isinstance(e, cls)]
    assert len(found) == 1, events
    return found[0]


__all__ = ["Harness", "T0", "SYM", "execs", "trades", "fills", "rejected", "only", "BUY", "SELL"]
