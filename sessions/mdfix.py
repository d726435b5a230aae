"""FIX 4.4 encoding of market data: SecurityList (y), MarketDataSnapshotFullRefresh (W),
MarketDataIncrementalRefresh (X), MarketDataRequestReject (Y) and SecurityStatus (f),
from the integer messages of :mod:`marketdata` and the venue's instruments.

Pure functions that build message bodies as FIX text, and :class:`FixBuilder`, which
turns a body into a QuickFIX message parsed once against the data dictionary (without
it QuickFIX would not know the repeating groups and would reorder their fields). No
session state, no I/O. Prices and sizes are formatted exactly from ticks and lots
(never through float).

Entries (MDEntryType 269: 0 bid, 1 offer, 2 trade)::

    W  262 MDReqID, 55 Symbol, 83 RptSeq, 268 NoMDEntries, then per entry
         price level   269, 270 MDEntryPx, 271 MDEntrySize, 346 NumberOfOrders
         order (L3)    269, 270, 271, 37 OrderID
         last trade    269=2, 270, 271, 1003 TradeID, 5797 AggressorSide, 272/273 date and time
    X  262 MDReqID, 268 NoMDEntries, then per entry 279 MDUpdateAction (0 new, 1 change,
       2 delete), 269, 55, 270, 271 (not on a delete), 346 (levels) or 37 (orders),
       trades as in W, and 83 RptSeq: the number of the increment the entry belongs to
    f  324 SecurityStatusReqID (the e request, or the MDReqID of the V it belongs to), 55, 326 SecurityTradingStatus (2 halted,
       3 resumed, 17 ready to trade), 325 UnsolicitedIndicator, 60, 58, 83 RptSeq

The custom placements (RptSeq in W, f and X entries; TradeID, AggressorSide) are declared
in fix_config/FIX44.xml by fix_config/make_dictionary.py.
"""
from __future__ import annotations

import time
from typing import Any

import quickfix as fix

from marketdata.messages import ASK, BID, Increment, Snapshot, StatusChange, TradePrint
from sessions.codec import raw_message, scaled, utc
from venue.instruments import Asset, Instrument

ENTRY_TYPE = {BID: "0", ASK: "1"}
AGGRESSOR = {BID: "1", ASK: "2"}

# MDReqRejReason (281)
UNKNOWN_SYMBOL = "0"
DUPLICATE_REQ_ID = "1"
INSUFFICIENT_CAPACITY = "2"
UNSUPPORTED_SUBSCRIPTION_TYPE = "4"
UNSUPPORTED_DEPTH = "5"
UNSUPPORTED_UPDATE_TYPE = "6"
UNSUPPORTED_AGGREGATED_BOOK = "7"
UNSUPPORTED_ENTRY_TYPE = "8"

# SecurityTradingStatus (326)
HALTED, RESUMED, READY = "2", "3", "17"


def pairs(msg: fix.Message) -> list[tuple[str, str]]:
    """Every field of a received message in order, repeating groups included, as (tag, value)."""
    return [tuple(p.split("=", 1)) for p in msg.toString().split("\x01") if p]  # type: ignore[misc]


class FixBuilder:
    """Messages from bodies, parsed against the acceptor's data dictionary."""

    def __init__(self, dictionary: str) -> None:
        self.dd = fix.DataDictionary(dictionary)

    def message(self, msg_type: str, body: str, into: fix.Message | None = None) -> fix.Message:
        """sendToTarget fills the header, BodyLength and CheckSum. ``into``: a message
        object to reuse (one per sending thread: sendToTarget copies what it sends)."""
        raw = raw_message(msg_type, body)
        if into is None:
            return fix.Message(raw, self.dd, False)
        into.setString(raw, False, self.dd, self.dd)
        return into

    @staticmethod
    def carried(msg_type: str, fields: list[tuple[int, str]], count_tag: int, entries: list[str]) -> fix.Message:
        """A message whose repeating group goes out byte for byte as given: ``fields``
        (plain body fields, every tag below ``count_tag``), then ``count_tag`` = the number
        of ``entries`` followed by their FIX text, all carried by QuickFIX as the value of
        that one count field. QuickFIX writes body fields in tag order and a field as
        ``tag=value<SOH>``, so the bytes on the wire are those of the message parsed
        field by field, but QuickFIX neither parses nor reorders the entries, and each
        send copies one string instead of serialising thousands of fields: the form for
        a W or X sent to many subscribers (set their MDReqID, 262, before each send)."""
        m = fix.Message()
        m.getHeader().setField(35, msg_type)
        for tag, value in fields:
            assert tag < count_tag
            m.setField(tag, value)
        text = "".join(entries)
        m.setField(count_tag, f"{len(entries)}\x01{text[:-1]}" if text else "0")  # QuickFIX adds the last SOH
        return m


_FMT_KEPT = 1 << 16  # texts kept per step before the cache starts over


class _Texts(dict):  # type: ignore[type-arg]
    """``n -> scaled(n, step)`` for one step, computed once: a feed's entries repeat the
    same prices and sizes (every level and order of a book near its touch), and formatting
    was the largest part of building an increment. Bounded (cleared when full)."""

    __slots__ = ("step",)

    def __missing__(self, n: int) -> str:
        if len(self) >= _FMT_KEPT:
            self.clear()
        text = self[n] = scaled(n, self.step)
        return text


_texts: dict[Any, _Texts] = {}


def _texts_of(step: Any) -> _Texts:
    got = _texts.get(step)
    if got is None:
        got = _Texts()
        got.step = step
        _texts[step] = got
    return got


_SECOND: list[Any] = [None, "", ""]  # the last second formatted: [sec, MDEntryDate, MDEntryTime's whole seconds]


def _date_time(sec: int) -> tuple[str, str]:
    """``(YYYYMMDD, HH:MM:SS)`` of a second since the epoch, UTC; trades come in runs of
    the same second, so the last one is kept (formatting costs more than the rest of an
    entry)."""
    last = _SECOND
    if last[0] != sec:
        g = time.gmtime(sec)
        last[1:] = [time.strftime("%Y%m%d", g), time.strftime("%H:%M:%S", g)]
        last[0] = sec  # set last: a reader on another thread sees a matching pair or a miss
    return last[1], last[2]


def _trade_parts(t: TradePrint, inst: Instrument) -> tuple[str, str]:
    """A trade's fields in the groups' order, split where RptSeq (83) goes in an X: it
    comes between the time and the TradeID (270 271 272 273 [83] 1003 5797), as the
    dictionary declares it."""
    sec, ns = divmod(t.ts, 1_000_000_000)
    day, hms = _date_time(sec)
    return (f"270={scaled(t.price, inst.tick_size)}\x01271={scaled(t.qty, inst.lot_size)}\x01"
            f"272={day}\x01273={hms}.{ns // 1000:06d}\x01",
            f"1003={t.seq}-{t.trade_n}\x015797={AGGRESSOR.get(t.aggressor_side, '1')}\x01")


def _trade(t: TradePrint, inst: Instrument, rpt_seq: int | None = None) -> str:
    head, tail = _trade_parts(t, inst)
    return f"{head}83={rpt_seq}\x01{tail}" if rpt_seq is not None else head + tail


_TRADES_KEPT = 16
_trade_texts: dict[int, tuple[tuple[TradePrint, ...], list[tuple[str, str]]]] = {}


def _trades_text(trades: tuple[TradePrint, ...], inst: Instrument) -> list[tuple[str, str]]:
    """The text of a batch's trades, by :func:`_trade_parts`. Every feed of an instrument
    gets the same tuple of trades for a batch (the hub builds it once), and each feed's
    increment has its own RptSeq, so the text is shared by the tuple's identity (the
    tuple is kept with it, so its id cannot be reused while cached)."""
    got = _trade_texts.get(id(trades))
    if got is not None and got[0] is trades:
        return got[1]
    parts = [_trade_parts(t, inst) for t in trades]
    if len(_trade_texts) >= _TRADES_KEPT:
        try:
            del _trade_texts[next(iter(_trade_texts))]
        except (KeyError, RuntimeError, StopIteration):  # another thread got there first
            pass
    _trade_texts[id(trades)] = (trades, parts)
    return parts


# ------------------------------------------------------------------------------ W
def snapshot_body(snap: Snapshot, inst: Instrument, req_id: str) -> str:
    """The body of a W: the book of the snapshot's feed, and its last trade if the feed
    carries trades."""
    entries = snapshot_entries(snap, inst)
    return f"262={req_id}\x0155={inst.symbol}\x0183={snap.rpt_seq}\x01268={len(entries)}\x01" + "".join(entries)


def snapshot_entries(snap: Snapshot, inst: Instrument) -> list[str]:
    """The FIX text of each MDFullGrp entry of a W, in order."""
    px, qty = _texts_of(inst.tick_size), _texts_of(inst.lot_size)
    entries = []
    if snap.orders:
        for o in snap.orders:
            entries.append(f"269={ENTRY_TYPE[o.side]}\x01270={px[o.price]}\x01271={qty[o.qty]}\x01"
                           f"37={o.order_id}\x01")
    else:
        for side, levels in ((BID, snap.bids), (ASK, snap.asks)):
            t = ENTRY_TYPE[side]
            for lv in levels:
                entries.append(f"269={t}\x01270={px[lv.price]}\x01271={qty[lv.qty]}\x01"
                               f"346={lv.orders}\x01")
    if snap.spec.trades and snap.last_trade is not None:
        entries.append("269=2\x01" + _trade(snap.last_trade, inst))
    return entries


# ------------------------------------------------------------------------------ X
def increment_entries(inc: Increment, inst: Instrument) -> list[str]:
    """The FIX text of each MDIncGrp entry of an increment, in order, each entry's fields
    in the order the dictionary declares (the text goes on the wire as it is, see
    :meth:`FixBuilder.carried`): the same for every subscriber of the feed, so cached in
    ``inc.memo``."""
    got = inc.memo.get("fix")
    if got is not None:
        return got  # type: ignore[no-any-return]
    px, qty, sym, rpt = _texts_of(inst.tick_size), _texts_of(inst.lot_size), inst.symbol, inc.rpt_seq
    out = []
    for u in inc.levels:
        if u.action == 2:
            out.append(f"279=2\x01269={ENTRY_TYPE[u.side]}\x0155={sym}\x01270={px[u.price]}\x0183={rpt}\x01")
        else:
            out.append(f"279={u.action}\x01269={ENTRY_TYPE[u.side]}\x0155={sym}\x01270={px[u.price]}\x01"
                       f"271={qty[u.qty]}\x01346={u.orders}\x0183={rpt}\x01")
    for o in inc.orders:
        if o.action == 2:
            out.append(f"279=2\x01269={ENTRY_TYPE[o.side]}\x0155={sym}\x01270={px[o.price]}\x01"
                       f"37={o.order_id}\x0183={rpt}\x01")
        else:
            out.append(f"279={o.action}\x01269={ENTRY_TYPE[o.side]}\x0155={sym}\x01270={px[o.price]}\x01"
                       f"271={qty[o.qty]}\x0137={o.order_id}\x0183={rpt}\x01")
    if inc.trades:
        mid = f"83={rpt}\x01"
        lead = f"279=0\x01269=2\x0155={sym}\x01"
        out += [lead + head + mid + tail for head, tail in _trades_text(inc.trades, inst)]
    inc.memo["fix"] = out
    return out


def incremental_body(req_id: str, count: int, entries: str) -> str:
    return f"262={req_id}\x01268={count}\x01{entries}"


# ------------------------------------------------------------------------------ f, Y, y
def security_status(symbol: str, status: str, rpt_seq: int | None, ts: int, text: str = "", req_id: str = "",
                    unsolicited: bool = True) -> str:
    """The body of an f."""
    body = f"324={req_id}\x01" if req_id else ""
    body += f"55={symbol}\x01326={status}\x01325={'Y' if unsolicited else 'N'}\x0160={utc(ts)}\x01"
    if text:
        body += f"58={_clean(text)}\x01"
    if rpt_seq is not None:
        body += f"83={rpt_seq}\x01"
    return body


def status_change(st: StatusChange, rpt_seq: int, req_id: str = "") -> str:
    return security_status(st.symbol, HALTED if st.halted else RESUMED, rpt_seq, st.ts, st.reason, req_id)


def md_reject(req_id: str, reason: str | None, text: str) -> str:
    """The body of a Y."""
    body = f"262={_clean(req_id) or 'NONE'}\x01"
    if reason is not None:
        body += f"281={reason}\x01"
    return body + f"58={_clean(text)}\x01"


def security_list(req_id: str, resp_id: str, result: str, insts: list[Instrument], halted: dict[str, bool],
                  quote_assets: dict[str, Asset], text: str = "") -> str:
    """The body of a SecurityList (y): per instrument its tick size (969), lot size (561 RoundLot), the
    smallest and largest order (562 MinTradeVol, 1140 MaxTradeVol), the smallest and
    largest notional in the quote currency (25003, 25004), the quote currency (15) and the
    trading status (326: 2 halted, 17 ready)."""
    body = f"320={_clean(req_id)}\x01322={resp_id}\x01560={result}\x01"
    if text:
        body += f"58={_clean(text)}\x01"
    if result == "0":
        body += f"393={len(insts)}\x01893=Y\x01146={len(insts)}\x01"
        for i in insts:
            body += f"55={i.symbol}\x01107={i.base}/{i.quote} spot\x0115={i.quote}\x01561={_dec(i.lot_size)}\x01"
            if i.min_qty:
                body += f"562={scaled(i.min_qty, i.lot_size)}\x01"
            if i.max_qty:
                body += f"1140={scaled(i.max_qty, i.lot_size)}\x01"
            body += f"969={_dec(i.tick_size)}\x01326={HALTED if halted.get(i.symbol) else READY}\x01"
            q = quote_assets.get(i.quote)
            if q is not None and i.min_notional:
                body += f"25003={q.fmt(i.min_notional)}\x01"
            if q is not None and i.max_notional:
                body += f"25004={q.fmt(i.max_notional)}\x01"
    return body


def _dec(d: Any) -> str:
    return format(d, "f")


def _clean(s: Any) -> str:
    """Text safe inside a FIX field (no SOH, bounded)."""
    return str(s).replace("\x01", " ")[:500]
