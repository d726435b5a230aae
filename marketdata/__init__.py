"""Market data: the venue's books, trades and statistics, fanned out to subscribers.

What it does
============

:class:`MarketData` follows the venue's durable events (it is a ``Venue.subscribe``
listener) and keeps, per instrument: the order-by-order book (L3) and its price levels
(L2), equal to the engine's own book after every batch; a bounded trades tape; OHLCV bars
at 1m, 5m, 15m, 1h, 4h and 1d; the 24-hour ticker; the halted/trading status. From each
durable batch it builds, per *feed* (one instrument in one subscription shape,
:class:`FeedSpec`), at most one :class:`Increment` numbered by the feed's RptSeq, and
hands it to subscribers without ever making the engine wait for one. Prices are ticks and
quantities lots (integers) everywhere here; the edges format them with the instrument.

Modules: ``book`` (the L2/L3 book kept from book effects), ``feeds`` (increments and
snapshots per shape), ``hub`` (the listener, subscriptions, dispatcher), ``stats`` (bars
and ticker), ``replica`` (a consumer's book from snapshot + increments, with gap
detection), ``wire`` (the JSON format), ``redis_fanout`` (Redis publisher and stream
consumer), ``messages``, ``errors``.

It does not speak FIX, store history (the venue's store does), or read a clock: bars and
the ticker use the sequencer's event times.

Wiring it to a venue
====================

::

    md = MarketData()
    venue.open(on_replay=md.on_replay)     # optional: replayed trades feed the tape and bars
    md.attach(venue)                       # loads the books, then follows every durable batch
    venue.start()
    RedisPublisher(md, redis.Redis(), prefix="md").start()   # optional: services outside the venue

``attach`` also works on a running venue (no gap, no double). If an event ever does not
fit the books (a bug), the hub logs it and reloads its books from the engine by itself;
every subscriber then gets a new snapshot.

For a FIX market-data session
=============================

SecurityList (x -> y): ``md.instruments()`` gives each :class:`venue.instruments.Instrument`
(tick_size, lot_size, min/max quantity in lots, min/max notional in quote atoms).

MarketDataRequest (V) -> a :class:`FeedSpec`::

    spec = FeedSpec(symbol,
                    book=Book.L2,          # Book.L3 for order-by-order, Book.NONE for trades only
                    depth=market_depth,    # FIX MarketDepth: 0 = full book, N = best N levels (L2 only)
                    trades=want_trades,    # MDEntryType 2 requested
                    sides=0)               # 0 both, BID bids only, ASK offers only

- Snapshot only (263=0): ``snap = md.snapshot(spec)`` -> one W.
- Snapshot + updates (263=1): ``sub = md.subscribe(spec, sink)``. The hub's dispatcher
  thread calls ``sink(messages)`` with a list of messages in order: first a
  :class:`Snapshot` (send W with RptSeq = ``snap.rpt_seq``), then :class:`Increment`
  messages (send X; each carries ``rpt_seq`` one above the previous). Without ``sink``,
  read on your own thread with ``sub.poll(timeout)``.
- Unsubscribe (263=2): ``sub.close()``.
- A refusal raises :class:`UnknownSymbol` or :class:`BadRequest` (its text is the reason)
  before anything is sent: answer MarketDataRequestReject (Y).

Mapping an :class:`Increment` to X entries: ``levels`` are :class:`LevelUpdate`
(MDUpdateAction = ``action`` 0/1/2 New/Change/Delete, MDEntryType 0/1 for side BID/ASK,
MDEntryPx = ``inst.ticks_to_price(price)``, MDEntrySize = ``inst.lots_to_qty(qty)``,
NumberOfOrders = ``orders``); at depth N a level that leaves the best N is deleted and one
that enters them is new, so a client keyed by price holds exactly N levels. ``orders``
(L3) are :class:`OrderUpdate` with OrderID, to be applied in order (a lost place is a
delete then a new at the back). ``trades`` are :class:`TradePrint` (MDEntryType 2,
TradeID ``trade_id``, AggressorSide). ``statuses`` are :class:`StatusChange`: send
SecurityStatus (f) for each. Messages are shared by every subscriber of a feed: an
encoder may cache its work in ``increment.memo`` (e.g. ``memo["fix"]``).

A session that falls more than ``max_pending`` increments behind simply receives a new
:class:`Snapshot` in its stream (send W again): its backlog is never kept beyond that
bound. A client that reports a gap: ``sub.request_snapshot()``. Sinks run on one shared
dispatcher thread and must be quick (encode and hand to the socket); a session that
blocks should read with ``poll`` on its own thread instead.

Other reads: ``md.ticker(symbol)`` (:class:`Ticker`), ``md.bars(symbol, "5m", limit)``
(:class:`Bar`), ``md.tape(symbol, n)``, ``md.halted(symbol)``.
"""
from marketdata.errors import BadRequest, BookInconsistent, MarketDataError, SequenceGap, Unavailable, UnknownSymbol
from marketdata.hub import BookState, MarketData, Subscription, capture
from marketdata.messages import (
    ASK, BID, Action, Book, BookOrder, FeedSpec, Increment, LevelUpdate, Message, OrderUpdate, PriceLevel, Snapshot,
    StatusChange, TradePrint,
)
from marketdata.replica import BookReplica
from marketdata.stats import INTERVALS, Bar, Ticker

__all__ = [
    "ASK", "BID", "INTERVALS", "Action", "Bar", "BadRequest", "Book", "BookInconsistent", "BookOrder", "BookReplica",
    "BookState", "FeedSpec", "Increment", "LevelUpdate", "MarketData", "MarketDataError", "Message", "OrderUpdate",
    "PriceLevel", "SequenceGap", "Snapshot", "StatusChange", "Subscription", "Ticker", "TradePrint", "Unavailable",
    "UnknownSymbol", "capture",
]
