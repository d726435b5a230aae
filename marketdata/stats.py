"""Trade statistics: OHLCV bars at the standard intervals and the 24-hour ticker.

Everything is computed from trades and the venue's event timestamps (the sequencer's
stamps); nothing here reads a clock, so replaying the same events gives the same bars.

Bars are aligned to the Unix epoch in UTC (a day bar starts at 00:00 UTC). Only the
one-minute series is updated per trade; a longer bar absorbs each one-minute bar when
it closes, and the bar still open is merged in when read. A period without trades has
no bar. The 24-hour window of the ticker has one-minute granularity: it covers the
current minute and the 1,439 before it (the minute of "now", the latest event time).

Prices are ticks, volumes lots, quote volumes quote-asset atoms; the edges format them.
"""
from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from marketdata.errors import BadRequest
from marketdata.messages import PriceLevel

MINUTE_NS = 60 * 1_000_000_000
INTERVALS: dict[str, int] = {
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "1h": 60 * MINUTE_NS,
    "4h": 240 * MINUTE_NS,
    "1d": 1440 * MINUTE_NS,
}
WINDOW_MINUTES = 1440


class Bar(NamedTuple):
    interval: str
    start_ts: int  # ns, the period's start
    open: int
    high: int
    low: int
    close: int
    volume: int  # lots
    quote_volume: int  # quote atoms
    trades: int


class Ticker(NamedTuple):
    symbol: str
    ts: int  # the event time it was computed at
    last_px: int  # 0 = no trade yet
    last_qty: int
    bid: PriceLevel | None
    ask: PriceLevel | None
    open: int  # of the 24-hour window; 0 if it holds no trade
    high: int
    low: int
    volume: int
    quote_volume: int
    change: int  # last - open, ticks (0 without trades in the window)
    trades: int


class _Series:
    """One interval's bars: the closed ones (bounded) and the one still open, each a
    mutable [start, open, high, low, close, volume, quote_volume, trades]."""

    __slots__ = ("name", "span", "closed", "cur")

    def __init__(self, name: str, span: int, keep: int) -> None:
        self.name = name
        self.span = span
        self.closed: deque[list[int]] = deque(maxlen=keep)
        self.cur: list[int] | None = None

    def absorb(self, b: list[int]) -> None:
        """Merge a one-minute bar (or a single trade shaped as one) into this series."""
        start = b[0] - b[0] % self.span
        cur = self.cur
        if cur is None or start != cur[0]:
            if cur is not None:
                self.closed.append(cur)
            self.cur = [start, b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
            return
        if b[2] > cur[2]:
            cur[2] = b[2]
        if b[3] < cur[3]:
            cur[3] = b[3]
        cur[4] = b[4]
        cur[5] += b[5]
        cur[6] += b[6]
        cur[7] += b[7]


def _open_bars(cur: list[int] | None, minute: list[int] | None, span: int) -> list[list[int]]:
    """The bars of a longer series not yet closed: its open bar with the still-open minute
    merged in (or followed by it, when the minute began a new period)."""
    if minute is None:
        return [cur] if cur is not None else []
    start = minute[0] - minute[0] % span
    if cur is None:
        return [[start] + minute[1:]]
    if cur[0] != start:
        return [cur, [start] + minute[1:]]
    return [[start, cur[1], max(cur[2], minute[2]), min(cur[3], minute[3]), minute[4], cur[5] + minute[5],
             cur[6] + minute[6], cur[7] + minute[7]]]


class TradeStats:
    """Bars and ticker inputs of one instrument."""

    __slots__ = ("symbol", "mult", "minutes", "longer", "last", "keep")

    def __init__(self, symbol: str, notional_mult: int, keep: int = 1500) -> None:
        self.symbol = symbol
        self.mult = notional_mult  # quote atoms per tick x lot
        self.keep = keep
        self.minutes = _Series("1m", MINUTE_NS, max(keep, WINDOW_MINUTES + 1))
        self.longer = [_Series(n, s, keep) for n, s in INTERVALS.items() if s != MINUTE_NS]
        self.last: Any = None  # the last trade added

    def add(self, t: Any) -> None:
        """Count one trade: anything with ``ts``, ``price`` and ``qty`` (the engine's Trade
        event or a TradePrint)."""
        m = self.minutes
        cur = m.cur
        px, q, ts = t.price, t.qty, t.ts
        if cur is not None and cur[0] <= ts < cur[0] + MINUTE_NS:
            if px > cur[2]:
                cur[2] = px
            elif px < cur[3]:
                cur[3] = px
            cur[4] = px
            cur[5] += q
            cur[6] += px * q * self.mult
            cur[7] += 1
        else:
            if cur is not None:
                for s in self.longer:
                    s.absorb(cur)
            m.absorb([ts - ts % MINUTE_NS, px, px, px, px, q, px * q * self.mult, 1])
        self.last = t

    def bars(self, interval: str, limit: int = 0) -> list[Bar]:
        """The bars of ``interval``, oldest first, the open one last; at most ``limit``."""
        if interval == "1m":
            series = self.minutes
            open_rows = [series.cur] if series.cur is not None else []
        else:
            found = next((s for s in self.longer if s.name == interval), None)
            if found is None:
                raise BadRequest(f"unknown bar interval {interval!r}; use one of {', '.join(INTERVALS)}")
            series = found
            open_rows = _open_bars(series.cur, self.minutes.cur, series.span)
        rows = list(series.closed) + open_rows
        if limit:
            rows = rows[-limit:]
        return [Bar(interval, *r) for r in rows]

    def ticker(self, now_ts: int, bid: PriceLevel | None, ask: PriceLevel | None) -> Ticker:
        """The 24-hour statistics as of event time ``now_ts``."""
        first = now_ts - now_ts % MINUTE_NS - (WINDOW_MINUTES - 1) * MINUTE_NS
        rows = [b for b in self.minutes.closed if b[0] >= first]
        cur = self.minutes.cur
        if cur is not None and cur[0] >= first:
            rows.append(cur)
        last = self.last
        last_px, last_qty = (last.price, last.qty) if last is not None else (0, 0)
        if not rows:
            return Ticker(self.symbol, now_ts, last_px, last_qty, bid, ask, 0, 0, 0, 0, 0, 0, 0)
        o = rows[0][1]
        return Ticker(self.symbol, now_ts, last_px, last_qty, bid, ask, o, max(r[2] for r in rows),
                      min(r[3] for r in rows), sum(r[5] for r in rows), sum(r[6] for r in rows), last_px - o,
                      sum(r[7] for r in rows))
