"""Feeds: one instrument in one subscription shape, and the increments it publishes.

A :class:`Feed` turns what a batch changed in an :class:`~marketdata.book.InstrumentBook`
into one :class:`~marketdata.messages.Increment` (or nothing, when nothing it carries
changed) numbered by its own RptSeq, and builds snapshots that agree with those numbers.
It is driven by :class:`~marketdata.hub.MarketData` under its lock, at batch boundaries
only; it holds no thread and does no I/O.

Full-depth L2 updates come straight from the levels the batch touched (state before the
batch against state after). A depth-N feed keeps the window it last published per side
and recomputes it only when the batch touched a level at or better than the window's
worst price (or the window was not full): a change further out cannot alter the best N.
"""
from __future__ import annotations

from typing import Any, Sequence, cast

from marketdata.book import BookSide, InstrumentBook
from marketdata.messages import (
    ASK, BID, CHANGE, DELETE, NEW, Book, BookOrder, FeedSpec, Increment, LevelUpdate, Message, OrderUpdate, Snapshot,
    StatusChange, TradePrint,
)

_L2, _L3 = int(Book.L2), int(Book.L3)
_new = tuple.__new__  # builds a NamedTuple from a full tuple without its Python-level __new__ (hot path)


def touched_levels(s: BookSide, dels: list[LevelUpdate], others: list[LevelUpdate]) -> None:
    """Full-depth updates of one side for the levels the batch touched."""
    levels, side, sign = s.levels, s.side, s.sign
    for key, before in s.dirty.items():
        lv = levels.get(key)
        if lv is None:
            if before is not None:
                dels.append(_new(LevelUpdate, (DELETE, side, key * sign, 0, 0)))
        elif before is None:
            others.append(_new(LevelUpdate, (NEW, side, lv.price, lv.qty, len(lv.orders))))
        elif before[0] != lv.qty or before[1] != len(lv.orders):
            others.append(_new(LevelUpdate, (CHANGE, side, lv.price, lv.qty, len(lv.orders))))


def window_of(s: BookSide, depth: int) -> dict[int, tuple[int, int]]:
    """The best ``depth`` levels of a side: key -> (qty, orders), best first."""
    levels = s.levels
    out = {}
    for k in s.keys[:depth]:
        lv = levels[k]
        out[k] = (lv.qty, len(lv.orders))
    return out


class Feed:
    """One instrument in one shape: its subscribers, its RptSeq, (depth-N) windows, and
    the ring of its latest increments that every subscriber reads from its own cursor.

    The ring holds at least the last ``cap`` increments (it is trimmed to ``cap`` when it
    reaches twice that), so memory is bounded per feed, not per subscriber."""

    __slots__ = ("spec", "rpt_seq", "subs", "windows", "ring", "first", "cap", "flagged", "snap_cache")

    def __init__(self, spec: FeedSpec, book: InstrumentBook, cap: int = 1024) -> None:
        self.spec = spec
        self.rpt_seq = 0
        self.subs: list[Any] = []  # the Subscriptions of this feed
        self.windows: dict[int, dict[int, tuple[int, int]]] = {}
        self.ring: list[Increment] = []
        self.first = 1  # the RptSeq of ring[0]
        self.cap = cap
        self.flagged = False  # listed for the dispatcher since the last batch
        self.snap_cache: tuple[int, Snapshot] | None = None  # (venue seq, snapshot) built at that seq
        if spec.book == _L2 and spec.depth:
            for side in self.sides():
                self.windows[side] = window_of(book.side(side), spec.depth)

    def push(self, inc: Increment) -> None:
        ring = self.ring
        ring.append(inc)
        if len(ring) >= 2 * self.cap:
            drop = len(ring) - self.cap
            del ring[:drop]
            self.first += drop

    def since(self, rpt_seq: int) -> list[Message] | None:
        """The increments after ``rpt_seq``, or None if the ring no longer holds them all."""
        if rpt_seq < self.first - 1:
            return None
        return cast("list[Message]", self.ring[rpt_seq - self.first + 1:])

    def sides(self) -> tuple[int, ...]:
        s = self.spec.sides
        return (BID, ASK) if not s else (s,)

    def build(self, book: InstrumentBook, best_dirty: dict[int, int | None], trades: Sequence[TradePrint],
              statuses: tuple[StatusChange, ...], seq: int, ts: int) -> Increment | None:
        """The increment of this batch, or None if the feed saw no change."""
        spec = self.spec
        levels: tuple[LevelUpdate, ...] = ()
        orders: tuple[OrderUpdate, ...] = ()
        if spec.book == _L2:
            dels: list[LevelUpdate] = []
            others: list[LevelUpdate] = []
            for side in self.sides():
                s = book.side(side)
                if not s.dirty:
                    continue
                if spec.depth:
                    self._window_changes(s, best_dirty[side], dels, others)
                else:
                    touched_levels(s, dels, others)
            if dels or others:
                levels = tuple(dels + others)
        elif spec.book == _L3 and book.log:
            orders = book.net_log(spec.sides)
        tr = tuple(trades) if spec.trades and trades else ()
        if not (levels or orders or tr or statuses):
            return None
        self.rpt_seq += 1
        return Increment(spec, self.rpt_seq, seq, ts, levels, orders, tr, statuses, {})

    def _window_changes(self, s: BookSide, best_dirty: int | None, dels: list[LevelUpdate],
                        others: list[LevelUpdate]) -> None:
        depth = self.spec.depth
        old = self.windows[s.side]
        if best_dirty is None:
            return
        if len(old) == depth and best_dirty > next(reversed(old)):
            return  # every touched level is worse than the window's worst
        new = window_of(s, depth)
        side, sign = s.side, s.sign
        for k in old:
            if k not in new:
                dels.append(_new(LevelUpdate, (DELETE, side, k * sign, 0, 0)))
        for k, st in new.items():
            was = old.get(k)
            if was is None:
                others.append(_new(LevelUpdate, (NEW, side, k * sign, st[0], st[1])))
            elif was != st:
                others.append(_new(LevelUpdate, (CHANGE, side, k * sign, st[0], st[1])))
        self.windows[s.side] = new

    def snapshot(self, book: InstrumentBook, seq: int, ts: int, last_trade: TradePrint | None) -> Snapshot:
        """The feed's view of ``book`` now (between batches), numbered ``rpt_seq``."""
        spec = self.spec
        sides = self.sides()
        depth = spec.depth if spec.book == _L2 else 0
        bids = tuple(book.bids.top(depth)) if spec.book and BID in sides else ()
        asks = tuple(book.asks.top(depth)) if spec.book and ASK in sides else ()
        orders: tuple[BookOrder, ...] = ()
        if spec.book == _L3:
            orders = tuple(o for side in sides for o in book.side(side).orders())
        return Snapshot(spec, self.rpt_seq, seq, ts, book.halted, bids, asks, orders, last_trade)
