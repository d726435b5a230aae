"""The matching engine: ``process(seq, ts, command) -> events``, deterministic.

The engine owns all mutable venue state (books, open orders, the ledger) and is driven
by one thread, the sequencer's. It reads no clock (the sequencer stamps ``ts``), draws no
random number and does no I/O, so replaying the journal's commands rebuilds the same
state, the same ids and the same events.

Each new order travels: validation -> pre-trade risk -> reservation of what it can
spend -> matching (:mod:`venue.book`) -> settlement of each fill in the ledger -> events.
A refusal is a value (a :class:`venue.types.Reject` code and a text) reported as an
event; state is untouched. An exception is a bug: the caller must stop the engine.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from heapq import heappop, heappush
from typing import Any, Callable, Final

from venue import commands as C
from venue.book import (
    M_FILL, M_FILL_DONE, M_RO_MAKER, M_RO_TAKER, M_STP_DECREMENT, M_STP_MAKER, M_STP_TAKER, MatchRecord,
    OrderBook,
)
from venue.errors import EngineBug, InvalidValue
from venue.events import (
    AdminApplied, CancelRejected, CommandRejected, Execution, FundingPosted, InstrumentStatus,
    MassCancelReport, OrderInfo, OrderRejected, Trade,
)
from venue.instruments import Asset, Instrument, units_of
from venue.ledger import FEE_ACCOUNT, FEE_FIRM, PPM, Account, Balance, Ledger
from venue.orders import T_CANCEL, T_EXPIRE, T_FILL, T_PARTIAL_FILL, T_REPLACE, T_RESTATE, T_TRIGGER, Order
from venue.types import (
    BUY, DAY, EXEC_CANCELLED, EXEC_EXPIRED, EXEC_FILL, EXEC_NEW, EXEC_REPLACED, EXEC_RESTATED,
    EXEC_TRIGGERED, FILLED, FOK, FX_ADD, FX_NONE, FX_REMOVE, FX_REQUEUE, FX_UPDATE, GTC, GTD, IOC,
    LIMIT, LIQ_MAKER, LIQ_TAKER, MARKET, NEW, SELL, STOP, STOP_LIMIT, WAITING_TRIGGER, AccountKind,
    CancelReason, OrderStatus, Reject,
)

def _check_compiled() -> None:
    """Refuse to run compiled from other sources than the ones beside us (see setup.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    record = os.path.join(os.path.dirname(here), "build", "venue-compiled.json")
    if __file__.endswith(".py") or not os.path.exists(record):
        return  # the sources themselves, or an installed build
    with open(record) as f:
        built: dict[str, str] = json.load(f)
    changed = []
    for name, digest in sorted(built.items()):
        with open(os.path.join(here, name), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                changed.append(name)
    if changed:
        raise ImportError(f"venue's compiled modules were built before {', '.join(changed)} changed: rebuild them "
                          f"(python3 -m pip install -e .) or delete them (rm venue/*.so venue__mypyc*.so)")


_check_compiled()

# Hot-path names. When compiled (mypyc), a ``Final`` module name is a C static, any other
# module-level name a dictionary lookup each time it is read.
_NewOrder: Final = C.NewOrder
_CancelOrder: Final = C.CancelOrder

DAY_NS: Final = 86_400 * 1_000_000_000
RECENT_MAX: Final = 50_000  # terminal orders kept for status requests and duplicate-ClOrdID checks
RETIRED_MAX: Final = 50_000  # ClOrdIDs replaced off open orders, kept for duplicate-ClOrdID checks

_RO_TEXT: Final = "reduce-only order exceeds the position left to reduce"
_RESTING_TIF: Final = (GTC, GTD, DAY)
_VALID_TIF: Final = (DAY, GTC, IOC, FOK, GTD)


class Market:
    """The engine's state for one instrument."""

    __slots__ = ("_inst", "book", "halted", "last_px", "stops_buy", "stops_sell", "mult", "bpl",
                 "base", "quote", "fee_bal", "symbol", "min_qty", "max_qty", "min_notional", "max_notional")

    _inst: Instrument
    symbol: str
    book: OrderBook
    halted: bool
    last_px: int
    stops_buy: list[tuple[int, int, int]]
    stops_sell: list[tuple[int, int, int]]
    mult: int
    bpl: int
    base: str
    quote: str
    fee_bal: Balance
    min_qty: int  # the instrument's limits, copied by the ``inst`` setter for the hot path
    max_qty: int
    min_notional: int
    max_notional: int

    def __init__(self, inst: Instrument, fee_bal: Balance) -> None:
        self.inst = inst
        self.symbol = inst.symbol
        self.book = OrderBook(inst.symbol)
        self.halted = False
        self.last_px = 0  # 0 = no trade yet
        self.stops_buy = []  # heap of (stop_px, seq, order_id)
        self.stops_sell = []  # heap of (-stop_px, seq, order_id)
        self.mult = inst.notional_mult
        self.bpl = inst.base_per_lot
        self.base = inst.base
        self.quote = inst.quote
        self.fee_bal = fee_bal

    @property
    def inst(self) -> Instrument:
        return self._inst

    @inst.setter
    def inst(self, inst: Instrument) -> None:  # venue.operator replaces it to change the limits
        self._inst = inst
        self.min_qty = inst.min_qty
        self.max_qty = inst.max_qty
        self.min_notional = inst.min_notional
        self.max_notional = inst.max_notional

    def band_cap(self, side: int, ref: int) -> int:
        """The worst price a market order may trade at, ``ref`` +/- the protection band."""
        band = self.inst.market_band_ppm
        if side == BUY:
            return ref * (PPM + band) // PPM
        return max(1, -(-ref * (PPM - band) // PPM))


class RetiredClOrdIDs:
    """The ClOrdIDs that replaces took off orders still open (an order that closes keeps
    its current ClOrdID in ``Account.clids`` while it is in ``Engine.recent``). FIX 4.4 wants a ClOrdID unique within
    a session's day; the venue refuses a new order or a replace that takes a ClOrdID it
    has seen on the account within a bounded window: the open orders', the last
    ``RECENT_MAX`` closed orders' and the last ``RETIRED_MAX`` replaced ones. Part of the
    engine's state, kept through snapshots as an engine extension ("clordids"), so a
    replay from a snapshot refuses the same ClOrdIDs as the venue that ran on."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}  # (account, ClOrdID) -> order id
        self._fifo: deque[tuple[str, str, int]] = deque()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids

    def taken(self, account: str, clid: str) -> bool:
        """``(account, clid) in self``, without building the pair while nothing is retired."""
        return bool(self._ids) and (account, clid) in self._ids

    def add(self, account: str, clid: str, order_id: int) -> None:
        key = (account, clid)
        self._ids[key] = order_id
        self._fifo.append((account, clid, order_id))
        if len(self._fifo) > RETIRED_MAX:
            a, c, oid = self._fifo.popleft()
            if self._ids.get((a, c)) == oid:
                del self._ids[(a, c)]

    def dump_state(self) -> list[list[Any]]:
        return [list(x) for x in self._fifo]

    def load_state(self, d: list[list[Any]]) -> None:
        self._ids.clear()
        self._fifo.clear()
        for account, clid, order_id in d:
            self.add(account, clid, order_id)

    def state_hash(self) -> str:
        return hashlib.sha256(repr(list(self._fifo)).encode()).hexdigest()


class Engine:
    ledger: Ledger
    markets: dict[str, Market]
    orders: dict[int, Order]
    expiries: list[tuple[int, int]]
    recent: dict[int, Order]
    recent_ids: deque[int]
    seq: int
    ts: int
    risk: Any
    after: Callable[[], None] | None
    extensions: dict[str, Any]
    retired: RetiredClOrdIDs
    fee_acct: Account
    _ev: list[Any]
    _n: int
    _tn: int
    _handlers: dict[type, Callable[[Any], None]]

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.markets = {}
        self.orders = {}  # open orders (resting or waiting for a trigger)
        self.expiries = []  # heap of (expire_ts, order_id)
        self.recent = {}  # terminal orders, bounded
        self.recent_ids = deque()  # the same ids, oldest first
        self.seq = 0
        self.ts = 0
        # optional pre-trade hook (venue.risk.RiskGate): check_new(engine, cmd, acct, mkt, price),
        # check_amend(engine, cmd, order, price, leaves), check_withdraw(engine, acct, asset, amount),
        # each -> (code, text) | None
        self.risk = None
        self.after = None  # optional hook run after every command's handler (margin: repay, liquidate)
        self.extensions = {}  # name -> object with dump_state(), load_state(d), state_hash() (see venue.snapshot)
        self.retired = RetiredClOrdIDs()
        self.extensions["clordids"] = self.retired
        self._ev = []
        self._n = 0  # executions in this command (ExecID = seq-n)
        self._tn = 0  # trades in this command (TradeID = seq-n)
        fee_firm = self.ledger.add_firm(FEE_FIRM, "the venue")
        self.fee_acct = self.ledger.add_account(FEE_ACCOUNT, fee_firm, kind=int(AccountKind.VENUE))
        self._handlers = {
            C.NewOrder: self._new_order,
            C.CancelOrder: self._cancel_order,
            C.AmendOrder: self._amend_order,
            C.MassCancel: self._mass_cancel,
            C.Halt: self._halt,
            C.Resume: self._resume,
            C.DefineAsset: self._define_asset,
            C.DefineInstrument: self._define_instrument,
            C.CreateFirm: self._create_firm,
            C.CreateAccount: self._create_account,
            C.SetFees: self._set_fees,
            C.SetAccountEnabled: self._set_account_enabled,
            C.Deposit: self._deposit,
            C.Withdraw: self._withdraw,
            C.HoldWithdrawal: self._hold_withdrawal,
            C.ReleaseWithdrawal: self._release_withdrawal,
            C.CompleteWithdrawal: self._complete_withdrawal,
            C.Tick: self._tick,
        }

    def __del__(self) -> None:
        """Take apart the reference cycles of the orders still open: the cyclic collector
        does not see orders (venue.orders), so it cannot free an engine's open orders, their
        levels and their accounts by itself. (Only a discarded engine has any: tests, replays.)"""
        for mkt in self.markets.values():
            for side in (mkt.book.bids, mkt.book.asks):
                for lvl in side.levels.values():
                    lvl.orders.clear()
        for acct in self.ledger.accounts.values():
            acct.orders.clear()
            acct.clids.clear()

    # ================================================================== entry point
    def process(self, seq: int, ts: int, cmd: Any) -> list[Any]:
        if seq != self.seq + 1:
            raise EngineBug(f"sequence {seq} after {self.seq}: commands must be processed in order without gaps")
        if ts < self.ts:
            raise EngineBug(f"time went backwards: {ts} after {self.ts}")
        self.seq = seq
        self.ts = ts
        self._n = 0
        self._tn = 0
        ev = self._ev = []
        t = type(cmd)
        if t is _NewOrder:  # the order flow is called directly, the rest through the table
            self._new_order(cmd)
        elif t is _CancelOrder:
            self._cancel_order(cmd)
        elif (handler := self._handlers.get(t)) is not None:
            handler(cmd)
        else:
            ev.append(CommandRejected(seq, ts, cmd, int(Reject.BAD_COMMAND), f"unknown command {t.__name__}"))
        if self.after is not None:
            self.after()
        return ev

    def clid_taken(self, acct: Account, clid: str) -> bool:
        """Whether ``clid`` is in use on ``acct``, or was within the window that
        :class:`RetiredClOrdIDs` describes: a new order or replace may not take it."""
        return clid in acct.clids or self.retired.taken(acct.id, clid)

    def register_handler(self, cls: type, handler: Callable[[Any], None]) -> None:
        """Attach the handler of a command defined outside the core (risk, margin)."""
        self._handlers[cls] = handler

    # ================================================================== new orders
    def _reject(self, c: C.NewOrder, code: int, text: str, acct: Account | None = None) -> None:
        self._n += 1
        self._ev.append(OrderRejected(self.seq, self.ts, self._n, c, int(code), text, acct.firm.id if acct else ""))

    def place_internal(self, c: C.NewOrder, order_id: int, liquidation: bool = True) -> None:
        """Enter an order the venue itself places (a liquidation) inside the current
        command: ``order_id`` must be unique and not a sequence number (see venue.margin);
        pre-trade risk is not applied and a disabled account does not stop it."""
        self._new_order(c, order_id, liquidation)

    def _new_order(self, c: C.NewOrder, oid: int = 0, liquidation: bool = False) -> None:
        (account, clid, symbol, side, ot, qty, price, stop_px, tif, expire_ts, post_only, display, stp,
         session, reduce_only) = c
        acct = self.ledger.accounts.get(account)
        if acct is None:
            return self._reject(c, Reject.UNKNOWN_ACCOUNT, f"unknown account {account}")
        if not acct.enabled and not liquidation:
            return self._reject(c, Reject.ACCOUNT_DISABLED, f"account {account} is disabled", acct)
        mkt = self.markets.get(symbol)
        if mkt is None:
            return self._reject(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol}", acct)
        if mkt.halted:
            return self._reject(c, Reject.INSTRUMENT_HALTED, f"{symbol} is halted", acct)
        inst = mkt.inst
        if side != BUY and side != SELL:
            return self._reject(c, Reject.INVALID_SIDE, f"invalid side {side}", acct)
        if qty <= 0:
            return self._reject(c, Reject.INVALID_QUANTITY, "quantity must be positive", acct)
        if qty < mkt.min_qty:
            return self._reject(c, Reject.QTY_BELOW_MIN, f"quantity {inst.lots_to_qty(qty)} is below the minimum {inst.lots_to_qty(inst.min_qty)} of {symbol}", acct)
        if qty > mkt.max_qty:
            return self._reject(c, Reject.QTY_ABOVE_MAX, f"quantity {inst.lots_to_qty(qty)} is above the maximum {inst.lots_to_qty(inst.max_qty)} of {symbol}", acct)
        if ot == LIMIT or ot == STOP_LIMIT:
            if price <= 0:
                return self._reject(c, Reject.INVALID_PRICE, "a limit order needs a positive price", acct)
        elif ot == MARKET or ot == STOP:
            if price:
                return self._reject(c, Reject.INVALID_PRICE, "a market order carries no price", acct)
        else:
            return self._reject(c, Reject.INVALID_ORDER_TYPE, f"unsupported order type {ot}", acct)
        is_stop = ot == STOP or ot == STOP_LIMIT
        if is_stop and stop_px <= 0:
            return self._reject(c, Reject.INVALID_STOP_PRICE, "a stop order needs a positive stop price", acct)
        if not is_stop and stop_px:
            return self._reject(c, Reject.INVALID_STOP_PRICE, "only stop orders carry a stop price", acct)
        if tif not in _VALID_TIF:
            return self._reject(c, Reject.INVALID_TIME_IN_FORCE, f"unsupported time in force {tif}", acct)
        if ot == MARKET and tif != FOK:
            tif = IOC  # a market order never rests (a stop-market keeps its tif until it triggers)
        if tif == GTD:
            if expire_ts <= self.ts:
                return self._reject(c, Reject.INVALID_EXPIRE_TIME, "GTD expire time must be in the future", acct)
        elif tif == DAY:
            expire_ts = (self.ts // DAY_NS + 1) * DAY_NS
        else:
            expire_ts = 0
        resting = tif in _RESTING_TIF and ot != STOP
        if post_only and not (resting and (ot == LIMIT or ot == STOP_LIMIT)):
            return self._reject(c, Reject.UNSUPPORTED, "post-only needs a limit order that may rest (not IOC/FOK)", acct)
        if display:
            if not (resting and (ot == LIMIT or ot == STOP_LIMIT)):
                return self._reject(c, Reject.INVALID_DISPLAY_QTY, "an iceberg must be a limit order that may rest", acct)
            if display < 0 or display >= qty or display < inst.min_qty:
                return self._reject(c, Reject.INVALID_DISPLAY_QTY, "display quantity must be at least the minimum and less than the order quantity", acct)
        if not stp:
            stp = acct.stp
        elif not 1 <= stp <= 5:
            return self._reject(c, Reject.INVALID_STP, f"invalid self-trade prevention mode {stp}", acct)
        if not clid:
            return self._reject(c, Reject.BAD_COMMAND, "ClOrdID is required", acct)
        if self.clid_taken(acct, clid):
            return self._reject(c, Reject.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {clid}", acct)
        book = mkt.book
        # the price the order may trade at: its limit, or the protection cap of a market order
        if ot == MARKET:
            touch = book.best_ask() if side == BUY else book.best_bid()
            if touch is None:
                return self._reject(c, Reject.NO_LIQUIDITY, f"no liquidity on the other side of {symbol}", acct)
            price = mkt.band_cap(side, touch)
            ref = touch
        elif ot == STOP:
            price = mkt.band_cap(side, stop_px)
            ref = stop_px
        else:
            ref = price
        if is_stop and mkt.last_px:
            if (side == BUY and mkt.last_px >= stop_px) or (side == SELL and mkt.last_px <= stop_px):
                return self._reject(c, Reject.STOP_WOULD_TRIGGER, f"stop price {inst.ticks_to_price(stop_px)} would trigger at once (last {inst.ticks_to_price(mkt.last_px)})", acct)
        notional = ref * qty * mkt.mult
        if notional < mkt.min_notional:
            return self._reject(c, Reject.NOTIONAL_BELOW_MIN, f"notional {self._fmt(mkt.quote, notional)} is below the minimum {self._fmt(mkt.quote, inst.min_notional)} {mkt.quote}", acct)
        if notional > mkt.max_notional:
            return self._reject(c, Reject.NOTIONAL_ABOVE_MAX, f"notional {self._fmt(mkt.quote, notional)} is above the maximum {self._fmt(mkt.quote, inst.max_notional)} {mkt.quote}", acct)
        if post_only and not is_stop and book.would_cross(side, price):
            return self._reject(c, Reject.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity", acct)
        if self.risk is not None and not liquidation:
            refusal = self.risk.check_new(self, c, acct, mkt, price)
            if refusal is not None:
                return self._reject(c, refusal[0], refusal[1], acct)
        # reserve what it can spend
        taker_ppm = acct.taker_ppm
        bal = acct.bal
        if side == BUY:
            hold_asset, recv_asset = mkt.quote, mkt.base
            n = price * qty * mkt.mult
            need = n + n * taker_ppm // PPM
        else:
            hold_asset, recv_asset = mkt.base, mkt.quote
            need = qty * mkt.bpl
        hold_b = bal.get(hold_asset)
        if hold_b is None or hold_b.avail < need:  # (a refusal creates no empty balance either)
            return self._reject(c, Reject.INSUFFICIENT_FUNDS, f"insufficient {hold_asset}: needs {self._fmt(hold_asset, need)}, available {self._fmt(hold_asset, hold_b.avail if hold_b else 0)}", acct)
        recv_b = bal.get(recv_asset)
        if recv_b is None:
            recv_b = acct.balance(recv_asset)
        # accepted
        seq = self.seq
        ts = self.ts
        oid = oid or seq
        info = OrderInfo(oid, account, acct.firm.id, symbol, side, ot, tif, price, stop_px, qty, display, clid,
                         expire_ts, stp, post_only, session, ts, reduce_only, liquidation)
        o = Order(oid, acct, info, side, ot, tif, price, stop_px, qty, display,
                  WAITING_TRIGGER if is_stop else NEW, stp, acct.maker_ppm, taker_ppm)
        o.hold_b = hold_b
        o.recv_b = recv_b
        o.mkt = mkt
        hold_b.avail -= need
        hold_b.held += need
        o.held = need
        if oid != seq:
            o.seq = seq  # time priority is the command's sequence number
        key = o.key
        self.orders[key] = o
        acct.orders[key] = o
        acct.clids[clid] = o
        if expire_ts:
            heappush(self.expiries, (expire_ts, oid))
        ev = self._ev
        self._n += 1
        if is_stop:
            self._arm_stop(o)
            ev.append(Execution(seq, ts, self._n, EXEC_NEW, info, WAITING_TRIGGER, clid, "", 0, qty, 0, 0, 0, 0, 0, 0, 0, -1, "", FX_NONE, 0))
            return
        if resting and not book.would_cross(side, price):
            vis = display or qty
            o.visible = vis
            book.rest(o)
            ev.append(Execution(seq, ts, self._n, EXEC_NEW, info, NEW, clid, "", 0, qty, 0, 0, 0, 0, 0, 0, 0, -1, "", FX_ADD, vis))
            return
        ev.append(Execution(seq, ts, self._n, EXEC_NEW, info, NEW, clid, "", 0, qty, 0, 0, 0, 0, 0, 0, 0, -1, "", FX_NONE, 0))
        self._enter(o, mkt, len(ev) - 1)
        if self._tn:
            self._check_stops(mkt)

    def _enter(self, o: Order, mkt: Market, idx: int) -> None:
        """Match an accepted order and rest, or cancel, what is left. ``idx`` is the index
        of its latest event, to be marked if the order ends up resting."""
        book = mkt.book
        if o.post_only and book.would_cross(o.side, o.price):
            return self._cancel(o, CancelReason.POST_ONLY, text="post-only order would take liquidity")
        if o.tif == FOK and not book.fillable(o, o.price):
            return self._cancel(o, CancelReason.FOK_NOT_FILLABLE, text="fill-or-kill order could not be filled in full")
        out: list[MatchRecord] = []
        leaves = o.leaves
        book.match(o, o.price, out)
        if out:
            idx = self._settle(o, mkt, out, leaves, idx)
        if o.status >= FILLED or not o.leaves:
            return
        if o.tif == IOC or o.tif == FOK or o.ord_type == MARKET or o.ord_type == STOP:
            if o.ord_type == MARKET or o.ord_type == STOP:
                other = book.best_ask() if o.side == BUY else book.best_bid()
                reason = CancelReason.NO_LIQUIDITY if other is None else CancelReason.MARKET_PROTECTION
            else:
                reason = CancelReason.IOC_REMAINDER
            return self._cancel(o, reason)
        o.visible = o.display if o.display and o.display < o.leaves else o.leaves
        if o.side == BUY:
            self._trim(o)
        book.rest(o)
        ev = self._ev
        e: Execution = ev[idx]  # its latest event now tells that it rests
        ev[idx] = Execution(e.seq, e.ts, e.exec_n, e.kind, e.info, e.status, e.cl_ord_id, e.orig_cl_ord_id, e.cum_qty,
                            o.leaves, e.cum_notional, e.cum_fee, e.last_px, e.last_qty, e.fee, e.liquidity, e.trade_n,
                            e.reason, e.text, FX_REQUEUE if e.book == FX_REMOVE else FX_ADD, o.visible)

    def _settle(self, o: Order, mkt: Market, out: list[MatchRecord], t_leaves: int, idx: int) -> int:
        """Settle the fills of taker ``o`` in the ledger and report them. Returns the index
        of the taker's last event."""
        seq, ts, ev = self.seq, self.ts, self._ev
        append = ev.append
        mult, bpl, fee_bal, symbol = mkt.mult, mkt.bpl, mkt.fee_bal, mkt.symbol
        taker_buy = o.side == BUY
        t_ppm = o.taker_ppm
        for kind, m, px, q, m_leaves, m_vis in out:
            if kind <= M_FILL_DONE:
                self._tn += 1
                tn = self._tn
                pq = px * q
                notional = pq * mult
                tf = notional * t_ppm // PPM
                mp = m.maker_ppm
                mf = notional * mp // PPM if mp >= 0 else -(notional * -mp // PPM)
                if mf < -tf:
                    mf = -tf  # a rebate is paid from this trade's taker fee: the fee account never goes negative
                base_amt = q * bpl
                if taker_buy:
                    cost = notional + tf
                    o.hold_b.held -= cost
                    o.held -= cost
                    o.recv_b.avail += base_amt
                    m.hold_b.held -= base_amt
                    m.held -= base_amt
                    m.recv_b.avail += notional - mf
                else:
                    o.hold_b.held -= base_amt
                    o.held -= base_amt
                    o.recv_b.avail += notional - tf
                    cost = notional + mf
                    m.hold_b.held -= cost
                    m.held -= cost
                    m.recv_b.avail += base_amt
                fee_bal.avail += tf + mf
                m.cum += q
                m.cum_notional += pq
                m.cum_fee += mf
                if m_leaves:
                    m.apply(T_PARTIAL_FILL)
                    fx = FX_UPDATE if kind == M_FILL else FX_REQUEUE
                    if not taker_buy:  # a maker buy holds exactly what its rest needs (see _need)
                        n = m.price * m_leaves * mult
                        excess = m.held - n - n * m.taker_ppm // PPM
                        if excess:
                            self._release(m, excess)
                else:
                    m.apply(T_FILL)
                    fx = FX_REMOVE
                self._n += 1
                append(Execution(seq, ts, self._n, EXEC_FILL, m.info, m.status, m.cl_ord_id, "", m.cum, m_leaves,
                                 m.cum_notional, m.cum_fee, px, q, mf, LIQ_MAKER, tn, -1, "", fx, m_vis))
                if not m_leaves:
                    self._close(m)
                t_leaves -= q
                o.cum += q
                o.cum_notional += pq
                o.cum_fee += tf
                o.apply(T_PARTIAL_FILL if t_leaves else T_FILL)
                self._n += 1
                append(Execution(seq, ts, self._n, EXEC_FILL, o.info, o.status, o.cl_ord_id, "", o.cum, t_leaves,
                                 o.cum_notional, o.cum_fee, px, q, tf, LIQ_TAKER, tn, -1, "", FX_NONE, 0))
                idx = len(ev) - 1
                append(Trade(seq, ts, tn, symbol, px, q, o.side, m.id, o.id, m.acct.id, o.acct.id, mf, tf, o.liquidation))
                mkt.last_px = px
            elif kind == M_STP_MAKER:
                self._cancel(m, CancelReason.SELF_TRADE, fx=FX_REMOVE, text="cancelled by self-trade prevention")
            elif kind == M_STP_TAKER:
                self._cancel(o, CancelReason.SELF_TRADE, text="cancelled by self-trade prevention")
            elif kind == M_STP_DECREMENT:
                # Both orders lose the overlap. One that keeps a remainder is restated with
                # the smaller OrderQty (378=5); one decremented to nothing is cancelled and
                # keeps the quantity it was entered with, as its reports show.
                if m_leaves:
                    m.qty -= q
                    m.info = m.info._replace(qty=m.qty)
                    saved, m.leaves = m.leaves, m_leaves
                    if m.side == BUY:
                        self._trim(m)
                    else:
                        self._release(m, m.held - m_leaves * bpl)
                    m.apply(T_RESTATE)
                    self._emit(m, EXEC_RESTATED, reason=int(CancelReason.SELF_TRADE), text="quantity reduced by self-trade prevention", fx=FX_UPDATE, visible=m_vis)
                    m.leaves = saved
                else:
                    self._cancel(m, CancelReason.SELF_TRADE, fx=FX_REMOVE, text="cancelled by self-trade prevention (decrement)")
                t_leaves -= q
                if t_leaves:
                    o.qty -= q
                    o.info = o.info._replace(qty=o.qty)
                    saved, o.leaves = o.leaves, t_leaves
                    if taker_buy:
                        self._trim(o)
                    else:
                        self._release(o, o.held - t_leaves * bpl)
                    o.leaves = saved
                    o.apply(T_RESTATE)
                    self._n += 1
                    append(Execution(seq, ts, self._n, EXEC_RESTATED, o.info, o.status, o.cl_ord_id, "", o.cum, t_leaves,
                                     o.cum_notional, o.cum_fee, 0, 0, 0, 0, 0, int(CancelReason.SELF_TRADE),
                                     "quantity reduced by self-trade prevention"))
                    idx = len(ev) - 1
                else:
                    self._cancel(o, CancelReason.SELF_TRADE, text="cancelled by self-trade prevention (decrement)")
            elif kind == M_RO_MAKER:
                self._cancel(m, CancelReason.REDUCE_ONLY, fx=FX_REMOVE, text=_RO_TEXT)
            elif kind == M_RO_TAKER:
                self._cancel(o, CancelReason.REDUCE_ONLY, text=_RO_TEXT)
            else:  # pragma: no cover - the book writes only the kinds above
                raise EngineBug(f"unknown match record {kind}")
        if o.status == FILLED:
            self._close(o)
        elif t_leaves != o.leaves and o.status < FILLED:
            raise EngineBug(f"order {o.id}: settled leaves {t_leaves} != book leaves {o.leaves}")
        return idx

    # ================================================================== closing orders
    def _need(self, o: Order) -> int:
        """What an open order must hold for its remaining quantity."""
        if o.side == BUY:
            n = o.price * o.leaves * o.mkt.mult
            return n + n * o.taker_ppm // PPM
        return o.leaves * o.mkt.bpl

    def _release(self, o: Order, amount: int) -> None:
        if amount:
            if amount < 0:
                raise EngineBug(f"order {o.id}: release of {amount}")
            o.held -= amount
            o.hold_b.held -= amount
            o.hold_b.avail += amount

    def _trim(self, o: Order) -> None:
        """Give back what a buy order holds beyond its need (price improvement, reductions)."""
        excess = o.held - self._need(o)
        if excess > 0:
            self._release(o, excess)
        elif excess < 0:
            raise EngineBug(f"order {o.id} holds {o.held} < need {self._need(o)}")

    def _close(self, o: Order) -> None:
        """An order became terminal: unregister it, give back what it still holds."""
        key = o.key
        del self.orders[key]
        del o.acct.orders[key]
        if o.held:
            self._release(o, o.held)
        # its ClOrdID stays in acct.clids, now naming a closed order, until it leaves recent
        recent = self.recent
        recent[key] = o
        self.recent_ids.append(key)
        if len(recent) > RECENT_MAX:
            old = recent.pop(self.recent_ids.popleft())
            clids = old.acct.clids
            clid = old.cl_ord_id
            if clids.get(clid) is old:
                del clids[clid]

    def _cancel(self, o: Order, reason: int, cl: str | None = None, fx: int | None = None, text: str = "",
                expire: bool = False) -> None:
        """Cancel (or expire) an open order, in or out of the book."""
        if o.level is not None:
            o.mkt.book.remove(o)
            fx = FX_REMOVE
        o.apply(T_EXPIRE if expire else T_CANCEL)
        o.leaves = 0
        self._close(o)
        orig = o.cl_ord_id if cl is not None and cl != o.cl_ord_id else ""
        self._emit(o, EXEC_EXPIRED if expire else EXEC_CANCELLED, cl=cl, orig=orig, reason=int(reason),
                   text=text, fx=fx or FX_NONE)

    def _emit(self, o: Order, kind: int, cl: str | None = None, orig: str = "", reason: int = -1, text: str = "",
              fx: int = FX_NONE, visible: int = 0) -> int:
        self._n += 1
        self._ev.append(Execution(self.seq, self.ts, self._n, kind, o.info, o.status, cl or o.cl_ord_id, orig,
                                  o.cum, o.leaves, o.cum_notional, o.cum_fee, 0, 0, 0, 0, 0, reason, text, fx, visible))
        return len(self._ev) - 1

    # ================================================================== stops and expiry
    def _check_stops(self, mkt: Market) -> None:
        """Trigger stop orders by the last trade price, one at a time, until none is due
        (a triggered order's own trades may trigger more)."""
        orders = self.orders
        while mkt.last_px and not mkt.halted:
            last = mkt.last_px
            o = None
            h = mkt.stops_buy
            while h and h[0][0] <= last:
                _, sq, oid = heappop(h)
                x = orders.get(oid)
                if x is not None and x.status == WAITING_TRIGGER and x.seq == sq:
                    o = x
                    break
            if o is None:
                h = mkt.stops_sell
                while h and -h[0][0] >= last:
                    _, sq, oid = heappop(h)
                    x = orders.get(oid)
                    if x is not None and x.status == WAITING_TRIGGER and x.seq == sq:
                        o = x
                        break
            if o is None:
                return
            o.apply(T_TRIGGER)
            if o.ord_type == STOP and o.tif != FOK:
                o.tif = IOC  # a triggered stop-market is a market order: IOC unless fill-or-kill
            idx = self._emit(o, EXEC_TRIGGERED)
            self._enter(o, mkt, idx)

    @staticmethod
    def _arm_stop(o: Order) -> None:
        if o.side == BUY:
            heappush(o.mkt.stops_buy, (o.stop_px, o.seq, o.id))
        else:
            heappush(o.mkt.stops_sell, (-o.stop_px, o.seq, o.id))

    def next_deadline(self) -> int | None:
        """When the next GTD/Day order expires (ns), for the sequencer to send a Tick."""
        h, orders = self.expiries, self.orders
        while h:
            ets, oid = h[0]
            o = orders.get(oid)
            if o is not None and o.expire_ts == ets:
                return ets
            heappop(h)
        return None

    def _tick(self, c: C.Tick) -> None:
        h, orders, ts = self.expiries, self.orders, self.ts
        while h and h[0][0] <= ts:
            ets, oid = heappop(h)
            o = orders.get(oid)
            if o is not None and o.expire_ts == ets:
                self._cancel(o, CancelReason.EXPIRED, expire=True, text="order expired")

    # ================================================================== cancel / amend
    def _find(self, c: C.CancelOrder | C.AmendOrder) -> Order | None:
        """The open order a cancel or amend names, or None after reporting why not."""
        # the fields both commands start with, by position: compiled, a NamedTuple field read
        # by name is a generic attribute lookup
        account, order_id, orig_cl_ord_id, symbol = c[0], c[2], c[3], c[4]
        acct = self.ledger.accounts.get(account)
        if acct is None:
            self._ev.append(CancelRejected(self.seq, self.ts, c, int(Reject.UNKNOWN_ACCOUNT), f"unknown account {account}"))
            return None
        o = None
        if order_id:
            o = self.orders.get(order_id)
            if o is not None and o.acct is not acct:
                o = None
        elif orig_cl_ord_id:
            o = acct.clids.get(orig_cl_ord_id)
            if o is not None and o.status >= FILLED:
                o = None  # closed: reported below
        if o is not None and symbol and symbol != o.mkt.symbol:
            o = None
        if o is None:
            closed = self.recent.get(order_id) if order_id else None
            if closed is None and orig_cl_ord_id:
                closed = acct.clids.get(orig_cl_ord_id)
                if closed is not None and closed.status < FILLED:
                    closed = None
            if closed is not None and closed.acct is acct:
                self._ev.append(CancelRejected(self.seq, self.ts, c, int(Reject.ORDER_NOT_OPEN),
                                               f"order is already {OrderStatus(closed.status).name.lower().replace('_', ' ')}",
                                               closed.id, closed.status, closed.info))
            else:
                self._ev.append(CancelRejected(self.seq, self.ts, c, int(Reject.UNKNOWN_ORDER), "unknown order"))
            return None
        return o

    def _refuse(self, c: C.AmendOrder, o: Order, code: int, text: str) -> None:
        self._ev.append(CancelRejected(self.seq, self.ts, c, int(code), text, o.id, o.status, o.info))

    def _cancel_order(self, c: C.CancelOrder) -> None:
        o = self._find(c)
        if o is not None:
            self._cancel(o, c[6], cl=c[1] or o.cl_ord_id)  # reason, cl_ord_id (by position, as in _find)

    def _amend_order(self, c: C.AmendOrder) -> None:
        found = self._find(c)
        if found is None:
            return
        o: Order = found
        mkt = o.mkt
        inst = mkt.inst
        if mkt.halted:
            return self._refuse(c, o, Reject.INSTRUMENT_HALTED, f"{inst.symbol} is halted")
        if c.price and o.ord_type not in (LIMIT, STOP_LIMIT):
            return self._refuse(c, o, Reject.UNSUPPORTED, "only a limit order's price can be amended")
        if c.stop_px and o.status != WAITING_TRIGGER:
            return self._refuse(c, o, Reject.INVALID_STOP_PRICE, "the stop price can only be amended before the order triggers")
        if c.qty < 0 or c.price < 0 or c.stop_px < 0:
            return self._refuse(c, o, Reject.BAD_COMMAND, "negative quantity or price")
        new_qty = c.qty or o.qty
        new_price = c.price or o.price
        new_stop = c.stop_px or o.stop_px
        if new_qty <= o.cum:
            return self._refuse(c, o, Reject.AMEND_BELOW_FILLED, f"new quantity {inst.lots_to_qty(new_qty)} is not above the filled quantity {inst.lots_to_qty(o.cum)}")
        if new_qty < inst.min_qty or new_qty > inst.max_qty:
            return self._refuse(c, o, Reject.QTY_ABOVE_MAX if new_qty > inst.max_qty else Reject.QTY_BELOW_MIN, f"quantity {inst.lots_to_qty(new_qty)} is outside [{inst.lots_to_qty(inst.min_qty)}, {inst.lots_to_qty(inst.max_qty)}]")
        if o.display and o.display >= new_qty:
            return self._refuse(c, o, Reject.INVALID_DISPLAY_QTY, "the new quantity must exceed the iceberg's display quantity")
        if o.ord_type == STOP and new_stop != o.stop_px:
            new_price = mkt.band_cap(o.side, new_stop)
        ref = new_stop if o.ord_type == STOP else new_price
        notional = ref * new_qty * mkt.mult
        if notional > inst.max_notional or notional < inst.min_notional:
            return self._refuse(c, o, Reject.NOTIONAL_ABOVE_MAX if notional > inst.max_notional else Reject.NOTIONAL_BELOW_MIN, f"notional {self._fmt(mkt.quote, notional)} {mkt.quote} is outside the limits of {inst.symbol}")
        clid = c.cl_ord_id or o.cl_ord_id
        if clid != o.cl_ord_id and self.clid_taken(o.acct, clid):
            return self._refuse(c, o, Reject.DUPLICATE_CL_ORD_ID, f"duplicate ClOrdID {clid}")
        if o.status == WAITING_TRIGGER and new_stop != o.stop_px and mkt.last_px:
            if (o.side == BUY and mkt.last_px >= new_stop) or (o.side == SELL and mkt.last_px <= new_stop):
                return self._refuse(c, o, Reject.STOP_WOULD_TRIGGER, "the new stop price would trigger at once")
        if o.post_only and o.status != WAITING_TRIGGER and new_price != o.price and mkt.book.would_cross(o.side, new_price):
            return self._refuse(c, o, Reject.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity at the new price")
        new_leaves = new_qty - o.cum
        if self.risk is not None:
            refusal = self.risk.check_amend(self, c, o, new_price, new_leaves)
            if refusal is not None:
                return self._refuse(c, o, refusal[0], refusal[1])
        if o.side == BUY:
            nn = new_price * new_leaves * mkt.mult
            need = nn + nn * o.taker_ppm // PPM
        else:
            need = new_leaves * mkt.bpl
        delta = need - o.held
        if delta > 0 and o.hold_b.avail < delta:
            asset = mkt.quote if o.side == BUY else mkt.base
            return self._refuse(c, o, Reject.INSUFFICIENT_FUNDS, f"insufficient {asset} for the amendment: needs {self._fmt(asset, delta)} more, available {self._fmt(asset, o.hold_b.avail)}")
        # accepted
        orig = o.cl_ord_id
        acct = o.acct
        if clid != orig:
            if acct.clids.get(orig) is o:
                del acct.clids[orig]
            self.retired.add(acct.id, orig, o.id)
        keep = new_price == o.price and new_stop == o.stop_px and new_leaves <= o.leaves
        if keep:
            if o.level is not None:
                mkt.book.reduce(o, new_leaves)
            else:
                o.leaves = new_leaves
            o.qty = new_qty
            o.cl_ord_id = clid
            acct.clids[clid] = o
            o.info = o.info._replace(qty=new_qty, cl_ord_id=clid)
            self._hold_to(o, need)
            o.apply(T_REPLACE)
            self._emit(o, EXEC_REPLACED, orig=orig, fx=FX_UPDATE if o.level is not None else FX_NONE, visible=o.visible)
            return
        was_resting = o.level is not None
        if was_resting:
            mkt.book.remove(o)
        nw = self._reborn(o, new_price, new_stop, new_qty, new_leaves, clid)
        self._hold_to(nw, need)
        nw.apply(T_REPLACE)
        idx = self._emit(nw, EXEC_REPLACED, orig=orig, fx=FX_REMOVE if was_resting else FX_NONE)
        if nw.status == WAITING_TRIGGER:
            self._arm_stop(nw)
            return
        self._enter(nw, mkt, idx)
        if self._tn:
            self._check_stops(mkt)

    def _hold_to(self, o: Order, need: int) -> None:
        delta = need - o.held
        if delta > 0:
            o.hold_b.avail -= delta
            o.hold_b.held += delta
            o.held += delta
        elif delta < 0:
            self._release(o, -delta)

    def _reborn(self, o: Order, price: int, stop_px: int, qty: int, leaves: int, clid: str) -> Order:
        """An amended order that loses priority re-enters as a new object (an order object
        rests at most once, which keeps the book's O(1) cancel sound)."""
        info = o.info._replace(price=price, stop_px=stop_px, qty=qty, cl_ord_id=clid)
        n = Order(o.id, o.acct, info, o.side, o.ord_type, o.tif, price, stop_px, qty, o.display, o.status,
                  o.stp, o.maker_ppm, o.taker_ppm)
        n.leaves = leaves
        n.cum = o.cum
        n.cum_notional = o.cum_notional
        n.cum_fee = o.cum_fee
        n.held = o.held
        n.hold_b = o.hold_b
        n.recv_b = o.recv_b
        n.mkt = o.mkt
        n.seq = self.seq
        n.expire_ts = o.expire_ts
        o.held = 0
        self.orders[n.key] = n
        o.acct.orders[n.key] = n
        o.acct.clids[clid] = n
        return n

    def _mass_cancel(self, c: C.MassCancel) -> None:
        pool: list[Order]
        if c.firm and c.firm not in self.ledger.firms:
            self._ev.append(MassCancelReport(self.seq, self.ts, c, 0, int(Reject.UNKNOWN_FIRM), f"unknown firm {c.firm}"))
            return
        if c.accounts:
            pool = []
            for aid in dict.fromkeys(c.accounts.split(",")):  # an account named twice is cancelled once
                acct = self.ledger.accounts.get(aid)
                if acct is None:
                    self._ev.append(MassCancelReport(self.seq, self.ts, c, 0, int(Reject.UNKNOWN_ACCOUNT), f"unknown account {aid}"))
                    return
                if not c.account or c.account == aid:
                    pool.extend(acct.orders.values())
        elif c.account:
            acct = self.ledger.accounts.get(c.account)
            if acct is None:
                self._ev.append(MassCancelReport(self.seq, self.ts, c, 0, int(Reject.UNKNOWN_ACCOUNT), f"unknown account {c.account}"))
                return
            pool = list(acct.orders.values())
        elif c.firm:
            pool = [o for a in self.ledger.firms[c.firm].accounts for o in a.orders.values()]
        else:
            pool = list(self.orders.values())
        if c.symbol and c.symbol not in self.markets:
            self._ev.append(MassCancelReport(self.seq, self.ts, c, 0, int(Reject.UNKNOWN_SYMBOL), f"unknown symbol {c.symbol}"))
            return
        pool.sort(key=lambda o: o.id)
        n = 0
        for o in pool:
            if ((c.symbol and o.info.symbol != c.symbol) or (c.side and o.side != c.side)
                    or (c.session and o.info.session != c.session) or (c.firm and o.info.firm != c.firm)):
                continue
            self._cancel(o, c.reason)
            n += 1
        self._ev.append(MassCancelReport(self.seq, self.ts, c, n))

    # ================================================================== instruments
    def _halt(self, c: C.Halt) -> None:
        mkt = self.markets.get(c.symbol)
        if mkt is None:
            return self._admin_reject(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
        mkt.halted = True
        self._ev.append(InstrumentStatus(self.seq, self.ts, c.symbol, True, c.reason))
        if c.cancel_book:
            for o in sorted((o for o in self.orders.values() if o.mkt is mkt), key=lambda o: o.id):
                self._cancel(o, CancelReason.HALT, text=f"{c.symbol} halted")

    def _resume(self, c: C.Resume) -> None:
        mkt = self.markets.get(c.symbol)
        if mkt is None:
            return self._admin_reject(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
        mkt.halted = False
        self._ev.append(InstrumentStatus(self.seq, self.ts, c.symbol, False, c.reason))

    # ================================================================== administration
    def _admin_reject(self, c: Any, code: int, text: str) -> None:
        self._ev.append(CommandRejected(self.seq, self.ts, c, int(code), text))

    def _ok(self, c: Any) -> None:
        self._ev.append(AdminApplied(self.seq, self.ts, c))

    def _define_asset(self, c: C.DefineAsset) -> None:
        if not c.code or c.code in self.ledger.assets:
            return self._admin_reject(c, Reject.BAD_COMMAND, f"asset {c.code!r} exists or is empty")
        if not 0 <= c.decimals <= 30:
            return self._admin_reject(c, Reject.BAD_COMMAND, "asset decimals must be within 0..30")
        self.ledger.add_asset(Asset(c.code, c.decimals))
        self._ok(c)

    def _define_instrument(self, c: C.DefineInstrument) -> None:
        try:
            inst = Instrument.from_checked_record(c.record)
        except InvalidValue as e:
            return self._admin_reject(c, Reject.BAD_COMMAND, f"bad instrument record: {e.text}")
        assets = self.ledger.assets
        if inst.symbol in self.markets:
            return self._admin_reject(c, Reject.BAD_COMMAND, f"instrument {inst.symbol} exists")
        if inst.base not in assets or inst.quote not in assets:
            return self._admin_reject(c, Reject.UNKNOWN_ASSET, f"{inst.symbol}: unknown asset")
        try:
            agree = (units_of(inst.tick_size * inst.lot_size, assets[inst.quote].atom) == inst.notional_mult
                     and units_of(inst.lot_size, assets[inst.base].atom) == inst.base_per_lot)
        except InvalidValue:
            agree = False
        if not agree:
            return self._admin_reject(c, Reject.BAD_COMMAND, f"{inst.symbol}: sizes do not agree with the assets' decimals")
        self.markets[inst.symbol] = Market(inst, self.fee_acct.balance(inst.quote))
        self._ok(c)

    def _create_firm(self, c: C.CreateFirm) -> None:
        if not c.firm or c.firm in self.ledger.firms:
            return self._admin_reject(c, Reject.DUPLICATE_FIRM, f"firm {c.firm!r} exists or is empty")
        self.ledger.add_firm(c.firm, c.name)
        self._ok(c)

    @staticmethod
    def _fees_error(maker: int, taker: int) -> str | None:
        if not 0 <= taker < PPM:
            return "taker fee must be within [0, 100%)"
        if not -taker <= maker <= taker:
            return "maker fee must be within [-taker, taker] (a rebate is paid from the taker fee)"
        return None

    def _create_account(self, c: C.CreateAccount) -> None:
        firm = self.ledger.firms.get(c.firm)
        if firm is None:
            return self._admin_reject(c, Reject.UNKNOWN_FIRM, f"unknown firm {c.firm}")
        if not c.account or c.account in self.ledger.accounts:
            return self._admin_reject(c, Reject.DUPLICATE_ACCOUNT, f"account {c.account!r} exists or is empty")
        err = self._fees_error(c.maker_ppm, c.taker_ppm)
        if err:
            return self._admin_reject(c, Reject.INVALID_FEES, err)
        if not 1 <= c.stp <= 5:
            return self._admin_reject(c, Reject.INVALID_STP, f"invalid self-trade prevention mode {c.stp}")
        if c.kind not in (AccountKind.CASH, AccountKind.MARGIN) or not 1 <= c.leverage <= 10:
            return self._admin_reject(c, Reject.BAD_COMMAND, "account kind must be cash or margin, leverage 1..10")
        self.ledger.add_account(c.account, firm, kind=c.kind, maker_ppm=c.maker_ppm, taker_ppm=c.taker_ppm,
                                stp=c.stp, leverage=c.leverage)
        self._ok(c)

    def _set_fees(self, c: C.SetFees) -> None:
        acct = self.ledger.accounts.get(c.account)
        if acct is None:
            return self._admin_reject(c, Reject.UNKNOWN_ACCOUNT, f"unknown account {c.account}")
        err = self._fees_error(c.maker_ppm, c.taker_ppm)
        if err:
            return self._admin_reject(c, Reject.INVALID_FEES, err)
        acct.maker_ppm, acct.taker_ppm = c.maker_ppm, c.taker_ppm  # open orders keep the rates they were held at
        self._ok(c)

    def _set_account_enabled(self, c: C.SetAccountEnabled) -> None:
        acct = self.ledger.accounts.get(c.account)
        if acct is None or acct is self.fee_acct:
            return self._admin_reject(c, Reject.UNKNOWN_ACCOUNT, f"unknown account {c.account}")
        acct.enabled = bool(c.enabled)
        self._ok(c)

    # ================================================================== funding
    def _funding_check(self, c: Any, need_avail: bool) -> Account | None:
        led = self.ledger
        if not c.funding_id:
            self._admin_reject(c, Reject.BAD_COMMAND, "a funding id is required")
            return None
        if c.funding_id in led.funding:
            self._admin_reject(c, Reject.DUPLICATE_FUNDING_ID, f"funding id {c.funding_id} was already used")
            return None
        acct = led.accounts.get(c.account)
        if acct is None:
            self._admin_reject(c, Reject.UNKNOWN_ACCOUNT, f"unknown account {c.account}")
            return None
        if c.asset not in led.assets:
            self._admin_reject(c, Reject.UNKNOWN_ASSET, f"unknown asset {c.asset}")
            return None
        if c.amount <= 0:
            self._admin_reject(c, Reject.INVALID_AMOUNT, "amount must be positive")
            return None
        if need_avail:
            b = acct.bal.get(c.asset)
            avail = b.avail if b is not None else 0
            if avail < c.amount:
                self._admin_reject(c, Reject.INSUFFICIENT_FUNDS, f"insufficient {c.asset}: available {self._fmt(c.asset, avail)}")
                return None
            if self.risk is not None:
                refusal = self.risk.check_withdraw(self, acct, c.asset, c.amount)
                if refusal is not None:
                    self._admin_reject(c, refusal[0], refusal[1])
                    return None
        return acct

    def _posted(self, c: Any, kind: str, funding_id: str, account: str, asset: str, amount: int) -> None:
        self._ev.append(FundingPosted(self.seq, self.ts, c, kind, funding_id, account, asset, amount))

    def _deposit(self, c: C.Deposit) -> None:
        acct = self._funding_check(c, False)
        if acct is not None:
            self.ledger.deposit(c.funding_id, acct, c.asset, c.amount)
            self._posted(c, "deposit", c.funding_id, acct.id, c.asset, c.amount)

    def _withdraw(self, c: C.Withdraw) -> None:
        acct = self._funding_check(c, True)
        if acct is not None:
            self.ledger.withdraw(c.funding_id, acct, c.asset, c.amount)
            self._posted(c, "withdraw", c.funding_id, acct.id, c.asset, c.amount)

    def _hold_withdrawal(self, c: C.HoldWithdrawal) -> None:
        acct = self._funding_check(c, True)
        if acct is not None:
            self.ledger.hold_withdrawal(c.funding_id, acct, c.asset, c.amount)
            self._posted(c, "hold", c.funding_id, acct.id, c.asset, c.amount)

    def _pending_withdrawal(self, c: Any) -> list[Any] | None:
        rec = self.ledger.funding.get(c.funding_id)
        if rec is None:
            self._admin_reject(c, Reject.UNKNOWN_FUNDING_ID, f"unknown funding id {c.funding_id}")
            return None
        if rec[0] != "withdrawal" or rec[4] != "held":
            self._admin_reject(c, Reject.FUNDING_STATE, f"funding {c.funding_id} is not a held withdrawal (it is {rec[0]}, {rec[4]})")
            return None
        return rec

    def _release_withdrawal(self, c: C.ReleaseWithdrawal) -> None:
        if self._pending_withdrawal(c) is not None:
            _, aid, asset, amount, _ = self.ledger.release_withdrawal(c.funding_id)
            self._posted(c, "release", c.funding_id, aid, asset, amount)

    def _complete_withdrawal(self, c: C.CompleteWithdrawal) -> None:
        if self._pending_withdrawal(c) is not None:
            _, aid, asset, amount, _ = self.ledger.complete_withdrawal(c.funding_id)
            self._posted(c, "complete", c.funding_id, aid, asset, amount)

    # ================================================================== reads (sequencer thread only)
    def _fmt(self, asset: str, atoms: int) -> str:
        a = self.ledger.assets.get(asset)
        return a.fmt(atoms) if a else str(atoms)

    def find_order(self, account: str, order_id: int = 0, cl_ord_id: str = "") -> Order | None:
        """An open or recently closed order of ``account`` by id or ClOrdID."""
        o = self.orders.get(order_id) if order_id else None
        if o is None and order_id:
            o = self.recent.get(order_id)
        if o is None and cl_ord_id:
            acct = self.ledger.accounts.get(account)
            o = acct.clids.get(cl_ord_id) if acct else None
        if o is not None and o.acct.id != account:
            return None
        return o

    # ================================================================== checks
    def check_invariants(self) -> None:
        """Raise EngineBug unless the book, the holds and the ledger are consistent.
        Expensive: for tests and ``venue journal verify``, not the hot path."""
        for sym, mkt in self.markets.items():
            book = mkt.book
            bb, ba = book.best_bid(), book.best_ask()
            if bb is not None and ba is not None and bb >= ba:
                raise EngineBug(f"{sym}: crossed book at rest {bb} >= {ba}")
            for side in (book.bids, book.asks):
                for key, lvl in side.levels.items():
                    live = lvl.live()
                    if lvl.count != len(live) or not live:
                        raise EngineBug(f"{sym}: level {lvl.price} count {lvl.count} != {len(live)} live")
                    if lvl.qty != sum(o.visible for o in live):
                        raise EngineBug(f"{sym}: level {lvl.price} qty {lvl.qty} != sum of visible")
                    stamps = [o.qpos for o in live]
                    for o in live:
                        if o.visible <= 0 or o.visible > o.leaves or self.orders.get(o.id) is not o or o.price != lvl.price:
                            raise EngineBug(f"{sym}: bad resting order {o}")
                        if o.display and o.visible != min(o.display, o.leaves) and o.visible > o.display:
                            raise EngineBug(f"{sym}: iceberg {o.id} shows {o.visible} > display {o.display}")
                    if any(a >= b for a, b in zip(stamps, stamps[1:])):
                        raise EngineBug(f"{sym}: level {lvl.price} not in FIFO order {stamps}")
        held: dict[tuple[str, str], int] = {}
        for o in list(self.orders.values()):
            if o.status not in (WAITING_TRIGGER, NEW, 2):
                raise EngineBug(f"open order {o.id} has status {o.status}")
            if o.held != self._need(o):
                raise EngineBug(f"order {o.id} holds {o.held} != need {self._need(o)}")
            if o.leaves + o.cum != o.qty:
                raise EngineBug(f"order {o.id}: leaves + cum != qty")
            if (o.level is None) != (o.status == WAITING_TRIGGER):
                raise EngineBug(f"order {o.id}: resting={o.level is not None} with status {o.status}")
            asset = o.mkt.quote if o.side == BUY else o.mkt.base
            hk = (o.acct.id, asset)
            held[hk] = held.get(hk, 0) + o.held
        for rec in self.ledger.funding.values():
            if rec[0] == "withdrawal" and rec[4] == "held":
                hk = (rec[1], rec[2])
                held[hk] = held.get(hk, 0) + rec[3]
        for aid, asset, b in self.ledger.iter_balances():
            if b.avail < 0 or b.held < 0:
                if not (self.accounts_may_go_negative(aid)):
                    raise EngineBug(f"negative balance {aid} {asset}: {b}")
            if b.held != held.get((aid, asset), 0):
                raise EngineBug(f"{aid} {asset}: held {b.held} != what its orders and withdrawals need {held.get((aid, asset), 0)}")
        for asset, (total, ext) in self.ledger.conservation().items():
            if total != ext:
                raise EngineBug(f"{asset} not conserved: accounts hold {total}, deposits - withdrawals = {ext}")
        for asset, (owed, lent) in self.ledger.loan_conservation().items():
            if owed != lent:
                raise EngineBug(f"{asset} loans: accounts owe {owed}, the lending pool lent {lent}")
        for x in self.extensions.values():
            check = getattr(x, "check_invariants", None)
            if check is not None:
                check()

    def accounts_may_go_negative(self, account_id: str) -> bool:
        """Hook for margin (borrowed balances); cash and venue accounts never go negative."""
        return False

    def state_hashes(self) -> dict[str, str]:
        """A hash per component; a replayed engine must give the same."""
        books = hashlib.sha256()
        for sym in sorted(self.markets):
            mkt = self.markets[sym]
            books.update(f"{sym}|{mkt.halted}|{mkt.last_px}\n".encode())
            for side in (mkt.book.bids, mkt.book.asks):
                for lvl in side.sorted_levels():
                    books.update(f"L{lvl.price}|{lvl.qty}:".encode())
                    books.update(",".join(f"{o.id}/{o.leaves}/{o.visible}" for o in lvl.live()).encode())
        orders = hashlib.sha256()
        for oid in sorted(self.orders):
            o = self.orders[oid]
            orders.update(repr((oid, o.acct.id, o.status, o.price, o.stop_px, o.qty, o.leaves, o.cum, o.cum_notional,
                                o.cum_fee, o.held, o.cl_ord_id, o.seq, o.expire_ts, o.tif, o.display)).encode())
        for oid in self.recent_ids:
            o = self.recent[oid]
            orders.update(repr((oid, o.status, o.cum, o.cum_notional, o.cum_fee, o.cl_ord_id)).encode())
        hashes = {name: x.state_hash() for name, x in self.extensions.items()}
        return hashes | {
            "engine": hashlib.sha256(f"{self.seq}|{self.ts}".encode()).hexdigest(),
            "ledger": self.ledger.state_hash(),
            "books": books.hexdigest(),
            "orders": orders.hexdigest(),
        }
