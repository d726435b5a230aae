"""The live order and its state machine.

An :class:`Order` is the engine's private, mutable record of an open order; the world
sees it only through :class:`venue.events.Execution` events. Its status changes only
through :meth:`Order.apply`, checked against the explicit transition table below: a
transition the table does not allow is a bug and raises :class:`EngineBug`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from mypy_extensions import mypyc_attr

from venue.errors import EngineBug
from venue.events import OrderInfo
from venue.types import OrderStatus

if TYPE_CHECKING:
    from venue.book import Level
    from venue.engine import Market
    from venue.ledger import Account, Balance

# Triggers of the state machine.
T_PARTIAL_FILL: Final = 0
T_FILL: Final = 1
T_CANCEL: Final = 2
T_EXPIRE: Final = 3
T_REPLACE: Final = 4
T_RESTATE: Final = 5
T_TRIGGER: Final = 6
TRIGGER_NAMES = ("partial_fill", "fill", "cancel", "expire", "replace", "restate", "trigger")

_W, _N, _P, _F, _C, _E = 0, 1, 2, 3, 4, 5  # OrderStatus values

TRANSITIONS: dict[tuple[int, int], int] = {
    (_W, T_TRIGGER): _N,
    (_W, T_CANCEL): _C,
    (_W, T_EXPIRE): _E,
    (_W, T_REPLACE): _W,
    (_N, T_PARTIAL_FILL): _P,
    (_N, T_FILL): _F,
    (_N, T_CANCEL): _C,
    (_N, T_EXPIRE): _E,
    (_N, T_REPLACE): _N,
    (_N, T_RESTATE): _N,
    (_P, T_PARTIAL_FILL): _P,
    (_P, T_FILL): _F,
    (_P, T_CANCEL): _C,
    (_P, T_EXPIRE): _E,
    (_P, T_REPLACE): _P,
    (_P, T_RESTATE): _P,
}

# The same table as a list of lists for the hot path: _TABLE[status][trigger] -> status | -1
_TABLE: Final[list[list[int]]] = [[TRANSITIONS.get((s, t), -1) for t in range(7)] for s in range(6)]


@mypyc_attr(acyclic=True)
class Order:
    """An open order. Quantities in lots, prices in ticks, money in atoms.

    Compiled (mypyc, see setup.py), orders are invisible to the cyclic garbage collector:
    there are tens of thousands of them and the engine frees them by reference counting.
    An open order is part of reference cycles (it and its price level's queue, it and its
    account's maps); they come apart when the order closes (it leaves the queue and the
    maps) or, for an engine dropped with orders open, in ``Engine.__del__``.
    """

    __slots__ = (
        "id", "acct", "info", "side", "ord_type", "tif", "price", "stop_px", "qty",
        "leaves", "cum", "visible", "display", "cum_notional", "cum_fee", "status",
        "held", "maker_ppm", "taker_ppm", "stp", "post_only", "cl_ord_id", "level",
        "seq", "expire_ts", "reduce_only", "liquidation", "hold_b", "recv_b", "mkt", "qpos", "key",
    )

    id: int
    acct: Account
    info: OrderInfo
    side: int
    ord_type: int
    tif: int
    price: int
    stop_px: int
    qty: int
    leaves: int
    cum: int
    visible: int
    display: int
    cum_notional: int
    cum_fee: int
    status: int
    held: int
    maker_ppm: int
    taker_ppm: int
    stp: int
    post_only: bool
    cl_ord_id: str
    level: Level | None
    seq: int
    expire_ts: int
    reduce_only: bool
    liquidation: bool
    hold_b: Balance
    recv_b: Balance
    mkt: Market
    qpos: int
    key: Any

    def __init__(self, oid: int, acct: Account, info: OrderInfo, side: int, ord_type: int, tif: int,
                 price: int, stop_px: int, qty: int, display: int, status: int, stp: int,
                 maker_ppm: int, taker_ppm: int) -> None:
        self.id = oid
        # The id as one int object, the key of the order in every dict that holds it. (When
        # compiled, ``id`` is stored unboxed and each use as a key would box it anew; a dict
        # finds the very object it holds by identity, a new one only by comparing values.)
        self.key = oid
        self.acct = acct
        self.info = info
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.price = price
        self.stop_px = stop_px
        self.qty = qty
        self.leaves = qty
        self.cum = 0
        self.display = display
        self.visible = 0  # shown in the book; 0 while not resting
        self.cum_notional = 0
        self.cum_fee = 0
        self.status = status
        self.held = 0
        self.maker_ppm = maker_ppm
        self.taker_ppm = taker_ppm
        self.stp = stp
        self.post_only = info.post_only
        self.cl_ord_id = info.cl_ord_id
        self.level = None  # the book level it rests in, None when not resting
        self.seq = oid  # time priority: the sequence number of its last (re)entry
        self.expire_ts = info.expire_ts
        self.reduce_only = info.reduce_only
        self.liquidation = info.liquidation
        # hold_b (the Balance its hold sits in: quote for buys, base for sells), recv_b (the
        # Balance its fills pay into) and mkt (its instrument's Market) are set by the engine.
        self.qpos = 0  # place in its level's queue: the book's stamp when it (re)joined the back

    def apply(self, trigger: int) -> int:
        new = _TABLE[self.status][trigger]
        if new < 0:
            raise EngineBug(
                f"order {self.id}: transition {TRIGGER_NAMES[trigger]} not allowed from {OrderStatus(self.status).name}"
            )
        self.status = new
        return new

    def __repr__(self) -> str:  # for people reading a failing test
        return (f"Order(id={self.id}, side={self.side}, px={self.price}, qty={self.qty}, leaves={self.leaves}, "
                f"visible={self.visible}, status={OrderStatus(self.status).name})")
