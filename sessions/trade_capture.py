"""Trade capture for drop-copy sessions: TradeCaptureReportRequest (AD) answered from the
venue's SQL store with TradeCaptureReportRequestAck (AQ) and TradeCaptureReports (AE).

A broker that was down for a day asks for any time range and rebuilds its position from
the answer; it sees only trades with a side on an account of a firm it is entitled to,
and only those sides. The request (FIX 4.4)::

    568 TradeRequestID      required
    569 TradeRequestType    0 (all trades) or 1 (trades matching the criteria): the same here
    263 SubscriptionRequestType  absent or 0 (a snapshot; live executions are the drop copy)
    580 NoDates             TrdCapDtGrp: 0, 1 or 2 entries, each 75 TradeDate (the group's
                            first field) and/or 60 TransactTime; the first entry is the
                            start (inclusive), the second the end (exclusive); one entry:
                            from then on. A date alone means its midnight UTC (the next
                            one for the end, so the end date is included); a date and a
                            time in one entry: the time, which must fall on that date.
                            The number of entries must be the one 580 declares (an entry
                            starts at 75, or at a 60 when the entry holds one already:
                            ``580=2|75=D|60=T`` is one entry, and refused). No dates:
                            every trade.
    55  Symbol              optional filter
    880 TrdMatchID          optional: one trade (``{seq}-{trade_n}``)
    37  OrderID             optional: the trades of one order
    453 NoPartyIDs          optional filters: PartyRole(452) 1 = executing firm,
                            24 = customer account (PartyID 448); outside the
                            session's entitlement -> refused as unauthorized

The answer: one AQ (750 TradeRequestStatus 0 accepted, 748 TotNumTradeReports N, 749
TradeRequestResult 0, and the Instrument block FIX 4.4 requires: the request's 55, or
55=[N/A] when it named none), then N AE in trade order, the last with 912
LastRptRequested=Y.
Each AE: 571 TradeReportID = 880 TrdMatchID = the trade id, 568, 748, 150=F, 570=Y
(the executions were reported), 55, 32 LastQty, 31 LastPx, 75 TradeDate, 60
TransactTime, and 552 NoSides with, per entitled side: 54 Side, 37 OrderID, 11 ClOrdID,
1 Account, 12 Commission, 13 CommType=3 (absolute), 479 CommCurrency and 1057
AggressorIndicator (Y for the taker). A refused request gets one AQ with 750=2 and the
reason in 749 (1 unknown instrument, 8 TradeRequestType not supported, 9 unauthorized,
99 other) and Text.

The store is written behind the journal; before answering, the query waits (a few
seconds at most) until the store holds everything the venue had processed when the
request arrived, and reads only up to that point, so a count and its reports agree.
Queries run on one worker thread, never on a FIX callback. A broker that reads slower
than the reports are produced is waited for (the gateway's buffer for it stays under
``max_backlog``); if it logs out, the rest of the answer is dropped.
"""
from __future__ import annotations

import concurrent.futures
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple

import quickfix as fix
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from sessions import codec
from sessions.application import SessionCtx, VenueApplication
from sessions.mdfix import FixBuilder, pairs
from venue.core import Venue
from venue.store.models import AccountRow, OrderRow, TradeRow
from venue.store.queries import Units
from venue.types import BUY, SELL

log = logging.getLogger("sessions.trade_capture")

PAGE = 2000  # rows fetched at a time: a long range streams, it is never held in memory
MAX_BACKLOG = 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

NO_SYMBOL = "[N/A]"  # Symbol(55) of an ack whose request named no instrument

# TradeRequestResult (749)
OK, UNKNOWN_INSTRUMENT, UNSUPPORTED_TYPE, UNAUTHORIZED, OTHER = "0", "1", "8", "9", "99"


class Refused(Exception):
    """A request that cannot be answered: ``result`` is its TradeRequestResult."""

    def __init__(self, result: str, text: str) -> None:
        super().__init__(text)
        self.result = result
        self.text = text


class TradeQuery(NamedTuple):
    """What an AD asks for, checked against the session's entitlement."""

    req_id: str
    req_type: str
    sub_type: str
    ts_from: int  # ns, inclusive; 0 = from the start
    ts_to: int  # ns, exclusive; 0 = up to now
    symbol: str
    trade_id: tuple[int, int] | None
    order_id: int
    firms: tuple[str, ...]  # the entitled firms the answer may show
    account: str


def _day_start(d: str) -> int:
    try:
        day = datetime.strptime(d, "%Y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise Refused(OTHER, f"TradeDate {d!r} is not YYYYMMDD") from None
    return (day - _EPOCH) // timedelta(microseconds=1) * 1000


def date_entries(msg: fix.Message) -> list[dict[int, str]]:
    """The entries of the NoDates(580) group (TrdCapDtGrp) as QuickFIX parsed them, each
    {75: TradeDate, 60: TransactTime} (either or both), or :class:`Refused` when their
    number is not the one NoDates declares. QuickFIX starts an entry at TradeDate (the
    group's first field) or at a field the current entry already holds, so
    ``580=2|75=20261203|60=20261204-12:00:00`` is *one* entry (a date and a time): read
    loosely it would be taken for a range, or for an open-ended start. (The acceptor's
    dictionary validation refuses such a message first, with a session Reject 373=16;
    this check keeps the answer right where that validation is off.)"""
    declared = msg.getField(580) if msg.isSetField(580) else "0"
    found = msg.groupCount(580)
    if declared != str(found):
        raise Refused(OTHER, f"NoDates(580) is {declared} but the request holds {found} date entries "
                             "(an entry is TradeDate(75) and/or TransactTime(60), TradeDate first)")
    out = []
    g = fix.Group(580, 75)
    for i in range(1, found + 1):
        msg.getGroup(i, g)
        out.append({t: g.getField(t) for t in (75, 60) if g.isSetField(t)})
    return out


def _entry_ns(e: dict[int, str], end: bool) -> int:
    """One date entry as a time in ns: its TransactTime; a TradeDate alone is that day's
    midnight UTC (the next midnight for the end of a range, so that the end date is
    included). Both present: the TransactTime, which must fall on that TradeDate (the
    venue's trade date is the UTC date of the trade)."""
    if 60 in e:
        try:
            ns = codec.parse_utc(e[60])
        except ValueError as err:
            raise Refused(OTHER, f"TransactTime(60): {err}") from None
        if 75 in e and _trade_date(ns) != e[75]:
            raise Refused(OTHER, f"TradeDate(75) {e[75]} and TransactTime(60) {e[60]} of one NoDates entry "
                                 "disagree (the trade date is the UTC date of the trade)")
        return ns
    return _day_start(e[75]) + (86_400 * 10**9 if end else 0)


def _bounds(entries: list[dict[int, str]]) -> tuple[int, int]:
    """(from, to) in ns from the NoDates entries: none = everything, one = from then
    on, two = the start (inclusive) and the end (exclusive)."""
    if len(entries) > 2:
        raise Refused(OTHER, "NoDates(580) takes at most two entries: the start and the end")
    start = _entry_ns(entries[0], False) if entries else 0
    end = _entry_ns(entries[1], True) if len(entries) == 2 else 0
    if end and start >= end:
        raise Refused(OTHER, "the end of the range (the second NoDates entry) must come after its start")
    return start, end


def parse_request(msg: fix.Message, entitled: tuple[str, ...], firm_of: Callable[[str], str | None],
                  known_symbol: Callable[[str], bool]) -> TradeQuery:
    """An AD as a :class:`TradeQuery`, or :class:`Refused`."""
    fields = pairs(msg)
    f = dict(fields)
    req_type = f.get("569", "")
    if req_type not in ("0", "1"):
        raise Refused(UNSUPPORTED_TYPE, "TradeRequestType must be 0 (all trades) or 1 (matching the criteria)")
    sub_type = f.get("263", "0")
    if sub_type != "0":
        raise Refused(OTHER, "only snapshots (SubscriptionRequestType 0): live executions arrive as drop copies")
    if not entitled:
        raise Refused(UNAUTHORIZED, "this session is entitled to no firm")
    ts_from, ts_to = _bounds(date_entries(msg))
    symbol = f.get("55", "")
    if symbol and not known_symbol(symbol):
        raise Refused(UNKNOWN_INSTRUMENT, f"unknown symbol {symbol}")
    trade_id = None
    if "880" in f:
        a, _, b = f["880"].partition("-")
        if not (a.isdigit() and b.isdigit()):
            raise Refused(OTHER, f"TrdMatchID {f['880']!r} is not a trade id of this venue")
        trade_id = (int(a), int(b))
    order_id = 0
    if "37" in f:
        if not f["37"].isdigit():
            raise Refused(OTHER, f"OrderID {f['37']!r} is not an order id of this venue")
        order_id = int(f["37"])
    firms, account = entitled, ""
    party: dict[str, str] = {}
    for tag, value in fields + [("448", "")]:
        if tag == "448":  # PartyID starts an entry of the Parties group: the previous one is complete
            if party.get("452") == "1":
                if party["448"] not in entitled:
                    raise Refused(UNAUTHORIZED, f"not entitled to firm {party['448']}")
                firms = (party["448"],)
            elif party.get("452") == "24":
                acct = party["448"]
                if firm_of(acct) not in entitled:
                    raise Refused(UNAUTHORIZED, f"not entitled to account {acct}")
                account = acct
            party = {"448": value}
        elif tag in ("447", "452"):
            party[tag] = value
    return TradeQuery(f.get("568", ""), req_type, sub_type, ts_from, ts_to, symbol, trade_id, order_id, firms, account)


def _ack(q_req_id: str, req_type: str, result: str, status: str, total: int = -1, text: str = "",
         symbol: str = "") -> fix.Message:
    """A TradeCaptureReportRequestAck. FIX 4.4 requires its Instrument block: the
    request's Symbol echoed, or ``[N/A]`` (the FIX convention) when it named none."""
    m = fix.Message()
    m.getHeader().setField(35, "AQ")
    m.setField(568, q_req_id or "NONE")
    m.setField(569, req_type or "0")
    if total >= 0:
        m.setField(748, str(total))
    m.setField(749, result)
    m.setField(750, status)
    m.setField(55, symbol or NO_SYMBOL)
    if text:
        m.setField(58, text[:500])
    return m


def _trade_date(ts: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ts // 1_000_000_000))


class TradeCapture:
    """Answers AD on drop-copy sessions from the store (``store`` None: refused)."""

    def __init__(self, app: VenueApplication, venue: Venue, store: Any | None, dictionary: str,
                 backlog: Callable[[str], int] | None = None, max_backlog: int = MAX_BACKLOG,
                 store_wait: float = 5.0) -> None:
        self.app = app
        self.venue = venue
        self.store = store
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.store_wait = store_wait
        self.reports = 0
        self.fix = FixBuilder(dictionary)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="trade-capture")
        self._stopping = False
        app.handlers["drop_copy"]["AD"] = self.on_request

    def stop(self) -> None:
        self._stopping = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- the FIX callback ------------------------------------------------------------
    def on_request(self, msg: fix.Message, ctx: SessionCtx) -> None:
        req_id = msg.getField(568)
        req_type = msg.getField(569)
        symbol = msg.getField(55) if msg.isSetField(55) else ""
        rec = self.app.registry.sessions.get(ctx.comp_id, ctx.rec)
        try:
            if self.store is None:
                raise Refused(OTHER, "trade history is not available (the venue runs without its store)")
            q = parse_request(msg, rec.entitled_firms, self._firm_of, lambda s: self.app.instrument(s) is not None)
        except Refused as r:
            self.app.send(ctx, _ack(req_id, req_type, r.result, "2", text=r.text, symbol=symbol))
            return
        upto = self.venue.engine.seq if self.venue.engine is not None else 0
        try:
            self._pool.submit(self._answer, ctx, q, upto)
        except RuntimeError:  # shutting down
            self.app.send(ctx, _ack(req_id, req_type, OTHER, "2", text="the venue is shutting down", symbol=symbol))

    def _firm_of(self, account: str) -> str | None:
        engine = self.venue.engine
        acct = engine.ledger.accounts.get(account) if engine is not None else None
        return acct.firm.id if acct is not None else None

    # -- the worker thread -----------------------------------------------------------
    def _answer(self, ctx: SessionCtx, q: TradeQuery, upto: int) -> None:
        store = self.store
        assert store is not None
        try:
            if not store.wait_for(upto, self.store_wait):
                log.warning("trade capture for %s: the store is behind (%s < %s); answering from what it holds",
                            ctx.comp_id, store.last_seq, upto)
                upto = store.last_seq
            with store.db.connect() as c:
                stmt, accounts = self._select(c, q, upto)
                total = c.execute(select(func.count()).select_from(stmt.subquery())).scalar_one() if accounts else 0
                self.app.send(ctx, _ack(q.req_id, q.req_type, OK, "0", total, symbol=q.symbol))
                if not total:
                    return
                units = Units(store)
                rows = c.execution_options(yield_per=PAGE).execute(stmt.order_by(TradeRow.seq, TradeRow.trade_n))
                for i, row in enumerate(rows):
                    if self._stopping or not ctx.logged_on:
                        log.info("trade capture for %s stopped after %d of %d reports", ctx.comp_id, i, total)
                        return
                    self._wait_for_reader(ctx)
                    self.app.send(ctx, self._report(q, row, accounts, units, total, i == total - 1))
                    self.reports += 1
        except Exception as e:
            log.exception("trade capture for %s failed", ctx.comp_id)
            self.app.send(ctx, _ack(q.req_id, q.req_type, OTHER, "2", text=f"trade history failed: {type(e).__name__}",
                                    symbol=q.symbol))

    @staticmethod
    def _select(c: Any, q: TradeQuery, upto: int) -> tuple[Any, set[str]]:
        """The trades of the query up to venue sequence ``upto``, and the accounts whose
        sides may be shown."""
        accounts = {a for (a,) in c.execute(select(AccountRow.account).where(AccountRow.firm.in_(q.firms)))}
        if q.account:
            accounts &= {q.account}
        mo, to = aliased(OrderRow), aliased(OrderRow)
        s = (select(TradeRow, mo.cl_ord_id.label("maker_clid"), to.cl_ord_id.label("taker_clid"))
             .outerjoin(mo, mo.order_id == TradeRow.maker_order_id)
             .outerjoin(to, to.order_id == TradeRow.taker_order_id)
             .where(TradeRow.seq <= upto)
             .where(or_(TradeRow.maker_account.in_(accounts), TradeRow.taker_account.in_(accounts))))
        if q.ts_from:
            s = s.where(TradeRow.ts >= q.ts_from)
        if q.ts_to:
            s = s.where(TradeRow.ts < q.ts_to)
        if q.symbol:
            s = s.where(TradeRow.symbol == q.symbol)
        if q.trade_id is not None:
            s = s.where(TradeRow.seq == q.trade_id[0], TradeRow.trade_n == q.trade_id[1])
        if q.order_id:
            s = s.where(or_(TradeRow.maker_order_id == q.order_id, TradeRow.taker_order_id == q.order_id))
        return s, accounts

    def _report(self, q: TradeQuery, row: Any, allowed: set[str], u: Units, total: int, last: bool) -> fix.Message:
        t, maker_clid, taker_clid = row, row.maker_clid, row.taker_clid  # the trade's columns and the two ClOrdIDs
        tid = f"{t.seq}-{t.trade_n}"
        quote = u.insts[t.symbol].quote
        sides = []
        maker_side = SELL if t.aggressor_side == BUY else BUY
        for side, acct, oid, clid, fee, aggr in ((t.aggressor_side, t.taker_account, t.taker_order_id, taker_clid,
                                                 t.taker_fee, "Y"),
                                                (maker_side, t.maker_account, t.maker_order_id, maker_clid,
                                                 t.maker_fee, "N")):
            if acct not in allowed:
                continue
            sides.append(f"54={codec.SIDE_OUT[side]}\x0137={oid}\x0111={clid or 'NONE'}\x011={acct}\x01"
                         f"12={u.amount(quote, fee)}\x0113=3\x01479={quote}\x011057={aggr}\x01")
        body = (f"571={tid}\x01568={q.req_id}\x01150=F\x01748={total}\x01" + ("912=Y\x01" if last else "")
                + f"880={tid}\x01570=Y\x0155={t.symbol}\x0132={u.qty(t.symbol, t.qty)}\x01"
                f"31={u.px(t.symbol, t.price)}\x0175={_trade_date(t.ts)}\x0160={codec.utc(t.ts)}\x01"
                f"552={len(sides)}\x01" + "".join(sides))
        return self.fix.message("AE", body)

    def _wait_for_reader(self, ctx: SessionCtx) -> None:
        """Hold back while the gateway buffers more than ``max_backlog`` for this broker."""
        if self.backlog is None:
            return
        while not self._stopping and ctx.logged_on and self.backlog(ctx.comp_id) > self.max_backlog:
            time.sleep(0.01)


__all__ = ["TradeCapture", "TradeQuery", "Refused", "parse_request"]
