"""Engine features one by one through ``Engine.process``: limit and market orders, time
in force, post-only, iceberg, stops. Assertions are on events and balances."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue.engine import DAY_NS
from venue.types import (
    BUY, DAY, FOK, GTC, GTD, IOC, MARKET, SELL, STOP, STOP_LIMIT, BookEffect as FX, CancelReason, ExecKind as K,
    Liquidity, OrderStatus as S, Reject,
)

from tests.venue.harness import T0, Harness, execs, fills, rejected, trades

USD = 10**8  # atoms per dollar
BTC = 10**8  # satoshi per bitcoin
LOT = 1000  # satoshi per lot of BTC-USD


@pytest.fixture
def h() -> Harness:
    h = Harness()
    for name in ("A", "B", "C"):
        h.account(name, usd="1000000", btc="100")
    return h


def oid(events: list) -> int:
    return execs(events)[0].info.order_id


def resting(h: Harness, side: int) -> list[tuple[int, list[tuple[int, int, int]]]]:
    return h.book(side)


class TestLimit:
    def test_rests_and_holds_quote_with_taker_fee(self) -> None:
        h = Harness()
        h.account("A", taker_ppm=500, maker_ppm=100)
        ev = h.buy("A", "2", "100.00", clid="b1")
        (e,) = ev
        assert (e.kind, e.status, e.cl_ord_id, e.cum_qty, e.leaves_qty, e.book, e.visible) == (
            K.NEW, S.NEW, "b1", 0, 200_000, FX.ADD, 200_000)
        assert e.info.order_id == h.seq and e.info.price == 10_000 and e.info.entered_ts == T0
        notional = 200 * USD
        assert h.bal("A", "USD") == (1_000_000 * USD - notional - notional // 2000, notional + notional // 2000)
        assert resting(h, BUY) == [(10_000, [(h.seq, 200_000, 200_000)])]

    def test_sell_holds_base(self, h: Harness) -> None:
        h.sell("A", "1.5", "100.00")
        assert h.bal("A", "BTC") == (98_50_000_000, 1_50_000_000)

    def test_cross_trades_at_the_makers_price_and_settles(self) -> None:
        h = Harness()
        h.account("M", maker_ppm=100, taker_ppm=500)
        h.account("T", maker_ppm=100, taker_ppm=500)
        m = oid(h.sell("M", "1", "100.00"))
        ev = h.buy("T", "3", "101.00")
        t = oid(ev)
        assert fills(ev) == [(m, t, 10_000, 100_000)]
        new, maker, taker = execs(ev)
        assert (new.kind, new.book) == (K.NEW, FX.NONE)
        assert (maker.kind, maker.status, maker.liquidity, maker.last_px, maker.last_qty, maker.fee, maker.book,
                maker.cum_qty, maker.leaves_qty) == (K.FILL, S.FILLED, Liquidity.MAKER, 10_000, 100_000,
                                                     1_000_000, FX.REMOVE, 100_000, 0)
        # the taker's last event says it now rests with its remainder
        assert (taker.kind, taker.status, taker.liquidity, taker.fee, taker.cum_qty, taker.leaves_qty, taker.book,
                taker.visible, taker.cum_notional) == (K.FILL, S.PARTIALLY_FILLED, Liquidity.TAKER, 5_000_000, 100_000,
                                                       200_000, FX.ADD, 200_000, 10_000 * 100_000)
        (tr,) = trades(ev)
        assert (tr.aggressor_side, tr.maker_account, tr.taker_account, tr.maker_fee, tr.taker_fee) == (
            BUY, "M", "T", 1_000_000, 5_000_000)
        assert h.engine.markets["BTC-USD"].last_px == 10_000
        # T paid 100 USD + 0.05 % fee, holds exactly what its 2 BTC at 101 need (price improvement released)
        rest_need = 2 * 101 * USD + 2 * 101 * USD * 500 // 10**6
        assert h.bal("T", "USD") == (1_000_000 * USD - 100 * USD - 5_000_000 - rest_need, rest_need)
        assert h.bal("T", "BTC") == (101 * BTC, 0)
        assert h.bal("M", "USD") == (1_000_100 * USD - 1_000_000, 0)
        assert h.bal("M", "BTC") == (99 * BTC, 0)
        assert h.bal("VENUE-FEES", "USD") == (6_000_000, 0)
        h.engine.check_invariants()

    def test_sweeps_levels_in_price_time_order(self, h: Harness) -> None:
        a1 = oid(h.sell("A", "1", "101.00"))
        a2 = oid(h.sell("B", "1", "100.00"))
        a3 = oid(h.sell("A", "1", "100.00"))
        a4 = oid(h.sell("B", "1", "102.00"))
        ev = h.buy("C", "3.5", "101.00")
        t = oid(ev)
        assert fills(ev) == [(a2, t, 10_000, 100_000), (a3, t, 10_000, 100_000), (a1, t, 10_100, 100_000)]
        assert execs(ev)[-1].leaves_qty == 50_000 and execs(ev)[-1].cum_notional == (10_000 + 10_000 + 10_100) * 100_000
        assert resting(h, BUY) == [(10_100, [(t, 50_000, 50_000)])]
        assert resting(h, SELL) == [(10_200, [(a4, 100_000, 100_000)])]

    def test_fifo_within_a_level(self, h: Harness) -> None:
        ids = [oid(h.buy(a, "1", "99.00")) for a in ("A", "B", "A", "B")]
        assert [i for i, _, _ in resting(h, BUY)[0][1]] == ids
        ev = h.sell("C", "2.5", "99.00")
        assert [f[0] for f in fills(ev)] == ids[:3]
        assert resting(h, BUY) == [(9_900, [(ids[2], 50_000, 50_000), (ids[3], 100_000, 100_000)])]


class TestMarket:
    def test_empty_opposite_side_is_refused(self, h: Harness) -> None:
        h.buy("A", "1", "100.00")
        r = rejected(h.buy("B", "1", ord_type=MARKET))
        assert (r.code, r.text) == (Reject.NO_LIQUIDITY, "no liquidity on the other side of BTC-USD")
        assert h.bal("B", "USD") == (1_000_000 * USD, 0)

    def test_buy_stops_at_the_band(self, h: Harness) -> None:
        m1 = oid(h.sell("A", "1", "100.00"))
        m2 = oid(h.sell("A", "1", "104.99"))
        m3 = oid(h.sell("A", "1", "105.01"))
        ev = h.buy("B", "5", ord_type=MARKET)
        t = oid(ev)
        new = execs(ev)[0]
        assert new.info.price == 10_500 and new.info.tif == IOC  # 100.00 + 5 %
        assert fills(ev) == [(m1, t, 10_000, 100_000), (m2, t, 10_499, 100_000)]
        last = execs(ev)[-1]
        assert (last.kind, last.status, last.reason, last.cum_qty, last.leaves_qty) == (
            K.CANCELLED, S.CANCELLED, CancelReason.MARKET_PROTECTION, 200_000, 0)
        assert resting(h, SELL) == [(10_501, [(m3, 100_000, 100_000)])]
        assert h.bal("B", "USD")[1] == 0 and h.total("B", "USD") == 1_000_000 * USD - 100 * USD - 104_99 * 10**6

    def test_sell_stops_at_the_band(self, h: Harness) -> None:
        m1 = oid(h.buy("A", "1", "100.00"))
        m2 = oid(h.buy("A", "1", "95.00"))
        oid(h.buy("A", "1", "94.99"))
        ev = h.sell("B", "3", ord_type=MARKET)
        assert execs(ev)[0].info.price == 9_500
        assert [f[0] for f in fills(ev)] == [m1, m2]
        assert execs(ev)[-1].reason == CancelReason.MARKET_PROTECTION
        assert h.engine.markets["BTC-USD"].book.best_bid() == 9_499

    def test_sell_band_rounds_inward(self, h: Harness) -> None:
        oid(h.buy("A", "2", "0.99"))  # 99 ticks: 5 % below is 94.05 ticks, so the cap is 95
        oid(h.buy("A", "2", "0.94"))
        ev = h.sell("B", "3", ord_type=MARKET)
        assert execs(ev)[0].info.price == 95 and len(fills(ev)) == 1

    def test_empty_book_after_the_sweep_reports_no_liquidity(self, h: Harness) -> None:
        oid(h.sell("A", "1", "100.00"))
        ev = h.buy("B", "2", ord_type=MARKET)
        assert execs(ev)[-1].reason == CancelReason.NO_LIQUIDITY
        assert execs(ev)[-1].cum_qty == 100_000

    def test_full_fill_and_market_fok(self, h: Harness) -> None:
        oid(h.sell("A", "1", "100.00"))
        oid(h.sell("A", "1", "101.00"))
        ev = h.buy("B", "1.5", ord_type=MARKET)
        assert execs(ev)[-1].status == S.FILLED and h.bal("B", "USD")[1] == 0
        ev = h.buy("B", "1", ord_type=MARKET, tif=FOK)
        assert execs(ev)[-1].reason == CancelReason.FOK_NOT_FILLABLE and not fills(ev)
        ev = h.buy("B", "0.5", ord_type=MARKET, tif=FOK)
        assert execs(ev)[-1].status == S.FILLED


class TestTimeInForce:
    def test_ioc_cancels_the_rest(self, h: Harness) -> None:
        oid(h.sell("A", "1", "100.00"))
        ev = h.buy("B", "3", "100.00", tif=IOC)
        last = execs(ev)[-1]
        assert (last.kind, last.reason, last.cum_qty, last.leaves_qty, last.book) == (
            K.CANCELLED, CancelReason.IOC_REMAINDER, 100_000, 0, FX.NONE)
        assert resting(h, BUY) == [] and h.bal("B", "USD")[1] == 0

    def test_ioc_without_a_fill(self, h: Harness) -> None:
        ev = h.buy("B", "1", "100.00", tif=IOC)
        assert [(e.kind, e.status) for e in execs(ev)] == [(K.NEW, S.NEW), (K.CANCELLED, S.CANCELLED)]

    def test_fok_all_or_nothing(self, h: Harness) -> None:
        m1 = oid(h.sell("A", "1", "100.00"))
        m2 = oid(h.sell("A", "1", "100.50"))
        before = resting(h, SELL)
        ev = h.buy("B", "2.1", "100.50", tif=FOK)
        assert not fills(ev) and execs(ev)[-1].reason == CancelReason.FOK_NOT_FILLABLE
        assert execs(ev)[-1].text == "fill-or-kill order could not be filled in full"
        assert resting(h, SELL) == before
        ev = h.buy("B", "2", "100.50", tif=FOK)
        t = oid(ev)
        assert fills(ev) == [(m1, t, 10_000, 100_000), (m2, t, 10_050, 100_000)]
        assert execs(ev)[-1].status == S.FILLED

    def test_fok_counts_hidden_iceberg_quantity(self, h: Harness) -> None:
        oid(h.sell("A", "5", "100.00", display_qty=100_000))
        ev = h.buy("B", "5", "100.00", tif=FOK)
        assert execs(ev)[-1].status == S.FILLED and len(fills(ev)) == 5

    def test_fok_iceberg_refill_behind_own_order(self, h: Harness) -> None:
        """The iceberg's refill goes behind B's own order, which stops B's FOK: it must
        not be half filled."""
        oid(h.sell("A", "5", "100.00", display_qty=100_000))
        own = oid(h.sell("B", "1", "100.00"))
        ev = h.buy("B", "2", "100.00", tif=FOK)
        assert not fills(ev) and execs(ev)[-1].reason == CancelReason.FOK_NOT_FILLABLE
        ev = h.buy("B", "1", "100.00", tif=FOK)
        assert execs(ev)[-1].status == S.FILLED
        assert own in h.ids(SELL)

    def test_gtd_expires_on_the_tick_at_its_time(self, h: Harness) -> None:
        exp = T0 + 5_000_000_000
        o = oid(h.buy("A", "1", "100.00", tif=GTD, expire_ts=exp))
        assert h.engine.next_deadline() == exp
        assert h.do(C.Tick(), ts=exp - 1) == []
        ev = h.do(C.Tick(), ts=exp)
        (e,) = execs(ev)
        assert (e.kind, e.status, e.reason, e.text, e.book, e.info.order_id) == (
            K.EXPIRED, S.EXPIRED, CancelReason.EXPIRED, "order expired", FX.REMOVE, o)
        assert resting(h, BUY) == [] and h.bal("A", "USD") == (1_000_000 * USD, 0)
        assert h.engine.next_deadline() is None

    def test_gtd_in_the_past_is_refused(self, h: Harness) -> None:
        r = rejected(h.buy("A", "1", "100.00", tif=GTD, expire_ts=T0))
        assert (r.code, r.text) == (Reject.INVALID_EXPIRE_TIME, "GTD expire time must be in the future")

    def test_day_expires_at_the_next_utc_midnight(self, h: Harness) -> None:
        midnight = (T0 // DAY_NS + 1) * DAY_NS
        o = oid(h.sell("A", "1", "100.00", tif=DAY))
        assert execs(h.log[-1][2])[0].info.expire_ts == midnight
        assert h.do(C.Tick(), ts=midnight - 1) == []
        (e,) = execs(h.do(C.Tick(), ts=midnight + 10))
        assert (e.kind, e.info.order_id) == (K.EXPIRED, o)
        assert h.bal("A", "BTC") == (100 * BTC, 0)

    def test_filled_or_cancelled_orders_do_not_expire(self, h: Harness) -> None:
        exp = T0 + 10
        o1 = oid(h.sell("A", "1", "100.00", tif=GTD, expire_ts=exp))
        oid(h.sell("A", "1", "101.00", tif=GTD, expire_ts=exp))
        h.ok(C.CancelOrder("A", "x", order_id=o1 + 1))
        h.buy("B", "1", "100.00")
        assert h.do(C.Tick(), ts=exp) == []
        assert o1 not in h.engine.orders

    def test_tick_expires_in_time_order(self, h: Harness) -> None:
        late = oid(h.buy("A", "1", "99.00", tif=GTD, expire_ts=T0 + 20))
        early = oid(h.buy("A", "1", "98.00", tif=GTD, expire_ts=T0 + 10))
        ev = h.do(C.Tick(), ts=T0 + 30)
        assert [e.info.order_id for e in execs(ev)] == [early, late]


class TestPostOnly:
    def test_refused_if_it_would_take(self, h: Harness) -> None:
        oid(h.sell("A", "1", "100.00"))
        r = rejected(h.buy("B", "1", "100.00", post_only=True))
        assert (r.code, r.text) == (Reject.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
        assert h.bal("B", "USD") == (1_000_000 * USD, 0)

    def test_rests_when_it_does_not_cross(self, h: Harness) -> None:
        oid(h.sell("A", "1", "100.00"))
        ev = h.buy("B", "1", "99.99", post_only=True)
        assert execs(ev)[0].book == FX.ADD and execs(ev)[0].info.post_only

    @pytest.mark.parametrize("tif", [IOC, FOK])
    def test_needs_a_resting_time_in_force(self, h: Harness, tif: int) -> None:
        r = rejected(h.buy("B", "1", "99.00", post_only=True, tif=tif))
        assert (r.code, r.text) == (Reject.UNSUPPORTED, "post-only needs a limit order that may rest (not IOC/FOK)")

    def test_market_cannot_be_post_only(self, h: Harness) -> None:
        h.sell("A", "1", "100.00")
        assert rejected(h.buy("B", "1", ord_type=MARKET, post_only=True)).code == Reject.UNSUPPORTED

    def test_triggered_post_only_stop_limit_is_cancelled_if_it_would_take(self, h: Harness) -> None:
        h.sell("A", "1", "100.00")
        h.buy("B", "1", "100.00")  # last = 100.00
        h.sell("A", "5", "101.00")
        s = oid(h.buy("C", "1", "101.00", ord_type=STOP_LIMIT, stop="100.50", post_only=True))
        ev = h.buy("B", "1", "101.00")  # trades at 101.00 >= 100.50: the stop triggers into a crossing book
        mine = execs(ev, order_id=s)
        assert [(e.kind, e.status) for e in mine] == [(K.TRIGGERED, S.NEW), (K.CANCELLED, S.CANCELLED)]
        assert mine[-1].reason == CancelReason.POST_ONLY
        assert h.bal("C", "USD") == (1_000_000 * USD, 0)


class TestIceberg:
    def test_shows_display_and_refills_to_the_back(self, h: Harness) -> None:
        ice = oid(h.sell("A", "3", "100.00", display_qty=100_000))
        assert execs(h.log[-1][2])[0].visible == 100_000
        other = oid(h.sell("B", "1", "100.00"))
        assert resting(h, SELL) == [(10_000, [(ice, 300_000, 100_000), (other, 100_000, 100_000)])]
        ev = h.buy("C", "1.5", "100.00")
        maker_events = execs(ev, kind=K.FILL)
        ice_fill = [e for e in maker_events if e.info.order_id == ice][0]
        assert (ice_fill.book, ice_fill.visible, ice_fill.leaves_qty, ice_fill.status) == (
            FX.REQUEUE, 100_000, 200_000, S.PARTIALLY_FILLED)
        other_fill = [e for e in maker_events if e.info.order_id == other][0]
        assert (other_fill.book, other_fill.visible, other_fill.leaves_qty) == (FX.UPDATE, 50_000, 50_000)
        assert resting(h, SELL) == [(10_000, [(other, 50_000, 50_000), (ice, 200_000, 100_000)])]

    def test_last_slice_is_smaller(self, h: Harness) -> None:
        ice = oid(h.sell("A", "2.5", "100.00", display_qty=100_000))
        h.buy("C", "2", "100.00")
        assert resting(h, SELL) == [(10_000, [(ice, 50_000, 50_000)])]

    def test_taker_iceberg_rests_with_its_display(self, h: Harness) -> None:
        h.sell("A", "1", "100.00")
        ev = h.buy("B", "5", "100.00", display_qty=200_000)
        last = execs(ev)[-1]
        assert (last.book, last.visible, last.leaves_qty) == (FX.ADD, 200_000, 400_000)
        assert h.engine.markets["BTC-USD"].book.depth(BUY) == [(10_000, 200_000, 1)]

    @pytest.mark.parametrize("kw, text", [
        (dict(display_qty=100_000), "display quantity must be at least the minimum and less than the order quantity"),
        (dict(display_qty=200_000), "display quantity must be at least the minimum and less than the order quantity"),
        (dict(display_qty=-1), "display quantity must be at least the minimum and less than the order quantity"),
        (dict(display_qty=1, tif=IOC), "an iceberg must be a limit order that may rest"),
    ])
    def test_invalid_display(self, h: Harness, kw: dict, text: str) -> None:
        r = rejected(h.buy("A", "1", "100.00", **kw))
        assert (r.code, r.text) == (Reject.INVALID_DISPLAY_QTY, text)

    def test_market_iceberg_refused(self, h: Harness) -> None:
        h.sell("A", "1", "100.00")
        r = rejected(h.buy("B", "1", ord_type=MARKET, display_qty=10))
        assert (r.code, r.text) == (Reject.INVALID_DISPLAY_QTY, "an iceberg must be a limit order that may rest")


class TestStops:
    @pytest.fixture
    def last100(self, h: Harness) -> Harness:
        h.sell("A", "1", "100.00")
        h.buy("B", "1", "100.00")
        assert h.engine.markets["BTC-USD"].last_px == 10_000
        return h

    def test_stop_would_trigger_at_once_is_refused(self, last100: Harness) -> None:
        h = last100
        r = rejected(h.buy("C", "1", ord_type=STOP, stop="100.00"))
        assert (r.code, r.text) == (Reject.STOP_WOULD_TRIGGER, "stop price 100.00 would trigger at once (last 100.00)")
        r = rejected(h.sell("C", "1", "99.00", ord_type=STOP_LIMIT, stop="100.01", tif=GTC))
        assert r.code == Reject.STOP_WOULD_TRIGGER

    def test_stop_waits_and_holds(self, last100: Harness) -> None:
        h = last100
        ev = h.buy("C", "1", ord_type=STOP, stop="101.00")
        (e,) = execs(ev)
        assert (e.kind, e.status, e.book) == (K.NEW, S.WAITING_TRIGGER, FX.NONE)
        assert e.info.price == 10_605  # its band cap: 101.00 + 5 %
        assert h.bal("C", "USD")[1] == 106_05 * 10**6
        assert resting(h, BUY) == []

    def test_buy_stop_market_triggers_on_last_trade_at_or_above(self, last100: Harness) -> None:
        h = last100
        s = oid(h.buy("C", "1", ord_type=STOP, stop="101.00"))
        h.sell("A", "1", "100.50")
        h.sell("A", "2", "102.00")
        ev = h.buy("B", "1", "100.50")  # last 100.50: not yet
        assert not execs(ev, order_id=s)
        ev = h.buy("B", "0.5", "102.00")  # last 102.00 >= 101.00
        mine = execs(ev, order_id=s)
        assert [(e.kind, e.status) for e in mine] == [(K.TRIGGERED, S.NEW), (K.FILL, S.FILLED)]
        assert mine[-1].last_px == 10_200 and mine[-1].liquidity == Liquidity.TAKER
        assert h.bal("C", "USD") == (1_000_000 * USD - 102 * USD, 0)

    def test_sell_stop_limit_triggers_and_rests(self, last100: Harness) -> None:
        h = last100
        s = oid(h.sell("C", "1", "98.00", ord_type=STOP_LIMIT, stop="99.00"))
        h.buy("A", "1", "99.00")
        ev = h.sell("B", "1", "99.00")
        mine = execs(ev, order_id=s)
        assert [(e.kind, e.status, e.book) for e in mine] == [(K.TRIGGERED, S.NEW, FX.ADD)]
        assert resting(h, SELL) == [(9_800, [(s, 100_000, 100_000)])]

    def test_cascade(self, last100: Harness) -> None:
        """A triggered stop's own trades trigger the next one."""
        h = last100
        h.buy("A", "1", "99.00")
        h.buy("A", "1", "98.00")
        h.buy("A", "1", "97.00")
        s1 = oid(h.sell("C", "1", ord_type=STOP, stop="99.00"))
        s2 = oid(h.sell("B", "1", ord_type=STOP, stop="98.00"))
        s3 = oid(h.sell("C", "1", "90.00", ord_type=STOP_LIMIT, stop="96.00"))  # not reached
        ev = h.sell("B", "1", "99.00")  # trades at 99 -> s1 sells at 98 -> s2 sells at 97
        kinds = [(e.info.order_id, e.kind) for e in execs(ev) if e.info.order_id in (s1, s2, s3)]
        assert kinds == [(s1, K.TRIGGERED), (s1, K.FILL), (s2, K.TRIGGERED), (s2, K.FILL)]
        assert [t.price for t in trades(ev)] == [9_900, 9_800, 9_700]
        assert h.engine.orders[s3].status == S.WAITING_TRIGGER

    def test_triggers_in_stop_price_then_time_order(self, last100: Harness) -> None:
        h = last100
        s1 = oid(h.buy("C", "1", "110.00", ord_type=STOP_LIMIT, stop="102.00"))
        s2 = oid(h.buy("C", "1", "110.00", ord_type=STOP_LIMIT, stop="101.00"))
        s3 = oid(h.buy("C", "1", "110.00", ord_type=STOP_LIMIT, stop="101.00"))
        h.sell("A", "1", "103.00")
        ev = h.buy("B", "1", "103.00")
        assert [e.info.order_id for e in execs(ev, kind=K.TRIGGERED)] == [s2, s3, s1]

    def test_no_trigger_while_halted(self, last100: Harness) -> None:
        h = last100
        s = oid(h.sell("C", "1", ord_type=STOP, stop="99.00"))
        h.ok(C.Halt("BTC-USD"))
        assert h.engine.orders[s].status == S.WAITING_TRIGGER

    def test_stop_fok_keeps_fok_after_trigger(self, last100: Harness) -> None:
        h = last100
        s = oid(h.buy("C", "2", ord_type=STOP, stop="101.00", tif=FOK))
        h.sell("A", "1", "101.00")
        ev = h.buy("B", "0.5", "101.00")  # last 101 -> trigger; only 0.5 left at 101: FOK cannot fill 2
        mine = execs(ev, order_id=s)
        assert [e.kind for e in mine] == [K.TRIGGERED, K.CANCELLED]
        assert mine[-1].reason == CancelReason.FOK_NOT_FILLABLE

    def test_triggered_stop_market_is_protected_by_its_band(self, last100: Harness) -> None:
        h = last100
        s = oid(h.buy("C", "2", ord_type=STOP, stop="101.00"))
        h.sell("A", "1", "101.00")
        h.sell("A", "1", "110.00")  # beyond 101.00 + 5 %
        ev = h.buy("B", "0.5", "101.00")
        mine = execs(ev, order_id=s)
        assert [e.kind for e in mine] == [K.TRIGGERED, K.FILL, K.CANCELLED]
        assert mine[-1].reason == CancelReason.MARKET_PROTECTION and mine[-1].cum_qty == 50_000

    def test_stop_expires_while_waiting(self, last100: Harness) -> None:
        h = last100
        s = oid(h.sell("C", "1", ord_type=STOP, stop="90.00", tif=GTD, expire_ts=T0 + 5))
        (e,) = execs(h.do(C.Tick(), ts=T0 + 5))
        assert (e.info.order_id, e.kind, e.status) == (s, K.EXPIRED, S.EXPIRED)
        assert h.bal("C", "BTC") == (100 * BTC, 0)

    def test_any_stop_accepted_before_the_first_trade(self, h: Harness) -> None:
        ev = h.buy("C", "1", ord_type=STOP, stop="200.00")
        assert execs(ev)[0].status == S.WAITING_TRIGGER


def test_every_step_keeps_the_engine_invariants(h: Harness) -> None:
    """A mixed sequence over several features; the engine's own check after each."""
    steps = [
        lambda: h.sell("A", "3", "100.00", display_qty=50_000),
        lambda: h.buy("B", "1", "99.00", post_only=True),
        lambda: h.buy("C", "1.2", "100.00"),
        lambda: h.sell("B", "2", "99.00", tif=IOC),
        lambda: h.buy("C", "1", ord_type=STOP, stop="100.50"),
        lambda: h.buy("B", "1", "101.00"),
        lambda: h.do(C.MassCancel(account="A")),
    ]
    for step in steps:
        step()
        h.engine.check_invariants()
