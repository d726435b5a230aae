"""Reduce-only orders are enforced when they fill, not only when they enter: one command
that fills a plain order and then a reduce-only one of the same account must not flip
the position through the reduce-only order; and a reduce-only order never borrows."""
from __future__ import annotations

from typing import Any

import pytest

from venue import commands as C
from venue.types import IOC, MARKET, SELL, STOP, CancelReason, ExecKind, Reject

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from tests.venue.harness import execs, rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m2")
    h.buy("m2", "0.5", "100000.01", tif=IOC)  # long 0.5 BTC
    h.check()
    return h


def net(h: RiskHarness, account: str = "m2") -> int:
    return h.margin.net_of(h.engine.ledger.accounts[account], "BTC")


def fills_of(events: list[Any], order_id: int) -> int:
    return sum(e.last_qty for e in execs(events, ExecKind.FILL, order_id=order_id))


def test_a_reduce_only_order_never_borrows(h: RiskHarness) -> None:
    """The audit's order of events: the plain sell holds the coins, so the reduce-only
    sell could only be paid with borrowed ones."""
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD", side=SELL))
    execs(h.sell("m2", "0.5", "105000"))
    r = rejected(h.sell("m2", "0.5", "110000", reduce_only=True))
    assert r.code == Reject.REDUCE_ONLY
    assert r.text == "a reduce-only order may not borrow: it needs 0.5 BTC, the account has 0 available"
    assert h.engine.ledger.loan("m2", "BTC") == 0
    h.check()


def test_a_reduce_only_maker_is_cancelled_when_a_plain_fill_used_up_the_position(h: RiskHarness) -> None:
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD", side=SELL))
    ro = execs(h.sell("m2", "0.5", "110000", reduce_only=True))[0].info.order_id  # holds the 0.5 BTC
    plain = execs(h.sell("m2", "0.5", "105000"))[0].info.order_id  # borrows: it may go short
    assert net(h) == h.atoms("BTC", "0.5")
    ev = h.buy(TAKER, "1", "110000", tif=IOC)
    assert fills_of(ev, plain) == h.lots("0.5") and fills_of(ev, ro) == 0
    (c,) = execs(ev, ExecKind.CANCELLED, order_id=ro)
    assert c.reason == CancelReason.REDUCE_ONLY and c.book  # it left the book
    assert net(h) == 0  # flat: the reduce-only order did not open a short
    assert h.engine.markets["BTC-USD"].book.best_ask() is None
    h.check()


def test_a_reduce_only_maker_fills_only_what_is_left_to_reduce(h: RiskHarness) -> None:
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD", side=SELL))
    ro = execs(h.sell("m2", "0.5", "110000", reduce_only=True))[0].info.order_id
    plain = execs(h.sell("m2", "0.3", "105000"))[0].info.order_id
    ev = h.buy(TAKER, "1", "110000", tif=IOC)
    assert fills_of(ev, plain) == h.lots("0.3") and fills_of(ev, ro) == h.lots("0.2")
    (c,) = execs(ev, ExecKind.CANCELLED, order_id=ro)
    assert c.reason == CancelReason.REDUCE_ONLY
    assert net(h) == 0
    h.check()


def test_a_triggered_reduce_only_stop_cannot_flip_the_position(h: RiskHarness) -> None:
    """A plain sell fills, its trade triggers the account's reduce-only stop in the same
    command: the stop finds nothing left to reduce and is cancelled, not filled short."""
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD"))
    execs(h.buy(LP, "5", "96000"))  # a bid for the stop to hit
    stop = execs(h.sell("m2", "0.5", ord_type=STOP, stop="99500", reduce_only=True))[0].info.order_id
    plain = execs(h.sell("m2", "0.5", "99500"))[0].info.order_id  # borrows: the stop holds the coins
    ev = h.buy(TAKER, "0.5", "99500", tif=IOC)
    assert fills_of(ev, plain) == h.lots("0.5")
    assert execs(ev, ExecKind.TRIGGERED, order_id=stop)
    assert fills_of(ev, stop) == 0
    (c,) = execs(ev, ExecKind.CANCELLED, order_id=stop)
    assert c.reason == CancelReason.REDUCE_ONLY
    assert net(h) == 0
    h.check()


def test_a_reduce_only_taker_closes_and_a_plain_maker_is_untouched(h: RiskHarness) -> None:
    """The hook changes nothing for orders that may fill: a reduce-only market sell of the
    whole long fills in full against the book."""
    ev = h.sell("m2", "0.5", ord_type=MARKET, reduce_only=True)
    (f,) = [e for e in execs(ev, ExecKind.FILL) if e.info.account == "m2"]
    assert f.last_qty == h.lots("0.5") and net(h) == 0
    assert rejected(h.buy("m2", "0.1", "100000.01", reduce_only=True)).code == Reject.REDUCE_ONLY
    h.check()


def test_the_hook_survives_a_snapshot(h: RiskHarness) -> None:
    from venue.factory import build_engine
    from venue.snapshot import dump_engine, load_engine

    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD", side=SELL))
    ro = execs(h.sell("m2", "0.5", "110000", reduce_only=True))[0].info.order_id
    execs(h.sell("m2", "0.5", "105000"))
    h.engine = load_engine(dump_engine(h.engine), build_engine())
    ev = h.buy(TAKER, "1", "110000", tif=IOC)
    assert fills_of(ev, ro) == 0 and net(h) == 0
    h.check()


def test_a_cash_accounts_reduce_only_order_short_of_coins_is_refused_as_any_order(h: RiskHarness) -> None:
    h.account("c1", usd="0", btc="1", eth="0")
    execs(h.sell("c1", "1", "120000"))  # holds the coin
    r = rejected(h.sell("c1", "1", "130000", reduce_only=True))
    assert r.code == Reject.INSUFFICIENT_FUNDS  # not a reduce-only refusal: a cash account never borrows
    h.check()
