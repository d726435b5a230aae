"""The engine against the naive reference matcher (tests/venue/naive.py) over seeded
random commands: limit (GTC/IOC/FOK), market with its band, post-only, iceberg, every
self-trade mode, amends and cancels. Per command: the same fills (maker, taker, price,
quantity, in order), the same refusals and the same cancelled orders. At checkpoints and
at the end: the same resting book, level by level in FIFO order with leaves and visible,
and the engine's invariants plus the independent checks of tests/venue/checks.py."""
from __future__ import annotations

import random
from typing import Any

import pytest

from venue import commands as C
from venue.engine import Engine
from venue.events import CancelRejected, Execution, OrderRejected, Trade
from venue.instruments import Asset, Instrument
from venue.types import BookEffect, ExecKind, STP

from tests.venue import naive as N
from tests.venue.checks import Observer

SYM = "X-Y"
ACCOUNTS = {"a0": int(STP.CANCEL_NEWEST), "a1": int(STP.CANCEL_OLDEST), "a2": int(STP.CANCEL_BOTH),
            "a3": int(STP.DECREMENT), "a4": int(STP.NONE)}
FEES = {"a0": (100, 500), "a1": (-200, 400), "a2": (0, 0), "a3": (-50, 50), "a4": (300, 300)}
COMMANDS = 100_000
CHECK_EVERY = 5_000


def setup_commands() -> tuple[list[Any], Instrument]:
    x, y = Asset("X", 0), Asset("Y", 0)
    inst = Instrument.create(SYM, x, y, "1", "1", "1", "1000000", "1", "1000000000000")
    cmds: list[Any] = [C.DefineAsset("X", 0), C.DefineAsset("Y", 0), C.DefineInstrument(inst.to_record()),
                       C.CreateFirm("F")]
    for aid, stp in ACCOUNTS.items():
        maker, taker = FEES[aid]
        cmds += [C.CreateAccount(aid, "F", 1, maker, taker, stp),
                 C.Deposit(f"x-{aid}", aid, "X", 10**15), C.Deposit(f"y-{aid}", aid, "Y", 10**15)]
    return cmds, inst


class Driver:
    """Feeds one command to both matchers and compares what they did."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = Engine()
        self.obs = Observer(self.engine)
        self.mid = 1000
        self.owner: dict[int, str] = {}
        self.ts = 1
        self.stats = {"fills": 0, "refused": 0, "cancelled": 0, "decremented": 0}
        cmds, inst = setup_commands()
        for c in cmds:
            assert self.engine_do(c) == N.Outcome()
        self.naive = N.NaiveBook(inst.market_band_ppm, ACCOUNTS)

    # -- one command to both -------------------------------------------------------------
    def engine_do(self, cmd: Any) -> N.Outcome:
        self.ts += 1
        events = self.engine.process(self.engine.seq + 1, self.ts, cmd)
        self.obs.feed(events)
        out = N.Outcome()
        for e in events:
            if type(e) is Trade:
                out.fills.append((e.maker_order_id, e.taker_order_id, e.price, e.qty))
            elif type(e) is OrderRejected or type(e) is CancelRejected:
                out.refused = True
            elif type(e) is Execution:
                if e.kind == ExecKind.CANCELLED:
                    out.cancelled.append(e.info.order_id)
                elif e.kind == ExecKind.RESTATED and e.book == BookEffect.UPDATE:  # a maker (a taker's is not in the book)
                    out.decremented.append(e.info.order_id)
        return out

    def step(self, i: int) -> None:
        rng = self.rng
        open_ids = [o.id for o in self.naive.resting]
        r = rng.random()
        cancel_rate = 0.12 if len(open_ids) < 150 else 0.45
        if open_ids and r < cancel_rate:
            oid = rng.choice(open_ids)
            acct = self.owner[oid] if rng.random() < 0.95 else rng.choice(list(ACCOUNTS))
            if rng.random() < 0.03:
                oid = rng.randint(1, self.engine.seq)  # maybe closed, maybe unknown
            self.compare(C.CancelOrder(acct, f"x{i}", order_id=oid), self.naive.cancel(acct, oid), i)
            return
        if open_ids and r < cancel_rate + 0.12:
            oid = rng.choice(open_ids)
            acct = self.owner[oid]
            o = self.naive.find(acct, oid)
            assert o is not None
            choice = rng.random()
            qty = price = 0
            if choice < 0.35:
                qty = max(1, o.qty - rng.randint(1, 5))  # a decrease (or at/below filled: refused)
            elif choice < 0.55:
                qty = o.qty + rng.randint(1, 5)
            else:
                step = rng.randint(-4, 4) or 1
                price = max(1, o.price + step * (1 if o.side == N.BUY else -1))
                if rng.random() < 0.3:
                    qty = max(1, o.qty + rng.randint(-3, 3))
            self.compare(C.AmendOrder(acct, "", order_id=oid, qty=qty, price=price),
                         self.naive.amend(acct, oid, qty, price), i)
            return
        # a new order
        if rng.random() < 0.02:
            self.mid = max(100, self.mid + rng.choice((-7, 7)))  # the market drifts
        acct = rng.choice(list(ACCOUNTS))
        side = rng.choice((N.BUY, N.SELL))
        sign = 1 if side == N.BUY else -1
        kind = rng.random()
        ord_type, tif, price, post_only, display = N.LIMIT, N.GTC, 0, False, 0
        qty = rng.choice((1, 1, 2, 3, 5, 8, 13, 20, 40))
        if kind < 0.06:
            ord_type, tif = N.MARKET, (N.FOK if rng.random() < 0.3 else N.IOC)
        else:
            aggressive = rng.random() < 0.3
            offset = rng.randint(0, 5) if aggressive else -rng.randint(0, 12)
            price = max(1, self.mid + sign * offset)
            r2 = rng.random()
            if r2 < 0.08:
                tif = N.IOC
            elif r2 < 0.14:
                tif = N.FOK
            elif r2 < 0.24:
                post_only = True
            elif r2 < 0.36 and qty > 1:
                display = rng.randint(1, qty - 1)
        stp = rng.choice((0, 0, 0, 0, 1, 2, 3, 4, 5))
        oid = self.engine.seq + 1
        self.owner[oid] = acct
        cmd = C.NewOrder(acct, f"c{oid}", SYM, side, ord_type, qty, price=price, tif=tif, post_only=post_only,
                         display_qty=display, stp=stp)
        self.compare(cmd, self.naive.new_order(oid, acct, side, ord_type, qty, price, tif, post_only, display, stp), i)

    def compare(self, cmd: Any, expected: N.Outcome, i: int) -> None:
        got = self.engine_do(cmd)
        assert got == expected, f"command {i} {cmd}:\n engine {got}\n naive  {expected}"
        self.stats["fills"] += len(got.fills)
        self.stats["refused"] += got.refused
        self.stats["cancelled"] += len(got.cancelled)
        self.stats["decremented"] += len(got.decremented)

    def check_books(self) -> None:
        book = self.engine.markets[SYM].book
        for side in (N.BUY, N.SELL):
            bs = book.bids if side == N.BUY else book.asks
            mine = [(lvl.price, [(o.id, o.leaves, o.visible) for o in lvl.live()]) for lvl in bs.sorted_levels()]
            assert mine == self.naive.levels(side)
        self.engine.check_invariants()
        self.obs.check()


@pytest.mark.parametrize("seed", [20261122])
def test_engine_matches_the_naive_reference(seed: int) -> None:
    d = Driver(seed)
    for i in range(COMMANDS):
        d.step(i)
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            d.check_books()
    d.check_books()
    # the run exercised what it claims to compare
    assert d.stats["fills"] > 20_000 and d.stats["refused"] > 1_000
    assert d.stats["cancelled"] > 10_000 and d.stats["decremented"] > 100, d.stats
    assert len(d.naive.resting) > 20
