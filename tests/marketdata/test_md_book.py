"""The market-data books equal the engine's own book (levels, shown quantities, FIFO
order) after every command of random seeded flows of every order type."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from marketdata import Book, FeedSpec, MarketData, capture
from md_flow import ASK, BID, SYMBOLS, Flow, engine_levels, engine_orders
from venue.events import Execution
from venue.types import BookEffect


def assert_same_book(md: MarketData, flow: Flow, where: str) -> None:
    for sym in SYMBOLS:
        snap = md.snapshot(FeedSpec(sym, Book.L3))
        assert snap.seq == flow.engine.seq, where
        assert list(snap.bids) == engine_levels(flow.engine, sym, BID), f"{where}: {sym} bids"
        assert list(snap.asks) == engine_levels(flow.engine, sym, ASK), f"{where}: {sym} asks"
        assert list(snap.orders) == engine_orders(flow.engine, sym, BID) + engine_orders(flow.engine, sym, ASK), \
            f"{where}: {sym} orders"
        assert snap.halted == flow.engine.markets[sym].halted


@pytest.mark.parametrize("seed", range(6))
def test_books_follow_the_engine_at_every_command(seed: int) -> None:
    flow = Flow(seed)
    md = MarketData()
    md.on_batch(flow.setup)  # not loaded yet: ignored
    md.load(capture(flow.engine))
    effects: Counter[int] = Counter()
    for i, p in enumerate(flow.steps(1500)):
        effects.update(ev.book for ev in p.events if type(ev) is Execution)
        md.on_batch([p])
        assert_same_book(md, flow, f"seed {seed} step {i} {type(p.cmd).__name__}")
    # the flow really exercised every kind of book change
    for fx in (BookEffect.ADD, BookEffect.UPDATE, BookEffect.REMOVE, BookEffect.REQUEUE):
        assert effects[fx] > 5, (fx, effects)
    assert len(flow.trades) > 100


@pytest.mark.parametrize("seed", range(3))
def test_books_follow_the_engine_over_batches_of_commands(seed: int) -> None:
    flow = Flow(100 + seed)
    md = MarketData()
    md.load(capture(flow.engine))
    rng = random.Random(seed)
    for i in range(150):
        md.on_batch(list(flow.steps(rng.randint(1, 30))))
        assert_same_book(md, flow, f"seed {seed} batch {i}")


def test_loading_mid_flow_then_following() -> None:
    flow = Flow(42)
    for _ in flow.steps(700):
        pass
    md = MarketData()
    md.load(capture(flow.engine))
    assert_same_book(md, flow, "after load")
    for i, p in enumerate(flow.steps(300)):
        md.on_batch([p])
    assert_same_book(md, flow, "after following")


def test_a_batch_already_applied_is_skipped() -> None:
    flow = Flow(7)
    md = MarketData()
    md.load(capture(flow.engine))
    batch = list(flow.steps(50))
    md.on_batch(batch)
    md.on_batch(batch[10:])  # a listener sees the same batch again (e.g. after a load race)
    assert_same_book(md, flow, "after a repeated batch")
