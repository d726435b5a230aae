"""A Hypothesis state machine over random commands: several accounts in two firms, both
sides, every order type, time in force and self-trade mode, cancels, amends, mass
cancels, halts, funding with repeated ids, fee changes and ticks. After every step the
engine's own ``check_invariants`` runs, and so do the independent checks of
:mod:`tests.venue.checks` (book uncrossed at rest, FIFO within a level, no negative
balance, holds equal what open orders need, money conserved per asset)."""
from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from venue import commands as C
from venue.engine import DAY_NS
from venue.events import CommandRejected, FundingPosted
from venue.instruments import Asset, Instrument
from venue.types import (
    BUY, DAY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT, STP, CancelReason, Reject,
)

from tests.venue.checks import Observer
from tests.venue.harness import T0, Harness

ASSETS = (Asset("AAA", 2), Asset("BBB", 3), Asset("QQQ", 4))
_A = {a.code: a for a in ASSETS}
INSTRUMENTS = (
    # tick x lot = 0.0001 QQQ = 1 atom; a lot is 1 AAA atom
    Instrument.create("AAA-QQQ", _A["AAA"], _A["QQQ"], "0.01", "0.01", "0.01", "1000", "0.0001", "100000"),
    # tick x lot = 0.005 QQQ = 50 atoms; a lot is 100 BBB atoms; a 2 % band
    Instrument.create("BBB-QQQ", _A["BBB"], _A["QQQ"], "0.05", "0.1", "0.1", "1000", "0.0001", "100000",
                      market_band_pct="2"),
)
SYMBOLS = tuple(i.symbol for i in INSTRUMENTS)
ACCOUNTS = ("a0", "a1", "a2", "a3")
FIRMS = {"a0": "F1", "a1": "F1", "a2": "F2", "a3": "F2"}
MID = 100  # ticks: prices are drawn around it so that orders cross often
START = (T0 // DAY_NS + 1) * DAY_NS - 20 * 10**9  # 20 s before midnight: Day orders expire in a run

fee_pairs = st.sampled_from([(0, 0), (100, 500), (-100, 300), (-300, 300), (250, 250), (0, 1000)])
stp_modes = st.sampled_from([0, 0, int(STP.CANCEL_NEWEST), int(STP.CANCEL_OLDEST), int(STP.CANCEL_BOTH),
                             int(STP.DECREMENT), int(STP.NONE)])


class VenueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(genesis=False)
        self.h.ts = START
        self.obs = Observer(self.h.engine)
        self.order_ids: list[int] = []
        self.clids: list[tuple[str, str]] = []  # (account, ClOrdID) of every accepted order
        self.index: dict[int, int] = {}  # order id -> its place in the two lists
        self.n = 0

    # -- driving ---------------------------------------------------------------------
    def run(self, cmd: Any) -> list[Any]:
        events = self.h.do(cmd)
        self.obs.feed(events)
        for e in events:
            if type(e).__name__ == "Execution" and e.kind == 0:
                self.index[e.info.order_id] = len(self.order_ids)
                self.order_ids.append(e.info.order_id)
                self.clids.append((e.info.account, e.info.cl_ord_id))
        return events

    def pick_order(self, pick: int) -> tuple[int, str, str]:
        """(order id, account, ClOrdID): mostly an open order, sometimes any order ever made."""
        open_ids = sorted(self.h.engine.orders)
        if open_ids and pick % 4:
            oid = open_ids[pick % len(open_ids)]
        else:
            oid = self.order_ids[-1 - pick % min(len(self.order_ids), 30)]
        acct, clid = self.clids[self.index[oid]]
        return oid, acct, clid

    def clid(self) -> str:
        self.n += 1
        return f"k{self.n}"

    @initialize(fees=st.lists(fee_pairs, min_size=4, max_size=4), stps=st.lists(stp_modes.filter(bool), min_size=4, max_size=4))
    def setup(self, fees: list[tuple[int, int]], stps: list[int]) -> None:
        for a in ASSETS:
            self.run(C.DefineAsset(a.code, a.decimals))
        for inst in INSTRUMENTS:
            self.run(C.DefineInstrument(inst.to_record()))
        for f in ("F1", "F2"):
            self.run(C.CreateFirm(f))
        for aid, (maker, taker), stp in zip(ACCOUNTS, fees, stps):
            self.run(C.CreateAccount(aid, FIRMS[aid], 1, maker, taker, stp))
            for a in ASSETS:
                self.run(C.Deposit(f"seed-{aid}-{a.code}", aid, a.code, 10**a.decimals * 5_000))

    # -- orders (limit orders have three rules: the machine picks rules evenly) ----------
    def place(self, acct: str, sym: str, side: int, kind: int, tif: int, qty: int, offset: int, stop_offset: int = 0,
              post_only: bool = False, display: int = 0, stp: int = 0, expire_in: int = 1) -> None:
        price = 0 if kind in (MARKET, STOP) else MID + offset * (1 if side == BUY else -1) + (0 if side == BUY else 1)
        stop_px = 0
        if kind in (STOP, STOP_LIMIT):
            last = self.h.engine.markets[sym].last_px or MID
            stop_px = max(1, last + stop_offset)
        self.run(C.NewOrder(acct, self.clid(), sym, side, kind, qty, price=price, stop_px=stop_px, tif=tif,
                            expire_ts=self.h.ts + expire_in if tif == GTD else 0, post_only=post_only,
                            display_qty=display if display < qty else 0, stp=stp))

    def limit(self, acct: str, sym: str, side: int, tif: int, qty: int, offset: int, post_only: bool, display: int,
              stp: int) -> None:
        """Post-only and icebergs only where they are valid (``other_order`` tries the rest)."""
        resting = tif == GTC
        self.place(acct, sym, side, LIMIT, tif, qty, offset, post_only=post_only and resting,
                   display=display if resting else 0, stp=stp)

    limit_args = dict(acct=st.sampled_from(ACCOUNTS), sym=st.sampled_from(SYMBOLS), side=st.sampled_from((BUY, SELL)),
                      tif=st.sampled_from((GTC, GTC, GTC, IOC, FOK)), qty=st.integers(1, 40), offset=st.integers(-6, 6),
                      post_only=st.sampled_from((False, False, False, True)), display=st.sampled_from((0, 0, 0, 1, 3, 10)),
                      stp=stp_modes)

    @rule(**limit_args)
    def limit_order(self, acct: str, sym: str, side: int, tif: int, qty: int, offset: int, post_only: bool,
                    display: int, stp: int) -> None:
        self.limit(acct, sym, side, tif, qty, offset, post_only, display, stp)

    @rule(**limit_args)
    def limit_order_2(self, acct: str, sym: str, side: int, tif: int, qty: int, offset: int, post_only: bool,
                      display: int, stp: int) -> None:
        self.limit(acct, sym, side, tif, qty, offset, post_only, display, stp)

    @rule(**limit_args)
    def limit_order_3(self, acct: str, sym: str, side: int, tif: int, qty: int, offset: int, post_only: bool,
                      display: int, stp: int) -> None:
        self.limit(acct, sym, side, tif, qty, offset, post_only, display, stp)

    @rule(acct=st.sampled_from(ACCOUNTS), sym=st.sampled_from(SYMBOLS), side=st.sampled_from((BUY, SELL)),
          kind=st.sampled_from((LIMIT, MARKET, STOP, STOP_LIMIT)), tif=st.sampled_from((GTC, IOC, FOK, GTD, DAY)),
          qty=st.integers(1, 60), offset=st.integers(-8, 8), stop_offset=st.integers(-6, 6), post_only=st.booleans(),
          display=st.sampled_from((0, 0, 1, 3)), stp=stp_modes, expire_in=st.integers(1, 5 * 10**9))
    def other_order(self, acct: str, sym: str, side: int, kind: int, tif: int, qty: int, offset: int,
                    stop_offset: int, post_only: bool, display: int, stp: int, expire_in: int) -> None:
        self.place(acct, sym, side, kind, tif, qty, offset, stop_offset, post_only, display, stp, expire_in)

    @precondition(lambda self: self.order_ids)
    @rule(pick=st.integers(0, 10**6), by_clid=st.booleans(), wrong_account=st.sampled_from((False, False, False, True)))
    def cancel(self, pick: int, by_clid: bool, wrong_account: bool) -> None:
        oid, acct, clid = self.pick_order(pick)
        if wrong_account:
            acct = ACCOUNTS[(ACCOUNTS.index(acct) + 1) % len(ACCOUNTS)]
        cmd = C.CancelOrder(acct, self.clid(), orig_cl_ord_id=clid) if by_clid else C.CancelOrder(acct, self.clid(), order_id=oid)
        self.run(cmd)

    @precondition(lambda self: self.order_ids)
    @rule(pick=st.integers(0, 10**6), qty=st.sampled_from((0, 1, 5, 20, 60)), offset=st.sampled_from((None, -3, 0, 2, 6)),
          stop_offset=st.sampled_from((None, -2, 3)), new_clid=st.booleans())
    def amend(self, pick: int, qty: int, offset: int | None, stop_offset: int | None, new_clid: bool) -> None:
        oid, acct, _ = self.pick_order(pick)
        o = self.h.engine.orders.get(oid)
        side = o.side if o is not None else BUY
        price = 0 if offset is None else MID + offset * (1 if side == BUY else -1)
        stop_px = 0
        if stop_offset is not None and o is not None and (o.stop_px or pick % 7 == 0):  # rarely on a non-stop
            stop_px = max(1, (o.stop_px or MID) + stop_offset)
        self.run(C.AmendOrder(acct, self.clid() if new_clid else "", order_id=oid, qty=qty, price=price, stop_px=stop_px))

    @rule(acct=st.sampled_from(("",) + ACCOUNTS), firm=st.sampled_from(("", "", "F1", "F2")),
          sym=st.sampled_from(("", "") + SYMBOLS), side=st.sampled_from((0, BUY, SELL)))
    def mass_cancel(self, acct: str, firm: str, sym: str, side: int) -> None:
        self.run(C.MassCancel(self.clid(), account=acct, firm=firm, symbol=sym, side=side))

    @rule(sym=st.sampled_from(SYMBOLS), cancel_book=st.booleans(), stay=st.sampled_from((False, False, False, True)))
    def halt(self, sym: str, cancel_book: bool, stay: bool) -> None:
        self.run(C.Halt(sym, cancel_book))
        if not stay:
            self.run(C.Resume(sym))

    @precondition(lambda self: any(m.halted for m in self.h.engine.markets.values()))
    @rule(sym=st.sampled_from(SYMBOLS))
    def resume(self, sym: str) -> None:
        self.run(C.Resume(sym))

    @rule(acct=st.sampled_from(ACCOUNTS), fees=fee_pairs)
    def set_fees(self, acct: str, fees: tuple[int, int]) -> None:
        self.run(C.SetFees(acct, *fees))

    @rule(advance=st.sampled_from((0, 1, 10**9, 3 * 10**9, 7 * 10**9)))
    def tick(self, advance: int) -> None:
        self.h.ts += advance
        self.run(C.Tick())

    # -- funding ---------------------------------------------------------------------
    @rule(kind=st.sampled_from(("deposit", "withdraw", "hold")), acct=st.sampled_from(ACCOUNTS),
          asset=st.sampled_from(tuple(_A)), amount=st.integers(-5, 3 * 10**7), fid=st.integers(0, 12))
    def funding(self, kind: str, acct: str, asset: str, amount: int, fid: int) -> None:
        cls = {"deposit": C.Deposit, "withdraw": C.Withdraw, "hold": C.HoldWithdrawal}[kind]
        used = f"f{fid}" in self.h.engine.ledger.funding
        events = self.run(cls(f"f{fid}", acct, asset, amount))
        if used:
            (r,) = events
            assert isinstance(r, CommandRejected) and r.code == Reject.DUPLICATE_FUNDING_ID

    @rule(pick=st.integers(0, 30), complete=st.booleans())
    def settle_withdrawal(self, pick: int, complete: bool) -> None:
        funding = self.h.engine.ledger.funding
        held = [fid for fid, rec in funding.items() if rec[0] == "withdrawal" and rec[4] == "held"]
        fid = held[pick % len(held)] if held and pick < 20 else f"f{pick % 13}"  # mostly a pending one
        rec = funding.get(fid)
        pending = rec is not None and rec[0] == "withdrawal" and rec[4] == "held"
        events = self.run(C.CompleteWithdrawal(fid) if complete else C.ReleaseWithdrawal(fid))
        assert isinstance(events[0], FundingPosted) == pending

    # -- after every step --------------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        self.h.engine.check_invariants()
        self.obs.check()
        # every cancellation the engine reports has a reason the world understands
        for _, _, events in self.h.log[-3:]:
            for e in events:
                if type(e).__name__ == "Execution" and e.kind in (4, 7):
                    CancelReason(e.reason)


VenueMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVenueStateMachine = VenueMachine.TestCase
