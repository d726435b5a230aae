"""The naive reference order book the benchmarks measure the venue against.

Exactly what the core issue prescribes: a ``sortedcontainers.SortedDict`` per side from
price to a ``collections.deque`` of orders, a dict from order id to order, cancel by
``deque.remove``; price-time matching of limit orders, no risk, no ledger, no events.
It is deliberately plain: it is the yardstick, not a competitor.
"""
from __future__ import annotations

from collections import deque

from sortedcontainers import SortedDict

BUY, SELL = 0, 1


class RefOrder:
    __slots__ = ("id", "side", "price", "qty")

    def __init__(self, oid: int, side: int, price: int, qty: int) -> None:
        self.id = oid
        self.side = side
        self.price = price
        self.qty = qty


class ReferenceBook:
    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # price -> deque, best = last key
        self.asks: SortedDict = SortedDict()  # price -> deque, best = first key
        self.orders: dict[int, RefOrder] = {}

    def limit(self, oid: int, side: int, price: int, qty: int) -> list[tuple[int, int, int]]:
        """Match a limit order, rest the remainder; return fills (maker id, price, qty)."""
        fills = []
        if side == BUY:
            book, idx = self.asks, 0
            crosses = lambda p: p <= price  # noqa: E731
        else:
            book, idx = self.bids, -1
            crosses = lambda p: p >= price  # noqa: E731
        while qty and book:
            best, level = book.peekitem(idx)
            if not crosses(best):
                break
            while qty and level:
                maker = level[0]
                q = maker.qty if maker.qty < qty else qty
                maker.qty -= q
                qty -= q
                fills.append((maker.id, best, q))
                if maker.qty == 0:
                    level.popleft()
                    del self.orders[maker.id]
            if not level:
                del book[best]
        if qty:
            order = RefOrder(oid, side, price, qty)
            own = self.bids if side == BUY else self.asks
            level = own.get(price)
            if level is None:
                level = own[price] = deque()
            level.append(order)
            self.orders[oid] = order
        return fills

    def cancel(self, oid: int) -> bool:
        order = self.orders.pop(oid, None)
        if order is None:
            return False
        own = self.bids if order.side == BUY else self.asks
        level = own[order.price]
        level.remove(order)
        if not level:
            del own[order.price]
        return True

    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None
