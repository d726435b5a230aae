"""FIX 4.4 order entry over real sockets: every message in, every report out, every
reject path. The raw client (simplefix) is used where the test must control the bytes;
the QuickFIX initiator, validating against the stock FIX 4.4 dictionary, where a real FIX
engine should behave as an institution's would. ALPHA's raw session asks for the venue's
extension tags (25005=Y); BETA's does not, and gets plain FIX 4.4."""
from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from tests.sessions.fixclients import logged_on as _logged_on
from tests.sessions.fixclients import QfClient, RawClient, now_fix, order
from venue import commands as C

_ids = itertools.count(1)


def logged_on(port, comp_id, user, password, **kw):
    _VENUE[0].wait_offline(comp_id)
    return _logged_on(port, comp_id, user, password, **kw)


_VENUE: list = [None]


@pytest.fixture(autouse=True)
def _remember_venue(venue):
    _VENUE[0] = venue


def cid(prefix: str = "c") -> str:
    return f"{prefix}{next(_ids)}"


@pytest.fixture
def alpha(venue):
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", ext=True)
    yield c
    c.close()


@pytest.fixture
def beta(venue):
    c = logged_on(venue.oe, "BETA-OE", "beta", "beta-demo")
    yield c
    c.close()


def _cancel_all(venue):
    venue.execute(C.MassCancel(accounts="ALPHA-1,BETA-1"))


@pytest.fixture(autouse=True)
def clean_book(venue):
    _cancel_all(venue)
    yield
    _cancel_all(venue)


def test_new_order_acknowledged_with_every_field(venue, alpha):
    clid = cid()
    alpha.send("D", order(clid, "BTC-USD", "1", "0.5", "40000.00"))
    er = alpha.expect("8", X11=clid)
    assert er[150] == "0" and er[39] == "0"
    assert er[1] == "ALPHA-1" and er[55] == "BTC-USD" and er[54] == "1"
    assert Decimal(er[38]) == Decimal("0.5") and Decimal(er[44]) == Decimal("40000")
    assert er[14] == "0" and Decimal(er[151]) == Decimal("0.5") and er[6] == "0"
    assert er[37].isdigit() and er[17] and er[60]
    assert er[59] == "1" and er[40] == "2"


def test_cross_reports_fills_fees_and_liquidity_to_both_sides(venue, alpha, beta):
    buy, sell = cid("b"), cid("s")
    alpha.send("D", order(buy, "ETH-USD", "1", "2", "3000.00"))
    alpha.expect("8", X11=buy, X150="0")
    beta.send("D", order(sell, "ETH-USD", "2", "0.5", "2999.00"))
    beta.expect("8", X11=sell, X150="0")
    taker = beta.expect("8", X11=sell, X150="F")
    maker = alpha.expect("8", X11=buy, X150="F")
    for er, liq in ((taker, "2"), (maker, "1")):
        assert Decimal(er[31]) == Decimal("3000") and Decimal(er[32]) == Decimal("0.5")
        assert er[13] == "3" and er[479] == "USD" and er[851] == liq
        assert er[527] == taker[527]  # one trade, one trade id (SecondaryExecID)
    # ALPHA asked for the venue's extensions: the trade id also as TrdMatchID, its STP mode;
    # BETA did not: nothing its stock FIX 4.4 dictionary would refuse
    assert maker[880] == taker[527] and maker[25001]
    assert not {880, 25001, 25002} & set(taker)
    assert taker[39] == "2" and Decimal(taker[14]) == Decimal("0.5") and taker[151] == "0"
    assert maker[39] == "1" and Decimal(maker[151]) == Decimal("1.5")
    # demo fees: maker 0.02%, taker 0.05% of 1500 USD
    assert Decimal(maker[12]) == Decimal("0.3") and Decimal(taker[12]) == Decimal("0.75")
    assert taker[17] != maker[17]
    assert Decimal(taker[6]) == Decimal("3000")


def test_market_order_sweeps_within_its_band_and_cancels_the_rest(venue, alpha, beta):
    ask = cid()
    beta.send("D", order(ask, "BTC-USD", "2", "0.1", "50000.00"))
    beta.expect("8", X11=ask, X150="0")
    mkt = cid("m")
    alpha.send("D", order(mkt, "BTC-USD", "1", "0.3", ord_type="1", tif="3"))
    alpha.expect("8", X11=mkt, X150="0")
    fill = alpha.expect("8", X11=mkt, X150="F")
    assert Decimal(fill[32]) == Decimal("0.1")
    rest = alpha.expect("8", X11=mkt, X150="4")
    assert rest[39] == "4" and Decimal(rest[14]) == Decimal("0.1") and rest[151] == "0"


def test_market_order_on_an_empty_side_is_refused(venue, alpha):
    clid = cid()
    alpha.send("D", order(clid, "ETH-BTC", "1", "1", ord_type="1", tif="3"))
    er = alpha.expect("8", X11=clid)
    assert er[39] == "8" and er[25002] == "303" and "liquidity" in er[58]


def test_ioc_fok_post_only_iceberg_and_stop(venue, alpha, beta):
    ask = cid()
    beta.send("D", order(ask, "BTC-USD", "2", "0.2", "51000.00"))
    beta.expect("8", X11=ask, X150="0")
    ioc = cid("ioc")
    alpha.send("D", order(ioc, "BTC-USD", "1", "0.5", "51000.00", tif="3"))
    assert Decimal(alpha.expect("8", X11=ioc, X150="F")[32]) == Decimal("0.2")
    assert alpha.expect("8", X11=ioc, X150="4")[39] == "4"
    fok = cid("fok")
    alpha.send("D", order(fok, "BTC-USD", "1", "0.5", "52000.00", tif="4"))
    alpha.expect("8", X11=fok, X150="0")
    assert alpha.expect("8", X11=fok, X150="4")[14] == "0"
    resting_ask = cid()
    beta.send("D", order(resting_ask, "BTC-USD", "2", "0.1", "52000.00"))
    beta.expect("8", X11=resting_ask, X150="0")
    po = cid("po")
    alpha.send("D", order(po, "BTC-USD", "1", "0.1", "52000.00", extra=[(18, "6")]))
    er = alpha.expect("8", X11=po)
    assert er[39] == "8" and er[25002] == "302"
    ice = cid("ice")
    alpha.send("D", order(ice, "BTC-USD", "1", "1", "45000.00", extra=[(111, "0.1")]))
    er = alpha.expect("8", X11=ice, X150="0")
    assert Decimal(er[111]) == Decimal("0.1")
    stop = cid("stop")
    alpha.send("D", order(stop, "BTC-USD", "1", "0.1", ord_type="3", extra=[(99, "60000.00")]))
    er = alpha.expect("8", X11=stop, X150="0")
    assert er[39] == "0" and Decimal(er[99]) == Decimal("60000")


def test_stop_triggers_on_last_trade(venue, alpha, beta):
    # asks at 53000 and 53100; a buy stop at 53000 triggers when the last trade reaches it
    for px in ("53000.00", "53100.00"):
        c = cid()
        beta.send("D", order(c, "ETH-USD", "2", "0.1", px))
        beta.expect("8", X11=c, X150="0")
    stop = cid("st")
    alpha.send("D", order(stop, "ETH-USD", "1", "0.1", "53100.00", ord_type="4", extra=[(99, "53000.00")]))
    alpha.expect("8", X11=stop, X150="0")
    lift = cid()
    alpha.send("D", order(lift, "ETH-USD", "1", "0.1", "53000.00", tif="3"))
    alpha.expect("8", X11=lift, X150="F")
    triggered = alpha.expect("8", X11=stop, X150="D")  # FIX 4.4 has no Triggered ExecType: Restated
    assert triggered[39] == "0" and triggered[378] == "99" and "triggered" in triggered[58]
    fill = alpha.expect("8", X11=stop, X150="F")
    assert Decimal(fill[31]) == Decimal("53100")


def test_self_trade_decrement_restates_with_partial_decline(venue, alpha):
    """25001=5 (decrement): the resting order is reduced by the overlap, ExecType D with
    ExecRestatementReason 5 (partial decline of OrderQty), its OrderQty the reduced one."""
    maker = cid("dm")
    alpha.send("D", order(maker, "BTC-USD", "2", "0.5", "41000.00"))
    alpha.expect("8", X11=maker, X150="0")
    taker = cid("dt")
    alpha.send("D", order(taker, "BTC-USD", "1", "0.3", "41000.00", extra=[(25001, "5")]))
    assert alpha.expect("8", X11=taker, X150="0")[25001] == "5"  # echoed: the order carried it
    restated = alpha.expect("8", X11=maker, X150="D")
    assert restated[378] == "5" and restated[39] == "0"
    assert Decimal(restated[38]) == Decimal("0.2") and Decimal(restated[151]) == Decimal("0.2")
    cancelled = alpha.expect("8", X11=taker, X150="4")
    assert cancelled[39] == "4" and cancelled[151] == "0" and "self-trade" in cancelled[58]


def test_stp_mode_is_echoed_only_on_the_orders_that_carried_it(venue, beta):
    plain, with_stp = cid("e"), cid("e")
    beta.send("D", order(plain, "BTC-USD", "2", "0.1", "90000.00"))
    assert 25001 not in beta.expect("8", X11=plain, X150="0")
    beta.send("D", order(with_stp, "BTC-USD", "2", "0.1", "90000.00", extra=[(25001, "3")]))
    assert beta.expect("8", X11=with_stp, X150="0")[25001] == "3"
    beta.send("F", [(41, with_stp), (11, cid("ec")), (55, "BTC-USD"), (54, "2"), (60, now_fix())])
    assert beta.expect("8", X41=with_stp, X150="4")[25001] == "3"


def test_an_order_cancelled_by_stp_decrement_keeps_its_order_qty(venue, alpha):
    maker = cid("dm")
    alpha.send("D", order(maker, "BTC-USD", "2", "0.5", "41000.00"))
    alpha.expect("8", X11=maker, X150="0")
    taker = cid("dt")
    alpha.send("D", order(taker, "BTC-USD", "1", "0.3", "41000.00", extra=[(25001, "5")]))
    cancelled = alpha.expect("8", X11=taker, X150="4")
    assert Decimal(cancelled[38]) == Decimal("0.3")  # OrderQty as the order was entered, not 0


def test_cancel_and_cancel_reject(venue, alpha):
    clid = cid()
    alpha.send("D", order(clid, "BTC-USD", "1", "0.1", "30000.00"))
    oid = alpha.expect("8", X11=clid, X150="0")[37]
    cx = cid("cx")
    alpha.send("F", [(41, clid), (11, cx), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    er = alpha.expect("8", X11=cx, X150="4")
    assert er[41] == clid and er[39] == "4" and er[37] == oid
    again = cid("cx")
    alpha.send("F", [(41, clid), (11, again), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    rej = alpha.expect("9", X11=again)
    assert rej[434] == "1" and rej[39] == "4" and "already cancelled" in rej[58]
    unknown = cid("cx")
    alpha.send("F", [(41, "no-such-order"), (11, unknown), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    rej = alpha.expect("9", X11=unknown)
    assert rej[102] == "1" and rej[58] == "unknown order"


def test_replace_quantity_price_and_its_refusals(venue, alpha, beta):
    clid = cid()
    alpha.send("D", order(clid, "BTC-USD", "1", "1", "30000.00"))
    alpha.expect("8", X11=clid, X150="0")
    r1 = cid("r")
    alpha.send("G", [(41, clid), (11, r1), (55, "BTC-USD"), (54, "1"), (38, "0.6"), (40, "2"), (44, "30000.00"),
                     (60, now_fix())])
    er = alpha.expect("8", X11=r1, X150="5")
    assert er[41] == clid and Decimal(er[38]) == Decimal("0.6") and Decimal(er[151]) == Decimal("0.6")
    r2 = cid("r")
    alpha.send("G", [(41, r1), (11, r2), (55, "BTC-USD"), (54, "1"), (38, "0.6"), (40, "2"), (44, "30001.00"),
                     (60, now_fix())])
    assert Decimal(alpha.expect("8", X11=r2, X150="5")[44]) == Decimal("30001")
    # fill part of it, then try to amend below what is filled
    sell = cid()
    beta.send("D", order(sell, "BTC-USD", "2", "0.4", "30001.00"))
    alpha.expect("8", X11=r2, X150="F")
    r3 = cid("r")
    alpha.send("G", [(41, r2), (11, r3), (55, "BTC-USD"), (54, "1"), (38, "0.3"), (40, "2"), (44, "30001.00"),
                     (60, now_fix())])
    rej = alpha.expect("9", X11=r3)
    assert rej[434] == "2" and rej[39] == "1" and "filled" in rej[58]
    r4 = cid("r")
    alpha.send("G", [(41, r2), (11, r4), (55, "BTC-USD"), (54, "1"), (38, "0.6"), (40, "2"), (44, "30001.005"),
                     (60, now_fix())])
    rej = alpha.expect("9", X11=r4)
    assert rej[25002] == "108" and "tick" in rej[58]


def test_a_replace_that_changes_what_the_venue_cannot_change_is_refused(venue, alpha):
    """FIX 4.4: a replace restates the order. Side, OrdType and TimeInForce cannot be
    changed here, and a limit replace must restate its Price: such a replace gets an
    OrderCancelReject saying why, and the order is left as it was."""
    clid = cid()
    alpha.send("D", order(clid, "BTC-USD", "1", "0.5", "30000.00", extra=[(18, "6")]))
    oid = alpha.expect("8", X11=clid, X150="0")[37]
    base = [(41, clid), (55, "BTC-USD"), (60, now_fix())]
    for fields, why in (
        ([(54, "2"), (38, "0.5"), (40, "2"), (44, "30000.00")], "Side"),
        ([(54, "1"), (38, "0.5"), (40, "1")], "OrdType"),
        ([(54, "1"), (38, "0.5"), (40, "2"), (44, "30000.00"), (59, "3")], "TimeInForce"),
        ([(54, "1"), (38, "0.5"), (40, "2"), (44, "30000.00"), (18, "1")], "ExecInst"),
        ([(54, "1"), (38, "0.6"), (40, "2")], "Price(44) is required"),
        ([(54, "1"), (40, "2"), (44, "30000.00")], "OrderQty(38) is required"),
    ):
        r = cid("r")
        alpha.send("G", base + [(11, r)] + fields)
        rej = alpha.expect("9", X11=r)
        assert rej[434] == "2" and rej[102] == "99" and why in rej[58], rej
        assert rej[41] == clid and rej[39] in ("0", "8")
        if why in ("Side", "OrdType", "TimeInForce", "ExecInst"):
            assert rej[37] == oid and rej[39] == "0"  # the order, still new
    alpha.send("H", [(11, clid), (55, "BTC-USD"), (54, "1"), (790, "after")])
    st = alpha.expect("8", X150="I", X790="after")
    assert st[39] == "0" and st[54] == "1" and Decimal(st[38]) == Decimal("0.5") and Decimal(st[44]) == Decimal("30000")
    assert st[59] == "1" and st[40] == "2" and st[18] == "6"
    # restating what it has (TimeInForce and ExecInst included) and changing the price is fine
    ok = cid("r")
    alpha.send("G", base + [(11, ok), (54, "1"), (38, "0.5"), (40, "2"), (44, "29999.00"), (59, "1"), (18, "6")])
    er = alpha.expect("8", X11=ok, X150="5")
    assert er[37] == oid and Decimal(er[44]) == Decimal("29999")


def test_a_triggered_stop_limit_may_be_replaced_restating_its_stop_price(venue, alpha, beta):
    for px in ("54000.00", "54100.00"):
        c = cid()
        beta.send("D", order(c, "ETH-USD", "2", "0.1", px))
        beta.expect("8", X11=c, X150="0")
    stop = cid("st")
    alpha.send("D", order(stop, "ETH-USD", "1", "0.2", "54050.00", ord_type="4", extra=[(99, "54000.00")]))
    alpha.expect("8", X11=stop, X150="0")
    lift = cid()
    alpha.send("D", order(lift, "ETH-USD", "1", "0.1", "54000.00", tif="3"))
    alpha.expect("8", X11=lift, X150="F")
    alpha.expect("8", X11=stop, X150="D")  # triggered: rests at 54050 (the 54100 ask is above it)
    r = cid("r")
    alpha.send("G", [(41, stop), (11, r), (55, "ETH-USD"), (54, "1"), (38, "0.3"), (40, "4"), (44, "54050.00"),
                     (99, "54000.00"), (60, now_fix())])
    er = alpha.expect("8", X11=r, X150="5")
    assert Decimal(er[38]) == Decimal("0.3") and Decimal(er[99]) == Decimal("54000")


def test_order_status_known_and_unknown(venue, alpha):
    clid = cid()
    alpha.send("D", order(clid, "ETH-USD", "2", "0.25", "9000.00"))
    oid = alpha.expect("8", X11=clid, X150="0")[37]
    alpha.send("H", [(11, clid), (55, "ETH-USD"), (54, "2"), (790, "q1")])
    st = alpha.expect("8", X150="I", X11=clid)
    assert st[39] == "0" and st[37] == oid and Decimal(st[151]) == Decimal("0.25") and st[790] == "q1"
    alpha.send("H", [(11, "nope"), (55, "ETH-USD"), (54, "2")])
    st = alpha.expect("8", X150="I", X11="nope")
    assert st[39] == "8" and st[103] == "5"


def test_mass_cancel_and_mass_status(venue, alpha):
    ids = [cid() for _ in range(3)]
    for i, c in enumerate(ids):
        alpha.send("D", order(c, "BTC-USD" if i < 2 else "ETH-USD", "1", "0.1", "20000.00"))
        alpha.expect("8", X11=c, X150="0")
    alpha.send("AF", [(584, "ms1"), (585, "7")])
    reports = [alpha.expect("8", X150="I", X584="ms1") for _ in range(3)]
    assert {r[11] for r in reports} == set(ids) and all(r[911] == "3" for r in reports)
    assert sum(1 for r in reports if r.get(912) == "Y") == 1
    mc = cid("mc")
    alpha.send("q", [(11, mc), (530, "1"), (55, "BTC-USD"), (60, now_fix())])
    cancels = [alpha.expect("8", X150="4") for _ in range(2)]
    assert {c[11] for c in cancels} == set(ids[:2])
    rep = alpha.expect("r", X11=mc)
    assert rep[531] == "1" and rep[533] == "2"
    alpha.send("AF", [(584, "ms2"), (585, "7")])
    st = alpha.expect("8", X150="I", X584="ms2")
    assert st[11] == ids[2] and st[911] == "1" and st[912] == "Y"
    alpha.send("q", [(11, cid("mc")), (530, "3"), (60, now_fix())])
    assert alpha.expect("r")[531] == "0"


def test_mass_cancel_and_mass_status_name_an_account_of_the_session_only(venue, alpha):
    ids = [cid() for _ in range(2)]
    for c in ids:
        alpha.send("D", order(c, "BTC-USD", "1", "0.1", "20000.00"))
        alpha.expect("8", X11=c, X150="0")
    alpha.send("AF", [(584, "acc1"), (585, "7"), (1, "ALPHA-1")])
    reports = [alpha.expect("8", X150="I", X584="acc1") for _ in ids]
    assert {r[11] for r in reports} == set(ids) and all(r[1] == "ALPHA-1" for r in reports)
    # another firm's account: refused, not "no orders"
    alpha.send("AF", [(584, "acc2"), (585, "7"), (1, "BETA-1")])
    j = alpha.expect("j", X379="acc2")
    assert j[372] == "AF" and j[380] == "6" and "BETA-1" in j[58]
    alpha.send("AF", [(584, "acc3"), (585, "1")])  # by security, without one
    j = alpha.expect("j", X379="acc3")
    assert j[380] == "5" and "Symbol" in j[58]
    # Account on an OrderMassCancelRequest is the venue's addition to FIX 4.4 (declared, not a session Reject)
    theirs = cid("mc")
    alpha.send("q", [(11, theirs), (530, "7"), (1, "BETA-1"), (60, now_fix())])
    r = alpha.expect("r", X11=theirs)
    assert r[531] == "0" and "BETA-1" in r[58]
    mine = cid("mc")
    alpha.send("q", [(11, mine), (530, "7"), (1, "ALPHA-1"), (60, now_fix())])
    assert {alpha.expect("8", X150="4")[11] for _ in ids} == set(ids)
    r = alpha.expect("r", X11=mine)
    assert r[531] == "7" and r[533] == "2"
    # nothing open: one report saying so, made of what the request named
    alpha.send("AF", [(584, "acc4"), (585, "7"), (1, "ALPHA-1")])
    empty = alpha.expect("8", X150="I", X584="acc4")
    assert empty[911] == "0" and empty[912] == "Y" and empty[37] == "NONE" and empty[1] == "ALPHA-1"
    assert empty[54] == "7" and empty[103] == "5" and 11 not in empty and 55 not in empty


@pytest.mark.parametrize("fields,code,ord_rej", [
    (order("x", "DOGE-USD", "1", "1", "1.00"), None, "1"),
    (order("x", "BTC-USD", "1", "0.000001", "50000.00"), "109", "13"),
    (order("x", "BTC-USD", "1", "1", "50000.001"), "108", "99"),
    (order("x", "BTC-USD", "1", "999999", "50000.00"), "111", "13"),
    (order("x", "BTC-USD", "1", "500", "50000.00"), "113", "3"),   # 25M USD notional > max
    (order("x", "BTC-USD", "1", "150", "50000.00"), "201", "3"),   # 7.5M USD > 1M balance
    (order("x", "BTC-USD", "1", "1", "50000.00", extra=[(1, "BETA-1")]), "209", "15"),
    (order("x", "BTC-USD", "1", "1", "50000.00", tif="6"), "115", "99"),
    (order("x", "BTC-USD", "1", "1", "50000.00", extra=[(99, "1.00")]), "117", "99"),
])
def test_refused_orders_say_why(venue, alpha, fields, code, ord_rej):
    clid = cid("bad")
    fields = [(11, clid) if t == 11 else (t, v) for t, v in fields]
    alpha.send("D", fields)
    er = alpha.expect("8", X11=clid)
    assert er[39] == "8" and er[150] == "8" and er[103] == ord_rej and er[58]
    if code:
        assert er[25002] == code


def test_duplicate_clordid_and_halted_instrument(venue, alpha):
    clid = cid()
    alpha.send("D", order(clid, "BTC-USD", "1", "0.1", "10000.00"))
    alpha.expect("8", X11=clid, X150="0")
    alpha.send("D", order(clid, "BTC-USD", "1", "0.1", "10000.00"))
    er = alpha.expect("8", X11=clid, X150="8")
    assert er[103] == "6" and "duplicate" in er[58]
    venue.execute(C.Halt("ETH-BTC", reason="test"))
    try:
        h = cid()
        alpha.send("D", order(h, "ETH-BTC", "1", "1", "0.05000"))
        er = alpha.expect("8", X11=h)
        assert er[39] == "8" and er[103] == "2" and "halted" in er[58]
    finally:
        venue.execute(C.Resume("ETH-BTC"))
    ok = cid()
    alpha.send("D", order(ok, "ETH-BTC", "1", "1", "0.05000"))
    assert alpha.expect("8", X11=ok)[150] == "0"


def test_malformed_messages_get_a_session_reject(venue, alpha):
    alpha.send("D", [(11, cid()), (55, "BTC-USD"), (38, "1"), (40, "2"), (44, "1.00"), (60, now_fix())])  # no Side
    rej = alpha.expect("3")
    assert rej[373] == "1" and rej[371] == "54"
    alpha.send("D", order(cid(), "BTC-USD", "Z", "1", "1.00"))  # not a Side at all
    rej = alpha.expect("3")
    assert rej[373] == "5" and rej[371] == "54"
    cross_short = cid()
    alpha.send("D", order(cross_short, "BTC-USD", "9", "1", "1.00"))  # valid FIX, not a venue side
    er = alpha.expect("8", X11=cross_short)
    assert er[39] == "8" and er[25002] == "103" and "Side" in er[58]
    alpha.send("D", order(cid(), "BTC-USD", "1", "lots", "1.00"))  # not a number
    assert alpha.expect("3")[373] == "6"


def test_unsupported_message_type_gets_business_reject(venue, alpha):
    alpha.send("R", [(131, "qr1"), (146, 1), (55, "BTC-USD")])  # QuoteRequest: in FIX 4.4, not supported here
    rej = alpha.expect("j")
    assert rej[372] == "R" and rej[380] == "3"


def test_session_sees_only_its_own_firms_accounts(venue, alpha, beta):
    theirs = cid()
    beta.send("D", order(theirs, "BTC-USD", "1", "0.1", "10000.00"))
    oid = beta.expect("8", X11=theirs, X150="0")[37]
    c = cid("cx")
    alpha.send("F", [(41, theirs), (37, oid), (11, c), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    assert alpha.expect("9", X11=c)[102] == "1"  # not ALPHA's: unknown
    c2 = cid("cx")
    alpha.send("F", [(41, theirs), (11, c2), (1, "BETA-1"), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    assert alpha.expect("9", X11=c2)[25002] == "209"
    alpha.send("H", [(11, theirs), (55, "BTC-USD"), (54, "1"), (1, "BETA-1")])
    assert alpha.expect("8", X150="I")[39] == "8"


def test_quickfix_initiator_with_the_stock_dictionary_trades_like_an_institution(venue, tmp_path):
    """Two QuickFIX initiators validating against QuickFIX's own FIX44.xml: every report the
    venue sends them (acks, fills on both sides, replace, status, cancel, cancel reject,
    order rejects, self-trade prevention, mass cancel, mass status with and without orders,
    business reject) reaches the application, and neither engine ever refuses one."""
    for comp in ("ALPHA-OE", "BETA-OE"):
        venue.wait_offline(comp)
    qa = QfClient(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", str(tmp_path / "qa"),
                  stock=True)
    qb = QfClient(venue.oe, "BETA-OE", "beta", "beta-demo", str(tmp_path / "qb"),
                  stock=True)
    try:
        assert qa.wait_logon() and qb.wait_logon()
        # a resting buy, half filled by BETA: fills on both sides with fee, liquidity, trade id
        buy, sell = cid("qb"), cid("qs")
        qa.send("D", order(buy, "ETH-USD", "1", "1.5", "2500.00"))
        oid = qa.expect("8", X11=buy, X150="0")[37]
        qb.send("D", order(sell, "ETH-USD", "2", "0.5", "2500.00"))
        qb.expect("8", X11=sell, X150="0")
        taker = qb.expect("8", X11=sell, X150="F")
        maker = qa.expect("8", X11=buy, X150="F")
        assert taker[851] == "2" and maker[851] == "1" and taker[527] == maker[527]
        assert taker[39] == "2" and maker[39] == "1" and Decimal(maker[151]) == Decimal("1")
        assert Decimal(maker[12]) > 0 and maker[13] == "3" and maker[479] == "USD"
        # replace, status
        rep = buy + "r"
        qa.send("G", [(41, buy), (11, rep), (55, "ETH-USD"), (54, "1"), (38, "1.2"), (40, "2"),
                      (44, "2500.00"), (60, now_fix())])
        er = qa.expect("8", X11=rep, X150="5")
        assert er[37] == oid and er[41] == buy and Decimal(er[151]) == Decimal("0.7")
        bad = cid("qg")
        qa.send("G", [(41, rep), (11, bad), (55, "ETH-USD"), (54, "2"), (38, "1.2"), (40, "2"),
                      (44, "2500.00"), (60, now_fix())])
        rej = qa.expect("9", X11=bad)
        assert rej[434] == "2" and rej[102] == "99" and rej[39] == "1" and "Side" in rej[58]
        qa.send("H", [(11, rep), (55, "ETH-USD"), (54, "1"), (790, "st1")])
        st = qa.expect("8", X150="I", X790="st1")
        assert st[39] == "1" and Decimal(st[14]) == Decimal("0.5") and Decimal(st[151]) == Decimal("0.7")
        qa.send("H", [(11, "no-such"), (55, "ETH-USD"), (54, "1"), (790, "st2")])
        unknown = qa.expect("8", X150="I", X790="st2")
        assert unknown[39] == "8" and unknown[103] == "5"
        # mass status: the one open order, then (after mass cancel) none
        qa.send("AF", [(584, "qms1"), (585, "7")])
        st = qa.expect("8", X150="I", X584="qms1")
        assert st[11] == rep and st[911] == "1" and st[912] == "Y"
        # a self-trade: the account's prevention mode cancels the incoming order
        stp = cid("qstp")
        qa.send("D", order(stp, "ETH-USD", "2", "0.1", "2500.00"))
        qa.expect("8", X11=stp, X150="0")
        cx = qa.expect("8", X11=stp, X150="4")
        assert "self-trade" in cx[58] and Decimal(cx[38]) == Decimal("0.1")
        # order rejects: unknown symbol, off-tick price, not our account
        for fields, rej in ((order(cid("qx"), "DOGE-USD", "1", "1", "1.00"), "1"),
                            (order(cid("qx"), "ETH-USD", "1", "1", "2500.001"), "99"),
                            (order(cid("qx"), "ETH-USD", "1", "1", "2500.00", extra=[(1, "BETA-1")]), "15")):
            qa.send("D", fields)
            er = qa.expect("8", X11=fields[0][1], X150="8")
            assert er[39] == "8" and er[103] == rej and er[58]
        # cancel, then a cancel reject for the same order and one for an unknown order
        cxl = cid("qc")
        qa.send("F", [(41, rep), (11, cxl), (55, "ETH-USD"), (54, "1"), (60, now_fix())])
        assert qa.expect("8", X11=cxl, X150="4")[39] == "4"
        again = cid("qc")
        qa.send("F", [(41, rep), (11, again), (55, "ETH-USD"), (54, "1"), (60, now_fix())])
        rej = qa.expect("9", X11=again)
        assert rej[434] == "1" and rej[39] == "4" and rej[102] == "0"
        nope = cid("qc")
        qa.send("G", [(41, "no-such"), (11, nope), (55, "ETH-USD"), (54, "1"), (38, "1"), (40, "2"),
                      (44, "2500.00"), (60, now_fix())])
        rej = qa.expect("9", X11=nope)
        assert rej[434] == "2" and rej[102] == "1"
        # mass cancel (and its report), mass status with nothing open
        rest = cid("qr")
        qa.send("D", order(rest, "BTC-USD", "1", "0.1", "20000.00"))
        qa.expect("8", X11=rest, X150="0")
        mc = cid("qmc")
        qa.send("q", [(11, mc), (530, "7"), (60, now_fix())])
        assert qa.expect("8", X11=rest, X150="4")[39] == "4"
        r = qa.expect("r", X11=mc)
        assert r[531] == "7" and r[533] == "1"
        qa.send("q", [(11, cid("qmc")), (530, "1"), (60, now_fix())])  # type 1 without a Symbol
        assert qa.expect("r")[531] == "0"
        qa.send("AF", [(584, "qms2"), (585, "7")])
        empty = qa.expect("8", X150="I", X584="qms2")
        assert empty[911] == "0" and empty[912] == "Y" and empty[37] == "NONE" and 11 not in empty
        # a message type the venue does not support
        qa.send("c", [(320, "sd1"), (321, "3")])  # SecurityDefinitionRequest
        j = qa.expect("j")
        assert j[380] == "3" and j[372] == "c"
        assert qa.rejects_sent == [] and qb.rejects_sent == [], (qa.rejects_sent, qb.rejects_sent)
    finally:
        qa.stop()
        qb.stop()
