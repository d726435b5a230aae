"""FIX 4.4 <-> the venue's commands and events.

Incoming: ``decode_*`` turn a QuickFIX message into a command, converting decimals to
ticks and lots exactly through the instrument (an off-tick price is refused with a
reason, not rounded), or return an :class:`EdgeReject` saying why not.

Outgoing: ``*_report`` build QuickFIX messages from events. Fields are read and written by
tag number (``msg.getField(11)``): the SWIG wrapper's typed field objects cost 30-80 us
a call, tags about 1.5 us (../shared/QUICKFIX_NOTES.md).

What goes out is plain FIX 4.4: a client with the stock FIX 4.4 data dictionary (QuickFIX's
FIX44.xml, which rejects any field its message does not declare) must be able to trade.
The venue's own tags (declared in fix_config/FIX44.xml) go only to a client that asked:

- 25001 SelfTradePreventionMode (Binance's values) is echoed on the reports of an order
  that carried it (``stp=True``);
- with the Logon flag 25005 VenueExtensions=Y (``ext=True``) a session also gets 25001 on
  every report, 25002 VenueRejectCode (the venue's own reject code, beside the standard
  OrdRejReason/CxlRejReason) on refusals, 880 TrdMatchID (a FIX 5.0 field) on fills, and
  25010 LiquidationIndicator=Y on the reports of liquidations (below).

Liquidations: the reports of an order the venue placed to liquidate a margin account
(its fills, and the cancel of what an IOC liquidation order could not fill) and of an
order cancelled because its account is being liquidated (CancelReason LIQUIDATION) carry
a Text(58) that begins with "liquidation", which every client sees (a liquidation
order's ClOrdID also begins with "LIQ-"); a session with 25005=Y gets 25010=Y on them too.
FIX 4.4 has no standard marker: ExecRestatementReason is for restatements, not fills,
and OrdType/ExecInst describe what a client asked for.

ExecInst(18) on orders: 6 (participate, do not initiate) = post-only, E (do not
increase) = reduce-only; both may be given ("6 E"); other values are ignored.

The trade id of a fill travels in SecondaryExecID (527), a FIX 4.4 ExecutionReport field
(Kraken's FIX 4.4 API does the same); a stop order's trigger is ExecType D (Restated),
FIX 4.4 having no Triggered ExecType. Incoming custom tags: 25001 on orders, 8013
CancelOrdersOnDisconnect (Coinbase's) and 25005 on the Logon.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext
from typing import Any, NamedTuple

import quickfix as fix

from venue import commands as C
from venue.errors import InvalidValue
from venue.events import CancelRejected, Execution, MassCancelReport, OrderInfo, OrderRejected
from venue.instruments import Asset, Instrument, fmt_multiple
from venue.types import (
    BUY, DAY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT, CancelReason, ExecKind, OrderStatus,
    Reject, STP,
)

TAG_STP = 25001
TAG_COD = 8013
TAG_REJECT_CODE = 25002
TAG_EXTENSIONS = 25005
TAG_LIQUIDATION = 25010
_LIQUIDATION = int(CancelReason.LIQUIDATION)

SIDE_IN = {"1": BUY, "2": SELL}
SIDE_OUT = {BUY: "1", SELL: "2"}
ORDTYPE_IN = {"1": MARKET, "2": LIMIT, "3": STOP, "4": STOP_LIMIT}
ORDTYPE_OUT = {v: k for k, v in ORDTYPE_IN.items()}
TIF_IN = {"0": DAY, "1": GTC, "3": IOC, "4": FOK, "6": GTD}
TIF_OUT = {v: k for k, v in TIF_IN.items()}
STP_IN = {"1": int(STP.NONE), "2": int(STP.CANCEL_NEWEST), "3": int(STP.CANCEL_OLDEST), "4": int(STP.CANCEL_BOTH),
          "5": int(STP.DECREMENT)}
STP_OUT = {v: k for k, v in STP_IN.items()}
EXECTYPE_OUT = {
    int(ExecKind.NEW): "0", int(ExecKind.FILL): "F", int(ExecKind.CANCELLED): "4", int(ExecKind.REPLACED): "5",
    int(ExecKind.RESTATED): "D", int(ExecKind.EXPIRED): "C", int(ExecKind.TRIGGERED): "D",
}
ORDSTATUS_OUT = {
    int(OrderStatus.WAITING_TRIGGER): "0", int(OrderStatus.NEW): "0", int(OrderStatus.PARTIALLY_FILLED): "1",
    int(OrderStatus.FILLED): "2", int(OrderStatus.CANCELLED): "4", int(OrderStatus.EXPIRED): "C",
}
LIQ_OUT = {1: "1", 2: "2"}

# OrdRejReason (103), FIX 4.4 values only
_ORD_REJ = {
    Reject.UNKNOWN_SYMBOL: "1", Reject.INSTRUMENT_HALTED: "2", Reject.DUPLICATE_CL_ORD_ID: "6",
    Reject.INVALID_QUANTITY: "13", Reject.OFF_LOT: "13", Reject.QTY_BELOW_MIN: "13", Reject.QTY_ABOVE_MAX: "13",
    Reject.INSUFFICIENT_FUNDS: "3", Reject.CREDIT_LIMIT: "3", Reject.MAX_POSITION: "3",
    Reject.NOTIONAL_ABOVE_MAX: "3", Reject.MAX_OPEN_ORDERS: "3", Reject.MARGIN_INSUFFICIENT: "3",
    Reject.REDUCE_ONLY: "3",
    Reject.UNKNOWN_ACCOUNT: "15", Reject.NOT_ENTITLED: "15", Reject.ACCOUNT_DISABLED: "15",
    Reject.UNSUPPORTED: "11", Reject.INVALID_ORDER_TYPE: "11", Reject.INVALID_TIME_IN_FORCE: "11",
    Reject.INVALID_DISPLAY_QTY: "11", Reject.KILL_SWITCH: "0", Reject.THROTTLED: "0",
}
# CxlRejReason (102)
_CXL_REJ = {Reject.UNKNOWN_ORDER: "1", Reject.ORDER_NOT_OPEN: "0", Reject.DUPLICATE_CL_ORD_ID: "6",
            Reject.UNKNOWN_ACCOUNT: "1", Reject.NOT_ENTITLED: "1"}


def ord_rej_reason(code: int) -> str:
    try:
        return _ORD_REJ.get(Reject(code), "99")
    except ValueError:
        return "99"


def cxl_rej_reason(code: int) -> str:
    try:
        return _CXL_REJ.get(Reject(code), "99")
    except ValueError:
        return "99"


class EdgeReject(NamedTuple):
    """A request refused at the edge, before a command could be built."""

    code: int  # Reject
    text: str


# ------------------------------------------------------------------------------ formatting
def scaled(n: int, step: Decimal) -> str:
    """``n * step`` as a plain decimal string without trailing zeros."""
    return fmt_multiple(n, step)


def avg_px(inst: Instrument, cum_notional: int, cum: int) -> str:
    if not cum:
        return "0"
    if cum_notional % cum == 0:
        return fmt_multiple(cum_notional // cum, inst.tick_size)
    with localcontext() as ctx:
        ctx.prec = 40
        d = inst.tick_size * cum_notional / cum
    return format(d.normalize(), "f")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_second: tuple[int, str] = (-1, "")


def utc(ts_ns: int) -> str:
    """FIX UTCTimestamp with microseconds (the formatted second is cached)."""
    global _second
    sec, ns = divmod(ts_ns, 1_000_000_000)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{ns // 1000:06d}"


def parse_utc(s: str) -> int:
    """A FIX UTCTimestamp to ns since the epoch; ValueError if malformed."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            dt = datetime.strptime(s if len(s) <= 24 else s[:24], fmt).replace(tzinfo=timezone.utc)
            return (dt - _EPOCH) // timedelta(microseconds=1) * 1000
        except ValueError:
            continue
    raise ValueError(f"not a UTC timestamp: {s!r}")


def fields_of(msg: fix.Message) -> dict[str, str]:
    """A message's fields by tag (as str), read in one call: ``toString`` and a split cost
    a fifth of reading a dozen fields one by one through the wrapper. Repeating groups
    keep their last entry: use this for messages without groups. A message the inbox
    took from QuickFIX's queue carries its string already (``raw``, formatted by QuickFIX's
    connection thread without the interpreter lock: QuickFIX patch 7)."""
    raw = getattr(msg, "raw", None) or msg.toString()
    return dict(p.split("=", 1) for p in raw.split("\x01") if p)


def message(msg_type: str, body: str, into: fix.Message | None = None) -> fix.Message:
    """A message built from its body as one string and parsed once (about a quarter of
    the cost of setting two dozen fields through the wrapper). sendToTarget fills the
    header and recomputes BodyLength and CheckSum. ``into``: a message object to reuse
    (it must not be in use: sendToTarget copies what it sends, so one object per sending
    thread is safe and saves half the cost)."""
    raw = raw_message(msg_type, body)
    if into is None:
        return fix.Message(raw, False)
    into.setString(raw, False)
    return into


def raw_message(msg_type: str, body: str) -> str:
    """A message as its FIX string, for ``VenueApplication.send``: the outbox's batches hand
    it to QuickFIX as it is, parsed in C++ without the interpreter lock (QuickFIX patch 7).
    BodyLength and CheckSum are recomputed when it is sent."""
    payload = f"35={msg_type}\x01{body}"
    return f"8=FIX.4.4\x019={len(payload)}\x01{payload}10=000\x01"


# ------------------------------------------------------------------------------ decoding
def _get(msg: fix.Message, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None


def decode_new_order(f: dict[str, str], inst: Instrument | None, account: str, session: str) -> C.NewOrder | EdgeReject:
    """A NewOrderSingle (its fields, see :func:`fields_of`) as a NewOrder. Session-level
    problems (missing required tags, bad enum values) are QuickFIX's to reject through
    the data dictionary."""
    clid = f["11"]
    symbol = f["55"]
    if inst is None:
        return EdgeReject(Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
    side = SIDE_IN.get(f["54"])
    if side is None:
        return EdgeReject(Reject.INVALID_SIDE, "Side must be 1 (buy) or 2 (sell)")
    ot = ORDTYPE_IN.get(f["40"])
    if ot is None:
        return EdgeReject(Reject.INVALID_ORDER_TYPE, "OrdType must be 1, 2, 3 or 4")
    tif_s = f.get("59")
    tif = TIF_IN.get(tif_s) if tif_s is not None else (IOC if ot == MARKET else GTC)
    if tif is None:
        return EdgeReject(Reject.INVALID_TIME_IN_FORCE, f"TimeInForce {tif_s} is not supported (0, 1, 3, 4, 6)")
    try:
        qty_s = f.get("38")
        if qty_s is None:
            return EdgeReject(Reject.INVALID_QUANTITY, "OrderQty(38) is required (CashOrderQty is not supported)")
        qty = inst.qty_to_lots(qty_s)
        price = 0
        px_s = f.get("44")
        if ot == LIMIT or ot == STOP_LIMIT:
            if px_s is None:
                return EdgeReject(Reject.INVALID_PRICE, "Price(44) is required for a limit order")
            price = inst.price_to_ticks(px_s)
        elif px_s is not None:
            return EdgeReject(Reject.INVALID_PRICE, "a market or stop order carries no Price(44)")
        stop_px = 0
        sp_s = f.get("99")
        if ot == STOP or ot == STOP_LIMIT:
            if sp_s is None:
                return EdgeReject(Reject.INVALID_STOP_PRICE, "StopPx(99) is required for a stop order")
            stop_px = inst.price_to_ticks(sp_s)
        elif sp_s is not None:
            return EdgeReject(Reject.INVALID_STOP_PRICE, "StopPx(99) is only for stop orders")
        display = 0
        mf = f.get("111")
        if mf is not None:
            display = inst.qty_to_lots(mf)
    except InvalidValue as e:
        return EdgeReject(e.code, e.text)
    expire_ts = 0
    if tif == GTD:
        et = f.get("126")
        if et is None:
            ed = f.get("432")
            if ed is None:
                return EdgeReject(Reject.INVALID_EXPIRE_TIME, "GTD needs ExpireTime(126) or ExpireDate(432)")
            et = ed + "-23:59:59.999"
        try:
            expire_ts = parse_utc(et)
        except ValueError as e:
            return EdgeReject(Reject.INVALID_EXPIRE_TIME, str(e))
    inst_flags = (f.get("18") or "").split()
    stp = 0
    stp_s = f.get(str(TAG_STP))
    if stp_s is not None:
        stp = STP_IN.get(stp_s, -1)
        if stp < 0:
            return EdgeReject(Reject.INVALID_STP, f"SelfTradePreventionMode {stp_s} is not 1..5")
    return C.NewOrder(account, clid, inst.symbol, side, ot, qty, price, stop_px, tif, expire_ts, "6" in inst_flags,
                      display, stp, session, "E" in inst_flags)


class Restated(NamedTuple):
    """What an OrderCancelReplaceRequest states about the order (None: left out)."""

    side: int
    ord_type: int
    qty: int
    price: int  # 0 for market and stop orders
    stop_px: int  # 0 unless a stop order
    tif: int | None
    expire_ts: int | None
    post_only: bool | None
    display_qty: int | None
    stp: int | None
    reduce_only: bool | None = None


def decode_replace(f: dict[str, str], inst: Instrument) -> Restated | EdgeReject:
    """An OrderCancelReplaceRequest's fields as what it restates. In FIX 4.4 a replace
    restates the order: OrderQty always (the new total), Price for a limit or stop-limit
    order, StopPx for a stop order, the same as a NewOrderSingle; a replace without them
    is refused, not read as "keep the old value". The venue can change the quantity, the
    limit price and (before the trigger) the stop price; everything else it states must
    be what the order has (:func:`replace_conflict`). TimeInForce, ExpireTime, ExecInst,
    MaxFloor and 25001 may be left out (unchanged)."""
    side = SIDE_IN.get(f["54"])
    if side is None:
        return EdgeReject(Reject.INVALID_SIDE, "Side must be 1 (buy) or 2 (sell)")
    ot = ORDTYPE_IN.get(f["40"])
    if ot is None:
        return EdgeReject(Reject.INVALID_ORDER_TYPE, "OrdType must be 1, 2, 3 or 4")
    tif_s = f.get("59")
    tif = TIF_IN.get(tif_s) if tif_s is not None else None
    if tif_s is not None and tif is None:
        return EdgeReject(Reject.INVALID_TIME_IN_FORCE, f"TimeInForce {tif_s} is not supported (0, 1, 3, 4, 6)")
    try:
        qty_s = f.get("38")
        if qty_s is None:
            return EdgeReject(Reject.INVALID_QUANTITY, "OrderQty(38) is required: a replace restates the order's quantity")
        qty = inst.qty_to_lots(qty_s)
        price = 0
        px_s = f.get("44")
        if ot == LIMIT or ot == STOP_LIMIT:
            if px_s is None:
                return EdgeReject(Reject.INVALID_PRICE, "Price(44) is required for a limit order: a replace restates it")
            price = inst.price_to_ticks(px_s)
        elif px_s is not None:
            return EdgeReject(Reject.INVALID_PRICE, "a market or stop order carries no Price(44)")
        stop_px = 0
        sp_s = f.get("99")
        if ot == STOP or ot == STOP_LIMIT:
            if sp_s is None:
                return EdgeReject(Reject.INVALID_STOP_PRICE, "StopPx(99) is required for a stop order: a replace restates it")
            stop_px = inst.price_to_ticks(sp_s)
        elif sp_s is not None:
            return EdgeReject(Reject.INVALID_STOP_PRICE, "StopPx(99) is only for stop orders")
        display = inst.qty_to_lots(f["111"]) if "111" in f else None
    except InvalidValue as e:
        return EdgeReject(e.code, e.text)
    expire_ts = None
    et = f.get("126") or (f["432"] + "-23:59:59.999" if "432" in f else None)
    if et is not None:
        try:
            expire_ts = parse_utc(et)
        except ValueError as e:
            return EdgeReject(Reject.INVALID_EXPIRE_TIME, str(e))
    flags = f["18"].split() if "18" in f else None
    stp = None
    stp_s = f.get(str(TAG_STP))
    if stp_s is not None:
        stp = STP_IN.get(stp_s, -1)
        if stp < 0:
            return EdgeReject(Reject.INVALID_STP, f"SelfTradePreventionMode {stp_s} is not 1..5")
    return Restated(side, ot, qty, price, stop_px, tif, expire_ts, None if flags is None else "6" in flags, display, stp,
                    None if flags is None else "E" in flags)


def replace_conflict(r: Restated, info: OrderInfo) -> str | None:
    """Why the venue cannot apply what the replace ``r`` restates about the order
    ``info`` (a change of something other than quantity and prices), or None."""
    if r.side != info.side:
        return (f"Side cannot be changed by a replace (the order is a {'buy' if info.side == BUY else 'sell'}): "
                f"cancel it and enter a new order")
    if r.ord_type != info.ord_type:
        return f"OrdType cannot be changed by a replace (the order's is {ORDTYPE_OUT[info.ord_type]})"
    if r.tif is not None and r.tif != info.tif:
        return f"TimeInForce cannot be changed by a replace (the order's is {TIF_OUT.get(info.tif, '?')})"
    if r.expire_ts is not None and info.tif == GTD and r.expire_ts != info.expire_ts:
        return "ExpireTime cannot be changed by a replace"
    if r.post_only is not None and r.post_only != info.post_only:
        return "ExecInst (post-only) cannot be changed by a replace"
    if r.reduce_only is not None and r.reduce_only != info.reduce_only:
        return "ExecInst (reduce-only, E) cannot be changed by a replace"
    if r.display_qty is not None and r.display_qty != info.display_qty:
        return "MaxFloor cannot be changed by a replace"
    if r.stp is not None and r.stp != info.stp:
        return "SelfTradePreventionMode cannot be changed by a replace"
    return None


def decode_order_id(f: dict[str, str]) -> int:
    s = f.get("37")
    if s is None:
        return 0
    try:
        return int(s)
    except ValueError:
        return -1  # a client-made OrderID that cannot be ours


# ------------------------------------------------------------------------------ encoding
def _new(msg_type: str) -> fix.Message:
    m = fix.Message()
    m.getHeader().setField(35, msg_type)
    return m


def _order_part(info: OrderInfo, inst: Instrument, stp_echo: bool = False) -> str:
    ot = info.ord_type
    out = (f"37={info.order_id}\x011={info.account}\x0155={info.symbol}\x0154={SIDE_OUT[info.side]}\x01"
           f"38={fmt_multiple(info.qty, inst.lot_size)}\x0140={ORDTYPE_OUT[ot]}\x0159={TIF_OUT.get(info.tif, '1')}\x01")
    if ot == LIMIT or ot == STOP_LIMIT:
        out += f"44={fmt_multiple(info.price, inst.tick_size)}\x01"
    if info.stop_px:
        out += f"99={fmt_multiple(info.stop_px, inst.tick_size)}\x01"
    if info.tif == GTD and info.expire_ts:
        out += f"126={utc(info.expire_ts)}\x01"
    if info.display_qty:
        out += f"111={fmt_multiple(info.display_qty, inst.lot_size)}\x01"
    if info.post_only or info.reduce_only:
        out += _EXEC_INST[(info.post_only, info.reduce_only)]
    if stp_echo:
        stp = STP_OUT.get(info.stp)
        if stp:
            out += f"{TAG_STP}={stp}\x01"
    return out


def is_liquidation(ev: Execution) -> bool:
    """A report of a liquidation order, or of an order cancelled by a liquidation."""
    return ev.info.liquidation or (ev.reason == _LIQUIDATION and ev.kind == ExecKind.CANCELLED)


_EXEC_INST = {(True, False): "18=6\x01", (False, True): "18=E\x01", (True, True): "18=6 E\x01"}


def execution_report(ev: Execution, inst: Instrument, quote: Asset, into: fix.Message | None = None,
                     stp: bool = False, ext: bool = False, raw: bool = False) -> Any:
    """``stp``: echo 25001 (the order carried it); ``ext``: the session asked for the
    venue's extension tags (see the module's docstring); ``raw``: return the message as
    its FIX string (:func:`raw_message`), not as a Message."""
    lot = inst.lot_size
    body = (f"{_order_part(ev.info, inst, stp or ext)}11={ev.cl_ord_id}\x0117={ev.seq}-{ev.exec_n}\x01"
            f"150={EXECTYPE_OUT[ev.kind]}\x0139={ORDSTATUS_OUT[ev.status]}\x0114={fmt_multiple(ev.cum_qty, lot)}\x01"
            f"151={fmt_multiple(ev.leaves_qty, lot)}\x016={avg_px(inst, ev.cum_notional, ev.cum_qty)}\x01"
            f"60={utc(ev.ts)}\x01")
    if ev.orig_cl_ord_id:
        body += f"41={ev.orig_cl_ord_id}\x01"
    if ev.last_qty:
        fee = quote.fmt(ev.fee) if ev.fee >= 0 else "-" + quote.fmt(-ev.fee)
        body += (f"31={fmt_multiple(ev.last_px, inst.tick_size)}\x0132={fmt_multiple(ev.last_qty, lot)}\x01"
                 f"12={fee}\x0113=3\x01479={quote.code}\x01851={LIQ_OUT.get(ev.liquidity, '1')}\x01"
                 f"527={ev.seq}-{ev.trade_n}\x01")
        if ext:
            body += f"880={ev.seq}-{ev.trade_n}\x01"
    kind = ev.kind
    text = ev.text
    if kind == ExecKind.RESTATED:
        # ExecRestatementReason: 5 = partial decline of OrderQty (what self-trade
        # prevention's decrement does), else 99 (other)
        body += "378=5\x01" if ev.reason == CancelReason.SELF_TRADE else "378=99\x01"
    elif kind == ExecKind.TRIGGERED:
        body += "378=99\x01"
        text = text or "stop triggered"
    if not text and ev.reason >= 0 and (kind == ExecKind.CANCELLED or kind == ExecKind.EXPIRED):
        try:
            text = CancelReason(ev.reason).name.lower().replace("_", " ")
        except ValueError:
            text = ""
    if is_liquidation(ev):
        if not text.startswith("liquidation"):
            text = f"liquidation: {text}" if text else "liquidation"
        if ext:
            body += f"{TAG_LIQUIDATION}=Y\x01"
    if text:
        body += f"58={text}\x01"
    return raw_message("8", body) if raw else message("8", body, into)


def order_reject_report(ev: OrderRejected, inst: Instrument | None, ext: bool = False) -> fix.Message:
    """An ExecutionReport with OrdStatus=Rejected for a refused NewOrder."""
    return reject_report(ev.cmd, ev.code, ev.text, inst, exec_id=f"{ev.seq}-{ev.exec_n}", ts=ev.ts, ext=ext)


def reject_report(cmd: C.NewOrder | None, code: int, text: str, inst: Instrument | None, exec_id: str, ts: int,
                  raw: dict[int, str] | None = None, ext: bool = False) -> fix.Message:
    """ER 39=8 from a command (engine reject) or from the raw request (edge reject:
    ``raw`` holds the request's own fields, echoed; nothing is made up)."""
    m = _new("8")
    raw = raw or {}
    m.setField(37, "NONE")
    clid = cmd.cl_ord_id if cmd else raw.get(11)
    if clid:
        m.setField(11, clid)
    m.setField(17, exec_id)
    m.setField(150, "8")
    m.setField(39, "8")
    if cmd is not None:
        if cmd.account:
            m.setField(1, cmd.account)
        m.setField(55, cmd.symbol)
        m.setField(54, SIDE_OUT.get(cmd.side, "1"))
        m.setField(40, ORDTYPE_OUT.get(cmd.ord_type, "2"))
        if inst is not None:
            m.setField(38, scaled(cmd.qty, inst.lot_size))
            if cmd.price:
                m.setField(44, scaled(cmd.price, inst.tick_size))
    else:
        for tag in (1, 55, 54, 38, 40, 44):  # Side is required in the requests this answers
            if tag in raw:
                m.setField(tag, raw[tag])
    m.setField(14, "0")
    m.setField(151, "0")
    m.setField(6, "0")
    m.setField(103, ord_rej_reason(code))
    if ext:
        m.setField(TAG_REJECT_CODE, str(int(code)))
    m.setField(58, text[:500])
    m.setField(60, utc(ts))
    return m


def cancel_reject(ev: CancelRejected | None, *, cl_ord_id: str = "", orig: str = "", order_id: str = "NONE",
                  status: int = -1, response_to: str = "1", code: int = 0, text: str = "",
                  ext: bool = False) -> fix.Message:
    """OrderCancelReject (9) for an engine CancelRejected, or for an edge refusal."""
    if ev is not None:
        cmd = ev.cmd
        cl_ord_id = cmd.cl_ord_id
        orig = cmd.orig_cl_ord_id or (ev.info.cl_ord_id if ev.info else "")
        order_id = str(ev.order_id) if ev.order_id else (str(cmd.order_id) if cmd.order_id > 0 else "NONE")
        status = ev.status
        response_to = "2" if isinstance(cmd, C.AmendOrder) else "1"
        code, text = ev.code, ev.text
    m = _new("9")
    m.setField(37, order_id)
    m.setField(11, cl_ord_id or "NONE")
    m.setField(41, orig or "NONE")
    m.setField(39, ORDSTATUS_OUT.get(status, "8"))
    m.setField(434, response_to)
    m.setField(102, cxl_rej_reason(code))
    if ext:
        m.setField(TAG_REJECT_CODE, str(int(code)))
    m.setField(58, text[:500])
    return m


def mass_cancel_report(ev: MassCancelReport, request_type: str) -> fix.Message:
    m = _new("r")
    cmd = ev.cmd
    m.setField(11, cmd.cl_ord_id or "NONE")
    m.setField(37, f"{ev.seq}")
    m.setField(530, request_type)
    if ev.code:
        m.setField(531, "0")
        m.setField(532, "99" if ev.code != Reject.UNKNOWN_SYMBOL else "1")
        m.setField(58, ev.text[:500])
    else:
        m.setField(531, request_type)
        m.setField(533, str(ev.cancelled))
    if cmd.symbol:
        m.setField(55, cmd.symbol)
    if cmd.side:
        m.setField(54, SIDE_OUT[cmd.side])
    m.setField(60, utc(ev.ts))
    return m


class OrderView(NamedTuple):
    """An order's state as a status report needs it (built on the sequencer thread)."""

    info: OrderInfo
    status: int
    cl_ord_id: str
    cum: int
    leaves: int
    cum_notional: int


def status_report(v: OrderView, inst: Instrument, exec_id: str, ts: int, mass_req: str = "",
                  total: int = 0, last: bool = False, req_id_tag: int = 0, req_id: str = "",
                  stp: bool = False) -> fix.Message:
    """ER with ExecType=I (order status). ``stp``: echo 25001."""
    lot = inst.lot_size
    body = (f"{_order_part(v.info, inst, stp)}11={v.cl_ord_id}\x0117={exec_id}\x01150=I\x01"
            f"39={ORDSTATUS_OUT[v.status]}\x0114={fmt_multiple(v.cum, lot)}\x01151={fmt_multiple(v.leaves, lot)}\x01"
            f"6={avg_px(inst, v.cum_notional, v.cum)}\x0160={utc(ts)}\x01")
    if mass_req:
        body += f"584={mass_req}\x01911={total}\x01" + ("912=Y\x01" if last else "")
    if req_id_tag and req_id:
        body += f"{req_id_tag}={req_id}\x01"
    return message("8", body)


def mass_status_empty(req_id: str, exec_id: str, ts: int, symbol: str = "", side: str = "", account: str = "",
                      ext: bool = False) -> fix.Message:
    """The answer to an OrderMassStatusRequest that matches no order: FIX 4.4 prescribes no
    message for it, so one ExecutionReport with ExecType I (order status), TotNumReports
    0 and LastRptRequested Y, shaped like the answer to a status request for an unknown
    order (OrderID NONE, OrdStatus 8, OrdRejReason 5). It carries what the request named
    and nothing made up: no ClOrdID, Symbol or Account unless requested; Side, required
    in a FIX 4.4 ExecutionReport, is the request's or else 7 (undisclosed)."""
    m = _new("8")
    m.setField(37, "NONE")
    m.setField(17, exec_id)
    m.setField(150, "I")
    m.setField(39, "8")
    if account:
        m.setField(1, account)
    if symbol:
        m.setField(55, symbol)
    m.setField(54, side or "7")
    m.setField(14, "0")
    m.setField(151, "0")
    m.setField(6, "0")
    m.setField(103, "5")
    if ext:
        m.setField(TAG_REJECT_CODE, str(int(Reject.UNKNOWN_ORDER)))
    m.setField(584, req_id)
    m.setField(911, "0")
    m.setField(912, "Y")
    m.setField(58, "no open orders match the request")
    m.setField(60, utc(ts))
    return m


def business_reject(ref_msg_type: str, ref_seq: str, reason: str, text: str, ref_id: str = "") -> fix.Message:
    m = _new("j")
    m.setField(45, ref_seq)
    m.setField(372, ref_msg_type)
    if ref_id:
        m.setField(379, ref_id)
    m.setField(380, reason)
    m.setField(58, text[:500])
    return m


def session_reject(ref_seq: str, ref_msg_type: str, ref_tag: int, reason: int, text: str) -> fix.Message:
    """A session-level Reject (3), as QuickFIX sends one for a message it refuses."""
    m = _new("3")
    m.setField(45, ref_seq)
    if ref_tag:
        m.setField(371, str(ref_tag))
    m.setField(372, ref_msg_type)
    m.setField(373, str(reason))
    m.setField(58, text[:500])
    return m


def raw_fields(msg: fix.Message, tags: tuple[int, ...]) -> dict[int, str]:
    return {t: msg.getField(t) for t in tags if msg.isSetField(t)}


def order_view(o: Any) -> OrderView:
    """From an engine Order (on the sequencer thread)."""
    return OrderView(o.info, o.status, o.cl_ord_id, o.cum, o.leaves, o.cum_notional)
