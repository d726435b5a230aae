"""The ticker and the OHLCV bars agree with a naive computation over the engine's own
trades, at every interval, as event time moves on (no clock is read)."""
from __future__ import annotations

import pytest

from marketdata import INTERVALS, BadRequest, MarketData, UnknownSymbol, capture
from md_flow import ASK, BID, SYMBOLS, Flow, engine_levels
from venue.events import Trade

MIN = 60 * 10**9


def naive_bars(trades: list[Trade], span: int, mult: int) -> list[tuple]:
    bars: dict[int, list[int]] = {}
    for t in trades:
        start = t.ts - t.ts % span
        b = bars.get(start)
        if b is None:
            bars[start] = [start, t.price, t.price, t.price, t.price, t.qty, t.price * t.qty * mult, 1]
        else:
            b[2], b[3], b[4] = max(b[2], t.price), min(b[3], t.price), t.price
            b[5] += t.qty
            b[6] += t.price * t.qty * mult
            b[7] += 1
    return [tuple(b) for _, b in sorted(bars.items())]


def naive_ticker(trades: list[Trade], now: int) -> tuple:
    first = now - now % MIN - 1439 * MIN
    w = [t for t in trades if t.ts >= first]
    if not w:
        return (0, 0, 0, 0, 0, 0)
    return (w[0].price, max(t.price for t in w), min(t.price for t in w), sum(t.qty for t in w),
            sum(t.price * t.qty for t in w), len(w))


@pytest.mark.parametrize("seed, step_ns", [(1, 3 * 10**9), (2, 60 * 10**9), (3, 300 * 10**9)])
def test_bars_and_ticker_match_a_naive_computation(seed: int, step_ns: int) -> None:
    flow = Flow(seed, step_ns=step_ns)
    md = MarketData(bars_keep=100_000)
    md.load(capture(flow.engine))
    mult = md.instrument(SYMBOLS[0]).notional_mult
    for i in range(12):
        md.on_batch(list(flow.steps(150)))
        for sym in SYMBOLS:
            trades = [t for t in flow.trades if t.symbol == sym]
            for name, span in INTERVALS.items():
                got = [tuple(b[1:]) for b in md.bars(sym, name)]
                assert got == naive_bars(trades, span, mult), (sym, name, i)
                assert all(b.interval == name for b in md.bars(sym, name, limit=3))
                assert len(md.bars(sym, name, limit=3)) == min(3, len(got))
            tk = md.ticker(sym)
            assert tk.ts == flow.engine.ts
            o, h, lo, v, qv_ticks_lots, n = naive_ticker(trades, flow.engine.ts)
            assert (tk.open, tk.high, tk.low, tk.volume, tk.quote_volume, tk.trades) == (o, h, lo, v, qv_ticks_lots * mult, n)
            last = trades[-1] if trades else None
            assert (tk.last_px, tk.last_qty) == ((last.price, last.qty) if last else (0, 0))
            assert tk.change == (tk.last_px - o if n else 0)
            bids, asks = engine_levels(flow.engine, sym, BID, 1), engine_levels(flow.engine, sym, ASK, 1)
            assert tk.bid == (bids[0] if bids else None) and tk.ask == (asks[0] if asks else None)
            assert [t.trade_id for t in md.tape(sym, 5)] == [f"{t.seq}-{t.trade_n}" for t in trades[-5:]]
    assert len(flow.trades) > 300


def test_the_ticker_window_slides_with_event_time_only() -> None:
    flow = Flow(4)
    md = MarketData()
    md.load(capture(flow.engine))
    for _ in range(100):  # until the last 24 hours hold trades (the flow lets whole days pass)
        md.on_batch(list(flow.steps(20)))
        tk = md.ticker(SYMBOLS[0])
        if tk.trades:
            break
    now = flow.engine.ts
    assert tk.trades > 0 and tk.volume > 0
    assert md.ticker(SYMBOLS[0]) == tk  # no wall clock: asking again changes nothing
    later = md.ticker(SYMBOLS[0], now_ts=now + 25 * 3600 * 10**9)
    assert (later.trades, later.volume, later.open) == (0, 0, 0)
    assert later.last_px == tk.last_px


def test_bad_queries() -> None:
    flow = Flow(5)
    md = MarketData()
    md.load(capture(flow.engine))
    with pytest.raises(BadRequest):
        md.bars(SYMBOLS[0], "7m")
    with pytest.raises(UnknownSymbol):
        md.ticker("NOPE")
    with pytest.raises(UnknownSymbol):
        md.tape("NOPE")
