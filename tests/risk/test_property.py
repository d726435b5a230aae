"""A Hypothesis state machine over random order flow and random price paths with margin
accounts at random leverage (1..10x) trading BTC-USD, ETH-USD and ETH-BTC, cash
accounts, a liquidity provider that the price path moves (and that sometimes pulls one
side of a book, or leaves it empty behind a gap trade), cancels, amends, deposits,
withdrawals (immediate, and held then completed or released), leverage changes, halts,
kill switches and limits; the lending pool is sometimes short of USD and the insurance
fund sometimes empty.

After every step:
- the engine's own invariants (holds equal what orders need, money conserved, loans equal
  what the pool lent, the pool's books balance, no borrower below maintenance unless
  being liquidated);
- independent checks from the events alone (:class:`LoanObserver`): every account's
  total of every asset follows from its fills, funding postings and margin transfers
  (borrow, repay, insurance cover), every loan follows from borrows minus repayments and
  write-offs, and per asset all accounts together (fees, the lending pool and the
  insurance fund included) hold exactly deposits minus withdrawals;
- every margin account with negative equity at the mark is being liquidated;
- every insurance cover and write-off is reported by its liquidation's event;
- every liquidation order's price, and so every liquidation fill, is within the
  protection band of a mark within 1% of the last trade that was not a liquidation's:
  the bound the liquidation's fixed limit keeps to (it never walks a book, and its own
  fills never drag the mark, nor with it the next limit).

At the end the liquidity provider quotes deep books around the last prices (halts
lifted): every liquidation then finishes and no margin account is left below zero equity
(the insurance fund, or a write-off, took any shortfall: a write-off, the lending pool's
loss when the fund is empty, is allowed). Finally every command is replayed into a fresh
engine, and the second half from a snapshot taken midway: the same events (liquidations
included) and the same state hashes.

The example count is set so that liquidations, bankruptcies, takeovers and covers all
happen (RISK_PROPERTY_EXAMPLES overrides it) while the test stays within about half a
minute on a two-core machine.
"""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from venue import commands as C
from venue.factory import build_engine
from venue.events import Execution, Trade
from venue.ledger import PPM
from venue.margin import (
    INSURANCE_ACCOUNT, LENDING_ACCOUNT, MARK_BAND_PPM, Liquidation, MarginTransfer, SetLeverage,
)
from venue.risk import KillSwitch, SetRiskLimits
from venue.snapshot import dump_engine, load_engine
from venue.types import BUY, EXEC_NEW, GTC, IOC, LIMIT, MARKET, SELL

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from tests.venue.checks import Observer

SYMBOLS = ("BTC-USD", "ETH-USD", "ETH-BTC")
USD_SYMBOLS = ("BTC-USD", "ETH-USD")
START = {"BTC-USD": Decimal("100000"), "ETH-USD": Decimal("3000")}
MARGIN = ("m0", "m1", "m2", "m3")
CASH = ("c0", "c1")
EXAMPLES = int(os.environ.get("RISK_PROPERTY_EXAMPLES", "400"))


class LoanObserver(Observer):
    """:class:`tests.venue.checks.Observer` that also follows margin transfers."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.loans: dict[tuple[str, str], int] = {}
        self.covered = 0
        self.written_off = 0
        self.reported_cover = 0
        self.reported_write_off = 0
        self.last_plain: dict[str, int] = {}  # symbol -> its last trade that was not a liquidation's

    def within_bound(self, symbol: str, side: int, price: int) -> bool:
        """Is ``price`` within the protection band of a mark within 1% of the last trade
        that was not a liquidation's (the worst a liquidation may trade at)?"""
        last = self.last_plain.get(symbol)
        assert last  # (the machine's markets trade before anyone borrows)
        band = self.engine.markets[symbol].inst.market_band_ppm
        if side == SELL:
            lo = -(-last * (PPM - MARK_BAND_PPM) // PPM)
            return price >= max(1, -(-lo * (PPM - band) // PPM))
        hi = last * (PPM + MARK_BAND_PPM) // PPM
        return price <= hi * (PPM + band) // PPM

    def feed(self, events: list[Any]) -> None:
        """``events``: one command's, in order."""
        super().feed(events)
        for e in events:
            if type(e) is Execution and e.kind == EXEC_NEW and e.info.liquidation:  # a liquidation order
                assert self.within_bound(e.info.symbol, e.info.side, e.info.price), (e, self.last_plain)
            elif type(e) is Trade:
                if not e.liquidation:
                    self.last_plain[e.symbol] = e.price
                    continue
                assert self.within_bound(e.symbol, e.aggressor_side, e.price), (e, self.last_plain)
            elif type(e) is MarginTransfer:
                key = (e.account, e.asset)
                if e.kind == "borrow":
                    self.totals[key] += e.amount
                    self.totals[(LENDING_ACCOUNT, e.asset)] -= e.amount
                    self.loans[key] = self.loans.get(key, 0) + e.amount
                elif e.kind == "repay":
                    self.totals[key] -= e.amount
                    self.totals[(LENDING_ACCOUNT, e.asset)] += e.amount
                    self.loans[key] -= e.amount
                elif e.kind == "cover":
                    self.totals[key] += e.amount
                    self.totals[(INSURANCE_ACCOUNT, e.asset)] -= e.amount
                    self.covered += e.amount
                elif e.kind == "takeover":
                    self.totals[key] -= e.amount
                    self.totals[(INSURANCE_ACCOUNT, e.asset)] += e.amount
                elif e.kind == "write_off":
                    self.loans[key] -= e.amount
                    self.written_off += e.amount
                else:  # pragma: no cover
                    raise AssertionError(e)
            elif type(e) is Liquidation:
                self.reported_cover += e.covered
                self.reported_write_off += e.written_off

    def check(self) -> None:
        super().check()
        mine = {k: v for k, v in self.loans.items() if v}
        theirs = {(a, s): x for a, d in self.engine.ledger.loans.items() for s, x in d.items()}
        assert mine == theirs
        assert all(v > 0 for v in mine.values())
        assert (self.covered, self.written_off) == (self.reported_cover, self.reported_write_off)


class MarginMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = RiskHarness(pool=False)
        self.obs = LoanObserver(self.h.engine)
        self.n = 0
        self.snapshot: dict[str, Any] | None = None
        self.events_seen = 0

    # -- driving ---------------------------------------------------------------------
    def run(self, cmd: Any) -> list[Any]:
        return self.h.do(cmd)

    def flush(self) -> None:
        """Feed the observer every event since the last check (steps may run several commands)."""
        while self.events_seen < len(self.h.log):  # (one command at a time: a failure is reported once)
            _, _, events = self.h.log[self.events_seen]
            self.events_seen += 1
            self.obs.feed(events)

    def clid(self) -> str:
        self.n += 1
        return f"k{self.n}"

    def mark(self, sym: str) -> int:
        mkt = self.h.engine.markets[sym]
        from venue.margin import mark_price

        return mark_price(mkt) or mkt.last_px

    @initialize(levs=st.lists(st.integers(1, 10), min_size=4, max_size=4),
                collateral=st.lists(st.sampled_from(("2000", "10000", "50000")), min_size=4, max_size=4),
                insurance=st.sampled_from(("0", "500", "1000000")),
                pool_usd=st.sampled_from(("50000000", "30000", "0.01")))
    def setup(self, levs: list[int], collateral: list[str], insurance: str, pool_usd: str) -> None:
        h = self.h
        for c in h.log:
            self.obs.feed(c[2])
        self.events_seen = len(h.log)
        h.fund_pool(usd=pool_usd, btc="500", eth="20000", insurance=insurance if insurance != "0" else "0.00000001")
        open_market(h)
        for sym, px in START.items():
            move_to(h, str(px), sym)
        move_to(h, str((START["ETH-USD"] / START["BTC-USD"]).quantize(Decimal("0.00001"))), "ETH-BTC", depth="500")
        for aid, lev, usd in zip(MARGIN, levs, collateral):
            h.margin_account(aid, "F1" if aid in ("m0", "m1") else "F2", leverage=lev, usd=usd, taker_ppm=500,
                             maker_ppm=100)
        h.ok(C.Deposit("m3-eth", "m3", "ETH", h.atoms("ETH", "2")))
        for aid in CASH:
            h.account(aid, "F1", taker_ppm=300, usd="200000", btc="2", eth="50")
        self.flush()

    # -- price paths -------------------------------------------------------------------
    price_args = dict(sym=st.sampled_from(USD_SYMBOLS), move=st.integers(-300, 300))

    @rule(**price_args)
    def price_step(self, sym: str, move: int) -> None:
        """The LP requotes ``move`` tenths of a percent away (up to 30% at once: gaps)."""
        self.step_price(sym, move)

    @rule(sym=st.sampled_from(USD_SYMBOLS), move=st.integers(-30, 30), n=st.integers(2, 8))
    def price_drift(self, sym: str, move: int, n: int) -> None:
        """Several small steps the same way (a trend, not a gap)."""
        for _ in range(n):
            self.step_price(sym, move)

    def step_price(self, sym: str, move: int) -> None:
        inst = self.h.inst(sym)
        last = Decimal(self.mark(sym)) * inst.tick_size
        new = (last * (1000 + move) / 1000).quantize(inst.tick_size)
        move_to(self.h, str(max(new, inst.tick_size * 100)), sym)

    @rule(sym=st.sampled_from(USD_SYMBOLS), down=st.booleans(), move=st.integers(5, 300))
    def gap_trade(self, sym: str, down: bool, move: int) -> None:
        """The LP pulls the side the price moves toward; a cash account's small order
        there trades with another's: the last trade jumps ``move`` tenths of a percent and
        that side of the book is left empty (a liquidation there finds nothing)."""
        h = self.h
        inst = h.inst(sym)
        mark = self.mark(sym)
        if not mark:
            return
        px = max(1, mark * (1000 - move) // 1000 if down else mark * (1000 + move) // 1000)
        lots = max(inst.min_qty, -(-inst.min_notional // (px * inst.notional_mult)))
        self.run(C.MassCancel(self.clid(), account=LP, symbol=sym, side=BUY if down else SELL))
        self.run(C.NewOrder("c0", self.clid(), sym, BUY if down else SELL, LIMIT, lots, px))
        self.run(C.NewOrder("c1", self.clid(), sym, SELL if down else BUY, LIMIT, lots, px, tif=IOC))

    @rule(sym=st.sampled_from(SYMBOLS), side=st.sampled_from((BUY, SELL)), halt=st.sampled_from((0, 0, 1, 2)),
          cancel_book=st.booleans())
    def disruption(self, sym: str, side: int, halt: int, cancel_book: bool) -> None:
        """The LP pulls one side of a book; or the instrument halts (and resumes, or stays)."""
        if not halt:
            self.run(C.MassCancel(self.clid(), account=LP, symbol=sym, side=side))
            return
        self.run(C.Halt(sym, cancel_book))
        if halt == 1:
            self.run(C.Resume(sym))

    # -- order flow --------------------------------------------------------------------
    def place(self, acct: str, sym: str, side: int, size: int, offset: int, tif: int, ord_type: int = LIMIT,
              reduce_only: bool = False) -> None:
        """``size``: for a margin account, percent of what its equity buys at its leverage
        (so most orders are near what the initial margin allows); else lots of 0.01 BTC /
        0.2 ETH."""
        h = self.h
        inst = h.inst(sym)
        mark = self.mark(sym)
        if not mark:
            return
        price = 0 if ord_type == MARKET else max(1, mark * (1000 + offset) // 1000)
        a = h.engine.ledger.accounts[acct]
        if acct in MARGIN:
            eq = max(h.margin.health(a).equity, 0)
            p = h.margin.price(inst.base)
            if p is None:
                return
            lot_value = inst.base_per_lot * p[0] // p[1]
            qty = max(inst.min_qty, eq * a.leverage * size // 100 // max(1, lot_value))
        else:
            notional_lots = {"BTC-USD": "0.01", "ETH-USD": "0.2", "ETH-BTC": "0.2"}[sym]
            qty = inst.qty_to_lots(notional_lots) * size
        self.run(C.NewOrder(acct, self.clid(), sym, side, ord_type, qty, price, tif=tif, reduce_only=reduce_only))

    margin_args = dict(acct=st.sampled_from(MARGIN), sym=st.sampled_from(SYMBOLS), side=st.sampled_from((BUY, SELL)),
                       size=st.integers(5, 110), offset=st.integers(-10, 30), tif=st.sampled_from((GTC, IOC, IOC)),
                       reduce_only=st.sampled_from((False, False, False, True)))

    @rule(**margin_args)
    def margin_order(self, acct: str, sym: str, side: int, size: int, offset: int, tif: int, reduce_only: bool) -> None:
        self.place(acct, sym, side, size, offset if side == BUY else -offset, tif, reduce_only=reduce_only)

    @rule(**margin_args)
    def margin_order_2(self, acct: str, sym: str, side: int, size: int, offset: int, tif: int,
                       reduce_only: bool) -> None:
        self.place(acct, sym, side, size, offset if side == BUY else -offset, tif, reduce_only=reduce_only)

    @rule(**margin_args)
    def margin_order_3(self, acct: str, sym: str, side: int, size: int, offset: int, tif: int,
                       reduce_only: bool) -> None:
        self.place(acct, sym, side, size, offset if side == BUY else -offset, tif, reduce_only=reduce_only)

    @rule(acct=st.sampled_from(MARGIN), sym=st.sampled_from(USD_SYMBOLS), side=st.sampled_from((BUY, SELL)),
          size=st.integers(5, 100))
    def margin_market_order(self, acct: str, sym: str, side: int, size: int) -> None:
        self.place(acct, sym, side, size, 0, IOC, MARKET)

    @rule(acct=st.sampled_from(CASH + (TAKER,)), sym=st.sampled_from(SYMBOLS), side=st.sampled_from((BUY, SELL)),
          size=st.integers(1, 20), offset=st.integers(-40, 40), tif=st.sampled_from((GTC, IOC)))
    def cash_order(self, acct: str, sym: str, side: int, size: int, offset: int, tif: int) -> None:
        self.place(acct, sym, side, size, offset if side == BUY else -offset, tif)

    @precondition(lambda self: self.h.engine.orders)
    @rule(pick=st.integers(0, 10**6), amend=st.booleans(), qty_pct=st.integers(50, 200))
    def cancel_or_amend(self, pick: int, amend: bool, qty_pct: int) -> None:
        ids = sorted(self.h.engine.orders)
        o = self.h.engine.orders[ids[pick % len(ids)]]
        if amend:
            self.run(C.AmendOrder(o.acct.id, self.clid(), order_id=o.id, qty=max(o.cum + 1, o.qty * qty_pct // 100)))
        else:
            self.run(C.CancelOrder(o.acct.id, self.clid(), order_id=o.id))

    # -- money and administration -------------------------------------------------------
    @rule(acct=st.sampled_from(MARGIN), asset=st.sampled_from(("USD", "BTC", "ETH")), units=st.integers(1, 5000),
          withdraw=st.booleans(), lev=st.sampled_from((0, 0, 1, 2, 5, 10)))
    def funding(self, acct: str, asset: str, units: int, withdraw: bool, lev: int) -> None:
        """A deposit or withdrawal; sometimes a leverage change instead."""
        if lev:
            self.run(SetLeverage(acct, lev))
            return
        h = self.h
        scale = {"USD": "1", "BTC": "0.0001", "ETH": "0.001"}[asset]
        amount = h.atoms(asset, str(Decimal(scale) * units))
        cls = C.Withdraw if withdraw else C.Deposit
        self.run(cls(self.clid(), acct, asset, amount))

    @rule(acct=st.sampled_from(MARGIN), asset=st.sampled_from(("USD", "USD", "BTC", "ETH")),
          units=st.integers(1, 5000))
    def hold_withdrawal(self, acct: str, asset: str, units: int) -> None:
        """A withdrawal held while custody sends it (margin-checked; no collateral from now)."""
        h = self.h
        scale = {"USD": "1", "BTC": "0.0001", "ETH": "0.001"}[asset]
        self.run(C.HoldWithdrawal(self.clid(), acct, asset, h.atoms(asset, str(Decimal(scale) * units))))

    @precondition(lambda self: self.h.engine.ledger.withdrawing)
    @rule(pick=st.integers(0, 10**6), complete=st.booleans())
    def settle_withdrawal(self, pick: int, complete: bool) -> None:
        """Custody completes a held withdrawal, or gives up and releases it."""
        held = sorted(fid for fid, r in self.h.engine.ledger.funding.items() if r[0] == "withdrawal" and r[4] == "held")
        fid = held[pick % len(held)]
        self.run(C.CompleteWithdrawal(fid) if complete else C.ReleaseWithdrawal(fid))

    @precondition(lambda self: any(m.halted for m in self.h.engine.markets.values()))
    @rule()
    def resume_all(self) -> None:
        for sym, m in sorted(self.h.engine.markets.items()):
            if m.halted:
                self.run(C.Resume(sym))

    @rule(scope=st.sampled_from(("account", "firm", "limits")), which=st.integers(0, 3),
          stay=st.sampled_from((False,) * 5 + (True,)), sym=st.sampled_from(SYMBOLS), n=st.integers(0, 4),
          credit=st.sampled_from((-1, 0, 10**12, 10**14)))
    def risk_controls(self, scope: str, which: int, stay: bool, sym: str, n: int, credit: int) -> None:
        """A kill switch (lifted again at once, mostly), or an account's limits."""
        if scope == "limits":
            self.run(SetRiskLimits("account", MARGIN[which], sym, max_open_orders=n, max_open_notional=credit))
            return
        target = MARGIN[which] if scope == "account" else ("F1", "F2")[which % 2]
        self.run(KillSwitch(scope, target, True, "drill"))
        if not stay:
            self.run(KillSwitch(scope, target, False))

    # -- checks --------------------------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        if not self.h.log:
            return
        self.flush()
        self.h.engine.check_invariants()
        self.obs.check()
        m = self.h.margin
        for aid in MARGIN:
            if aid in self.h.engine.ledger.accounts and aid not in m.liquidating:
                assert m.health(self.h.engine.ledger.accounts[aid]).equity >= 0, aid
        if self.snapshot is None and self.h.seq > 120:
            self.snapshot = dump_engine(self.h.engine)

    def teardown(self) -> None:
        h = self.h
        if len(h.log) < 5:
            return
        # settle: resume, lift, requote deep books around the last prices
        for sym, mkt in sorted(h.engine.markets.items()):
            if mkt.halted:
                h.do(C.Resume(sym))
        for aid in MARGIN:
            h.do(KillSwitch("account", aid, False))
        for f in ("F1", "F2"):
            h.do(KillSwitch("firm", f, False))
        # the pool gets money again (a short it could not finance and the fund could not pay
        # for waits for it: a stalled liquidation is retried when the pool or the fund is paid)
        h.do(C.Deposit(f"pool-topup-{h.seq}", LENDING_ACCOUNT, "USD", h.atoms("USD", "50000000")))
        for sym in SYMBOLS:
            inst = h.inst(sym)
            px = Decimal(self.mark(sym) or h.engine.markets[sym].last_px) * inst.tick_size
            move_to(h, str(px), sym, depth="5000" if sym == "ETH-BTC" else "500")
        self.flush()
        h.engine.check_invariants()
        self.obs.check()
        m = h.margin
        assert not m.liquidating, m.liquidating
        for aid in MARGIN:
            assert m.health(h.engine.ledger.accounts[aid]).equity >= 0, aid
        # replay: every command from the start, and the second half from the snapshot
        e2 = build_engine()
        for seq, cmd, events in h.log:
            assert e2.process(seq, h.ts, cmd) == events, (seq, cmd)
        assert e2.state_hashes() == h.engine.state_hashes()
        if self.snapshot is not None:
            e3 = load_engine(self.snapshot, build_engine())
            for seq, cmd, events in h.log:
                if seq > e3.seq:
                    assert e3.process(seq, h.ts, cmd) == events, (seq, cmd)
            assert e3.state_hashes() == h.engine.state_hashes()


MarginMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=80, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestMargin = MarginMachine.TestCase
