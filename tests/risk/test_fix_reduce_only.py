"""Reduce-only orders over FIX: ExecInst(18) with E (FIX 4.4's "do not increase") is a
reduce-only order, alone or with 6 (post-only); the reports echo it; one that would
increase the position (or flip it) is refused with OrdRejReason 3 and a Text naming the
position; a replace cannot add or drop it."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import pytest

from tests.sessions.conftest import Running, start_venue, stop_venue
from tests.sessions.fixclients import RawClient, logged_on, now_fix, order

D = Decimal


@pytest.fixture(scope="module")
def venue(tmp_path_factory: Any) -> Iterator[Running]:
    r = start_venue(str(tmp_path_factory.mktemp("reduce_only")))
    yield r
    stop_venue(r)


@pytest.fixture(scope="module")
def alpha(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", ext=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def beta(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "BETA-OE", "beta", "beta-demo")
    yield c
    c.close()


def margin_order(clid: str, side: str, qty: str, px: str, inst: str = "", tif: str = "1") -> list:
    return order(clid, "BTC-USD", side, qty, px, tif=tif, extra=[(1, "ALPHA-M")] + ([(18, inst)] if inst else []))


def test_a_reduce_only_order_reduces_and_no_more(venue, alpha, beta):
    beta.send("D", order("ask", "BTC-USD", "2", "1", "100000.00"))
    beta.expect("8", X11="ask", X150="0")
    beta.send("D", order("bid", "BTC-USD", "1", "1", "99000.00"))
    beta.expect("8", X11="bid", X150="0")
    alpha.send("D", margin_order("long", "1", "0.3", "100000.00", tif="3"))
    alpha.expect("8", X11="long", X150="F")
    # reduce-only buys would increase a long: refused, as would a sell beyond the position
    alpha.send("D", margin_order("ro-buy", "1", "0.1", "99000.00", "E"))
    er = alpha.expect("8", X11="ro-buy", X150="8")
    assert er[103] == "3" and er[25002] == "208" and "reduce-only buy" in er[58] and "short position" in er[58]
    alpha.send("D", margin_order("ro-big", "2", "0.4", "101000.00", "E"))
    er = alpha.expect("8", X11="ro-big", X150="8")
    assert "exceeds the long position left to reduce" in er[58] and "0.3" in er[58]
    # within it: accepted, echoed, and it fills
    alpha.send("D", margin_order("ro-ok", "2", "0.2", "99000.00", "E", tif="3"))
    er = alpha.expect("8", X11="ro-ok", X150="F")
    assert er[18] == "E" and D(er[32]) == D("0.2")
    pos = venue.query(lambda e: e.extensions["margin"].net_of(e.ledger.accounts["ALPHA-M"], "BTC"))
    assert pos == 10_000_000  # 0.1 BTC left


def test_post_only_and_reduce_only_together(venue, alpha):
    alpha.send("D", margin_order("po-ro", "2", "0.1", "105000.00", "6 E"))
    er = alpha.expect("8", X11="po-ro", X150="0")
    assert er[18] == "6 E"
    # a second one would sell more than the position left (the first counts)
    alpha.send("D", margin_order("po-ro2", "2", "0.05", "106000.00", "E 6"))
    assert "reduce-only sell" in alpha.expect("8", X11="po-ro2", X150="8")[58]
    alpha.send("H", [(11, "po-ro"), (55, "BTC-USD"), (54, "2"), (1, "ALPHA-M"), (790, "st")])
    assert alpha.expect("8", X150="I", X790="st")[18] == "6 E"
    # a replace restates ExecInst: dropping E (or 6) is refused, keeping both may change the price
    base = [(41, "po-ro"), (1, "ALPHA-M"), (55, "BTC-USD"), (54, "2"), (38, "0.1"), (40, "2"), (60, now_fix())]
    alpha.send("G", base + [(11, "r1"), (44, "104000.00"), (18, "6")])
    rej = alpha.expect("9", X11="r1")
    assert rej[434] == "2" and "reduce-only" in rej[58]
    alpha.send("G", base + [(11, "r2"), (44, "104000.00"), (18, "6 E")])
    er = alpha.expect("8", X11="r2", X150="5")
    assert er[18] == "6 E" and D(er[44]) == D("104000")


def test_a_cash_account_may_send_reduce_only_orders(venue, alpha):
    alpha.send("D", order("cash-ro", "BTC-USD", "2", "1", "110000.00", extra=[(18, "E")]))  # ALPHA-1 holds 100 BTC
    assert alpha.expect("8", X11="cash-ro", X150="0")[18] == "E"
    alpha.send("D", order("cash-ro2", "BTC-USD", "1", "1", "90000.00", extra=[(18, "E")]))  # no short to reduce
    assert alpha.expect("8", X11="cash-ro2", X150="8")[103] == "3"
