"""Managing orders: amend (priority rules, refusals, crossing), cancel by order id and by
ClOrdID, mass cancel by account/firm/instrument/side, and halt/resume."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue.events import CancelRejected, InstrumentStatus, MassCancelReport
from venue.types import (
    BUY, SELL, STOP, STOP_LIMIT, BookEffect as FX, CancelReason, ExecKind as K, OrderStatus as S, Reject,
)

from tests.venue.harness import Harness, execs, fills, only

USD = 10**8
BTC = 10**8
SYM = "BTC-USD"


def oid(events: list) -> int:
    return execs(events)[0].info.order_id


@pytest.fixture
def h() -> Harness:
    h = Harness()
    h.account("A", taker_ppm=500)
    h.account("B")
    h.account("C", firm="F2")
    return h


def amend(h: Harness, order_id: int, qty: str | None = None, price: str | None = None, stop: str | None = None,
          account: str = "A", clid: str = "", **kw: object) -> list:
    return h.do(C.AmendOrder(account, clid, order_id=order_id, qty=h.lots(qty) if qty else 0,
                             price=h.px(price) if price else 0, stop_px=h.px(stop) if stop else 0, **kw))  # type: ignore[arg-type]


def refusal(events: list) -> CancelRejected:
    return only(events, CancelRejected)


class TestAmend:
    def test_quantity_decrease_keeps_priority(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "3", "100.00", clid="a1"))
        b1 = oid(h.buy("B", "1", "100.00"))
        ev = amend(h, a1, qty="2", clid="a1-r")
        (e,) = execs(ev)
        assert (e.kind, e.status, e.cl_ord_id, e.orig_cl_ord_id, e.book, e.visible, e.leaves_qty, e.info.qty) == (
            K.REPLACED, S.NEW, "a1-r", "a1", FX.UPDATE, 200_000, 200_000, 200_000)
        assert h.ids(BUY) == [a1, b1]
        need = 200 * USD + 200 * USD * 500 // 10**6
        assert h.bal("A", "USD") == (1_000_000 * USD - need, need)  # the cut part's hold came back
        h.engine.check_invariants()

    def test_quantity_increase_loses_priority(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        b1 = oid(h.buy("B", "1", "100.00"))
        ev = amend(h, a1, qty="2")
        (e,) = execs(ev)
        assert (e.kind, e.book, e.visible, e.leaves_qty) == (K.REPLACED, FX.REQUEUE, 200_000, 200_000)
        assert h.ids(BUY) == [b1, a1]
        assert h.bal("A", "USD")[1] == 200 * USD + 200 * USD * 500 // 10**6
        h.engine.check_invariants()

    def test_price_change_loses_priority(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        a2 = oid(h.buy("A", "1", "99.00"))
        b1 = oid(h.buy("B", "1", "99.00"))
        ev = amend(h, a1, price="99.00")
        assert execs(ev)[0].info.price == 9_900 and execs(ev)[0].book == FX.REQUEUE
        assert h.book(BUY) == [(9_900, [(a2, 100_000, 100_000), (b1, 100_000, 100_000), (a1, 100_000, 100_000)])]
        assert h.bal("A", "USD")[1] == 2 * (99 * USD + 99 * USD * 500 // 10**6)
        h.engine.check_invariants()

    def test_unchanged_amend_keeps_priority(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        b1 = oid(h.buy("B", "1", "100.00"))
        assert execs(amend(h, a1, qty="1", price="100.00"))[0].kind == K.REPLACED
        assert h.ids(BUY) == [a1, b1]

    def test_amend_of_a_partly_filled_order(self, h: Harness) -> None:
        a1 = oid(h.sell("A", "3", "100.00"))
        h.buy("B", "1", "100.00")
        e = execs(amend(h, a1, qty="2.5"))[0]
        assert (e.status, e.cum_qty, e.leaves_qty, e.info.qty) == (S.PARTIALLY_FILLED, 100_000, 150_000, 250_000)
        assert h.bal("A", "BTC") == (97_50_000_000, 1_50_000_000)

    @pytest.mark.parametrize("qty", ["1", "0.5"])
    def test_amend_at_or_below_filled_is_refused(self, h: Harness, qty: str) -> None:
        a1 = oid(h.sell("A", "3", "100.00"))
        h.buy("B", "1", "100.00")
        r = refusal(amend(h, a1, qty=qty))
        assert r.code == Reject.AMEND_BELOW_FILLED and r.order_id == a1 and r.status == S.PARTIALLY_FILLED
        assert r.text == f"new quantity {h.inst().lots_to_qty(h.lots(qty))} is not above the filled quantity 1.00000"
        assert h.book(SELL) == [(10_000, [(a1, 200_000, 200_000)])]

    def test_crossing_amend_trades(self, h: Harness) -> None:
        s1 = oid(h.sell("B", "1", "101.00"))
        a1 = oid(h.buy("A", "2", "100.00"))
        ev = amend(h, a1, price="101.00")
        assert [e.kind for e in execs(ev, order_id=a1)] == [K.REPLACED, K.FILL]
        assert execs(ev, order_id=a1)[0].book == FX.REMOVE
        assert fills(ev) == [(s1, a1, 10_100, 100_000)]
        assert execs(ev)[-1].book == FX.ADD and h.book(BUY) == [(10_100, [(a1, 100_000, 100_000)])]
        h.engine.check_invariants()

    def test_post_only_amend_that_would_take_is_refused(self, h: Harness) -> None:
        h.sell("B", "1", "101.00")
        a1 = oid(h.buy("A", "1", "100.00", post_only=True))
        r = refusal(amend(h, a1, price="101.00"))
        assert (r.code, r.text) == (Reject.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity at the new price")

    def test_amend_changes_the_clordid(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00", clid="one"))
        amend(h, a1, qty="0.5", clid="two")
        ev = h.do(C.CancelOrder("A", "three", orig_cl_ord_id="two"))
        assert execs(ev)[0].orig_cl_ord_id == "two" and execs(ev)[0].kind == K.CANCELLED
        assert refusal(h.do(C.CancelOrder("A", "four", orig_cl_ord_id="one"))).code == Reject.UNKNOWN_ORDER

    def test_amend_to_a_used_clordid_is_refused(self, h: Harness) -> None:
        h.buy("A", "1", "99.00", clid="taken")
        a2 = oid(h.buy("A", "1", "100.00", clid="mine"))
        r = refusal(amend(h, a2, qty="0.5", clid="taken"))
        assert (r.code, r.text) == (Reject.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID taken")

    def test_amend_needing_more_funds_than_available(self) -> None:
        h = Harness()
        h.account("A", usd="150")
        a1 = oid(h.buy("A", "1", "100.00"))
        r = refusal(amend(h, a1, qty="2"))
        assert (r.code, r.text) == (Reject.INSUFFICIENT_FUNDS, "insufficient USD for the amendment: needs 100 more, available 50")
        assert h.bal("A", "USD") == (50 * USD, 100 * USD)

    def test_amend_of_an_iceberg(self, h: Harness) -> None:
        ice = oid(h.sell("A", "5", "100.00", display_qty=100_000))
        r = refusal(amend(h, ice, qty="1"))
        assert (r.code, r.text) == (Reject.INVALID_DISPLAY_QTY, "the new quantity must exceed the iceberg's display quantity")
        e = execs(amend(h, ice, qty="2"))[0]
        assert (e.book, e.visible) == (FX.UPDATE, 100_000)

    def test_stop_amends(self, h: Harness) -> None:
        h.sell("B", "1", "100.00")
        h.buy("C", "1", "100.00")  # last 100.00
        s = oid(h.buy("A", "1", "110.00", ord_type=STOP_LIMIT, stop="105.00"))
        e = execs(amend(h, s, stop="104.00", price="109.00"))[0]
        assert (e.kind, e.status, e.info.stop_px, e.info.price) == (K.REPLACED, S.WAITING_TRIGGER, 10_400, 10_900)
        r = refusal(amend(h, s, stop="99.00"))
        assert (r.code, r.text) == (Reject.STOP_WOULD_TRIGGER, "the new stop price would trigger at once")
        sm = oid(h.buy("A", "1", ord_type=STOP, stop="105.00"))
        r = refusal(amend(h, sm, price="106.00"))
        assert (r.code, r.text) == (Reject.UNSUPPORTED, "only a limit order's price can be amended")
        e = execs(amend(h, sm, stop="106.00"))[0]
        assert (e.info.stop_px, e.info.price) == (10_600, 11_130)  # the band cap follows the stop
        # the re-armed stops trigger at their new prices, not the old ones
        h.sell("B", "1", "104.00")
        ev = h.buy("C", "1", "104.00")
        assert [x.info.order_id for x in execs(ev, kind=K.TRIGGERED)] == [s]
        h.engine.check_invariants()
        # once triggered, the stop price is fixed
        r = refusal(amend(h, s, stop="120.00"))
        assert (r.code, r.text) == (Reject.INVALID_STOP_PRICE, "the stop price can only be amended before the order triggers")

    def test_amend_refusals(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        r = refusal(h.do(C.AmendOrder("A", "x", order_id=a1, qty=-1)))
        assert (r.code, r.text) == (Reject.BAD_COMMAND, "negative quantity or price")
        r = refusal(amend(h, a1, qty="1001"))
        assert (r.code, r.text) == (Reject.QTY_ABOVE_MAX, "quantity 1001.00000 is outside [0.00001, 1000.00000]")
        r = refusal(amend(h, a1, price="0.01"))
        assert (r.code, r.text) == (Reject.NOTIONAL_BELOW_MIN, "notional 0.01 USD is outside the limits of BTC-USD")
        r = refusal(amend(h, a1, qty="999", price="20000.00"))
        assert r.code == Reject.NOTIONAL_ABOVE_MAX
        r = refusal(h.do(C.AmendOrder("A", "x", order_id=a1, stop_px=5)))
        assert r.code == Reject.INVALID_STOP_PRICE
        assert refusal(amend(h, a1 + 100)).code == Reject.UNKNOWN_ORDER
        assert refusal(amend(h, a1, account="B", qty="0.5")).code == Reject.UNKNOWN_ORDER  # not B's order
        h.ok(C.Halt(SYM))
        r = refusal(amend(h, a1, qty="0.5"))
        assert (r.code, r.text) == (Reject.INSTRUMENT_HALTED, "BTC-USD is halted")
        assert h.book(BUY) == [(10_000, [(a1, 100_000, 100_000)])]


class TestCancel:
    def test_by_order_id(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00", clid="a1"))
        ev = h.do(C.CancelOrder("A", "cx", order_id=a1))
        (e,) = execs(ev)
        assert (e.kind, e.status, e.cl_ord_id, e.orig_cl_ord_id, e.reason, e.book, e.leaves_qty) == (
            K.CANCELLED, S.CANCELLED, "cx", "a1", CancelReason.REQUESTED, FX.REMOVE, 0)
        assert h.bal("A", "USD") == (1_000_000 * USD, 0) and h.book(BUY) == []

    def test_by_clordid(self, h: Harness) -> None:
        a1 = oid(h.sell("A", "1", "100.00", clid="mine"))
        (e,) = execs(h.do(C.CancelOrder("A", "", orig_cl_ord_id="mine", symbol=SYM)))
        assert (e.info.order_id, e.cl_ord_id, e.orig_cl_ord_id) == (a1, "mine", "")
        assert h.bal("A", "BTC") == (100 * BTC, 0)

    def test_cancel_a_waiting_stop(self, h: Harness) -> None:
        s = oid(h.sell("A", "1", ord_type=STOP, stop="90.00"))
        (e,) = execs(h.do(C.CancelOrder("A", "x", order_id=s)))
        assert (e.kind, e.status, e.book) == (K.CANCELLED, S.CANCELLED, FX.NONE)
        h.sell("B", "1", "89.00")
        assert not execs(h.buy("C", "1", "89.00"), order_id=s)  # a cancelled stop never triggers

    def test_refusals(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00", clid="a1"))
        b1 = oid(h.sell("B", "1", "101.00", clid="b1"))
        r = refusal(h.do(C.CancelOrder("nobody", "x", order_id=a1)))
        assert (r.code, r.text) == (Reject.UNKNOWN_ACCOUNT, "unknown account nobody")
        r = refusal(h.do(C.CancelOrder("A", "x", order_id=b1)))  # B's order
        assert (r.code, r.text, r.order_id) == (Reject.UNKNOWN_ORDER, "unknown order", 0)
        r = refusal(h.do(C.CancelOrder("A", "x", orig_cl_ord_id="b1")))
        assert r.code == Reject.UNKNOWN_ORDER
        r = refusal(h.do(C.CancelOrder("A", "x", order_id=a1, symbol="ETH-USD")))
        assert r.code == Reject.UNKNOWN_ORDER
        r = refusal(h.do(C.CancelOrder("A", "x")))
        assert r.code == Reject.UNKNOWN_ORDER
        h.ok(C.CancelOrder("A", "x", order_id=a1))
        r = refusal(h.do(C.CancelOrder("A", "y", order_id=a1)))
        assert (r.code, r.text, r.order_id, r.status) == (Reject.ORDER_NOT_OPEN, "order is already cancelled", a1, S.CANCELLED)
        r = refusal(h.do(C.CancelOrder("A", "y", orig_cl_ord_id="a1")))
        assert r.code == Reject.ORDER_NOT_OPEN and r.info is not None and r.info.order_id == a1
        h.buy("C", "1", "101.00")
        r = refusal(h.do(C.CancelOrder("B", "y", order_id=b1)))
        assert (r.code, r.text) == (Reject.ORDER_NOT_OPEN, "order is already filled")
        r = refusal(h.do(C.CancelOrder("A", "y", order_id=b1)))  # a closed order of someone else
        assert r.code == Reject.UNKNOWN_ORDER

    def test_cancel_while_halted(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        h.ok(C.Halt(SYM))
        assert execs(h.do(C.CancelOrder("A", "x", order_id=a1)))[0].kind == K.CANCELLED


class TestMassCancel:
    @pytest.fixture
    def book(self, h: Harness) -> dict[str, int]:
        ids = {
            "A-buy": oid(h.buy("A", "1", "99.00")),
            "A-sell": oid(h.sell("A", "1", "101.00")),
            "A-eth": oid(h.buy("A", "1", "10.00", symbol="ETH-USD")),
            "B-buy": oid(h.buy("B", "1", "98.00")),
            "C-sell": oid(h.sell("C", "1", "102.00")),
            "C-stop": oid(h.sell("C", "1", ord_type=STOP, stop="90.00")),
        }
        return ids

    def run(self, h: Harness, **kw: object) -> tuple[MassCancelReport, list[int]]:
        ev = h.do(C.MassCancel("mc", **kw))  # type: ignore[arg-type]
        report = only(ev, MassCancelReport)
        cancelled = [e.info.order_id for e in execs(ev, kind=K.CANCELLED)]
        assert all(e.reason == CancelReason.MASS_CANCEL for e in execs(ev))
        assert report.cancelled == len(cancelled) and cancelled == sorted(cancelled)
        h.engine.check_invariants()
        return report, cancelled

    @pytest.mark.parametrize("filters, names", [
        (dict(account="A"), ["A-buy", "A-sell", "A-eth"]),
        (dict(firm="F1"), ["A-buy", "A-sell", "A-eth", "B-buy"]),
        (dict(firm="F2"), ["C-sell", "C-stop"]),
        (dict(symbol="ETH-USD"), ["A-eth"]),
        (dict(side=SELL), ["A-sell", "C-sell", "C-stop"]),
        (dict(account="A", side=BUY), ["A-buy", "A-eth"]),
        (dict(account="A", side=BUY, symbol=SYM), ["A-buy"]),
        (dict(firm="F1", symbol=SYM, side=BUY), ["A-buy", "B-buy"]),
        (dict(account="A", firm="F2"), []),  # A is not of F2: all filters must match
        (dict(accounts="A,C,A"), ["A-buy", "A-sell", "A-eth", "C-sell", "C-stop"]),
        (dict(), ["A-buy", "A-sell", "A-eth", "B-buy", "C-sell", "C-stop"]),
    ])
    def test_filters(self, h: Harness, book: dict[str, int], filters: dict, names: list[str]) -> None:
        report, cancelled = self.run(h, **filters)
        assert report.code == 0
        assert cancelled == sorted(book[n] for n in names)
        left = set(book.values()) - set(cancelled)
        assert left == set(h.engine.orders)

    @pytest.mark.parametrize("filters, code, text", [
        (dict(account="nobody"), Reject.UNKNOWN_ACCOUNT, "unknown account nobody"),
        (dict(firm="NOFIRM"), Reject.UNKNOWN_FIRM, "unknown firm NOFIRM"),
        (dict(account="A", firm="NOFIRM"), Reject.UNKNOWN_FIRM, "unknown firm NOFIRM"),
        (dict(symbol="DOGE-USD"), Reject.UNKNOWN_SYMBOL, "unknown symbol DOGE-USD"),
    ])
    def test_refusals(self, h: Harness, book: dict[str, int], filters: dict, code: int, text: str) -> None:
        report, cancelled = self.run(h, **filters)
        assert (report.code, report.text, cancelled) == (code, text, [])
        assert set(h.engine.orders) == set(book.values())


class TestHalt:
    def test_halt_refuses_new_orders_and_resume_allows_them(self, h: Harness) -> None:
        a1 = oid(h.buy("A", "1", "100.00"))
        ev = h.ok(C.Halt(SYM, reason="volatility"))
        assert only(ev, InstrumentStatus)[2:] == (SYM, True, "volatility")
        assert h.ids(BUY) == [a1]  # the book stays
        from venue.events import OrderRejected
        assert only(h.sell("B", "1", "100.00"), OrderRejected).code == Reject.INSTRUMENT_HALTED
        h.buy("A", "1", "10.00", symbol="ETH-USD")  # other instruments trade on
        ev = h.ok(C.Resume(SYM, "calm"))
        assert only(ev, InstrumentStatus)[2:] == (SYM, False, "calm")
        assert fills(h.sell("B", "1", "100.00")) == [(a1, h.seq, 10_000, 100_000)]

    def test_halt_with_cancelling_the_book(self, h: Harness) -> None:
        ids = [oid(h.buy("A", "1", "100.00")), oid(h.sell("B", "1", "101.00")),
               oid(h.sell("C", "1", ord_type=STOP, stop="90.00"))]
        eth = oid(h.buy("A", "1", "10.00", symbol="ETH-USD"))
        ev = h.ok(C.Halt(SYM, cancel_book=True))
        assert isinstance(ev[0], InstrumentStatus)
        cancelled = execs(ev, kind=K.CANCELLED)
        assert [e.info.order_id for e in cancelled] == ids
        assert {(e.reason, e.text) for e in cancelled} == {(CancelReason.HALT, "BTC-USD halted")}
        assert set(h.engine.orders) == {eth}
        assert h.bal("A", "USD")[1] == 10 * USD + 10 * USD * 500 // 10**6 and h.bal("B", "BTC") == (100 * BTC, 0)
        h.engine.check_invariants()
