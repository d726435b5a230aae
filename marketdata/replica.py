"""A consumer's copy of one feed's book, rebuilt from a snapshot and the increments
after it, with gap detection.

What a FIX market-data client, a Redis stream consumer or a test holds: apply the
:class:`~marketdata.messages.Snapshot`, then each :class:`~marketdata.messages.Increment`
in RptSeq order. An increment whose RptSeq is not the next one raises
:class:`~marketdata.errors.SequenceGap` and leaves the replica unsynced until the next
snapshot; one already applied (a duplicate) is ignored; one whose entries contradict
the book held (a New for a level or order already held, a Change or Delete for one not
held) raises :class:`~marketdata.errors.BookInconsistent` (unsynced too): the feed is
keyed by price and order id, so such an entry means the two no longer agree, even if
applying it loosely would happen to give the right book.

Works in ticks and lots, like the messages. It keeps no history beyond the book, the
halted flag and the last trade seen.
"""
from __future__ import annotations

from marketdata.errors import BadRequest, BookInconsistent, SequenceGap
from marketdata.messages import (
    ASK, BID, DELETE, NEW, Book, BookOrder, FeedSpec, Increment, Message, PriceLevel, Snapshot, TradePrint,
)

_L3 = int(Book.L3)


class BookReplica:
    """The book of one feed as a consumer sees it."""

    def __init__(self, spec: FeedSpec) -> None:
        self.spec = spec
        self.rpt_seq = 0
        self.seq = 0  # the venue sequence number the book corresponds to
        self.ts = 0
        self.synced = False
        self.halted = False
        self.last_trade: TradePrint | None = None
        self.trades = 0  # trades seen since the last snapshot
        self.gaps = 0
        # L2: price -> (qty, orders) per side; L3: order id -> (side, price, qty) and per-level FIFO
        self._levels: dict[int, dict[int, tuple[int, int]]] = {BID: {}, ASK: {}}
        self._orders: dict[int, tuple[int, int, int]] = {}
        self._queues: dict[int, dict[int, dict[int, int]]] = {BID: {}, ASK: {}}

    def apply(self, msg: Message) -> bool:
        """Apply one message; True if it changed the replica. Raises SequenceGap."""
        if type(msg) is Snapshot:
            self._reset(msg)
            return True
        if type(msg) is not Increment:
            raise BadRequest(f"not a market-data message: {type(msg).__name__}")
        if not self.synced:
            return False
        if msg.rpt_seq <= self.rpt_seq:
            return False
        if msg.rpt_seq != self.rpt_seq + 1:
            self.synced = False
            self.gaps += 1
            raise SequenceGap(self.spec.symbol, self.rpt_seq + 1, msg.rpt_seq)
        try:
            self._apply_entries(msg)
        except BookInconsistent as e:  # it no longer follows the feed
            self.synced = False
            raise BookInconsistent(f"{self.spec.symbol}: increment {msg.rpt_seq}: {e}") from None
        self.rpt_seq = msg.rpt_seq
        self.seq = msg.seq
        self.ts = msg.ts
        return True

    def _apply_entries(self, msg: Increment) -> None:
        """Apply the entries, refusing any that contradicts the book held: a New for a
        level or order already held, a Change or Delete for one not held (the feed and
        this replica disagree, whatever the book looks like afterwards)."""
        for u in msg.levels:
            book = self._levels[u.side]
            if u.action == NEW:
                if u.price in book:
                    raise BookInconsistent(f"New for level {u.price} (side {u.side}), which is already held")
                book[u.price] = (u.qty, u.orders)
            elif u.price not in book:
                raise BookInconsistent(f"{'Delete' if u.action == DELETE else 'Change'} for level {u.price} "
                                       f"(side {u.side}), which is not held")
            elif u.action == DELETE:
                del book[u.price]
            else:
                book[u.price] = (u.qty, u.orders)
        orders = self._orders
        for o in msg.orders:
            if o.action == NEW:
                if o.order_id in orders:
                    raise BookInconsistent(f"New for order {o.order_id}, which is already held")
                orders[o.order_id] = (o.side, o.price, o.qty)
                self._queues[o.side].setdefault(o.price, {})[o.order_id] = o.qty
                continue
            held = orders.get(o.order_id)
            if held is None:
                raise BookInconsistent(f"{'Delete' if o.action == DELETE else 'Change'} for order {o.order_id}, "
                                       f"which is not held")
            side, price, _ = held
            if o.action == DELETE:
                del orders[o.order_id]
                q = self._queues[side][price]
                del q[o.order_id]
                if not q:
                    del self._queues[side][price]
            else:
                orders[o.order_id] = (side, price, o.qty)
                self._queues[side][price][o.order_id] = o.qty
        for st in msg.statuses:
            self.halted = st.halted
        if msg.trades:
            self.last_trade = msg.trades[-1]
            self.trades += len(msg.trades)

    def _reset(self, s: Snapshot) -> None:
        self.rpt_seq = s.rpt_seq
        self.seq = s.seq
        self.ts = s.ts
        self.halted = s.halted
        self.last_trade = s.last_trade
        self.trades = 0
        self._levels = {BID: {p.price: (p.qty, p.orders) for p in s.bids},
                        ASK: {p.price: (p.qty, p.orders) for p in s.asks}}
        self._orders = {}
        self._queues = {BID: {}, ASK: {}}
        for o in s.orders:
            self._orders[o.order_id] = (o.side, o.price, o.qty)
            self._queues[o.side].setdefault(o.price, {})[o.order_id] = o.qty
        self.synced = True

    # -- reads -----------------------------------------------------------------------
    def levels(self, side: int) -> list[PriceLevel]:
        """Price levels best first (derived from the orders for an L3 feed)."""
        if self.spec.book == _L3:
            q = self._queues[side]
            return [PriceLevel(p, sum(q[p].values()), len(q[p])) for p in sorted(q, reverse=side == BID)]
        lv = self._levels[side]
        return [PriceLevel(p, *lv[p]) for p in sorted(lv, reverse=side == BID)]

    def orders(self, side: int) -> list[BookOrder]:
        """L3: every order, best level first, time priority within a level."""
        q = self._queues[side]
        return [BookOrder(oid, side, p, qty) for p in sorted(q, reverse=side == BID) for oid, qty in q[p].items()]
