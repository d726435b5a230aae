"""What market data says: subscription shapes (:class:`FeedSpec`), snapshots and
increments, trades and status changes. Plain immutable tuples in integer ticks and lots.

Prices are ticks and quantities lots of the instrument, as inside the venue; the edges
(FIX, Redis) turn them into decimals with :class:`venue.instruments.Instrument`.

A subscriber receives one :class:`Snapshot`, then :class:`Increment` messages whose
``rpt_seq`` rises by exactly one each time. A consumer that sees a jump has missed
something and must take a new snapshot; a snapshot's ``rpt_seq`` is the number of the
last increment whose effect it already contains. Numbers belong to a feed (one
instrument in one shape, :class:`FeedSpec`): every subscriber of the same shape sees the
same numbers and the very same message objects.

Level updates are keyed by price (FIX MDUpdateAction New/Change/Delete): a depth-N
consumer that applies them holds exactly the best N levels, because a level that leaves
the window is deleted and one that enters it is new. Order updates (L3) are applied in
the order given: New puts an order at the back of its level, Change alters its shown
quantity in place (priority kept), Delete takes it out; an order that loses its place
(iceberg refill, amend) is a Delete followed by a New.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple, Union

from venue.types import BUY, SELL

BID: int = BUY
ASK: int = SELL


class Book(IntEnum):
    """How much of the book a feed carries."""

    NONE = 0  # trades and status only
    L2 = 2  # aggregated price levels
    L3 = 3  # every order (always full depth)


class Action(IntEnum):
    """FIX MDUpdateAction (279)."""

    NEW = 0
    CHANGE = 1
    DELETE = 2


BOTH_SIDES = 0
NEW, CHANGE, DELETE = 0, 1, 2


class FeedSpec(NamedTuple):
    """The shape of a subscription: one instrument, how much book, trades or not."""

    symbol: str
    book: int = int(Book.L2)
    depth: int = 0  # price levels per side; 0 = full depth (FIX MarketDepth 0)
    trades: bool = True
    sides: int = BOTH_SIDES  # 0 = both, BID (1) = bids only, ASK (2) = offers only


class PriceLevel(NamedTuple):
    price: int  # ticks
    qty: int  # lots shown
    orders: int  # orders resting at the level


class BookOrder(NamedTuple):
    order_id: int
    side: int
    price: int
    qty: int  # lots shown (an iceberg shows its display part)


class LevelUpdate(NamedTuple):
    action: int  # Action
    side: int
    price: int
    qty: int  # after the update (0 for a delete)
    orders: int


class OrderUpdate(NamedTuple):
    action: int  # Action
    order_id: int
    side: int
    price: int
    qty: int  # shown after the update (0 for a delete)


class TradePrint(NamedTuple):
    symbol: str
    seq: int  # of the command that caused it
    trade_n: int
    ts: int  # ns, the sequencer's stamp
    price: int
    qty: int
    aggressor_side: int

    @property
    def trade_id(self) -> str:
        """The venue's TradeID: ``{seq}-{trade_n}``."""
        return f"{self.seq}-{self.trade_n}"


class StatusChange(NamedTuple):
    """An instrument halted or resumed trading (FIX SecurityStatus)."""

    symbol: str
    halted: bool
    reason: str
    seq: int
    ts: int


class Snapshot(NamedTuple):
    """The book of one feed as it stands after venue command ``seq``."""

    spec: FeedSpec
    rpt_seq: int  # the last increment of the feed already contained here
    seq: int  # the venue's sequence number the book corresponds to
    ts: int
    halted: bool
    bids: tuple[PriceLevel, ...]  # best first (empty unless the feed carries bids)
    asks: tuple[PriceLevel, ...]
    orders: tuple[BookOrder, ...]  # L3 only: bids best level first, then asks; FIFO within a level
    last_trade: TradePrint | None


class Increment(NamedTuple):
    """What changed in one feed during one durable batch of venue commands."""

    spec: FeedSpec
    rpt_seq: int
    seq: int  # the last venue command of the batch
    ts: int
    levels: tuple[LevelUpdate, ...]  # L2: deletes first, then new and changed levels
    orders: tuple[OrderUpdate, ...]  # L3: in the order the engine did them
    trades: tuple[TradePrint, ...]  # in trade order (if the feed carries trades)
    statuses: tuple[StatusChange, ...]  # halts and resumes, in order (every feed carries them)
    memo: dict[str, Any]  # shared by every subscriber of the feed: an edge may cache its encoding here


Message = Union[Snapshot, Increment]
