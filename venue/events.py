"""Events: what the engine says happened, in order, for each command.

Consumers (order-entry and drop-copy sessions, market data, the SQL store) see the same
immutable events. An :class:`Execution` is self-contained: it carries the order's static
attributes (:class:`OrderInfo`, shared, never copied) and the order's dynamic state after
the event, so a consumer never has to keep its own copy of an order to report on it.

Identifiers derive from the sequence number: ExecID is ``{seq}-{exec_n}`` and TradeID
``{seq}-{trade_n}``; the order id is the sequence number of the NewOrder that created it.
"""
from __future__ import annotations

from typing import Any, NamedTuple


class OrderInfo(NamedTuple):
    """The static attributes of an order. Replaced (not mutated) on amend."""

    order_id: int
    account: str
    firm: str
    symbol: str
    side: int
    ord_type: int
    tif: int
    price: int  # ticks (the cap for market orders)
    stop_px: int
    qty: int  # lots, total
    display_qty: int
    cl_ord_id: str
    expire_ts: int
    stp: int
    post_only: bool
    session: str
    entered_ts: int
    reduce_only: bool = False
    liquidation: bool = False


class Execution(NamedTuple):
    """An execution report's worth of facts about one order."""

    seq: int
    ts: int
    exec_n: int
    kind: int  # ExecKind
    info: OrderInfo
    status: int  # OrderStatus after the event
    cl_ord_id: str  # of the request that caused it (equals info.cl_ord_id unless cancel)
    orig_cl_ord_id: str
    cum_qty: int
    leaves_qty: int
    cum_notional: int  # sum of ticks x lots of the fills (for AvgPx)
    cum_fee: int  # quote atoms
    last_px: int = 0
    last_qty: int = 0
    fee: int = 0  # of this fill, quote atoms; negative for a rebate
    liquidity: int = 0  # Liquidity
    trade_n: int = 0
    reason: int = -1  # CancelReason / Reject for cancels, restatements
    text: str = ""
    book: int = 0  # BookEffect
    visible: int = 0  # lots shown in the book after the event


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


class Trade(NamedTuple):
    seq: int
    ts: int
    trade_n: int
    symbol: str
    price: int
    qty: int
    aggressor_side: int
    maker_order_id: int
    taker_order_id: int
    maker_account: str
    taker_account: str
    maker_fee: int
    taker_fee: int
    liquidation: bool = False


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
