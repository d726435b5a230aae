"""The JSON form of market-data messages, for services outside the venue (Redis).

Prices and quantities are decimal strings in the instrument's tick and lot sizes
("50000.01", "0.25000"), never floats; times are integer nanoseconds since the epoch
(UTC); ``seq`` is the venue's command sequence number, ``rpt_seq`` the feed's
increment number. Sides are "bid"/"ask", update actions "new"/"change"/"delete"
(FIX MDUpdateAction 0/1/2), the aggressor side "buy"/"sell".

Increment::

    {"type": "increment", "symbol": "BTC-USD", "book": "L2", "depth": 0,
     "rpt_seq": 12, "seq": 3456, "ts": 1700000000000000000,
     "levels":   [[action, side, price, qty, orders], ...],     # L2 (deletes first)
     "orders":   [[action, order_id, side, price, qty], ...],   # L3, in order
     "trades":   [[trade_id, price, qty, aggressor, ts], ...],
     "statuses": [[halted, reason, seq, ts], ...]}

Snapshot::

    {"type": "snapshot", "symbol": ..., "book": ..., "depth": ..., "rpt_seq": R,
     "seq": ..., "ts": ..., "halted": false,
     "bids": [[price, qty, orders], ...], "asks": [...],   # best first
     "orders": [[order_id, side, price, qty], ...],        # L3: bids then asks, FIFO
     "last_trade": [trade_id, price, qty, aggressor, ts] | null,
     "stream_id": "<id of the last stream entry it contains>", "reset": bool}

Decoding gives back the integer messages of :mod:`marketdata.messages` (so a remote
consumer can use :class:`marketdata.replica.BookReplica`); it refuses an off-tick
price or an off-lot quantity like every other edge.
"""
from __future__ import annotations

import json
from typing import Any

from marketdata.errors import BadRequest
from marketdata.messages import (
    ASK, BID, Book, BookOrder, FeedSpec, Increment, LevelUpdate, OrderUpdate, PriceLevel, Snapshot, StatusChange,
    TradePrint,
)
from venue.errors import InvalidValue
from venue.instruments import Instrument, to_decimal

_ACTIONS = ("new", "change", "delete")
_ACTION_OF = {a: i for i, a in enumerate(_ACTIONS)}
_SIDES = {BID: "bid", ASK: "ask"}
_SIDE_OF = {"bid": BID, "ask": ASK}
_AGGRESSOR = {BID: "buy", ASK: "sell"}
_AGGRESSOR_OF = {"buy": BID, "sell": ASK}
_BOOK = {int(Book.NONE): "none", int(Book.L2): "L2", int(Book.L3): "L3"}
_BOOK_OF = {v: k for k, v in _BOOK.items()}


def _px(inst: Instrument, ticks: int) -> str:
    return str(inst.ticks_to_price(ticks))


def _qty(inst: Instrument, lots: int) -> str:
    return str(inst.lots_to_qty(lots))


def _trade(inst: Instrument, t: TradePrint) -> list[Any]:
    return [t.trade_id, _px(inst, t.price), _qty(inst, t.qty), _AGGRESSOR[t.aggressor_side], t.ts]


def _head(kind: str, spec: FeedSpec, rpt_seq: int, seq: int, ts: int) -> dict[str, Any]:
    return {"type": kind, "symbol": spec.symbol, "book": _BOOK[spec.book], "depth": spec.depth,
            "trades_included": spec.trades, "sides": _SIDES.get(spec.sides, "both"),
            "rpt_seq": rpt_seq, "seq": seq, "ts": ts}


def encode_increment(inc: Increment, inst: Instrument) -> str:
    memo = inc.memo.get("json")
    if memo is not None:
        return str(memo)
    d = _head("increment", inc.spec, inc.rpt_seq, inc.seq, inc.ts)
    d["levels"] = [[_ACTIONS[u.action], _SIDES[u.side], _px(inst, u.price), _qty(inst, u.qty), u.orders]
                   for u in inc.levels]
    d["orders"] = [[_ACTIONS[u.action], u.order_id, _SIDES[u.side], _px(inst, u.price), _qty(inst, u.qty)]
                   for u in inc.orders]
    d["trades"] = [_trade(inst, t) for t in inc.trades]
    d["statuses"] = [[s.halted, s.reason, s.seq, s.ts] for s in inc.statuses]
    out = json.dumps(d, separators=(",", ":"))
    inc.memo["json"] = out  # shared by every subscriber of the feed
    return out


def encode_snapshot(snap: Snapshot, inst: Instrument, stream_id: str = "", reset: bool = False) -> str:
    d = _head("snapshot", snap.spec, snap.rpt_seq, snap.seq, snap.ts)
    d["halted"] = snap.halted
    d["bids"] = [[_px(inst, p.price), _qty(inst, p.qty), p.orders] for p in snap.bids]
    d["asks"] = [[_px(inst, p.price), _qty(inst, p.qty), p.orders] for p in snap.asks]
    d["orders"] = [[o.order_id, _SIDES[o.side], _px(inst, o.price), _qty(inst, o.qty)] for o in snap.orders]
    d["last_trade"] = _trade(inst, snap.last_trade) if snap.last_trade is not None else None
    d["stream_id"] = stream_id
    d["reset"] = reset
    return json.dumps(d, separators=(",", ":"))


# -- decoding --------------------------------------------------------------------------
def _spec(d: dict[str, Any]) -> FeedSpec:
    sides = d.get("sides", "both")
    return FeedSpec(d["symbol"], _BOOK_OF[d["book"]], int(d["depth"]), bool(d.get("trades_included", True)),
                    0 if sides == "both" else _SIDE_OF[sides])


def _ticks(inst: Instrument, s: str) -> int:
    return inst.price_to_ticks(s)


def _lots(inst: Instrument, s: str) -> int:
    """Lots of a quantity string; a delete carries "0"."""
    return 0 if to_decimal(s, "quantity") == 0 else inst.qty_to_lots(s)


def _trade_of(inst: Instrument, symbol: str, t: list[Any]) -> TradePrint:
    seq_s, _, n_s = str(t[0]).partition("-")
    return TradePrint(symbol, int(seq_s), int(n_s), int(t[4]), _ticks(inst, t[1]), _lots(inst, t[2]),
                      _AGGRESSOR_OF[t[3]])


def decode(payload: str | bytes, inst: Instrument) -> tuple[Snapshot | Increment, str, bool]:
    """A message from its JSON; for a snapshot also its ``stream_id`` and ``reset`` flag."""
    try:
        d = json.loads(payload)
        spec = _spec(d)
        if d["type"] == "increment":
            sym = spec.symbol
            inc = Increment(
                spec, int(d["rpt_seq"]), int(d["seq"]), int(d["ts"]),
                tuple(LevelUpdate(_ACTION_OF[a], _SIDE_OF[s], _ticks(inst, p), _lots(inst, q), int(n))
                      for a, s, p, q, n in d["levels"]),
                tuple(OrderUpdate(_ACTION_OF[a], int(oid), _SIDE_OF[s], _ticks(inst, p), _lots(inst, q))
                      for a, oid, s, p, q in d["orders"]),
                tuple(_trade_of(inst, sym, t) for t in d["trades"]),
                tuple(StatusChange(sym, bool(h), str(r), int(sq), int(ts)) for h, r, sq, ts in d["statuses"]),
                {},
            )
            return inc, "", False
        if d["type"] == "snapshot":
            sym = spec.symbol
            lt = d.get("last_trade")
            snap = Snapshot(
                spec, int(d["rpt_seq"]), int(d["seq"]), int(d["ts"]), bool(d["halted"]),
                tuple(PriceLevel(_ticks(inst, p), _lots(inst, q), int(n)) for p, q, n in d["bids"]),
                tuple(PriceLevel(_ticks(inst, p), _lots(inst, q), int(n)) for p, q, n in d["asks"]),
                tuple(BookOrder(int(oid), _SIDE_OF[s], _ticks(inst, p), _lots(inst, q)) for oid, s, p, q in d["orders"]),
                _trade_of(inst, sym, lt) if lt else None,
            )
            return snap, str(d.get("stream_id", "")), bool(d.get("reset", False))
    except (ValueError, KeyError, TypeError, IndexError, InvalidValue) as e:
        raise BadRequest(f"undecodable market-data message: {e}") from e
    raise BadRequest(f"unknown market-data message type {d.get('type')!r}")
