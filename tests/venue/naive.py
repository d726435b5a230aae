"""A naive reference matcher: the venue's documented matching rules, written the slow and
obvious way, to compare the engine against (tests/venue/test_differential.py).

One instrument, no money. Resting orders live in one plain list; the best maker is found
by a linear scan over it each time (better price first, then earlier arrival). An order's
arrival is a counter taken whenever it joins the back of its level: when it first rests,
when an iceberg refills, when an amend loses priority.

The rules, as documented for the venue:

- Limit orders trade at the maker's price while the maker's price is at or better than
  the limit; a maker gives at most its shown quantity before it refills (icebergs) and
  goes to the back of its level. What is left rests (GTC) or is cancelled (IOC, FOK).
- Market orders are refused if the other side is empty, and otherwise trade up to the
  touch +/- the instrument's band (buys: floor(touch x (1 + band)), sells:
  ceil(touch x (1 - band)), at least one tick); the rest is cancelled.
- FOK fills in full or not at all: a dry run on a copy decides.
- Post-only orders are refused if they would take; a post-only amend that would take is
  refused.
- Self-trade prevention, the taker's mode deciding (its own or its account's default):
  cancel newest (the taker, matching stops), cancel oldest (the maker, matching goes on),
  cancel both, decrement (both lose the overlap without a trade; whichever reaches zero
  is cancelled), none (self-trades allowed).
- Amend: the new total quantity must exceed what is filled; an iceberg's display must
  stay below it. Same price and no more remaining quantity keeps the order's place;
  anything else takes it out and enters it again like a new order at the back.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

BUY, SELL = 1, 2
LIMIT, MARKET = 2, 1
GTC, IOC, FOK = 1, 3, 4
CN, CO, CB, DC, NONE = 1, 2, 3, 4, 5
PPM = 1_000_000


@dataclass(eq=False)  # compared by identity (list.remove)
class NaiveOrder:
    id: int
    account: str
    side: int
    price: int
    qty: int
    display: int
    post_only: bool
    stp: int
    tif: int
    leaves: int = 0
    visible: int = 0
    arrival: int = 0
    cum: int = 0

    def __post_init__(self) -> None:
        self.leaves = self.qty


@dataclass
class Outcome:
    """What one command did."""

    refused: bool = False
    fills: list[tuple[int, int, int, int]] = field(default_factory=list)  # (maker, taker, price, qty)
    cancelled: list[int] = field(default_factory=list)  # order ids, in order
    decremented: list[int] = field(default_factory=list)  # makers reduced by self-trade prevention


class NaiveBook:
    def __init__(self, band_ppm: int, account_stp: dict[str, int]) -> None:
        self.band_ppm = band_ppm
        self.account_stp = account_stp
        self.resting: list[NaiveOrder] = []
        self.clock = 0

    # -- the rules ---------------------------------------------------------------------
    @staticmethod
    def _crosses(maker: NaiveOrder, side: int, limit: int) -> bool:
        return maker.price <= limit if side == BUY else maker.price >= limit

    @staticmethod
    def _better(a: NaiveOrder, b: NaiveOrder) -> bool:
        if a.price != b.price:
            return a.price < b.price if a.side == SELL else a.price > b.price
        return a.arrival < b.arrival

    def best_maker(self, side: int, limit: int | None = None) -> NaiveOrder | None:
        best = None
        for o in self.resting:
            if o.side != side and (limit is None or self._crosses(o, side, limit)):
                if best is None or self._better(o, best):
                    best = o
        return best

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _rest(self, o: NaiveOrder) -> None:
        o.visible = min(o.display, o.leaves) if o.display else o.leaves
        o.arrival = self._tick()
        self.resting.append(o)

    def _match(self, t: NaiveOrder, limit: int, out: Outcome) -> bool:
        """Match taker ``t`` down to ``limit``. False if self-trade prevention cancelled it
        or decremented it (so that it could not fill in full)."""
        full = True
        while t.leaves > 0:
            m = self.best_maker(t.side, limit)
            if m is None:
                break
            if m.account == t.account and t.stp != NONE:
                if t.stp == CN:
                    out.cancelled.append(t.id)
                    t.leaves = 0
                    return False
                if t.stp in (CO, CB):
                    self.resting.remove(m)
                    out.cancelled.append(m.id)
                    if t.stp == CB:
                        out.cancelled.append(t.id)
                        t.leaves = 0
                        return False
                    continue
                # decrement
                q = min(m.leaves, t.leaves)
                m.leaves -= q
                m.qty -= q
                t.leaves -= q
                t.qty -= q
                full = False
                if m.leaves == 0:
                    self.resting.remove(m)
                    out.cancelled.append(m.id)
                else:
                    m.visible = min(m.visible, m.leaves)
                    out.decremented.append(m.id)
                if t.leaves == 0:
                    out.cancelled.append(t.id)
                    return False
                continue
            q = min(m.visible, t.leaves)
            out.fills.append((m.id, t.id, m.price, q))
            m.leaves -= q
            m.visible -= q
            m.cum += q
            t.leaves -= q
            t.cum += q
            if m.visible == 0:
                self.resting.remove(m)
                if m.leaves > 0:  # iceberg: refill and go to the back of the level
                    m.visible = min(m.display, m.leaves)
                    m.arrival = self._tick()
                    self.resting.append(m)
        return full

    def _fok_fillable(self, t: NaiveOrder, limit: int) -> bool:
        trial = NaiveBook(self.band_ppm, self.account_stp)
        trial.resting = [copy.copy(o) for o in self.resting]  # orders hold only ints, strs and bools
        trial.clock = self.clock
        tt = copy.copy(t)
        full = trial._match(tt, limit, Outcome())
        return full and tt.leaves == 0

    def _enter(self, t: NaiveOrder, limit: int, out: Outcome, market: bool) -> None:
        if t.tif == FOK and not self._fok_fillable(t, limit):
            out.cancelled.append(t.id)
            return
        self._match(t, limit, out)
        if t.leaves == 0 or t.id in out.cancelled:
            return
        if market or t.tif in (IOC, FOK):
            out.cancelled.append(t.id)
            return
        self._rest(t)

    def band_cap(self, side: int, touch: int) -> int:
        if side == BUY:
            return touch * (PPM + self.band_ppm) // PPM
        return max(1, -(-touch * (PPM - self.band_ppm) // PPM))

    # -- commands ----------------------------------------------------------------------
    def new_order(self, oid: int, account: str, side: int, ord_type: int, qty: int, price: int, tif: int,
                  post_only: bool, display: int, stp: int) -> Outcome:
        out = Outcome()
        stp = stp or self.account_stp[account]
        t = NaiveOrder(oid, account, side, price, qty, display, post_only, stp, tif)
        if ord_type == MARKET:
            touch = self.best_maker(side)
            if touch is None:
                out.refused = True
                return out
            t.price = self.band_cap(side, touch.price)
            self._enter(t, t.price, out, market=True)
            return out
        if post_only and self.best_maker(side, price) is not None:
            out.refused = True
            return out
        self._enter(t, price, out, market=False)
        return out

    def find(self, account: str, oid: int) -> NaiveOrder | None:
        for o in self.resting:
            if o.id == oid and o.account == account:
                return o
        return None

    def cancel(self, account: str, oid: int) -> Outcome:
        out = Outcome()
        o = self.find(account, oid)
        if o is None:
            out.refused = True
        else:
            self.resting.remove(o)
            out.cancelled.append(o.id)
        return out

    def amend(self, account: str, oid: int, qty: int, price: int) -> Outcome:
        out = Outcome()
        o = self.find(account, oid)
        new_qty = qty or (o.qty if o else 0)
        new_price = price or (o.price if o else 0)
        if (o is None or new_qty <= o.cum or (o.display and o.display >= new_qty)
                or (o.post_only and new_price != o.price and self.best_maker(o.side, new_price) is not None)):
            out.refused = True
            return out
        new_leaves = new_qty - o.cum
        if new_price == o.price and new_leaves <= o.leaves:
            o.qty, o.leaves = new_qty, new_leaves
            o.visible = min(o.visible, o.leaves)
            return out
        self.resting.remove(o)
        o.qty, o.leaves, o.price = new_qty, new_leaves, new_price
        self._enter(o, new_price, out, market=False)
        return out

    # -- reading -----------------------------------------------------------------------
    def levels(self, side: int) -> list[tuple[int, list[tuple[int, int, int]]]]:
        """[(price, [(id, leaves, visible), ...] in FIFO order), ...], best level first."""
        prices = sorted({o.price for o in self.resting if o.side == side}, reverse=side == BUY)
        return [(p, [(o.id, o.leaves, o.visible)
                     for o in sorted((x for x in self.resting if x.side == side and x.price == p), key=lambda x: x.arrival)])
                for p in prices]
