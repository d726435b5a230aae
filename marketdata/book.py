"""The market-data copy of one instrument's book, kept from the engine's executions.

:class:`InstrumentBook` holds every resting order (L3) in time priority per price level,
with each level's shown quantity and order count (L2), and notes what each batch of
events changed: the state of every touched level before the batch (for L2 increments)
and, when asked, the order-by-order log (for L3 increments), with the batch's trades
and status changes.

The log is the batch's net change, not its history: an order added and gone within the
batch leaves no entry, an order added and changed leaves one NEW with its last quantity
(in the place of the NEW: a change keeps the order's place), and an order changed several
times one CHANGE (the last; a DELETE replaces them). A client that applies the log in
order holds the book as it is after the batch, with every level's orders in time
priority; in a busy market most orders rest for less than a batch, so an L3 increment is
a fraction of what the history would be. Dropped entries are left as ``None`` (removing
them from the middle of the list would cost more): :meth:`net_log` reads the log without
them.

It follows :class:`venue.events.Execution` ``book`` effects (:class:`venue.types.BookEffect`):

- ADD: the order now rests at the back of ``info.price`` showing ``visible``;
- UPDATE: its shown quantity is now ``visible``, place kept (partial fill, reduced amend,
  self-trade decrement);
- REMOVE: it left the book (filled, cancelled, expired, amended to lose its place);
- REQUEUE: it left its place and rests again at the back of ``info.price`` (iceberg
  refill, which keeps the price, or an amend whose order rests again at once, possibly at
  a new price).

Stop orders are not in the book until they trigger; their events carry no effect until
then. The book never reads the engine: it sees events only, so it can run anywhere
events arrive (the venue's publishing thread, a replica behind Redis). It does not check that its
levels never cross; the engine guarantees that.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Iterator

from marketdata.errors import BookInconsistent
from marketdata.messages import CHANGE, DELETE, NEW, BookOrder, OrderUpdate, PriceLevel, StatusChange
from venue.instruments import Instrument
from venue.types import BUY, FX_ADD, FX_REMOVE, FX_REQUEUE, FX_UPDATE

_new = tuple.__new__  # builds a NamedTuple from a full tuple without its Python-level __new__ (hot path)


class Level:
    """One price level: its orders in time priority (``order id -> shown lots``)."""

    __slots__ = ("price", "key", "side", "qty", "orders")

    def __init__(self, price: int, key: int, side: BookSide) -> None:
        self.price = price
        self.key = key
        self.side = side
        self.qty = 0
        self.orders: dict[int, int] = {}  # insertion order is time priority


class BookSide:
    """Levels by key (the price for asks, minus the price for bids: smaller is better)
    and the keys in ascending order, so the best levels are ``keys[:n]``."""

    __slots__ = ("side", "sign", "keys", "levels", "dirty")

    def __init__(self, side: int) -> None:
        self.side = side
        self.sign = -1 if side == BUY else 1
        self.keys: list[int] = []
        self.levels: dict[int, Level] = {}
        # key -> (qty, orders) before the current batch touched it, None if it did not exist
        self.dirty: dict[int, tuple[int, int] | None] = {}

    def top(self, depth: int = 0) -> list[PriceLevel]:
        """Levels best first, ``depth`` of them (0 = all)."""
        levels = self.levels
        keys = self.keys[:depth] if depth else self.keys
        out = []
        for k in keys:
            lv = levels[k]
            out.append(PriceLevel(lv.price, lv.qty, len(lv.orders)))
        return out

    def best(self) -> PriceLevel | None:
        if not self.keys:
            return None
        lv = self.levels[self.keys[0]]
        return PriceLevel(lv.price, lv.qty, len(lv.orders))

    def orders(self) -> Iterator[BookOrder]:
        """Every order, best level first, time priority within a level."""
        side, levels = self.side, self.levels
        for k in self.keys:
            lv = levels[k]
            for oid, q in lv.orders.items():
                yield BookOrder(oid, side, lv.price, q)


class InstrumentBook:
    """The visible book of one instrument, maintained from execution book effects."""

    __slots__ = ("symbol", "inst", "bids", "asks", "where", "halted", "log", "trades", "statuses", "_new_at",
                 "_chg_at")

    def __init__(self, inst: Instrument) -> None:
        self.symbol = inst.symbol
        self.inst = inst
        self.bids = BookSide(BUY)
        self.asks = BookSide(3 - BUY)
        self.where: dict[int, Level] = {}  # resting order id -> its level
        self.halted = False
        self.log: list[OrderUpdate | None] | None = None  # this batch's net order-by-order log, when an L3 feed wants it
        self._new_at: dict[int, int] = {}  # order added in this batch -> the index of its NEW in the log
        self._chg_at: dict[int, int] = {}  # order that was resting before this batch -> the index of its CHANGE
        self.trades: list[Any] = []  # the engine's Trade events of this batch (the hub fills and clears it)
        self.statuses: list[StatusChange] = []  # halts and resumes of this batch

    def side(self, side: int) -> BookSide:
        return self.bids if side == BUY else self.asks

    # -- changes ---------------------------------------------------------------------
    def apply(self, effect: int, order_id: int, side: int, price: int, visible: int) -> None:
        """Apply one execution's book effect."""
        if effect == FX_ADD:
            self.add(order_id, side, price, visible)
        elif effect == FX_UPDATE:
            self.update(order_id, visible)
        elif effect == FX_REMOVE:
            self.remove(order_id)
        elif effect == FX_REQUEUE:
            self.remove(order_id)
            self.add(order_id, side, price, visible)

    def add(self, order_id: int, side: int, price: int, visible: int) -> None:
        if order_id in self.where:
            raise BookInconsistent(f"{self.symbol}: order {order_id} added twice")
        s = self.bids if side == BUY else self.asks
        key = price * s.sign
        lv = s.levels.get(key)
        if lv is None:
            if key not in s.dirty:
                s.dirty[key] = None
            lv = s.levels[key] = Level(price, key, s)
            insort(s.keys, key)
        elif key not in s.dirty:
            s.dirty[key] = (lv.qty, len(lv.orders))
        lv.orders[order_id] = visible
        lv.qty += visible
        self.where[order_id] = lv
        log = self.log
        if log is not None:
            self._new_at[order_id] = len(log)
            log.append(_new(OrderUpdate, (NEW, order_id, side, price, visible)))

    def update(self, order_id: int, visible: int) -> None:
        lv = self.where.get(order_id)
        if lv is None:
            raise BookInconsistent(f"{self.symbol}: update of order {order_id}, which is not in the book")
        s = lv.side
        if lv.key not in s.dirty:
            s.dirty[lv.key] = (lv.qty, len(lv.orders))
        lv.qty += visible - lv.orders[order_id]
        lv.orders[order_id] = visible
        log = self.log
        if log is not None:
            i = self._new_at.get(order_id)
            if i is not None:  # added in this batch: its NEW shows the new quantity, in its place
                log[i] = _new(OrderUpdate, (NEW, order_id, s.side, lv.price, visible))
            else:
                chg = self._chg_at
                i = chg.get(order_id)
                if i is not None:
                    log[i] = None
                chg[order_id] = len(log)
                log.append(_new(OrderUpdate, (CHANGE, order_id, s.side, lv.price, visible)))

    def remove(self, order_id: int) -> None:
        lv = self.where.pop(order_id, None)
        if lv is None:
            raise BookInconsistent(f"{self.symbol}: removal of order {order_id}, which is not in the book")
        s = lv.side
        key = lv.key
        if key not in s.dirty:
            s.dirty[key] = (lv.qty, len(lv.orders))
        lv.qty -= lv.orders.pop(order_id)
        if not lv.orders:
            del s.levels[key]
            keys = s.keys
            del keys[bisect_left(keys, key)]
        log = self.log
        if log is not None:
            i = self._new_at.pop(order_id, None)
            if i is not None:  # added in this batch and gone: never shown
                log[i] = None
            else:
                i = self._chg_at.pop(order_id, None)
                if i is not None:
                    log[i] = None
                log.append(_new(OrderUpdate, (DELETE, order_id, s.side, lv.price, 0)))

    def changed(self) -> bool:
        """Did the current batch touch this instrument?"""
        return bool(self.bids.dirty or self.asks.dirty or self.trades or self.statuses)

    def clear_changes(self) -> None:
        """Forget what the current batch touched (after its increments are built)."""
        self.bids.dirty.clear()
        self.asks.dirty.clear()
        if self.log is not None:
            self.log.clear()
            self._new_at.clear()
            self._chg_at.clear()
        self.trades.clear()
        self.statuses.clear()

    def load(self, orders: list[BookOrder]) -> None:
        """Replace the whole book by ``orders`` (each level's orders in time priority)."""
        self.bids = BookSide(self.bids.side)
        self.asks = BookSide(self.asks.side)
        self.where = {}
        for o in orders:
            self.add(o.order_id, o.side, o.price, o.qty)
        self.clear_changes()

    def net_log(self, side: int = 0) -> tuple[OrderUpdate, ...]:
        """This batch's net order-by-order log (of one side, if ``side``)."""
        log = self.log
        if not log:
            return ()
        if side:
            return tuple([u for u in log if u is not None and u.side == side])
        return tuple([u for u in log if u is not None])

    # -- reads -----------------------------------------------------------------------
    def levels(self, side: int, depth: int = 0) -> list[PriceLevel]:
        return (self.bids if side == BUY else self.asks).top(depth)

    def orders(self, side: int) -> list[BookOrder]:
        return list((self.bids if side == BUY else self.asks).orders())

    def best_bid(self) -> PriceLevel | None:
        return self.bids.best()

    def best_ask(self) -> PriceLevel | None:
        return self.asks.best()
