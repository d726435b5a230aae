"""A liquidity provider that moves a market's price where a test wants it, through the
engine's public entry point only (orders, cancels and a small trade)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from venue import commands as C
from venue.types import IOC

from tests.risk.helpers import RiskHarness

LP = "lp"
TAKER = "tk"


def open_market(h: RiskHarness, firm: str = "F2") -> None:
    """Two cash accounts of ``firm`` with deep pockets: the liquidity provider and a taker."""
    for aid in (LP, TAKER):
        h.account(aid, firm, usd="1000000000", btc="100000", eth="1000000")


def move_to(h: RiskHarness, price: str, symbol: str = "BTC-USD", depth: str = "50") -> list[Any]:
    """Quote ``depth`` a tick either side of ``price`` and trade a lot just below it: the
    last trade is ``price`` - 1 tick and the mid ``price``, so the mark is ``price``.
    Returns every event of the commands it ran."""
    inst = h.inst(symbol)
    tick = inst.tick_size
    p = Decimal(price)
    out: list[Any] = []
    ticks = inst.price_to_ticks(p - tick)
    most = min(inst.max_qty, inst.max_notional // ((ticks + 2) * inst.notional_mult))  # the instrument's bounds
    size = str(inst.lots_to_qty(min(inst.qty_to_lots(depth), most)))
    out += h.do(C.MassCancel(f"mv{h.seq}", account=LP, symbol=symbol))
    out += h.order(LP, 1, size, str(p - tick), symbol=symbol)
    out += h.order(LP, 2, size, str(p + tick), symbol=symbol)
    lots = max(inst.min_qty, -(-inst.min_notional // (ticks * inst.notional_mult)))
    out += h.order(TAKER, 2, str(inst.lots_to_qty(lots)), str(p - tick), symbol=symbol, tif=IOC)
    return out
