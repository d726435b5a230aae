"""The order book of one instrument: price levels, time priority, matching.

Each side keeps a dict from a *key* to a :class:`Level` and a heap of keys for the
touch. Keys are prices on the ask side and negated prices on the bid side, so "better"
is always "smaller" and one matching loop serves both sides.

Cancels are O(1): a cancelled order is unlinked (``order.level = None``) and left in its
level's deque as a dead entry, skipped by matching and swept out when dead entries
outnumber live ones. An order object rests at most once in its life (an iceberg refill
moves it from the front to the back of the same deque); an amend that loses priority
re-enters as a new order object, so ``o.level is level`` always tells a live entry.

Matching writes what happened as plain tuples into ``out`` for the engine to settle
and report; the book itself knows nothing of money, events or accounts beyond identity
(for self-trade prevention). Reduce-only orders are the one exception it delegates: when
one is about to fill, it asks ``ro_cap`` (installed by venue.margin) how many lots the
order's account may still reduce, and caps the fill, or cancels the order like
self-trade prevention does. Books without that hook, and fills between orders that are
not reduce-only, pay one test for it.
"""
from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Callable, Final, Iterator

from venue.types import BUY, STP_CB, STP_CN, STP_CO, STP_NONE

if TYPE_CHECKING:
    from venue.orders import Order

# Match records: (kind, maker, price_ticks, qty_lots, maker_leaves_after, maker_visible_after)
# (for M_STP_TAKER the "maker" slot holds the taker itself)
M_FILL: Final = 0  # maker partly filled, stays at the front
M_FILL_REQUEUE: Final = 1  # maker's shown part filled, iceberg refilled at the back
M_FILL_DONE: Final = 2  # maker fully filled, left the book
M_STP_MAKER: Final = 3  # maker cancelled by self-trade prevention, left the book
M_STP_TAKER: Final = 4  # taker to be cancelled by self-trade prevention; matching stopped
M_STP_DECREMENT: Final = 5  # both reduced by qty without a trade; maker left the book if it reached 0
M_RO_MAKER: Final = 6  # reduce-only maker with nothing left to reduce: cancelled, left the book
M_RO_TAKER: Final = 7  # reduce-only taker with nothing left to reduce: to be cancelled; matching stopped

MatchRecord = tuple[int, "Order", int, int, int, int]
# ro_cap(order, taker, out): lots the reduce-only ``order`` (the taker or a maker) may still
# fill, counting the fills already in ``out``
ReduceOnlyCap = Callable[["Order", "Order", "list[MatchRecord]"], int]


class Level:
    __slots__ = ("price", "orders", "qty", "count", "dead")

    price: int
    orders: deque[Order]
    qty: int
    count: int
    dead: int

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders = deque()
        self.qty = 0  # visible lots
        self.count = 0  # live orders
        self.dead = 0  # dead entries still in the deque

    def live(self) -> list[Order]:
        """The live orders in time priority."""
        return [o for o in self.orders if o.level is self]


class BookSide:
    __slots__ = ("sign", "levels", "heap", "inheap")

    sign: int
    levels: dict[int, Level]
    heap: list[int]
    inheap: set[int]

    def __init__(self, sign: int) -> None:
        self.sign = sign  # +1 asks (key = price), -1 bids (key = -price)
        self.levels = {}
        self.heap = []
        self.inheap = set()

    def best_key(self) -> int | None:
        heap, levels = self.heap, self.levels
        while heap:
            k = heap[0]
            if k in levels:
                return k
            heappop(heap)
            self.inheap.discard(k)
        return None

    def best_price(self) -> int | None:
        k = self.best_key()
        return None if k is None else k * self.sign

    def sorted_levels(self) -> list[Level]:
        """Levels best first."""
        levels = self.levels
        return [levels[k] for k in sorted(levels)]

    def drop_level(self, key: int) -> None:
        del self.levels[key]
        if len(self.heap) > 2 * len(self.levels) + 64:  # stale keys deep in the heap
            self.heap = list(self.levels)
            heapify(self.heap)
            self.inheap = set(self.heap)


class OrderBook:
    __slots__ = ("symbol", "bids", "asks", "stamp", "ro_cap")

    symbol: str
    bids: BookSide
    asks: BookSide
    stamp: int
    ro_cap: ReduceOnlyCap | None

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.stamp = 0  # rises each time an order joins the back of a queue (FIFO checks)
        self.bids = BookSide(-1)
        self.asks = BookSide(+1)
        self.ro_cap = None  # see the module docstring

    # -- queries ---------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return self.bids.best_price()

    def best_ask(self) -> int | None:
        return self.asks.best_price()

    def would_cross(self, side: int, price: int) -> bool:
        """Would an order of ``side`` at ``price`` take liquidity?"""
        if side == BUY:
            k = self.asks.best_key()
            return k is not None and k <= price
        k = self.bids.best_key()
        return k is not None and k <= -price

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int, int]]:
        """(price, visible lots, orders) per level, best first."""
        levels = (self.bids if side == BUY else self.asks).sorted_levels()
        if n is not None:
            levels = levels[:n]
        return [(lv.price, lv.qty, lv.count) for lv in levels]

    def fillable(self, taker: Order, limit: int) -> bool:
        """Could ``taker`` fill its whole remaining quantity at ``limit`` or better, given
        self-trade prevention? (For FOK; counts hidden iceberg quantity.)

        A level gives all its quantity unless the taker meets its own order there (and its
        mode stops it: cancel newest/both, or decrement, which shrinks the taker without a
        fill). Then it gets only what is shown ahead of that order: an iceberg ahead of it
        refills behind it."""
        opp = self.asks if taker.side == BUY else self.bids
        limit_key = limit * opp.sign
        need = taker.leaves
        acct, stp = taker.acct, taker.stp
        for key in sorted(opp.levels):
            if key > limit_key:
                return False
            lvl = opp.levels[key]
            shown = total = 0
            for m in lvl.orders:
                if m.level is not lvl:
                    continue
                if m.acct is acct and stp != STP_NONE:
                    if stp == STP_CO:
                        continue  # cancelled when reached; matching goes on
                    return need <= shown
                shown += m.visible
                total += m.leaves
            if need <= total:
                return True
            need -= total
        return False

    # -- changes ---------------------------------------------------------------------
    def rest(self, o: Order) -> None:
        """Put ``o`` at the back of its price level with ``o.visible`` shown."""
        side = self.bids if o.side == BUY else self.asks
        key = o.price * side.sign
        lvl = side.levels.get(key)
        if lvl is None:
            lvl = side.levels[key] = Level(o.price)
            if key not in side.inheap:
                heappush(side.heap, key)
                side.inheap.add(key)
        lvl.orders.append(o)
        lvl.qty += o.visible
        lvl.count += 1
        o.level = lvl
        self.stamp += 1
        o.qpos = self.stamp

    def remove(self, o: Order) -> None:
        """Take a resting order out of the book (cancel, expiry, amend)."""
        lvl = o.level
        assert lvl is not None
        o.level = None
        lvl.qty -= o.visible
        o.visible = 0
        lvl.count -= 1
        if not lvl.count:
            side = self.bids if o.side == BUY else self.asks
            side.drop_level(lvl.price * side.sign)
            return
        lvl.dead += 1
        if lvl.dead > 16 and lvl.dead > lvl.count:
            lvl.orders = deque([x for x in lvl.orders if x.level is lvl])
            lvl.dead = 0

    def reduce(self, o: Order, new_leaves: int) -> None:
        """Lower a resting order's remaining quantity in place (keeps priority)."""
        o.leaves = new_leaves
        lvl = o.level
        if lvl is not None and o.visible > new_leaves:
            lvl.qty -= o.visible - new_leaves
            o.visible = new_leaves

    def match(self, taker: Order, limit: int, out: list[MatchRecord]) -> None:
        """Match ``taker`` against the other side down to ``limit`` (ticks), price-time.

        Lowers ``taker.leaves`` and the makers' ``leaves``/``visible``; appends a record
        per fill or self-trade action to ``out``.
        """
        opp = self.asks if taker.side == BUY else self.bids
        heap = opp.heap
        limit_key = limit * opp.sign
        if not heap or heap[0] > limit_key:
            return  # nothing crosses (a stale top is never worse than the true best)
        levels, inheap = opp.levels, opp.inheap
        acct, stp = taker.acct, taker.stp
        leaves = taker.leaves
        append = out.append
        ro_cap = self.ro_cap
        taker_ro = ro_cap is not None and taker.reduce_only
        while leaves:
            while heap:
                k = heap[0]
                lvl = levels.get(k)
                if lvl is not None:
                    break
                heappop(heap)
                inheap.discard(k)
            else:
                break
            if k > limit_key:
                break
            orders = lvl.orders
            px = lvl.price
            while leaves and lvl.count:
                m = orders[0]
                if m.level is not lvl:
                    orders.popleft()
                    lvl.dead -= 1
                    continue
                if m.acct is acct and stp != STP_NONE:
                    if stp == STP_CN:
                        append((M_STP_TAKER, taker, 0, 0, 0, 0))
                        taker.leaves = leaves
                        return
                    if stp == STP_CO or stp == STP_CB:
                        orders.popleft()
                        m.level = None
                        lvl.qty -= m.visible
                        m.visible = 0
                        lvl.count -= 1
                        append((M_STP_MAKER, m, px, 0, m.leaves, 0))
                        if stp == STP_CB:
                            append((M_STP_TAKER, taker, 0, 0, 0, 0))
                            if not lvl.count:
                                opp.drop_level(k)
                            taker.leaves = leaves
                            return
                        continue
                    # decrement both by the overlap
                    q = m.leaves if m.leaves < leaves else leaves
                    leaves -= q
                    m.leaves -= q
                    if m.leaves:
                        if m.visible > m.leaves:
                            lvl.qty -= m.visible - m.leaves
                            m.visible = m.leaves
                    else:
                        orders.popleft()
                        m.level = None
                        lvl.qty -= m.visible
                        m.visible = 0
                        lvl.count -= 1
                    append((M_STP_DECREMENT, m, px, q, m.leaves, m.visible))
                    continue
                vis = m.visible
                q = vis if vis < leaves else leaves
                if ro_cap is not None and (taker_ro or m.reduce_only):
                    if m.reduce_only:
                        room = ro_cap(m, taker, out)
                        if room <= 0:
                            orders.popleft()
                            m.level = None
                            lvl.qty -= vis
                            m.visible = 0
                            lvl.count -= 1
                            append((M_RO_MAKER, m, px, 0, m.leaves, 0))
                            continue
                        q = q if q < room else room
                    if taker_ro:
                        room = ro_cap(taker, taker, out)
                        if room <= 0:
                            append((M_RO_TAKER, taker, 0, 0, 0, 0))
                            taker.leaves = leaves
                            return
                        q = q if q < room else room
                leaves -= q
                m.leaves -= q
                vis -= q
                if vis:
                    m.visible = vis
                    lvl.qty -= q
                    append((M_FILL, m, px, q, m.leaves, vis))
                elif m.leaves:
                    r = m.leaves
                    d = m.display
                    vis = d if d < r else r
                    m.visible = vis
                    lvl.qty += vis - q
                    orders.popleft()
                    orders.append(m)
                    self.stamp += 1
                    m.qpos = self.stamp
                    append((M_FILL_REQUEUE, m, px, q, r, vis))
                else:
                    m.visible = 0
                    lvl.qty -= q
                    orders.popleft()
                    m.level = None
                    lvl.count -= 1
                    append((M_FILL_DONE, m, px, q, 0, 0))
            if not lvl.count:
                opp.drop_level(k)
        taker.leaves = leaves

    # -- checks ----------------------------------------------------------------------
    def iter_orders(self) -> Iterator[Order]:
        """Every resting order, bids then asks, each side best level first, FIFO."""
        for side in (self.bids, self.asks):
            for lvl in side.sorted_levels():
                yield from lvl.live()
