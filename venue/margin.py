"""Margin accounts: borrowing against collateral (up to 10x), maintenance, liquidation.

A margin account (``AccountKind.MARGIN``, leverage 1..10) may spend more than it has:
when an order needs more of an asset than the account has available, the shortfall is
borrowed from the lending pool account (:data:`LENDING_ACCOUNT`) as the order is
accepted, and held for the order like any other money. So a buy can be paid with
borrowed quote and a sell can deliver borrowed base (a short). What an account owes is a
liability in the ledger (``Ledger.loans``); the pool's money stays conserved
(``Ledger.loan_conservation`` and :meth:`MarginBook.check_invariants`). Whatever becomes
available again (a cancelled order's hold, proceeds, a deposit) repays the loan in the
same asset at once, after every command. **No interest is charged** on loans (and no
liquidation fee): interest can come later as a journaled periodic command.

Valuation is in :data:`VALUATION_ASSET` (USD): an asset's price is the *mark* of its
``<ASSET>-USD`` instrument, the mid of the book bounded to within
:data:`MARK_BAND_PPM` (1%) of the last trade (the mid alone before any trade, the last
trade when one side of the book is empty, the last known mark when neither exists): a
stale quote far from the tape cannot hold the mark up, and one trade cannot drag it far
from a tight book. A liquidation's own trades do not count as the last trade here (the
last other trade does: :attr:`MarginBook.liq_ref`), so a liquidation that empties one
side of a thin book moves the mark by 1% at most, not to its last fill. For an
account, *equity* is the value of everything it has minus everything it owes, and its
*gross position* the value of its net holding of each asset but USD, long or short.

- Initial margin (1/leverage of the gross position, e.g. 10% at 10x) is checked before an
  order is accepted if it borrows or adds to the gross position, counting every open
  order as if filled at its own price (equity minus what the open orders would lose
  against the mark, and their taker fees, must cover it). A market order counts as if
  it filled :data:`MARKET_SLIPPAGE_PPM` (1%) through the touch (its protection cap, 5%
  by default, if that is nearer): margining it at the cap would stop a 10x account's
  market orders at about 6.6x. It still holds and borrows up to the cap, and if it fills
  worse than the allowance the account may end below its initial margin: the
  maintenance check after the command watches it like any move. Withdrawals and leverage
  changes are checked the same way, and so is a hold for a pending withdrawal: the money a
  pending withdrawal holds stops being collateral at once (``Ledger.withdrawing``), so
  completing it later changes nothing the margin counts.
- Maintenance margin is half the initial margin. After every command the borrowers whose
  balances the command changed, and those holding or owing an asset whose mark moved,
  are checked (incrementally: a command that touches no borrower and no watched market
  costs one scan of its events, and a mark move within the cushion an account had at
  its last valuation costs a little arithmetic); one below maintenance is
  liquidated inside the same command: its open orders are cancelled and its largest
  positions first (ties by asset code) are reduced on their USD instruments with IOC
  orders flagged as liquidations (``OrderInfo.liquidation``, ``Trade.liquidation``),
  until it is back at its initial margin or flat. Their price limit is the mark -/+ the
  instrument's protection band, fixed when the liquidation first needs it in a command
  (:meth:`MarginBook._limit`): it never walks a thin book level by level, and since its
  fills cannot drag the mark, neither can a later command's limit. Other trades move the
  marks, which may liquidate others (a bounded cascade).
- A flat account that still owes more than it has is bankrupt: the insurance fund
  (:data:`INSURANCE_ACCOUNT`) pays the shortfall to the pool; what the fund cannot pay
  the pool writes off. Both are reported (:class:`MarginTransfer`, :class:`Liquidation`).
- A short is bought back with the account's own quote, then with what the pool lends it.
  When the pool cannot lend enough and the account has nothing left to sell, the
  insurance fund pays the rest of the buy-back (a ``cover``, reported at once with stage
  ``covered``), one ask level at a time so that it pays what the buy costs.
- A liquidation that finds no liquidity within its limits (or a halted instrument)
  stalls; the account stays in liquidation (new orders and withdrawals refused) and is
  tried again after every command that touches a book. If it is bankrupt at the mark
  (negative equity) and owes no coin (no short left), the insurance fund takes over its
  holdings instead (``takeover`` transfers, stage ``taken_over``) and pays the debt they
  leave as above: the fund bought them at the bankruptcy price and may sell them later.

Reduce-only orders (any account) may only reduce the net position in the base asset:
a sell up to the long position, a buy up to the short one, counting the account's other
open reduce-only orders, and never borrow (they are paid with the account's own money).
The position is enforced again at every fill (the book's ``ro_cap`` hook,
:meth:`MarginBook.reduce_only_cap`): a reduce-only order fills only what its account's
position, with the fills of the same match, still allows, and is cancelled when nothing
is left; so several orders filled by one command cannot flip a position through it.
After every command the ones the position no longer allows are cancelled.

This module is the ``margin`` engine extension; it is installed after venue.risk (which
calls it for margin accounts and reduce-only orders). It does no I/O and reads no clock.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from venue import commands as C
from venue.book import M_FILL_DONE
from venue.errors import EngineBug
from venue.events import AdminApplied, CommandRejected, Execution, FundingPosted, InstrumentStatus, Trade
from venue.ledger import FEE_FIRM, PPM
from venue.types import BUY, IOC, LIMIT, MARKET, SELL, AccountKind, CancelReason, Reject

if TYPE_CHECKING:
    from venue.engine import Engine, Market
    from venue.ledger import Account, Ledger
    from venue.orders import Order
    from venue.risk import RiskBook

LEVERAGE_TAG: Final = 104
LENDING_ACCOUNT: Final = "VENUE-LENDING"
INSURANCE_ACCOUNT: Final = "VENUE-INSURANCE"
VALUATION_ASSET: Final = "USD"
MAX_LEVERAGE: Final = 10
MARK_BAND_PPM: Final = 10_000  # the mark stays within 1% of the last trade
MARKET_SLIPPAGE_PPM: Final = 10_000  # a market order is margined as if it filled 1% through the touch
LIQ_ID_BASE: Final = 1 << 52  # liquidation order ids: LIQ_ID_BASE + seq * LIQ_IDS_PER_COMMAND + n
LIQ_IDS_PER_COMMAND: Final = 1_000_000
MAX_ROUNDS: Final = 16  # cascade rounds per command
MAX_STEPS: Final = 12  # liquidation orders per account per round
SIZE_MARGIN_PPM: Final = 250_000  # a liquidation cuts 25% more than the bare arithmetic (slippage, fees)
_MARGIN: Final = int(AccountKind.MARGIN)
_SYSTEM: Final = (LENDING_ACCOUNT, INSURANCE_ACCOUNT)


class SetLeverage(NamedTuple):
    account: str
    leverage: int  # 1..MAX_LEVERAGE


class MarginTransfer(NamedTuple):
    """Money moved for a margin account (or a loan written off)."""

    seq: int
    ts: int
    kind: str  # borrow (pool -> account), repay (account -> pool), cover (insurance -> account), write_off
    account: str
    asset: str
    amount: int
    counterparty: str  # the lending pool or the insurance fund


class Liquidation(NamedTuple):
    """A margin account's liquidation moved on. Amounts in valuation-asset atoms at the mark."""

    seq: int
    ts: int
    account: str
    stage: str  # started | restored | closed | bankrupt | stalled
    equity: int
    maintenance: int
    covered: int = 0  # paid by the insurance fund
    written_off: int = 0  # lost by the lending pool
    text: str = ""


C.register(LEVERAGE_TAG, SetLeverage)


class Health(NamedTuple):
    equity: int  # valuation atoms
    gross: int  # valuation atoms
    initial: int  # requirement
    maintenance: int  # requirement


def im_ppm(leverage: int) -> int:
    return PPM // max(1, leverage)


def mark_price(mkt: Market, last: int | None = None) -> int:
    """The mark in ticks: the mid bounded to MARK_BAND_PPM around the last trade (0 = the
    book and the tape give no price). ``last`` replaces the market's last trade (margin
    passes the last trade that was not a liquidation's: :meth:`MarginBook.mark`)."""
    bid, ask = mkt.book.best_bid(), mkt.book.best_ask()
    if last is None:
        last = mkt.last_px
    if bid is not None and ask is not None:
        mid = (bid + ask) // 2
        if last:
            return min(max(mid, -(-last * (PPM - MARK_BAND_PPM) // PPM)), last * (PPM + MARK_BAND_PPM) // PPM)
        return mid
    return last


class MarginBook:
    """The engine extension ``margin``."""

    def __init__(self, engine: Engine, risk: RiskBook | None) -> None:
        self.engine = engine
        self.liquidating: dict[str, str] = {}  # account -> last reported stage
        # full valuations (health) per account since start: a diagnostic (not state, not
        # hashed) that shows the after-command hook stays incremental
        self.valuations: dict[str, int] = {}
        self.marks: dict[str, int] = {}  # symbol -> last known mark of a USD instrument
        # symbol -> [price of its last trade, the last trade before it that was not a
        # liquidation's (or the mark then)], while its last trade is a liquidation's
        self.liq_ref: dict[str, list[int]] = {}
        self._limits: dict[tuple[str, str, int], int] = {}  # this command's liquidation limits
        self._limits_seq = -1
        # derived from the state (rebuilt after a snapshot load), to keep ``after`` incremental:
        self._ro: set[str] = set()  # accounts that may have open reduce-only orders
        self._ro_new: list[str] = []  # ... added by this command
        self._exp_of: dict[str, frozenset[str]] = {}  # borrower -> assets its equity moves with
        self._exposed: dict[str, set[str]] = {}  # asset -> those borrowers
        self._exp_syms: set[str] = set()  # the USD instruments of those assets
        self._safe: dict[str, tuple[int, int, tuple[tuple[str, int, int, int], ...]]] = {}  # see _remember_safe
        self._vm_sym: dict[str, str] = {}  # symbol of an asset's USD instrument -> the asset
        self._vm: dict[str, Market] = {}  # asset -> its USD instrument's market
        self._vm_n = -1
        self._id_seq = 0
        self._id_n = 0
        led = engine.ledger
        firm = led.firms[FEE_FIRM]
        for aid in (LENDING_ACCOUNT, INSURANCE_ACCOUNT):
            if aid not in led.accounts:
                led.add_account(aid, firm, kind=int(AccountKind.VENUE))
        self.pool = led.accounts[LENDING_ACCOUNT]
        self.fund = led.accounts[INSURANCE_ACCOUNT]
        engine.register_handler(SetLeverage, self._set_leverage)
        engine.after = self.after
        if risk is not None:
            risk.margin = self

    # ================================================================ prices and health
    def value_market(self, asset: str) -> Market | None:
        e = self.engine
        if self._vm_n != len(e.markets):
            self._vm = {}
            for sym in sorted(e.markets):
                m = e.markets[sym]
                if m.quote == VALUATION_ASSET and m.base not in self._vm:
                    self._vm[m.base] = m
            self._vm_sym = {m.symbol: a for a, m in self._vm.items()}
            self._vm_n = len(e.markets)
            self._exp_syms = {self._vm[a].symbol for a in self._exposed if a in self._vm}
        return self._vm.get(asset)

    def price(self, asset: str, live_only: bool = False) -> tuple[int, int] | None:
        """(numerator, denominator): valuation atoms per atom of ``asset``; None if unknown."""
        if asset == VALUATION_ASSET:
            return 1, 1
        mkt = self.value_market(asset)
        if mkt is None:
            return None
        m = self.mark(mkt)
        if not m and not live_only:
            m = self.marks.get(mkt.symbol, 0)
        return (m * mkt.mult, mkt.bpl) if m else None

    def mark(self, mkt: Market) -> int:
        """The mark of a market (0 = none): its mid bounded by its last trade, where a
        liquidation's trades do not count (the last other trade does), so that a
        liquidation's own fills cannot drag the mark, and with it other accounts, down a
        thin book."""
        x = self.liq_ref.get(mkt.symbol)
        return mark_price(mkt, x[1] if x is not None else mkt.last_px)

    def nets(self, acct: Account) -> dict[str, int]:
        """Per asset: what the account has (available + held) minus what it owes and what
        its pending withdrawals hold (money on its way out is no collateral)."""
        led = self.engine.ledger
        loans = led.loans.get(acct.id, {})
        out_w = led.withdrawing.get(acct.id, {})
        out: dict[str, int] = {}
        for asset in sorted(set(acct.bal) | set(loans)):
            b = acct.bal.get(asset)
            n = (b.avail + b.held if b is not None else 0) - loans.get(asset, 0) - out_w.get(asset, 0)
            if n:
                out[asset] = n
        return out

    def _value(self, asset: str, amount: int) -> int | None:
        p = self.price(asset)
        if p is None:
            return None
        return amount * p[0] // p[1]  # floors: a debt counts a little more, a holding a little less

    def health(self, acct: Account) -> Health:
        vals = self.valuations
        vals[acct.id] = vals.get(acct.id, 0) + 1
        eq = gross = 0
        for asset, net in self.nets(acct).items():
            v = self._value(asset, net)
            if v is None:
                continue  # an unpriced holding counts nothing (a debt always has a known mark)
            eq += v
            if asset != VALUATION_ASSET:
                gross += abs(v)
        im = im_ppm(acct.leverage)
        return Health(eq, gross, -(-gross * im // PPM), -(-gross * (im // 2) // PPM))

    def _worst(self, acct: Account, extra: tuple[Any, ...] | None = None, skip: Order | None = None,
               delta: tuple[str, int] | None = None) -> tuple[int, int, list[str]]:
        """(equity, gross) if every open order (``skip`` left out, ``extra`` =
        (market, side, price, leaves, taker_ppm) added) filled at its own price, each asset
        taken at its worse side; and the assets that have no price."""
        nets = self.nets(acct)
        if delta is not None:
            nets[delta[0]] = nets.get(delta[0], 0) + delta[1]
        inc: dict[str, int] = {}
        dec: dict[str, int] = {}
        orders: list[tuple[Any, ...]] = [(o.mkt, o.side, o.price, o.leaves, o.taker_ppm)
                                         for o in acct.orders.values() if o is not skip]
        if extra is not None:
            orders.append(extra)
        unpriced: list[str] = []
        loss = 0
        for mkt, side, price, leaves, ppm in orders:
            b, q = mkt.base, mkt.quote
            base_amt = leaves * mkt.bpl
            quote_amt = price * leaves * mkt.mult
            fee = quote_amt * ppm // PPM
            vb, vq = self._value(b, base_amt), self._value(q, quote_amt + fee if side == BUY else quote_amt - fee)
            if vb is None or vq is None:
                unpriced.extend(a for a, v in ((b, vb), (q, vq)) if v is None)
                continue
            if side == BUY:
                inc[b] = inc.get(b, 0) + base_amt
                dec[q] = dec.get(q, 0) + quote_amt + fee
                loss += max(0, vq - vb)
            else:
                dec[b] = dec.get(b, 0) + base_amt
                inc[q] = inc.get(q, 0) + quote_amt - fee
                loss += max(0, vb - vq)
        eq = gross = 0
        for asset in sorted(set(nets) | set(inc) | set(dec)):
            n = nets.get(asset, 0)
            v = self._value(asset, n)
            if v is None:
                if n < 0:
                    unpriced.append(asset)
                continue
            eq += v
            if asset != VALUATION_ASSET:
                hi, lo = n + inc.get(asset, 0), n - dec.get(asset, 0)
                vh, vl = self._value(asset, hi), self._value(asset, lo)
                gross += max(abs(vh or 0), abs(vl or 0))
        return eq - loss, gross, sorted(set(unpriced))

    # ================================================================ pre-trade (via venue.risk)
    def check_new(self, e: Engine, c: C.NewOrder, acct: Account, mkt: Market, price: int) -> tuple[int, str] | None:
        if acct.id in self.liquidating:
            return int(Reject.MARGIN_INSUFFICIENT), f"account {acct.id} is being liquidated"
        qty = c.qty
        if c.side == BUY:
            n = price * qty * mkt.mult
            asset, need = mkt.quote, n + n * acct.taker_ppm // PPM
        else:
            asset, need = mkt.base, qty * mkt.bpl
        if c.reduce_only:
            refusal = self._reduce_only_room(acct, mkt, c.side, qty) or self._reduce_only_own(e, acct, asset, need)
            if refusal is not None:
                return refusal
            mkt.book.ro_cap = self.reduce_only_cap  # enforce it at fill time too
            self._ro.add(acct.id)
            self._ro_new.append(acct.id)  # (``after`` drops it again if the order was refused)
        if acct.kind != _MARGIN:
            return None
        ref = price
        touch = (mkt.book.best_ask() if c.side == BUY else mkt.book.best_bid()) if c.ord_type == MARKET else None
        if touch is not None:  # a market order: margined at the slippage allowance, not at its protection cap
            if c.side == BUY:
                ref = min(price, touch * (PPM + MARKET_SLIPPAGE_PPM) // PPM)
            else:
                ref = max(price, -(-touch * (PPM - MARKET_SLIPPAGE_PPM) // PPM))
        return self._margin_check(e, acct, asset, need, (mkt, c.side, ref, qty, acct.taker_ppm), None)

    def check_amend(self, e: Engine, o: Order, price: int, leaves: int) -> tuple[int, str] | None:
        acct = o.acct
        if acct.id in self.liquidating:
            return int(Reject.MARGIN_INSUFFICIENT), f"account {acct.id} is being liquidated"
        mkt = o.mkt
        if o.side == BUY:
            n = price * leaves * mkt.mult
            asset, need = mkt.quote, n + n * o.taker_ppm // PPM - o.held
        else:
            asset, need = mkt.base, leaves * mkt.bpl - o.held
        if o.reduce_only:
            refusal = ((self._reduce_only_room(acct, mkt, o.side, leaves - o.leaves) if leaves > o.leaves else None)
                       or self._reduce_only_own(e, acct, asset, need))
            if refusal is not None:
                return refusal
        if acct.kind != _MARGIN:
            return None
        return self._margin_check(e, acct, asset, need, (mkt, o.side, price, leaves, o.taker_ppm), o)

    def _margin_check(self, e: Engine, acct: Account, asset: str, need: int, order: tuple[Any, ...],
                      replacing: Order | None) -> tuple[int, str] | None:
        b = acct.bal.get(asset)
        shortfall = need - (b.avail if b is not None else 0)
        eq0, gross0, _ = self._worst(acct)
        eq1, gross1, unpriced = self._worst(acct, order, replacing)
        if shortfall <= 0 and gross1 <= gross0 and not (unpriced and e.ledger.loans.get(acct.id)):
            return None  # paid with its own money and the gross position does not grow (a borrower
            # may not buy what has no price: its equity would fall unseen)
        if unpriced:
            return int(Reject.MARGIN_INSUFFICIENT), f"no mark price for {', '.join(unpriced)}: cannot margin"
        if shortfall > 0 and self.price(asset, live_only=True) is None:
            return int(Reject.MARGIN_INSUFFICIENT), f"no mark price for {asset}: cannot borrow it"
        im = im_ppm(acct.leverage)
        need_eq = -(-gross1 * im // PPM)
        if eq1 < need_eq:
            v = e._fmt(VALUATION_ASSET, max(eq1, 0)) if eq1 >= 0 else "-" + e._fmt(VALUATION_ASSET, -eq1)
            return (int(Reject.MARGIN_INSUFFICIENT), f"initial margin: equity {v} {VALUATION_ASSET} (open orders filled) "
                    f"is below the {e._fmt(VALUATION_ASSET, need_eq)} {VALUATION_ASSET} that "
                    f"{acct.leverage}x needs for a gross position of {e._fmt(VALUATION_ASSET, gross1)}")
        if shortfall > 0:
            pb = self.pool.bal.get(asset)
            have = pb.avail if pb is not None else 0
            if have < shortfall:
                return (int(Reject.MARGIN_INSUFFICIENT), f"the lending pool cannot lend {e._fmt(asset, shortfall)} "
                        f"{asset} (it has {e._fmt(asset, max(have, 0))})")
            self._borrow(acct, asset, shortfall)
        return None

    def check_withdraw(self, e: Engine, acct: Account, asset: str, amount: int) -> tuple[int, str] | None:
        if acct.id in self.liquidating:
            return int(Reject.MARGIN_INSUFFICIENT), f"account {acct.id} is being liquidated"
        if not e.ledger.loans.get(acct.id) and not acct.orders:
            return None
        eq, gross, unpriced = self._worst(acct, delta=(asset, -amount))
        need_eq = -(-gross * im_ppm(acct.leverage) // PPM)
        if unpriced or eq < need_eq or eq < 0:
            return (int(Reject.MARGIN_INSUFFICIENT), f"withdrawing {e._fmt(asset, amount)} {asset} would leave equity "
                    f"below the initial margin of {e._fmt(VALUATION_ASSET, need_eq)} {VALUATION_ASSET}")
        return None

    def _reduce_only_room(self, acct: Account, mkt: Market, side: int, qty: int,
                          skip: Order | None = None) -> tuple[int, str] | None:
        net = self.net_of(acct, mkt.base)
        same = sum(o.leaves for o in acct.orders.values()
                   if o.reduce_only and o.mkt is mkt and o.side == side and o is not skip)
        bpl = mkt.bpl
        room = (max(0, net) // bpl if side == SELL else -(-max(0, -net) // bpl)) - same
        if qty > room:
            inst = mkt.inst
            what = "long" if side == SELL else "short"
            return (int(Reject.REDUCE_ONLY), f"reduce-only {'sell' if side == SELL else 'buy'} of {inst.lots_to_qty(qty)} "
                    f"exceeds the {what} position left to reduce ({inst.lots_to_qty(max(room, 0))} {mkt.base})")
        return None

    @staticmethod
    def _reduce_only_own(e: Engine, acct: Account, asset: str, need: int) -> tuple[int, str] | None:
        """A reduce-only order of a margin account never borrows: it must be paid with the
        account's own money (a cash account's is refused by the engine as any order is)."""
        if acct.kind != _MARGIN:
            return None
        b = acct.bal.get(asset)
        have = b.avail if b is not None else 0
        if need > have:
            return (int(Reject.REDUCE_ONLY), f"a reduce-only order may not borrow: it needs {e._fmt(asset, need)} "
                    f"{asset}, the account has {e._fmt(asset, max(have, 0))} available")
        return None

    def reduce_only_cap(self, o: Order, taker: Order, out: list[Any]) -> int:
        """The book's ``ro_cap`` hook: the lots reduce-only ``o`` may still fill during the
        match of ``taker``, its account's position counting the fills already in ``out``."""
        acct, mkt = o.acct, o.mkt
        bpl = mkt.bpl
        net = self.net_of(acct, mkt.base)
        for kind, m, _, q, _, _ in out:
            if kind <= M_FILL_DONE:
                if m.acct is acct:
                    net += q * bpl if m.side == BUY else -q * bpl
                if taker.acct is acct:
                    net += q * bpl if taker.side == BUY else -q * bpl
        return max(0, net) // bpl if o.side == SELL else -(-max(0, -net) // bpl)

    def net_of(self, acct: Account, asset: str) -> int:
        """The account's net position in ``asset`` (see :meth:`nets`)."""
        b = acct.bal.get(asset)
        led = self.engine.ledger
        return (b.avail + b.held if b is not None else 0) - led.loan(acct.id, asset) - led.pending_withdrawal(acct.id, asset)

    # ================================================================ money movements
    def _emit_transfer(self, kind: str, acct: Account, asset: str, amount: int, other: str) -> None:
        e = self.engine
        e._ev.append(MarginTransfer(e.seq, e.ts, kind, acct.id, asset, amount, other))

    def _borrow(self, acct: Account, asset: str, amount: int) -> None:
        self.engine.ledger.borrow(acct, self.pool, asset, amount)
        self._emit_transfer("borrow", acct, asset, amount, LENDING_ACCOUNT)

    def _repay(self, acct: Account) -> None:
        led = self.engine.ledger
        loans = led.loans.get(acct.id)
        if not loans:
            return
        for asset in sorted(loans):
            b = acct.bal.get(asset)
            amount = min(b.avail, loans[asset]) if b is not None else 0
            if amount > 0:
                led.repay(acct, self.pool, asset, amount)
                self._emit_transfer("repay", acct, asset, amount, LENDING_ACCOUNT)

    # ================================================================ after every command
    def after(self) -> None:
        """Repay, trim reduce-only orders and watch maintenance after a command (the engine's
        ``after`` hook). Incremental: it looks only at the accounts the command's events
        touched and, for each market whose book or tape changed, at the borrowers exposed
        to its asset (:attr:`_exposed`) whose cushion the mark's move may have used up
        (:meth:`_still_safe`); without loans, liquidations and reduce-only orders it only
        scans the events for trades when a liquidation trade is the last on some tape."""
        e = self.engine
        ev = e._ev
        liq_ref = self.liq_ref
        if liq_ref:
            for x in ev:  # (the command's own trades: liquidations have not run yet)
                if type(x) is Trade and not x.liquidation:
                    liq_ref.pop(x.symbol, None)
        led = e.ledger
        loans, liquidating, ro = led.loans, self.liquidating, self._ro
        if not loans and not liquidating and not ro:
            return
        if self._vm_n != len(e.markets):
            self.value_market("")  # (refreshes the symbol maps)
        if not self._ro_new:  # the common case first: does anything in the command concern margin?
            watched = self._exp_syms
            for x in ev:
                t = type(x)
                if t is Execution:
                    info = x.info
                    aid = info.account
                    if aid in loans or aid in liquidating or aid in ro or (
                            info.symbol in watched and (x.book or x.last_qty)):
                        break
                elif t is FundingPosted or t is MarginTransfer or t is InstrumentStatus:
                    break
            else:
                return
        vsym, exposed, marks, accounts = self._vm_sym, self._exposed, self.marks, led.accounts
        start = 0
        for _ in range(MAX_ROUNDS):
            touched: set[str] = set()
            books: set[str] = set()
            retry_all = False
            if self._ro_new:
                touched.update(self._ro_new)
                self._ro_new = []
            watched = self._exp_syms  # (the symbols whose marks someone's equity moves with)
            for x in (ev if not start else ev[start:]):
                t = type(x)
                if t is Execution:
                    info = x.info
                    aid = info.account
                    if aid in loans or aid in liquidating or aid in ro:
                        touched.add(aid)
                    if info.symbol in watched and (x.book or x.last_qty):
                        books.add(info.symbol)
                elif t is FundingPosted or t is MarginTransfer:
                    aid = x.account
                    if aid in loans or aid in liquidating or aid in ro:
                        touched.add(aid)
                    if x.account in _SYSTEM or (t is MarginTransfer and x.counterparty in _SYSTEM):
                        retry_all = True  # the pool or the fund has money again
                elif t is InstrumentStatus:
                    retry_all = True
            start = len(ev)
            if not touched and not books and not retry_all:
                return
            for aid in sorted(touched):
                acct = accounts[aid]
                self._safe.pop(aid, None)
                if aid in loans:
                    self._repay(acct)
                if aid in ro:
                    self._trim_reduce_only(acct)
            cands = {a for a in touched if a in loans or a in liquidating}
            if retry_all:
                cands.update(liquidating)
            moved: list[str] = []
            for sym in sorted(books):
                holders = exposed.get(vsym[sym])
                if not holders:
                    continue
                m = self.mark(e.markets[sym])
                if m and m != marks.get(sym):
                    marks[sym] = m
                    moved.append(sym)
                cands.update(a for a in holders if a in liquidating)  # its book changed: try again
            for sym in moved:
                for aid in exposed[vsym[sym]]:
                    if aid not in cands and not self._still_safe(aid):
                        cands.add(aid)
            for aid in sorted(cands):
                acct = accounts[aid]
                if acct.kind == _MARGIN:
                    self._watch(acct)
            for aid in touched | cands:
                self._expose(accounts[aid])
            if len(ev) == start:
                return

    # -- incremental watch ----------------------------------------------------------------
    def _exposure_of(self, acct: Account) -> frozenset[str]:
        """The assets (but the valuation asset) whose mark moves a borrower's or a
        liquidated account's equity."""
        aid = acct.id
        if aid not in self.engine.ledger.loans and aid not in self.liquidating:
            return frozenset()
        return frozenset(a for a in self.nets(acct) if a != VALUATION_ASSET)

    def _expose(self, acct: Account) -> None:
        new = self._exposure_of(acct)
        old = self._exp_of.get(acct.id, frozenset())
        if new == old:
            return
        for asset in old - new:
            holders = self._exposed[asset]
            holders.discard(acct.id)
            if not holders:
                del self._exposed[asset]
                mkt = self.value_market(asset)
                if mkt is not None:
                    self._exp_syms.discard(mkt.symbol)
        for asset in new - old:
            self._exposed.setdefault(asset, set()).add(acct.id)
            mkt = self.value_market(asset)
            if mkt is not None:
                self._exp_syms.add(mkt.symbol)
                m = self.mark(mkt)
                if m:
                    self.marks[mkt.symbol] = m  # (kept live for every exposed asset: see _still_safe)
        if new:
            self._exp_of[acct.id] = new
        else:
            self._exp_of.pop(acct.id, None)
            self._safe.pop(acct.id, None)

    def _rebuild_exposure(self) -> None:
        self._exp_of, self._exposed = {}, {}
        accounts = self.engine.ledger.accounts
        for aid in sorted(set(self.engine.ledger.loans) | set(self.liquidating)):
            new = self._exposure_of(accounts[aid])
            if new:
                self._exp_of[aid] = new
                for asset in new:
                    self._exposed.setdefault(asset, set()).add(aid)
        self._exp_syms = {m.symbol for a in self._exposed if (m := self.value_market(a)) is not None}

    def _remember_safe(self, acct: Account, h: Health) -> None:
        """After a check found ``acct`` above maintenance: how far the marks may move before
        it could fall below (its cushion, and per exposed asset the mark then and the
        weight of a tick), so that later moves are checked with a little arithmetic."""
        legs = []
        for asset, net in self.nets(acct).items():
            if asset == VALUATION_ASSET:
                continue
            mkt = self.value_market(asset)
            p0 = (self.mark(mkt) or self.marks.get(mkt.symbol, 0)) if mkt is not None else 0
            if mkt is None or not p0:
                self._safe.pop(acct.id, None)
                return  # unpriced: always checked
            legs.append((mkt.symbol, p0, abs(net) * mkt.mult, mkt.bpl))
        self._safe[acct.id] = (h.equity - h.maintenance, im_ppm(acct.leverage) // 2, tuple(legs))

    def _still_safe(self, aid: str) -> bool:
        """Can the marks' moves since :meth:`_remember_safe` not have taken the account below
        maintenance? Each asset's value moves by at most |net| x the mark's move (+1 atom
        of rounding); the gross position by as much, and the maintenance by its share of
        that (+1 of rounding). Conservative: False sends the account to a full check."""
        x = self._safe.get(aid)
        if x is None:
            return False
        cushion, mm, legs = x
        marks = self.marks
        used = 0
        for sym, p0, weight, bpl in legs:
            d = marks.get(sym, p0) - p0
            used += -(-weight * abs(d) // bpl) + 1
        return used + -(-used * mm // PPM) + len(legs) + 1 <= cushion

    def _trim_reduce_only(self, acct: Account) -> None:
        ro = [o for o in acct.orders.values() if o.reduce_only]
        if not ro:
            self._ro.discard(acct.id)
            return
        e = self.engine
        for mkt, side in sorted({(o.mkt.symbol, o.side) for o in ro}):
            m = e.markets[mkt]
            net = self.net_of(acct, m.base)
            room = max(0, net) // m.bpl if side == SELL else -(-max(0, -net) // m.bpl)
            mine = sorted((o for o in ro if o.mkt is m and o.side == side), key=lambda o: o.id)
            total = sum(o.leaves for o in mine)
            while mine and total > room:
                o = mine.pop()  # the newest goes first
                total -= o.leaves
                e._cancel(o, CancelReason.REDUCE_ONLY, text="reduce-only order exceeds the position left to reduce")

    def _watch(self, acct: Account) -> None:
        e = self.engine
        h = self.health(acct)
        aid = acct.id
        if aid not in self.liquidating:
            below = h.equity < h.maintenance if h.gross else h.equity < 0
            if not below:
                self._remember_safe(acct, h)
                return
            self._safe.pop(aid, None)
            self.liquidating[aid] = "started"
            e._ev.append(Liquidation(e.seq, e.ts, aid, "started", h.equity, h.maintenance,
                                     text=f"equity below the maintenance margin ({acct.leverage}x)"))
            for o in sorted(acct.orders.values(), key=lambda o: o.id):
                e._cancel(o, CancelReason.LIQUIDATION, text="cancelled: the account is being liquidated")
        self._liquidate(acct)

    def _restored(self, acct: Account, h: Health) -> bool:
        return h.gross > 0 and h.equity * PPM >= h.gross * im_ppm(acct.leverage)

    def _liquidate(self, acct: Account) -> None:
        e = self.engine
        led = e.ledger
        stuck: set[str] = set()
        exhausted = False
        for _ in range(MAX_STEPS):
            self._repay(acct)
            h = self.health(acct)
            if self._restored(acct, h) or not h.gross:
                break
            pick = self._pick(acct, h, stuck)
            if pick is None:
                exhausted = True
                break
            mkt, side, lots, price = pick
            before = self.net_of(acct, mkt.base)
            self._place(acct, mkt, side, lots, price)
            if self.net_of(acct, mkt.base) == before:
                stuck.add(mkt.base)
        self._repay(acct)
        h = self.health(acct)
        aid = acct.id
        if self._restored(acct, h):
            del self.liquidating[aid]
            e._ev.append(Liquidation(e.seq, e.ts, aid, "restored", h.equity, h.maintenance,
                                     text="margin restored to the initial requirement"))
            return
        if not self._flat(acct):
            if not exhausted:
                return  # out of steps this round: the next round or command goes on
            if h.equity < 0 and self._take_over(acct, h):
                h = self.health(acct)
            else:
                if self.liquidating[aid] != "stalled":
                    self.liquidating[aid] = "stalled"
                    e._ev.append(Liquidation(e.seq, e.ts, aid, "stalled", h.equity, h.maintenance,
                                             text="no liquidity within the liquidation's price limits; retried as "
                                                  "the books change"))
                return
        v = VALUATION_ASSET
        owed = led.loan(aid, v)
        b = acct.balance(v)
        deficit = owed - b.avail - b.held + led.pending_withdrawal(aid, v)  # (orders are gone: held = withdrawals)
        covered = written = 0
        if deficit > 0:
            fb = self.fund.bal.get(v)
            covered = min(deficit, fb.avail) if fb is not None else 0
            if covered > 0:
                self.fund.bal[v].avail -= covered
                b.avail += covered
                self._emit_transfer("cover", acct, v, covered, INSURANCE_ACCOUNT)
                self._repay(acct)
            written = led.loan(aid, v)
            if written > 0:
                led.write_off(acct, v, written)
                self._emit_transfer("write_off", acct, v, written, LENDING_ACCOUNT)
        del self.liquidating[aid]
        h = self.health(acct)
        stage = "bankrupt" if deficit > 0 else "closed"
        text = (f"shortfall of {e._fmt(v, deficit)} {v}: {e._fmt(v, covered)} paid by the insurance fund, "
                f"{e._fmt(v, written)} written off by the lending pool" if deficit > 0
                else "positions closed")
        e._ev.append(Liquidation(e.seq, e.ts, aid, stage, h.equity, h.maintenance, covered, written, text))

    def _take_over(self, acct: Account, h: Health) -> bool:
        """The account is bankrupt at the mark and the books give no liquidity within its
        limits: the insurance fund takes over its holdings (at the bankruptcy price: it
        pays the debt they leave, in the settlement that follows). Only holdings: a
        short (a debt in a coin) stays in liquidation until it can be bought back.
        False if there is nothing the fund may take over."""
        e = self.engine
        led = e.ledger
        if any(a != VALUATION_ASSET for a in led.loans.get(acct.id, {})):
            return False
        taken: list[tuple[str, int]] = []
        for asset, net in self.nets(acct).items():
            if asset == VALUATION_ASSET or net <= 0:
                continue
            mkt = self.value_market(asset)
            if mkt is None or mkt.halted or self.price(asset) is None:
                return False  # no fair price to take it over at
            taken.append((asset, net))
        if not taken:
            return False
        what = []
        for asset, amount in taken:
            acct.bal[asset].avail -= amount  # (its orders are cancelled: what it nets is available)
            self.fund.balance(asset).avail += amount
            self._emit_transfer("takeover", acct, asset, amount, INSURANCE_ACCOUNT)
            what.append(f"{e._fmt(asset, amount)} {asset}")
        e._ev.append(Liquidation(e.seq, e.ts, acct.id, "taken_over", h.equity, h.maintenance,
                                 text=f"bankrupt at the mark with no liquidity within the liquidation's price "
                                      f"limits: the insurance fund took over {', '.join(what)}"))
        return True

    def _flat(self, acct: Account) -> bool:
        """Nothing left that a liquidation order could reduce: no debt but in the valuation
        asset, and every holding below its instrument's minimum order."""
        led = self.engine.ledger
        for asset, net in self.nets(acct).items():
            if asset == VALUATION_ASSET:
                continue
            if net < 0 or led.loan(acct.id, asset):
                return False
            mkt = self.value_market(asset)
            if mkt is not None and net // mkt.bpl >= mkt.inst.min_qty and self._sellable(mkt, net // mkt.bpl):
                return False
        return True

    def _sellable(self, mkt: Market, lots: int) -> bool:
        m = self.mark(mkt) or mkt.last_px
        return not m or m * lots * mkt.mult >= mkt.inst.min_notional

    def _pick(self, acct: Account, h: Health, stuck: set[str]) -> tuple[Market, int, int, int] | None:
        """The next liquidation order: (market, side, lots, limit price), or None."""
        positions = []
        for asset, net in self.nets(acct).items():
            if asset == VALUATION_ASSET or asset in stuck:
                continue
            mkt = self.value_market(asset)
            v = self._value(asset, net)
            if mkt is None or v is None or mkt.halted:
                continue
            positions.append((-abs(v), asset, net, mkt))
        positions.sort(key=lambda p: (p[0], p[1]))
        im = im_ppm(acct.leverage)
        for _, asset, net, mkt in positions:
            inst = mkt.inst
            if net > 0:
                b = acct.bal[asset]  # (net already leaves out what pending withdrawals hold)
                side, max_lots, touch = SELL, min(net, b.avail) // mkt.bpl, mkt.book.best_bid()
            else:
                side, max_lots, touch = BUY, -(-(-net) // mkt.bpl), mkt.book.best_ask()
            if touch is None or max_lots <= 0:
                continue
            price = self._limit(acct, mkt, side, touch)
            if (touch < price) if side == SELL else (touch > price):
                continue  # no liquidity within the limit: it stalls rather than walk the book
            mark = self.mark(mkt) or touch
            if h.equity <= 0:
                lots = max_lots
            else:
                cut = h.gross - h.equity * PPM // im
                cut = cut * (PPM + SIZE_MARGIN_PPM) // PPM
                lots = max(1, -(-cut // (mark * mkt.mult)))
            lots = min(lots, max_lots, inst.max_qty, inst.max_notional // (price * mkt.mult))
            lots = max(lots, inst.min_qty, -(-inst.min_notional // (price * mkt.mult)))
            if lots > max_lots or lots > inst.max_qty:
                continue  # below the instrument's minimum order: dust
            if side == BUY:
                funded = self._fund_buy(acct, h, mkt, lots, price, touch)
                if funded is None:
                    continue
                lots, price = funded
            return mkt, side, lots, price
        return None

    def _limit(self, acct: Account, mkt: Market, side: int, touch: int) -> int:
        """The worst price a liquidation of ``acct`` may trade at on ``mkt`` in this
        command: the protection band around the mark when it first needs it (the touch if
        there is no mark), fixed for the rest of the command. Its own fills cannot move the
        mark past it (see :meth:`mark`), so a later command's limit is no worse than the
        band around the last trade that was not a liquidation's, moved by 1%."""
        e = self.engine
        if self._limits_seq != e.seq:
            self._limits, self._limits_seq = {}, e.seq
        key = (acct.id, mkt.symbol, side)
        px = self._limits.get(key)
        if px is None:
            px = self._limits[key] = mkt.band_cap(side, self.mark(mkt) or touch)
        return px

    def _fund_buy(self, acct: Account, h: Health, mkt: Market, lots: int, price: int,
                  touch: int) -> tuple[int, int] | None:
        """Pay for a liquidation buy of up to ``lots`` at ``price``: with the account's own
        quote, then with what the lending pool lends it (no margin check: it closes a
        short). When the pool cannot lend enough and the account has nothing left to sell,
        the insurance fund pays the rest (a cover, reported), for the lots of the best ask
        level only and at its price, so that it pays what the buy costs and no more.
        Returns (lots, price) to place, or None if not even the instrument's minimum order
        can be paid for (nothing is moved then)."""
        q, inst, mult, fee = mkt.quote, mkt.inst, mkt.mult, acct.taker_ppm
        b, pb, fb = acct.bal.get(q), self.pool.bal.get(q), self.fund.bal.get(q)
        have = b.avail if b is not None else 0
        pool = max(pb.avail, 0) if pb is not None else 0
        fund = max(fb.avail, 0) if fb is not None else 0

        def need(n: int, px: int) -> int:
            x = px * mult * n
            return x + x * fee // PPM

        def most(money: int, n: int, px: int) -> int:
            """The most lots (up to n) that ``money`` pays for at ``px``."""
            if need(n, px) <= money:
                return n
            n = money * PPM // (px * mult * (PPM + fee))
            while n > 0 and need(n, px) > money:
                n -= 1
            return n

        def order_ok(n: int, px: int) -> bool:
            return n >= inst.min_qty and px * n * mult >= inst.min_notional

        cover = 0
        n = most(have + pool, lots, price)
        key = mkt.book.asks.best_key()  # (``touch`` is its price)
        if n < lots and fund > 0 and key is not None and not self._has_holdings(acct):
            funded = most(have + pool + fund, min(lots, mkt.book.asks.levels[key].qty), touch)
            if order_ok(funded, touch):
                n, price = funded, touch
                cover = max(0, need(n, price) - have - pool)
        if not order_ok(n, price):
            return None
        borrow = min(pool, max(0, need(n, price) - have))
        if borrow:
            self._borrow(acct, q, borrow)
        if cover:
            e = self.engine
            self.fund.bal[q].avail -= cover
            acct.balance(q).avail += cover
            self._emit_transfer("cover", acct, q, cover, INSURANCE_ACCOUNT)
            e._ev.append(Liquidation(e.seq, e.ts, acct.id, "covered", h.equity, h.maintenance, cover, 0,
                                     f"the lending pool cannot lend the {q} to buy back {mkt.base}: the insurance "
                                     f"fund paid {e._fmt(q, cover)} {q} of it"))
        return n, price

    def _has_holdings(self, acct: Account) -> bool:
        """Does the account hold anything but the valuation asset that a liquidation could
        still sell (now or once its market resumes)?"""
        for asset, net in self.nets(acct).items():
            if asset == VALUATION_ASSET or net <= 0:
                continue
            mkt = self.value_market(asset)
            if mkt is not None and net // mkt.bpl >= mkt.inst.min_qty and self._sellable(mkt, net // mkt.bpl):
                return True
        return False

    def _place(self, acct: Account, mkt: Market, side: int, lots: int, price: int) -> None:
        e = self.engine
        if self._id_seq != e.seq:
            self._id_seq, self._id_n = e.seq, 0
        self._id_n += 1
        if self._id_n >= LIQ_IDS_PER_COMMAND:
            raise EngineBug("too many liquidation orders in one command")
        oid = LIQ_ID_BASE + e.seq * LIQ_IDS_PER_COMMAND + self._id_n
        clid = f"LIQ-{e.seq}-{self._id_n}"
        while e.clid_taken(acct, clid):  # a client may have used it (or replaced it away)
            clid += "+"
        sym = mkt.symbol
        ref = self.liq_ref.get(sym)
        base = ref[1] if ref is not None else (mkt.last_px or self.mark(mkt))
        start = len(e._ev)
        e.place_internal(C.NewOrder(acct.id, clid, sym, side, LIMIT, lots, price, tif=IOC), oid)
        for x in e._ev[start:]:  # its trades, and those of any stop order they triggered
            if type(x) is Trade and x.symbol == sym:
                if x.liquidation:
                    ref = [x.price, base]
                else:
                    ref, base = None, x.price
        if ref is not None:
            self.liq_ref[sym] = ref
        else:
            self.liq_ref.pop(sym, None)

    # ================================================================ administration
    def _set_leverage(self, c: SetLeverage) -> None:
        e = self.engine
        acct = e.ledger.accounts.get(c.account)
        if acct is None or acct.kind != _MARGIN:
            return self._no(c, Reject.UNKNOWN_ACCOUNT, f"{c.account} is not a margin account")
        if type(c.leverage) is not int or not 1 <= c.leverage <= MAX_LEVERAGE:
            return self._no(c, Reject.BAD_COMMAND, f"leverage must be 1..{MAX_LEVERAGE}")
        if acct.id in self.liquidating:
            return self._no(c, Reject.MARGIN_INSUFFICIENT, f"account {acct.id} is being liquidated")
        old = acct.leverage
        acct.leverage = c.leverage
        self._safe.pop(acct.id, None)  # its maintenance changed
        if c.leverage < old:
            eq, gross, _ = self._worst(acct)
            if eq * PPM < gross * im_ppm(c.leverage):
                acct.leverage = old
                return self._no(c, Reject.MARGIN_INSUFFICIENT,
                                f"equity does not cover the initial margin at {c.leverage}x")
        e._ev.append(AdminApplied(e.seq, e.ts, c))

    def _no(self, c: Any, code: Reject, text: str) -> None:
        e = self.engine
        e._ev.append(CommandRejected(e.seq, e.ts, c, int(code), text))

    # ================================================================ reads (sequencer thread)
    def liquidation_price(self, acct: Account, asset: str, h: Health | None = None) -> int:
        """The mark (ticks of the asset's USD instrument) at which the account would fall
        to its maintenance margin, the other prices unchanged; 0 if none."""
        mkt = self.value_market(asset)
        net = self.net_of(acct, asset)
        v = self._value(asset, net)
        if mkt is None or not net or v is None:
            return 0
        h = h or self.health(acct)
        mm = im_ppm(acct.leverage) // 2
        e_o, g_o = h.equity - v, h.gross - abs(v)
        cn = net * mkt.mult  # valuation atoms per tick, times bpl
        den = cn * PPM - mm * abs(cn)
        num = (mm * g_o - e_o * PPM) * mkt.bpl
        if den == 0:
            return 0
        p = num // den if den > 0 else -(-num // den)
        return p if p > 0 else 0

    def report(self, account: str) -> dict[str, Any] | None:
        """An account's margin picture in plain integers (for FIX and the control endpoint)."""
        e = self.engine
        acct = e.ledger.accounts.get(account)
        if acct is None:
            return None
        h = self.health(acct)
        worst_eq, worst_gross, _ = self._worst(acct)
        im = im_ppm(acct.leverage)
        loans = e.ledger.loans.get(account, {})
        assets = []
        for asset in sorted(set(acct.bal) | set(loans)):
            b = acct.bal.get(asset)
            total = b.avail + b.held if b is not None else 0
            loan = loans.get(asset, 0)
            out = e.ledger.pending_withdrawal(account, asset)
            mkt = self.value_market(asset)
            p = self.price(asset)
            assets.append({
                "asset": asset, "avail": b.avail if b else 0, "held": b.held if b else 0, "total": total,
                "loan": loan, "withdrawing": out, "net": total - loan - out,
                "value": (total - loan - out) * p[0] // p[1] if p else None,
                "symbol": mkt.symbol if mkt is not None else "",
                "mark": (self.mark(mkt) or self.marks.get(mkt.symbol, 0)) if mkt is not None else 0,
                "last": mkt.last_px if mkt is not None else 0,
                "liquidation_price": self.liquidation_price(acct, asset, h) if acct.kind == _MARGIN else 0,
            })
        return {
            "account": account, "kind": AccountKind(acct.kind).name.lower(), "leverage": acct.leverage,
            "equity": h.equity, "gross": h.gross, "initial": h.initial, "maintenance": h.maintenance,
            "open_equity": worst_eq, "open_gross": worst_gross,
            "open_initial": -(-worst_gross * im // PPM),
            "borrowed_value": sum(l * p[0] // p[1] for a, l in loans.items() if (p := self.price(a)) is not None),
            "state": self.liquidating.get(account, "normal"), "assets": assets,
            "valuation_asset": VALUATION_ASSET,
        }

    # ================================================================ extension protocol
    def dump_state(self) -> dict[str, Any]:
        led = self.engine.ledger
        return {"liquidating": dict(self.liquidating), "marks": dict(self.marks),
                "liq_ref": {k: list(v) for k, v in self.liq_ref.items()},
                "loans": {a: dict(d) for a, d in led.loans.items()}, "lent": dict(led.lent),
                "written_off": dict(led.written_off)}

    def load_state(self, d: dict[str, Any]) -> None:
        led = self.engine.ledger
        self.liquidating = dict(d.get("liquidating", {}))
        self._ro = set()
        for o in self.engine.orders.values():
            if o.reduce_only:
                o.mkt.book.ro_cap = self.reduce_only_cap
                self._ro.add(o.acct.id)
        self.marks = dict(d.get("marks", {}))
        self.liq_ref = {k: list(v) for k, v in d.get("liq_ref", {}).items()}
        led.loans = {a: dict(x) for a, x in d.get("loans", {}).items()}
        led.lent = dict(d.get("lent", {}))
        led.written_off = dict(d.get("written_off", {}))
        self._safe = {}
        self._rebuild_exposure()

    def state_hash(self) -> str:
        h = hashlib.sha256()
        h.update(repr(sorted(self.liquidating.items())).encode())
        h.update(repr(sorted(self.marks.items())).encode())
        if self.liq_ref:
            h.update(repr(sorted(self.liq_ref.items())).encode())
        led = self.engine.ledger
        h.update(repr(sorted((a, sorted(d.items())) for a, d in led.loans.items())).encode())
        h.update(repr(sorted((a, x) for a, x in led.lent.items() if x)).encode())
        return h.hexdigest()

    def check_invariants(self) -> None:
        """Loans positive and owed by margin accounts; the pool's books balance; the index of
        pending withdrawals agrees with the funding records; no margin account below
        maintenance unless it is being liquidated."""
        led: Ledger = self.engine.ledger
        pending: dict[str, dict[str, int]] = {}
        for kind, aid, asset, amount, state in led.funding.values():
            if kind == "withdrawal" and state == "held":
                d = pending.setdefault(aid, {})
                d[asset] = d.get(asset, 0) + amount
        if pending != led.withdrawing:
            raise EngineBug(f"margin: pending withdrawals {led.withdrawing} != the funding records' {pending}")
        kept = (self._exp_of, self._exposed, self._exp_syms)  # the incremental watch's index agrees
        self._rebuild_exposure()
        if kept != (self._exp_of, self._exposed, self._exp_syms):
            raise EngineBug(f"margin: exposure index {kept[0]} != {self._exp_of}")
        ro = {o.acct.id for o in self.engine.orders.values() if o.reduce_only}
        if not ro <= self._ro:
            raise EngineBug(f"margin: accounts with reduce-only orders {ro} missing from {self._ro}")
        for aid, d in led.loans.items():
            acct = led.accounts.get(aid)
            if acct is None or acct.kind != _MARGIN:
                raise EngineBug(f"margin: {aid} owes the pool but is not a margin account")
            if any(x <= 0 for x in d.values()) or not d:
                raise EngineBug(f"margin: {aid} has a non-positive loan {d}")
        capital: dict[str, int] = {}
        for kind, aid, asset, amount, state in led.funding.values():
            if aid != LENDING_ACCOUNT:
                continue
            if kind == "deposit":
                capital[asset] = capital.get(asset, 0) + amount
            elif kind == "withdraw" or (kind == "withdrawal" and state == "completed"):
                capital[asset] = capital.get(asset, 0) - amount
        for asset in set(capital) | set(led.lent) | set(self.pool.bal):
            b = self.pool.bal.get(asset)
            have = (b.avail + b.held if b is not None else 0) + led.lent.get(asset, 0) + led.written_off.get(asset, 0)
            if have != capital.get(asset, 0):
                raise EngineBug(f"margin: the pool's {asset} ({have} with loans and losses) != its capital "
                                f"{capital.get(asset, 0)}")
        for aid in led.loans:
            if aid in self.liquidating:
                continue
            h = self.health(led.accounts[aid])
            if (h.equity < h.maintenance) if h.gross else (h.equity < 0):
                raise EngineBug(f"margin: {aid} is below maintenance ({h}) and not being liquidated")


def install(engine: Engine) -> MarginBook:
    book = MarginBook(engine, engine.extensions.get("risk"))
    engine.extensions["margin"] = book
    return book
