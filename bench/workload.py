"""The seeded benchmark workload of the core issue.

A warm book of ``warm`` passive orders, then ``n`` commands: 60% passive limits within
10 ticks of the touch, 25% cancels of random resting orders, 15% aggressive limits 0-2
ticks through the touch. The stream is generated once (untimed) against the reference
book so that every implementation replays the very same commands; cancels always name an
order that rests at that point of the stream.
"""
from __future__ import annotations

import random
from typing import NamedTuple

from bench.reference_book import BUY, SELL, ReferenceBook

LIMIT, CANCEL = 0, 1
MID = 5_000_000  # 50,000.00 in 0.01 ticks


class Op(NamedTuple):
    kind: int  # LIMIT or CANCEL
    oid: int
    side: int
    price: int
    qty: int
    account: int


class Workload(NamedTuple):
    warm: list[Op]
    ops: list[Op]


def generate(n: int = 200_000, warm: int = 10_000, seed: int = 7, accounts: int = 100) -> Workload:
    rng = random.Random(seed)
    book = ReferenceBook()
    resting: list[int] = []
    where: dict[int, int] = {}

    def rest_add(oid: int) -> None:
        where[oid] = len(resting)
        resting.append(oid)

    def rest_remove(oid: int) -> None:
        i = where.pop(oid)
        last = resting.pop()
        if last != oid:
            resting[i] = last
            where[last] = i

    next_id = 1
    half = accounts // 2

    def passive(oid: int) -> Op:
        side = BUY if rng.random() < 0.5 else SELL
        bb, ba = book.best_bid(), book.best_ask()
        off = rng.randint(0, 9)
        if side == BUY:
            ref = ba - 1 if ba is not None else (bb if bb is not None else MID - 1)
            price = ref - off
        else:
            ref = bb + 1 if bb is not None else (ba if ba is not None else MID + 1)
            price = ref + off
        return Op(LIMIT, oid, side, price, rng.randint(1, 50), account_for(side))

    def account_for(side: int) -> int:
        # Buyers and sellers come from disjoint halves so that self-trade prevention is
        # checked on every fill but never fires: the reference book has no STP.
        return rng.randrange(half) if side == BUY else half + rng.randrange(accounts - half)

    def aggressive(oid: int) -> Op:
        side = BUY if rng.random() < 0.5 else SELL
        bb, ba = book.best_bid(), book.best_ask()
        through = rng.randint(0, 2)
        if side == BUY:
            price = (ba if ba is not None else MID) + through
        else:
            price = (bb if bb is not None else MID) - through
        return Op(LIMIT, oid, side, price, rng.randint(1, 50), account_for(side))

    def apply(op: Op) -> None:
        if op.kind == CANCEL:
            book.cancel(op.oid)
            rest_remove(op.oid)
            return
        fills = book.limit(op.oid, op.side, op.price, op.qty)
        for maker_id, _px, _q in fills:
            if maker_id not in book.orders:
                rest_remove(maker_id)
        if op.oid in book.orders:
            rest_add(op.oid)

    warm_ops = []
    for _ in range(warm):
        op = passive(next_id)
        next_id += 1
        apply(op)
        warm_ops.append(op)
    ops = []
    for _ in range(n):
        r = rng.random()
        if r < 0.60 or (r < 0.85 and not resting):
            op = passive(next_id)
            next_id += 1
        elif r < 0.85:
            oid = resting[rng.randrange(len(resting))]
            o = book.orders[oid]
            op = Op(CANCEL, oid, o.side, o.price, 0, 0)
        else:
            op = aggressive(next_id)
            next_id += 1
        apply(op)
        ops.append(op)
    return Workload(warm_ops, ops)
