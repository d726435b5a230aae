"""A seeded random order flow for market-data tests, run against the real engine.

Every order type and path that moves the book: passive and aggressive limits, icebergs,
post-only, IOC, FOK, market orders, stops and stop-limits (which only enter the book when
triggered), GTD and Day orders that expire on a Tick, cancels, amends that keep their
place (a smaller quantity) and amends that lose it (new price, larger quantity), mass
cancels, halts with and without cancelling the book, resumes, and self-trade prevention
in every mode (a few accounts trade against themselves on purpose).
"""
from __future__ import annotations

import random
from typing import Any, Iterator

from marketdata.messages import ASK, BID, BookOrder, PriceLevel
from venue import commands as C
from venue.engine import Engine
from venue.events import Trade
from venue.genesis import genesis_commands
from venue.instruments import DEFAULT_ASSETS, Instrument
from venue.sequencer import Processed
from venue.types import BUY, DAY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT, WAITING_TRIGGER

SYMBOLS = ("MD-USD", "MX-USD")
MID = 10_000  # ticks
ACCOUNTS = ("A0", "A1", "A2", "A3", "B0", "B1")
T0 = 1_700_000_000_000_000_000


def instruments() -> list[Instrument]:
    a = {x.code: x for x in DEFAULT_ASSETS}
    return [Instrument.create(s, a["BTC"], a["USD"], "0.01", "0.001", "0.001", "1000", "0.00000001", "1000000000")
            for s in SYMBOLS]


def setup_commands() -> list[Any]:
    cmds: list[Any] = genesis_commands(instruments=instruments())
    cmds += [C.CreateFirm("FA"), C.CreateFirm("FB")]
    for i, acct in enumerate(ACCOUNTS):
        cmds.append(C.CreateAccount(acct, "FA" if acct[0] == "A" else "FB", 1, 100, 500, stp=1 + i % 5))
        cmds.append(C.Deposit(f"u-{acct}", acct, "USD", 10**20))
        cmds.append(C.Deposit(f"b-{acct}", acct, "BTC", 10**16))
    return cmds


class Flow:
    """Drives an engine: ``step()`` builds, processes and returns one command's outcome."""

    def __init__(self, seed: int, engine: Engine | None = None, step_ns: int = 3_000_000_000) -> None:
        self.rng = random.Random(seed)
        self.step_ns = step_ns  # the most time that passes between two commands
        self.engine = engine or Engine()
        self.ts = T0
        self.n = 0
        self.trades: list[Trade] = []
        self.setup: list[Processed] = [self.process(c) for c in setup_commands()]

    def process(self, cmd: Any) -> Processed:
        e = self.engine
        self.ts += self.rng.randint(1, self.step_ns)
        seq = e.seq + 1
        events = e.process(seq, self.ts, cmd)
        self.trades += [ev for ev in events if type(ev) is Trade]
        return Processed(seq, self.ts, cmd, events, None)

    def step(self) -> Processed:
        return self.process(self.command())

    def steps(self, n: int) -> Iterator[Processed]:
        for _ in range(n):
            yield self.step()

    # -- the flow --------------------------------------------------------------------
    def _clid(self) -> str:
        self.n += 1
        return f"c{self.n}"

    def _price(self, sym: str, side: int, aggressive: bool) -> int:
        book = self.engine.markets[sym].book
        bb, ba = book.best_bid(), book.best_ask()
        r = self.rng
        if aggressive:
            ref = (ba if side == BUY else bb) or MID
            return max(1, ref + (r.randint(0, 3) if side == BUY else -r.randint(0, 3)))
        if side == BUY:
            ref = (ba - 1) if ba is not None else (bb or MID - 1)
            return max(1, ref - r.randint(0, 12))
        ref = (bb + 1) if bb is not None else (ba or MID + 1)
        return ref + r.randint(0, 12)

    def _open(self, sym: str | None = None) -> list[Any]:
        return [o for oid, o in sorted(self.engine.orders.items()) if sym is None or o.info.symbol == sym]

    def command(self) -> Any:
        r = self.rng
        sym = SYMBOLS[0] if r.random() < 0.8 else SYMBOLS[1]
        mkt = self.engine.markets[sym]
        acct = r.choice(ACCOUNTS)
        side = r.choice((BUY, SELL))
        stp = r.choice((0, 0, 1, 2, 3, 4))
        x = r.random()
        if mkt.halted and x < 0.7:
            return C.Resume(sym, "resumed")
        if x < 0.36:
            return C.NewOrder(acct, self._clid(), sym, side, LIMIT, r.randint(1, 40), self._price(sym, side, False), stp=stp)
        if x < 0.43:
            q = r.randint(10, 60)
            return C.NewOrder(acct, self._clid(), sym, side, LIMIT, q, self._price(sym, side, r.random() < 0.3),
                              display_qty=r.randint(1, q // 3), stp=stp)
        if x < 0.46:
            return C.NewOrder(acct, self._clid(), sym, side, LIMIT, r.randint(1, 30), self._price(sym, side, r.random() < 0.3),
                              post_only=True, stp=stp)
        if x < 0.53:
            return C.NewOrder(acct, self._clid(), sym, side, LIMIT, r.randint(1, 60), self._price(sym, side, True),
                              tif=r.choice((IOC, FOK, GTC)), stp=stp)
        if x < 0.555:
            return C.NewOrder(acct, self._clid(), sym, side, MARKET, r.randint(1, 50), tif=r.choice((IOC, FOK)), stp=stp)
        if x < 0.61:
            last = mkt.last_px or MID
            stop_px = last + r.randint(1, 6) if side == BUY else max(1, last - r.randint(1, 6))
            if r.random() < 0.5:
                return C.NewOrder(acct, self._clid(), sym, side, STOP, r.randint(1, 30), stop_px=stop_px, stp=stp)
            px = stop_px + r.randint(-3, 3)
            return C.NewOrder(acct, self._clid(), sym, side, STOP_LIMIT, r.randint(1, 30), max(1, px), stop_px=stop_px,
                              display_qty=r.choice((0, 0, 2)), stp=stp)
        if x < 0.66:
            tif = r.choice((GTD, DAY))
            exp = self.ts + r.randint(1, 20) * 1_000_000_000 if tif == GTD else 0
            return C.NewOrder(acct, self._clid(), sym, side, LIMIT, r.randint(1, 30), self._price(sym, side, False),
                              tif=tif, expire_ts=exp, stp=stp)
        opened = self._open(sym)
        if x < 0.76 and opened:
            o = r.choice(opened)
            return C.CancelOrder(o.acct.id, self._clid(), order_id=o.id)
        if x < 0.88 and opened:
            o = r.choice(opened)
            y = r.random()
            if o.status == WAITING_TRIGGER and y < 0.3:
                last = mkt.last_px or MID
                sp = last + r.randint(1, 6) if o.side == BUY else max(1, last - r.randint(1, 6))
                return C.AmendOrder(o.acct.id, self._clid(), order_id=o.id, stop_px=sp)
            if y < 0.45 and o.ord_type in (LIMIT, STOP_LIMIT):  # new price: loses its place (may trade)
                return C.AmendOrder(o.acct.id, self._clid(), order_id=o.id,
                                    price=self._price(sym, o.side, r.random() < 0.3))
            if y < 0.75 and o.leaves > 1:  # smaller: keeps its place
                return C.AmendOrder(o.acct.id, self._clid(), order_id=o.id, qty=o.qty - r.randint(1, o.leaves - 1))
            return C.AmendOrder(o.acct.id, self._clid(), order_id=o.id, qty=o.qty + r.randint(1, 10))  # larger: loses it
        if x < 0.885:
            return C.MassCancel(self._clid(), account=acct if r.random() < 0.5 else "", symbol=sym,
                                side=r.choice((0, BUY, SELL)))
        if x < 0.895:
            return C.Halt(sym, cancel_book=r.random() < 0.3, reason="test halt")
        if x < 0.97:
            self.ts += r.randint(1, 25) * 1_000_000_000
            return C.Tick()
        if x < 0.975:
            self.ts += 86_400 * 1_000_000_000  # a day passes: Day orders expire
            return C.Tick()
        return C.NewOrder(acct, self._clid(), sym, side, LIMIT, r.randint(1, 40), self._price(sym, side, False), stp=stp)


# -- the engine's own book, for comparisons ------------------------------------------
def engine_levels(engine: Engine, sym: str, side: int, depth: int = 0) -> list[PriceLevel]:
    book = engine.markets[sym].book
    levels = (book.bids if side == BID else book.asks).sorted_levels()
    if depth:
        levels = levels[:depth]
    return [PriceLevel(lv.price, lv.qty, lv.count) for lv in levels]


def engine_orders(engine: Engine, sym: str, side: int) -> list[BookOrder]:
    book = engine.markets[sym].book
    side_obj = book.bids if side == BID else book.asks
    return [BookOrder(o.id, o.side, lv.price, o.visible) for lv in side_obj.sorted_levels() for o in lv.live()]


__all__ = ["Flow", "SYMBOLS", "engine_levels", "engine_orders", "BID", "ASK"]
