"""Reads of the store for operators and reports, as plain dicts with exact decimal strings.

Prices and quantities are converted with the instrument's tick and lot sizes, amounts
with the asset's decimals, all from the store's own tables (so a report runs on the
database alone). Amounts are summed in Python: exact on every backend.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

from sqlalchemy import or_, select

from venue.store.models import EXTERNAL, AssetRow, AuditRow, InstrumentRow, OrderRow, PostingRow, TradeRow
from venue.types import OrderStatus, Side

PAGE = 5000


class Units:
    """Tick, lot and atom sizes from the store."""

    def __init__(self, store: Any) -> None:
        with store.db.connect() as c:
            self.insts = {r.symbol: r for r in c.execute(select(InstrumentRow))}
            self.assets = {r.code: r.decimals for r in c.execute(select(AssetRow.code, AssetRow.decimals))}

    def px(self, symbol: str, ticks: int) -> str:
        i = self.insts[symbol]
        return _fmt(Decimal(i.tick_size) * ticks)

    def qty(self, symbol: str, lots: int) -> str:
        return _fmt(Decimal(self.insts[symbol].lot_size) * lots)

    def amount(self, asset: str, atoms: int) -> str:
        return _fmt(Decimal(atoms).scaleb(-self.assets.get(asset, 0)))


def _fmt(d: Decimal) -> str:
    s = format(d, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def iter_trades(store: Any, symbol: str = "", account: str = "", ts_from: int = 0, ts_to: int = 0,
                limit: int = 0, newest_first: bool = False) -> Iterator[dict[str, Any]]:
    u = Units(store)
    q = select(TradeRow)
    if symbol:
        q = q.where(TradeRow.symbol == symbol)
    if account:
        q = q.where(or_(TradeRow.maker_account == account, TradeRow.taker_account == account))
    if ts_from:
        q = q.where(TradeRow.ts >= ts_from)
    if ts_to:
        q = q.where(TradeRow.ts < ts_to)
    order = (TradeRow.seq.desc(), TradeRow.trade_n.desc()) if newest_first else (TradeRow.seq, TradeRow.trade_n)
    q = q.order_by(*order)
    if limit:
        q = q.limit(limit)
    with store.db.connect() as c:
        for t in c.execution_options(yield_per=PAGE).execute(q):
            quote = u.insts[t.symbol].quote
            yield {
                "trade_id": f"{t.seq}-{t.trade_n}", "ts": t.ts, "symbol": t.symbol, "price": u.px(t.symbol, t.price),
                "qty": u.qty(t.symbol, t.qty), "aggressor": Side(t.aggressor_side).name.lower(),
                "maker_account": t.maker_account, "taker_account": t.taker_account,
                "maker_order_id": t.maker_order_id, "taker_order_id": t.taker_order_id,
                "maker_fee": u.amount(quote, t.maker_fee), "taker_fee": u.amount(quote, t.taker_fee),
                "fee_asset": quote,
            }


def orders(store: Any, account: str = "", symbol: str = "", limit: int = 100) -> list[dict[str, Any]]:
    u = Units(store)
    q = select(OrderRow)
    if account:
        q = q.where(OrderRow.account == account)
    if symbol:
        q = q.where(OrderRow.symbol == symbol)
    q = q.order_by(OrderRow.order_id.desc()).limit(limit)
    with store.db.connect() as c:
        return [{
            "order_id": o.order_id, "account": o.account, "symbol": o.symbol, "side": Side(o.side).name.lower(),
            "price": u.px(o.symbol, o.price), "qty": u.qty(o.symbol, o.qty), "cum_qty": u.qty(o.symbol, o.cum_qty),
            "leaves_qty": u.qty(o.symbol, o.leaves_qty), "status": OrderStatus(o.status).name.lower(),
            "cl_ord_id": o.cl_ord_id, "entered_ts": o.entered_ts, "updated_seq": o.updated_seq,
        } for o in c.execute(q)]


def audit(store: Any, operator: str = "", limit: int = 100) -> list[dict[str, Any]]:
    q = select(AuditRow)
    if operator:
        q = q.where(AuditRow.operator == operator)
    q = q.order_by(AuditRow.seq.desc()).limit(limit)
    with store.db.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]


def balances(store: Any, ts_from: int = 0, ts_to: int = 0, account: str = "") -> list[dict[str, Any]]:
    """Per account and asset: opening total before ``ts_from``, credits and debits in
    [ts_from, ts_to), closing total (ts_to = 0: up to now). The fee account included,
    the outside world (EXTERNAL) not."""
    u = Units(store)
    q = select(PostingRow.account, PostingRow.asset, PostingRow.amount, PostingRow.ts).where(PostingRow.account != EXTERNAL)
    if account:
        q = q.where(PostingRow.account == account)
    if ts_to:
        q = q.where(PostingRow.ts < ts_to)
    sums: dict[tuple[str, str], list[int]] = {}
    with store.db.connect() as c:
        for acct, asset, amount, ts in c.execution_options(yield_per=PAGE).execute(q):
            s = sums.setdefault((acct, asset), [0, 0, 0])
            if ts < ts_from:
                s[0] += amount
            elif amount >= 0:
                s[1] += amount
            else:
                s[2] += amount
    out = []
    for (acct, asset), (opening, credits, debits) in sorted(sums.items()):
        out.append({"account": acct, "asset": asset, "opening": u.amount(asset, opening),
                    "credits": u.amount(asset, credits), "debits": u.amount(asset, -debits),
                    "closing": u.amount(asset, opening + credits + debits)})
    return out
