"""The order book alone: price-time priority, FIFO, O(1) cancel with lazy dead entries
and compaction, iceberg refills to the back, stale heap keys, self-trade records."""
from __future__ import annotations

import random

from venue.book import (
    M_FILL, M_FILL_DONE, M_FILL_REQUEUE, M_STP_DECREMENT, M_STP_MAKER, M_STP_TAKER, MatchRecord, OrderBook,
)
from venue.events import OrderInfo
from venue.ledger import Account, Firm
from venue.orders import Order
from venue.types import BUY, SELL, STP_CB, STP_CN, STP_CO, STP_DC, STP_NONE

FIRM = Firm("F")
ALICE, BOB, CAROL = Account("alice", FIRM), Account("bob", FIRM), Account("carol", FIRM)
_ids = iter(range(1, 10**9))


def order(side: int, price: int, qty: int, acct: Account = ALICE, display: int = 0, stp: int = STP_CN) -> Order:
    oid = next(_ids)
    info = OrderInfo(oid, acct.id, "F", "X", side, 2, 1, price, 0, qty, display, f"c{oid}", 0, stp, False, "", 0)
    o = Order(oid, acct, info, side, 2, 1, price, 0, qty, display, 1, stp, 0, 0)
    return o


def rest(book: OrderBook, o: Order) -> Order:
    o.visible = o.display if o.display and o.display < o.leaves else o.leaves
    book.rest(o)
    return o


def take(book: OrderBook, side: int, limit: int, qty: int, acct: Account = BOB, stp: int = STP_CN) -> tuple[Order, list[MatchRecord]]:
    t = order(side, limit, qty, acct, stp=stp)
    out: list[MatchRecord] = []
    book.match(t, limit, out)
    return t, out


def summary(out: list[MatchRecord]) -> list[tuple[int, int, int, int]]:
    return [(kind, m.id, px, q) for kind, m, px, q, _, _ in out]


def level_ids(book: OrderBook, side: int, price: int) -> list[int]:
    bs = book.bids if side == BUY else book.asks
    return [o.id for o in bs.levels[price * bs.sign].live()]


def test_empty_book() -> None:
    b = OrderBook("X")
    assert b.best_bid() is None and b.best_ask() is None
    assert not b.would_cross(BUY, 10**9) and not b.would_cross(SELL, 1)
    t, out = take(b, BUY, 100, 5)
    assert out == [] and t.leaves == 5
    assert b.depth(BUY) == [] and list(b.iter_orders()) == []


def test_price_then_time_priority() -> None:
    b = OrderBook("X")
    a1 = rest(b, order(SELL, 102, 1))
    a2 = rest(b, order(SELL, 101, 1))
    a3 = rest(b, order(SELL, 101, 1))
    a4 = rest(b, order(SELL, 100, 1))
    bid = rest(b, order(BUY, 99, 1))
    assert b.best_ask() == 100 and b.best_bid() == 99
    assert b.depth(SELL) == [(100, 1, 1), (101, 2, 2), (102, 1, 1)]
    assert b.depth(SELL, 2) == [(100, 1, 1), (101, 2, 2)]
    assert [o.id for o in b.iter_orders()] == [bid.id, a4.id, a2.id, a3.id, a1.id]
    t, out = take(b, BUY, 101, 10)
    assert summary(out) == [(M_FILL_DONE, a4.id, 100, 1), (M_FILL_DONE, a2.id, 101, 1), (M_FILL_DONE, a3.id, 101, 1)]
    assert t.leaves == 7 and b.best_ask() == 102  # stopped at its limit
    # bids: higher is better
    b2 = rest(b, order(BUY, 98, 1))
    b3 = rest(b, order(BUY, 99, 2))
    t, out = take(b, SELL, 98, 4, acct=CAROL)
    assert summary(out) == [(M_FILL_DONE, bid.id, 99, 1), (M_FILL_DONE, b3.id, 99, 2), (M_FILL_DONE, b2.id, 98, 1)]
    assert t.leaves == 0 and b.best_bid() is None


def test_partial_fill_keeps_the_maker_at_the_front() -> None:
    b = OrderBook("X")
    m1 = rest(b, order(SELL, 100, 10))
    m2 = rest(b, order(SELL, 100, 10))
    _, out = take(b, BUY, 100, 4)
    assert [(k, m.id, q, leaves, vis) for k, m, _, q, leaves, vis in out] == [(M_FILL, m1.id, 4, 6, 6)]
    assert level_ids(b, SELL, 100) == [m1.id, m2.id] and b.depth(SELL) == [(100, 16, 2)]
    _, out = take(b, BUY, 100, 8)
    assert summary(out) == [(M_FILL_DONE, m1.id, 100, 6), (M_FILL, m2.id, 100, 2)]
    assert m1.level is None and m1.leaves == 0 and m2.leaves == 8


def test_cancel_is_lazy_and_compacts() -> None:
    b = OrderBook("X")
    orders = [rest(b, order(SELL, 100, 1)) for _ in range(40)]
    lvl = b.asks.levels[100]
    for o in orders[:10]:
        b.remove(o)
    # removed orders are unlinked at once but stay in the deque as dead entries
    assert lvl.count == 30 and lvl.dead == 10 and len(lvl.orders) == 40 and lvl.qty == 30
    assert all(o.level is None and o.visible == 0 for o in orders[:10])
    assert [o.id for o in lvl.live()] == [o.id for o in orders[10:]]
    # matching skips (and drops) the dead entries at the front
    _, out = take(b, BUY, 100, 1)
    assert summary(out) == [(M_FILL_DONE, orders[10].id, 100, 1)]
    assert lvl.dead == 0 and len(lvl.orders) == 29
    # when dead entries outnumber the live ones (and are more than 16) the deque is swept:
    # with 29 live, at the 17th removal
    lengths = []
    for o in orders[11:35]:
        b.remove(o)
        lengths.append(len(lvl.orders))
    assert lengths[:16] == [29] * 16 and lengths[16] == 12
    assert (lvl.count, lvl.dead, len(lvl.orders)) == (5, 7, 12)
    assert [o.id for o in lvl.live()] == [o.id for o in orders[35:]]
    # removing the last live order drops the level
    for o in orders[35:]:
        b.remove(o)
    assert 100 not in b.asks.levels and b.best_ask() is None


def test_cancel_in_the_middle_keeps_fifo() -> None:
    b = OrderBook("X")
    m = [rest(b, order(BUY, 50, 2)) for _ in range(5)]
    b.remove(m[2])
    b.remove(m[0])
    assert level_ids(b, BUY, 50) == [m[1].id, m[3].id, m[4].id]
    _, out = take(b, SELL, 50, 5)
    assert summary(out) == [(M_FILL_DONE, m[1].id, 50, 2), (M_FILL_DONE, m[3].id, 50, 2), (M_FILL, m[4].id, 50, 1)]


def test_iceberg_refills_to_the_back() -> None:
    b = OrderBook("X")
    ice = rest(b, order(SELL, 100, 10, display=3))
    other = rest(b, order(SELL, 100, 2))
    assert b.depth(SELL) == [(100, 5, 2)]  # only the shown part counts
    _, out = take(b, BUY, 100, 3)
    # the shown 3 filled: refilled with 3 more and sent behind `other`
    assert [(k, m.id, q, leaves, vis) for k, m, _, q, leaves, vis in out] == [(M_FILL_REQUEUE, ice.id, 3, 7, 3)]
    assert level_ids(b, SELL, 100) == [other.id, ice.id]
    assert other.qpos < ice.qpos
    _, out = take(b, BUY, 100, 4)
    assert [(k, m.id, q, leaves, vis) for k, m, _, q, leaves, vis in out] == [
        (M_FILL_DONE, other.id, 2, 0, 0), (M_FILL, ice.id, 2, 5, 1)]
    # an iceberg alone at its level keeps refilling within one match
    t, out = take(b, BUY, 100, 6)
    assert [(k, q, leaves, vis) for k, _, _, q, leaves, vis in out] == [
        (M_FILL_REQUEUE, 1, 4, 3), (M_FILL_REQUEUE, 3, 1, 1), (M_FILL_DONE, 1, 0, 0)]
    assert b.best_ask() is None and t.leaves == 1


def test_reduce_keeps_priority() -> None:
    b = OrderBook("X")
    m1 = rest(b, order(SELL, 100, 10))
    m2 = rest(b, order(SELL, 100, 10))
    b.reduce(m1, 4)
    assert level_ids(b, SELL, 100) == [m1.id, m2.id] and (m1.leaves, m1.visible) == (4, 4)
    assert b.depth(SELL) == [(100, 14, 2)]
    ice = rest(b, order(SELL, 100, 10, display=5))
    b.reduce(ice, 7)  # still shows 5 of 7
    assert (ice.leaves, ice.visible) == (7, 5)
    b.reduce(ice, 2)
    assert (ice.leaves, ice.visible) == (2, 2) and b.depth(SELL) == [(100, 16, 3)]


def test_stale_heap_keys_are_skipped_and_reused() -> None:
    b = OrderBook("X")
    o = rest(b, order(SELL, 100, 1))
    rest(b, order(SELL, 105, 1))
    b.remove(o)  # the level goes, its key stays in the heap
    assert 100 in b.asks.heap and 100 not in b.asks.levels
    assert b.best_ask() == 105  # the stale top is popped on the way
    assert 100 not in b.asks.heap
    # a stale key that is still in the heap is not pushed twice when its level returns
    o2 = rest(b, order(SELL, 103, 1))
    b.remove(o2)
    assert b.asks.heap.count(103) == 1
    rest(b, order(SELL, 103, 1))
    assert b.asks.heap.count(103) == 1 and b.best_ask() == 103
    # matching never trusts a stale top either
    b.remove(b.asks.levels[103].live()[0])
    assert b.asks.heap[0] == 103
    t, out = take(b, BUY, 104, 1)
    assert out == [] and t.leaves == 1
    t, out = take(b, BUY, 105, 1)
    assert summary(out)[0][2:] == (105, 1)


def test_heap_is_rebuilt_when_stale_keys_pile_up() -> None:
    b = OrderBook("X")
    keep = rest(b, order(BUY, 1, 1))
    for p in range(1000, 1200):
        b.remove(rest(b, order(BUY, p, 1)))
    assert len(b.bids.heap) <= 2 * len(b.bids.levels) + 65
    assert b.bids.inheap == set(b.bids.heap)
    assert b.best_bid() == 1 and keep.level is not None


def test_self_trade_records() -> None:
    def setup() -> tuple[OrderBook, Order, Order, Order]:
        b = OrderBook("X")
        other1 = rest(b, order(SELL, 100, 2, acct=CAROL))
        own = rest(b, order(SELL, 100, 3, acct=BOB))
        other2 = rest(b, order(SELL, 101, 5, acct=CAROL))
        return b, other1, own, other2

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 10, stp=STP_CN)
    assert summary(out) == [(M_FILL_DONE, o1.id, 100, 2), (M_STP_TAKER, t.id, 0, 0)]
    assert own.level is not None and t.leaves == 8

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 10, stp=STP_CO)
    assert summary(out) == [(M_FILL_DONE, o1.id, 100, 2), (M_STP_MAKER, own.id, 100, 0), (M_FILL_DONE, o2.id, 101, 5)]
    assert own.level is None and own.leaves == 3 and t.leaves == 3

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 10, stp=STP_CB)
    assert summary(out) == [(M_FILL_DONE, o1.id, 100, 2), (M_STP_MAKER, own.id, 100, 0), (M_STP_TAKER, t.id, 0, 0)]
    assert b.best_ask() == 101 and 100 not in b.asks.levels

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 4, stp=STP_DC)
    assert [(k, m.id, q, leaves) for k, m, _, q, leaves, _ in out] == [(M_FILL_DONE, o1.id, 2, 0), (M_STP_DECREMENT, own.id, 2, 1)]
    assert t.leaves == 0 and own.leaves == 1 and own.visible == 1 and own.level is not None

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 10, stp=STP_DC)
    assert [(k, m.id, q, leaves) for k, m, _, q, leaves, _ in out] == [
        (M_FILL_DONE, o1.id, 2, 0), (M_STP_DECREMENT, own.id, 3, 0), (M_FILL_DONE, o2.id, 5, 0)]
    assert own.level is None and t.leaves == 0

    b, o1, own, o2 = setup()
    t, out = take(b, BUY, 101, 10, stp=STP_NONE)
    assert summary(out) == [(M_FILL_DONE, o1.id, 100, 2), (M_FILL_DONE, own.id, 100, 3), (M_FILL_DONE, o2.id, 101, 5)]


def test_fillable_counts_hidden_quantity_and_self_trade_prevention() -> None:
    b = OrderBook("X")
    rest(b, order(SELL, 100, 10, acct=CAROL, display=2))
    rest(b, order(SELL, 101, 5, acct=BOB))
    rest(b, order(SELL, 102, 5, acct=CAROL))
    assert b.fillable(order(BUY, 100, 10, BOB), 100)
    assert not b.fillable(order(BUY, 100, 11, BOB), 100)
    assert not b.fillable(order(BUY, 102, 11, BOB, stp=STP_CN), 102)  # own order at 101 stops it
    assert b.fillable(order(BUY, 102, 15, BOB, stp=STP_CO), 102)  # own order would be cancelled
    assert not b.fillable(order(BUY, 102, 16, BOB, stp=STP_CO), 102)
    assert b.fillable(order(BUY, 102, 20, BOB, stp=STP_NONE), 102)
    assert not b.fillable(order(BUY, 102, 11, BOB, stp=STP_DC), 102)


def test_fillable_knows_that_an_iceberg_refill_goes_behind_an_own_order() -> None:
    """An iceberg ahead of the taker's own order shows only its display before the own
    order is reached: a fill-or-kill must not count its hidden part."""
    b = OrderBook("X")
    rest(b, order(SELL, 100, 10, acct=CAROL, display=2))
    rest(b, order(SELL, 100, 5, acct=BOB))
    for stp in (STP_CN, STP_CB, STP_DC):
        assert b.fillable(order(BUY, 100, 2, BOB, stp=stp), 100)
        assert not b.fillable(order(BUY, 100, 3, BOB, stp=stp), 100)
    assert b.fillable(order(BUY, 100, 10, BOB, stp=STP_CO), 100)


def test_random_operations_against_a_list_model() -> None:
    """Rest, cancel and match at random; after each step the book equals a list model
    ordered by (price, arrival), and its counters agree with its contents."""
    rng = random.Random(7)
    b = OrderBook("X")
    model: dict[int, list[Order]] = {BUY: [], SELL: []}
    for _ in range(3000):
        r = rng.random()
        side = rng.choice((BUY, SELL))
        if r < 0.5:
            px = rng.randint(90, 100) if side == BUY else rng.randint(101, 111)
            model[side].append(rest(b, order(side, px, rng.randint(1, 5))))
        elif r < 0.8 and model[side]:
            o = model[side].pop(rng.randrange(len(model[side])))
            b.remove(o)
        else:
            opp = SELL if side == BUY else BUY
            limit = rng.randint(95, 106)
            t, out = take(b, side, limit, rng.randint(1, 12), acct=CAROL)
            # what the model says should have filled, in order
            queue = sorted(model[opp], key=lambda o: (o.price if opp == SELL else -o.price, o.qpos))
            for kind, m, px, q, _, _ in out:
                assert m is queue[0] and px == m.price
                if kind == M_FILL_DONE:
                    queue.pop(0)
            model[opp] = [o for o in model[opp] if o.level is not None]
        for s in (BUY, SELL):
            expect = sorted(model[s], key=lambda o: (-o.price if s == BUY else o.price, o.qpos))
            got = [o for o in b.iter_orders() if o.side == s]
            assert got == expect
            bs = b.bids if s == BUY else b.asks
            for lvl in bs.levels.values():
                live = lvl.live()
                assert lvl.count == len(live) > 0 and lvl.qty == sum(o.visible for o in live)
                assert len(lvl.orders) == lvl.count + lvl.dead
        bb, ba = b.best_bid(), b.best_ask()
        assert bb is None or ba is None or bb < ba
