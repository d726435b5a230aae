"""Events: what the engine says happened, in order, for each command.

Consumers (order-entry and drop-copy sessions, market data, the SQL store) see the same
immutable events. An :class:`Execution` is self-contained: it carries the order's static
attributes (:class:`OrderInfo`, shared, never copied) and the order's dynamic state after
the event, so a consumer never has to keep its own copy of an order to report on it.

Identifiers derive from the sequence number: ExecID is ``{seq}-{exec_n}`` and TradeID
``{seq}-{trade_n}``; the order id is the sequence number of the NewOrder that created it.

:class:`OrderInfo`, :class:`Execution` and :class:`Trade`, the events of the order flow,
are built several times per command, so they are not NamedTuples but small classes
with read-only attributes that compare, hash and print like the NamedTuples they
replaced (``OrderInfo`` also iterates over its fields and has ``_replace``). When the
engine is compiled (mypyc, see ``setup.py``) they are native classes that the cyclic
garbage collector does not track: they hold only numbers, strings and an ``OrderInfo``,
so they can be part of no reference cycle. Building and freeing one then costs a
fraction of a NamedTuple's, and the collector never visits the OrderInfo that every
open and recently closed order keeps. The other events are NamedTuples.
"""
from __future__ import annotations

from typing import Any, ClassVar, Final, Iterator, NamedTuple

from mypy_extensions import mypyc_attr


@mypyc_attr(acyclic=True)
class Record:
    """Value semantics for the classes below, from their ``_fields``."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, f) for f in self._fields])

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={v!r}' for f, v in zip(self._fields, self._values()))})"

    def _replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (field name -> value), as ``NamedTuple._replace``."""
        return type(self)(**(dict(zip(self._fields, self._values())) | changes))


_ORDER_INFO: Final = ("order_id", "account", "firm", "symbol", "side", "ord_type", "tif", "price", "stop_px", "qty",
                      "display_qty", "cl_ord_id", "expire_ts", "stp", "post_only", "session", "entered_ts",
                      "reduce_only", "liquidation")


@mypyc_attr(acyclic=True)
class OrderInfo(Record):
    """The static attributes of an order. Replaced (not mutated) on amend."""

    __slots__ = _ORDER_INFO
    _fields: ClassVar[tuple[str, ...]] = _ORDER_INFO

    def __init__(self, order_id: int, account: str, firm: str, symbol: str, side: int, ord_type: int, tif: int,
                 price: int, stop_px: int, qty: int, display_qty: int, cl_ord_id: str, expire_ts: int, stp: int,
                 post_only: bool, session: str, entered_ts: int, reduce_only: bool = False,
                 liquidation: bool = False) -> None:
        self.order_id: Final = order_id
        self.account: Final = account
        self.firm: Final = firm
        self.symbol: Final = symbol
        self.side: Final = side
        self.ord_type: Final = ord_type
        self.tif: Final = tif
        self.price: Final = price  # ticks (the cap for market orders)
        self.stop_px: Final = stop_px
        self.qty: Final = qty  # lots, total
        self.display_qty: Final = display_qty
        self.cl_ord_id: Final = cl_ord_id
        self.expire_ts: Final = expire_ts
        self.stp: Final = stp
        self.post_only: Final = post_only
        self.session: Final = session
        self.entered_ts: Final = entered_ts
        self.reduce_only: Final = reduce_only
        self.liquidation: Final = liquidation

    def __iter__(self) -> Iterator[Any]:  # list(info): how snapshots store it
        return iter(self._values())


_EXECUTION: Final = ("seq", "ts", "exec_n", "kind", "info", "status", "cl_ord_id", "orig_cl_ord_id", "cum_qty",
                     "leaves_qty", "cum_notional", "cum_fee", "last_px", "last_qty", "fee", "liquidity", "trade_n",
                     "reason", "text", "book", "visible")


@mypyc_attr(acyclic=True)
class Execution(Record):
    """An execution report's worth of facts about one order."""

    __slots__ = _EXECUTION
    _fields: ClassVar[tuple[str, ...]] = _EXECUTION

    def __init__(self, seq: int, ts: int, exec_n: int, kind: int, info: OrderInfo, status: int, cl_ord_id: str,
                 orig_cl_ord_id: str, cum_qty: int, leaves_qty: int, cum_notional: int, cum_fee: int,
                 last_px: int = 0, last_qty: int = 0, fee: int = 0, liquidity: int = 0, trade_n: int = 0,
                 reason: int = -1, text: str = "", book: int = 0, visible: int = 0) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.exec_n: Final = exec_n
        self.kind: Final = kind  # ExecKind
        self.info: Final = info
        self.status: Final = status  # OrderStatus after the event
        self.cl_ord_id: Final = cl_ord_id  # of the request that caused it (equals info.cl_ord_id unless cancel)
        self.orig_cl_ord_id: Final = orig_cl_ord_id
        self.cum_qty: Final = cum_qty
        self.leaves_qty: Final = leaves_qty
        self.cum_notional: Final = cum_notional  # sum of ticks x lots of the fills (for AvgPx)
        self.cum_fee: Final = cum_fee  # quote atoms
        self.last_px: Final = last_px
        self.last_qty: Final = last_qty
        self.fee: Final = fee  # of this fill, quote atoms; negative for a rebate
        self.liquidity: Final = liquidity  # Liquidity
        self.trade_n: Final = trade_n
        self.reason: Final = reason  # CancelReason / Reject for cancels, restatements
        self.text: Final = text
        self.book: Final = book  # BookEffect
        self.visible: Final = visible  # lots shown in the book after the event


class OrderRejected(NamedTuple):
    seq: int
    ts: int
    exec_n: int
    cmd: Any  # the NewOrder
    code: int  # Reject
    text: str
    firm: str = ""


class CancelRejected(NamedTuple):
    """A cancel or amend that could not be done; the order (if any) is unchanged."""

    seq: int
    ts: int
    cmd: Any  # CancelOrder or AmendOrder
    code: int
    text: str
    order_id: int = 0
    status: int = -1  # the order's OrderStatus, -1 if unknown
    info: OrderInfo | None = None


_TRADE: Final = ("seq", "ts", "trade_n", "symbol", "price", "qty", "aggressor_side", "maker_order_id",
                 "taker_order_id", "maker_account", "taker_account", "maker_fee", "taker_fee", "liquidation")


@mypyc_attr(acyclic=True)
class Trade(Record):
    __slots__ = _TRADE
    _fields: ClassVar[tuple[str, ...]] = _TRADE

    def __init__(self, seq: int, ts: int, trade_n: int, symbol: str, price: int, qty: int, aggressor_side: int,
                 maker_order_id: int, taker_order_id: int, maker_account: str, taker_account: str, maker_fee: int,
                 taker_fee: int, liquidation: bool = False) -> None:
        self.seq: Final = seq
        self.ts: Final = ts
        self.trade_n: Final = trade_n
        self.symbol: Final = symbol
        self.price: Final = price
        self.qty: Final = qty
        self.aggressor_side: Final = aggressor_side
        self.maker_order_id: Final = maker_order_id
        self.taker_order_id: Final = taker_order_id
        self.maker_account: Final = maker_account
        self.taker_account: Final = taker_account
        self.maker_fee: Final = maker_fee
        self.taker_fee: Final = taker_fee
        self.liquidation: Final = liquidation


class MassCancelReport(NamedTuple):
    seq: int
    ts: int
    cmd: Any  # the MassCancel
    cancelled: int
    code: int = 0  # 0 = done, else Reject
    text: str = ""


class InstrumentStatus(NamedTuple):
    seq: int
    ts: int
    symbol: str
    halted: bool
    reason: str = ""


class FundingPosted(NamedTuple):
    seq: int
    ts: int
    cmd: Any
    kind: str  # deposit, withdraw, hold, release, complete
    funding_id: str
    account: str
    asset: str
    amount: int


class AdminApplied(NamedTuple):
    """An administrative command took effect (firm/account created, fees set, ...)."""

    seq: int
    ts: int
    cmd: Any


class CommandRejected(NamedTuple):
    """An administrative or funding command was refused; nothing changed."""

    seq: int
    ts: int
    cmd: Any
    code: int
    text: str
