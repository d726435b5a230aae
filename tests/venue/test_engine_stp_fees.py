"""Self-trade prevention (every mode, account default and per-order override) and fees
(maker/taker, negative maker fees into the fee account), asserted on events and balances."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue.types import (
    BUY, SELL, STP, BookEffect as FX, CancelReason, ExecKind as K, OrderStatus as S,
)

from tests.venue.harness import Harness, execs, fills, trades

USD = 10**8
BTC = 10**8


def oid(events: list) -> int:
    return execs(events)[0].info.order_id


def setup(account_stp: int = STP.CANCEL_NEWEST) -> tuple[Harness, int, int, int]:
    """Asks: X (other account) 1 BTC @100, S (self) 1 BTC @100, X 1 BTC @101."""
    h = Harness()
    h.account("S", stp=account_stp)
    h.account("X")
    a = oid(h.sell("X", "1", "100.00"))
    own = oid(h.sell("S", "1", "100.00"))
    b = oid(h.sell("X", "1", "101.00"))
    return h, a, own, b


class TestSelfTradePrevention:
    def test_cancel_newest_by_account_default(self) -> None:
        h, a, own, b = setup(STP.CANCEL_NEWEST)
        ev = h.buy("S", "3", "101.00")
        t = oid(ev)
        assert fills(ev) == [(a, t, 10_000, 100_000)]
        last = execs(ev)[-1]
        assert (last.info.order_id, last.kind, last.status, last.reason, last.text, last.cum_qty, last.leaves_qty) == (
            t, K.CANCELLED, S.CANCELLED, CancelReason.SELF_TRADE, "cancelled by self-trade prevention", 100_000, 0)
        assert h.ids(SELL) == [own, b] and h.ids(BUY) == []
        assert h.bal("S", "USD")[1] == 0 and h.bal("S", "BTC")[1] == 1 * BTC
        h.engine.check_invariants()

    def test_cancel_oldest(self) -> None:
        h, a, own, b = setup(STP.CANCEL_OLDEST)
        ev = h.buy("S", "3", "101.00")
        t = oid(ev)
        assert fills(ev) == [(a, t, 10_000, 100_000), (b, t, 10_100, 100_000)]
        (gone,) = [e for e in execs(ev) if e.info.order_id == own]
        assert (gone.kind, gone.status, gone.reason, gone.book, gone.leaves_qty) == (
            K.CANCELLED, S.CANCELLED, CancelReason.SELF_TRADE, FX.REMOVE, 0)
        assert execs(ev)[-1].book == FX.ADD and h.ids(BUY) == [t]  # the taker rests its last BTC
        assert h.bal("S", "BTC") == (102 * BTC, 0)
        h.engine.check_invariants()

    def test_cancel_both(self) -> None:
        h, a, own, b = setup(STP.CANCEL_BOTH)
        ev = h.buy("S", "3", "101.00")
        t = oid(ev)
        cancelled = [(e.info.order_id, e.reason) for e in execs(ev, kind=K.CANCELLED)]
        assert cancelled == [(own, CancelReason.SELF_TRADE), (t, CancelReason.SELF_TRADE)]
        assert fills(ev) == [(a, t, 10_000, 100_000)] and h.ids(SELL) == [b] and h.ids(BUY) == []
        h.engine.check_invariants()

    def test_decrement_smaller_taker(self) -> None:
        h, a, own, b = setup(STP.DECREMENT)
        ev = h.buy("S", "1.4", "101.00")
        t = oid(ev)
        assert fills(ev) == [(a, t, 10_000, 100_000)]
        restated = execs(ev, kind=K.RESTATED)
        assert [(e.info.order_id, e.leaves_qty, e.info.qty, e.book, e.visible) for e in restated] == [
            (own, 60_000, 60_000, FX.UPDATE, 60_000)]
        last = execs(ev)[-1]
        # the rest (0.4) is cancelled; the order keeps the quantity it was entered with
        assert (last.info.order_id, last.kind, last.reason, last.cum_qty, last.leaves_qty, last.info.qty) == (
            t, K.CANCELLED, CancelReason.SELF_TRADE, 100_000, 0, 140_000)
        assert h.book(SELL)[0] == (10_000, [(own, 60_000, 60_000)])
        assert h.bal("S", "BTC") == (100_40_000_000, 60_000_000)  # 1 bought, 0.4 of the ask's hold released
        h.engine.check_invariants()

    def test_decrement_larger_taker(self) -> None:
        h, a, own, b = setup(STP.DECREMENT)
        ev = h.buy("S", "3", "101.00")
        t = oid(ev)
        (gone,) = [e for e in execs(ev) if e.info.order_id == own]
        assert (gone.kind, gone.reason, gone.book) == (K.CANCELLED, CancelReason.SELF_TRADE, FX.REMOVE)
        taker = execs(ev, order_id=t)
        assert [e.kind for e in taker] == [K.NEW, K.FILL, K.RESTATED, K.FILL]
        assert taker[2].info.qty == 200_000 and taker[2].leaves_qty == 100_000
        assert taker[-1].status == S.FILLED and fills(ev)[-1] == (b, t, 10_100, 100_000)
        assert h.bal("S", "USD")[1] == 0
        h.engine.check_invariants()

    def test_per_order_override_beats_the_account_default(self) -> None:
        h, a, own, b = setup(STP.CANCEL_NEWEST)
        ev = h.buy("S", "3", "101.00", stp=STP.CANCEL_OLDEST)
        assert execs(ev, order_id=own)[0].kind == K.CANCELLED
        assert execs(ev)[0].info.stp == STP.CANCEL_OLDEST
        h2, a2, own2, _ = setup(STP.CANCEL_OLDEST)
        ev = h2.buy("S", "3", "101.00", stp=STP.CANCEL_NEWEST)
        assert own2 in h2.ids(SELL) and execs(ev)[-1].reason == CancelReason.SELF_TRADE
        assert execs(ev)[0].info.stp == STP.CANCEL_NEWEST
        h3, *_ = setup(STP.DECREMENT)
        assert execs(h3.buy("S", "1", "99.00"))[0].info.stp == STP.DECREMENT  # DEFAULT took the account's

    def test_self_trades_allowed_with_none(self) -> None:
        h, a, own, b = setup(STP.CANCEL_NEWEST)
        ev = h.buy("S", "2", "100.00", stp=STP.NONE)
        t = oid(ev)
        assert fills(ev) == [(a, t, 10_000, 100_000), (own, t, 10_000, 100_000)]
        assert h.total("S", "BTC") == 101 * BTC
        h.engine.check_invariants()

    def test_other_accounts_of_the_same_firm_trade(self) -> None:
        h = Harness()
        h.account("S1", firm="F1")
        h.account("S2", firm="F1")
        m = oid(h.sell("S1", "1", "100.00"))
        ev = h.buy("S2", "1", "100.00")
        assert fills(ev) == [(m, oid(ev), 10_000, 100_000)]

    def test_account_default_from_create_account(self) -> None:
        h = Harness()
        h.ok(C.CreateAccount("D", "F1", stp=int(STP.DECREMENT)))
        assert h.engine.ledger.accounts["D"].stp == STP.DECREMENT


class TestFees:
    def test_maker_and_taker_fees_go_to_the_fee_account(self) -> None:
        h = Harness()
        h.account("M", maker_ppm=200, taker_ppm=700)
        h.account("T", maker_ppm=100, taker_ppm=500)
        m = oid(h.buy("M", "2", "50.00"))  # M buys as maker: holds at ITS taker rate
        assert h.bal("M", "USD")[1] == 100 * USD + 100 * USD * 700 // 10**6
        ev = h.sell("T", "1", "50.00")
        (tr,) = trades(ev)
        notional = 50 * USD
        assert (tr.maker_fee, tr.taker_fee) == (notional * 200 // 10**6, notional * 500 // 10**6)
        maker_ev = execs(ev, order_id=m)[0]
        assert (maker_ev.fee, maker_ev.cum_fee) == (tr.maker_fee, tr.maker_fee)
        assert h.bal("VENUE-FEES", "USD") == (tr.maker_fee + tr.taker_fee, 0)
        assert h.total("T", "USD") == 1_000_000 * USD + notional - tr.taker_fee
        assert h.total("M", "USD") == 1_000_000 * USD - notional - tr.maker_fee
        # the maker's rest holds exactly its need: 1 BTC at 50 plus the taker rate
        assert h.bal("M", "USD")[1] == notional + notional * 700 // 10**6
        h.engine.check_invariants()

    def test_negative_maker_fee_is_a_rebate_from_the_fee_account(self) -> None:
        h = Harness()
        h.account("M", maker_ppm=-100, taker_ppm=300)
        h.account("T", maker_ppm=0, taker_ppm=400)
        h.sell("M", "1", "100.00")
        ev = h.buy("T", "1", "100.00")
        (tr,) = trades(ev)
        notional = 100 * USD
        assert (tr.maker_fee, tr.taker_fee) == (-notional // 10_000, notional * 4 // 10_000)
        assert h.total("M", "USD") == 1_000_000 * USD + notional + notional // 10_000
        assert h.bal("VENUE-FEES", "USD") == (notional * 3 // 10_000, 0)
        h.engine.check_invariants()

    def test_rebate_never_exceeds_the_trades_taker_fee(self) -> None:
        """A maker with a 0.01 % rebate meets a taker paying nothing: the rebate is capped
        at the taker fee (zero), so the fee account never goes negative."""
        h = Harness()
        h.account("M", maker_ppm=-100, taker_ppm=200)
        h.account("T", maker_ppm=0, taker_ppm=50)
        h.sell("M", "1", "100.00")
        (tr,) = trades(h.buy("T", "1", "100.00"))
        assert (tr.maker_fee, tr.taker_fee) == (-50 * 10**4, 50 * 10**4)
        assert h.bal("VENUE-FEES", "USD") == (0, 0)
        h.account("Z", taker_ppm=0)
        h.sell("M", "1", "100.00")
        (tr,) = trades(h.buy("Z", "1", "100.00"))
        assert (tr.maker_fee, tr.taker_fee) == (0, 0)
        h.engine.check_invariants()

    def test_fees_round_toward_zero_per_fill(self) -> None:
        h = Harness()
        h.account("M", maker_ppm=-333, taker_ppm=333)
        h.account("T", taker_ppm=333)
        h.account("P", maker_ppm=100, taker_ppm=333)
        h.sell("M", "0.99999", "1.01")  # notional 101 ticks x 99999 lots x 10 = 100998990 atoms
        (tr,) = trades(h.buy("T", "0.99999", "1.01"))
        assert (tr.maker_fee, tr.taker_fee) == (-33_632, 33_632)  # of 33632.66 either way
        h.sell("P", "0.99999", "1.01")
        (tr,) = trades(h.buy("T", "0.99999", "1.01"))
        assert (tr.maker_fee, tr.taker_fee) == (10_099, 33_632)  # 10099.899
        assert h.bal("VENUE-FEES", "USD") == (10_099 + 33_632, 0)
        h.engine.check_invariants()

    def test_open_orders_keep_the_rates_they_were_held_at(self) -> None:
        h = Harness()
        h.account("M", maker_ppm=100, taker_ppm=500)
        h.account("T", taker_ppm=500)
        m = oid(h.sell("M", "1", "100.00"))
        h.ok(C.SetFees("M", 300, 600))
        (tr,) = trades(h.buy("T", "1", "100.00"))
        assert tr.maker_order_id == m and tr.maker_fee == 100 * USD * 100 // 10**6
        h.sell("M", "1", "100.00")
        (tr,) = trades(h.buy("T", "1", "100.00"))
        assert tr.maker_fee == 100 * USD * 300 // 10**6

    @pytest.mark.parametrize("maker_ppm", [-500, -1, 0, 250, 500])
    def test_money_is_conserved_whatever_the_rates(self, maker_ppm: int) -> None:
        h = Harness()
        h.account("M", maker_ppm=maker_ppm, taker_ppm=500)
        h.account("T", maker_ppm=maker_ppm, taker_ppm=500)
        for i in range(5):
            h.sell("M", "0.333", f"{100 + i}.01")
            h.buy("T", "0.5", f"{100 + i}.07")
            h.sell("T", "0.1", f"{99 + i}.00")
            h.engine.check_invariants()
        for asset, (total, ext) in h.engine.ledger.conservation().items():
            assert total == ext, asset
        assert h.bal("VENUE-FEES", "USD")[0] >= 0
