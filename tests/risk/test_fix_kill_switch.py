"""A firm's risk session sends the kill switch over FIX: PartyActionRequest (DH, halt
trading or reinstate) for an account, the firm or a FIX session, answered with a
PartyActionReport (DI) once the engine has done it; the orders it cancels reach their
order-entry session, new orders are refused until it is lifted. Another firm's party,
an unknown one, a suspension and an order-entry session asking are refused."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import quickfix as fix

from tests.sessions.conftest import Running, start_venue, stop_venue
from tests.sessions.fixclients import QfClient, RawClient, logged_on, now_fix, order


@pytest.fixture(scope="module")
def venue(tmp_path_factory: Any) -> Iterator[Running]:
    r = start_venue(str(tmp_path_factory.mktemp("kill")))  # the demo's data: ALPHA-RISK is ALPHA's risk session
    yield r
    stop_venue(r)


@pytest.fixture(scope="module")
def alpha(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    yield c
    c.close()


@pytest.fixture(scope="module")
def risk(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "ALPHA-RISK", "alpharisk", "alpharisk-demo")
    yield c
    c.close()
    venue.wait_offline("ALPHA-RISK")


def party_action(req: str, action: int, party: str | None, role: int | None, text: str = "") -> list:
    f: list = [(2328, req), (2329, action)]
    if party is not None:
        f += [(453, 1), (448, party)] + ([(452, role)] if role is not None else [])
    f.append((60, now_fix()))
    return f + ([(58, text)] if text else [])


def rest(c: RawClient, clid: str, account: str = "ALPHA-1", px: str = "100.00") -> None:
    c.send("D", order(clid, "BTC-USD", "1", "0.01", px, extra=[(1, account)]))
    c.expect("8", X11=clid, X150="0")


def test_halt_trading_for_the_firm_cancels_its_orders_and_refuses_new_ones(venue, alpha, risk):
    rest(alpha, "k1")
    rest(alpha, "k2", "ALPHA-M")
    risk.send("DH", party_action("h1", 1, "ALPHA", 1, "runaway algo"))
    di = risk.expect("DI", X2328="h1")
    assert (di[2329], di[2332], di[448], di[452], di[447]) == ("1", "1", "ALPHA", "1", "D")
    assert 2333 not in di and 2331 in di and "kill switch active for firm ALPHA" in di[58]
    assert "2 open orders cancelled" in di[58]
    for clid in ("k1", "k2"):
        er = alpha.expect("8", X11=clid, X150="4")
        assert "runaway algo" in er[58]
    alpha.send("D", order("k3", "BTC-USD", "1", "0.01", "100.00"))
    er = alpha.expect("8", X11="k3", X150="8")
    assert "kill switch active for firm ALPHA" in er[58]
    risk.send("DH", party_action("h2", 2, "ALPHA", 1))
    di = risk.expect("DI", X2328="h2")
    assert (di[2329], di[2332]) == ("2", "1") and "lifted" in di[58]
    rest(alpha, "k4")


def test_an_account_and_a_session(venue, alpha, risk):
    risk.send("DH", party_action("a1", 1, "ALPHA-M", 24))
    assert risk.expect("DI", X2328="a1")[2332] == "1"
    alpha.send("D", order("a2", "BTC-USD", "1", "0.01", "100.00", extra=[(1, "ALPHA-M")]))
    assert "account ALPHA-M" in alpha.expect("8", X11="a2", X150="8")[58]
    rest(alpha, "a3")  # ALPHA-1 still trades
    risk.send("DH", party_action("a4", 2, "ALPHA-M", 24))
    assert risk.expect("DI", X2328="a4")[2332] == "1"
    risk.send("DH", party_action("s1", 1, "ALPHA-OE", 55))
    di = risk.expect("DI", X2328="s1")
    assert (di[2332], di[452]) == ("1", "55") and "session ALPHA-OE" in di[58]
    alpha.expect("8", X11="a3", X150="4")  # the session's orders went
    alpha.send("D", order("s2", "BTC-USD", "1", "0.01", "100.00"))
    assert "session ALPHA-OE" in alpha.expect("8", X11="s2", X150="8")[58]
    risk.send("DH", party_action("s3", 2, "ALPHA-OE", 55))
    assert risk.expect("DI", X2328="s3")[2332] == "1"
    rest(alpha, "s4")


def test_refusals(venue, risk):
    for req, action, party, role, reason, why in (
        ("r1", 1, "BETA", 1, "98", "may not act for firm BETA"),  # another firm
        ("r2", 1, "BETA-1", 24, "98", "may not act for firm BETA"),
        ("r3", 1, "NOPE-9", 24, "0", "unknown account"),
        ("r4", 0, "ALPHA", 1, "99", "PartyActionType 0 is not supported"),  # suspend
        ("r5", 1, "ALPHA", 3, "0", "name one party"),  # a client id: not a party the venue kills
        ("r6", 1, None, None, "0", "name one party"),
        ("r7", 1, "ALPHA", None, "0", "name one party"),
    ):
        risk.send("DH", party_action(req, action, party, role))
        di = risk.expect("DI", X2328=req)
        assert (di[2332], di[2333]) == ("2", reason) and why in di[58], di


def test_an_order_entry_session_may_not_send_it(venue, alpha):
    alpha.send("DH", party_action("oe", 1, "ALPHA", 1))
    rej = alpha.expect("j", X372="DH")
    assert rej[380] == "6" and "order-entry sessions cannot send PartyActionRequest" in rej[58]
    rest(alpha, "oe2")  # nothing was killed


def test_a_quickfix_initiator_with_the_venues_dictionary(venue, risk, tmp_path):
    risk.close()
    venue.wait_offline("ALPHA-RISK")
    qf = QfClient(venue.oe, "ALPHA-RISK", "alpharisk", "alpharisk-demo", str(tmp_path / "qf"))
    try:
        assert qf.wait_logon()
        fix.Session.sendToTarget(fix_party_action("q1", "1", "ALPHA-M", "24"), qf.sid)
        assert qf.expect("DI", X2328="q1")[2332] == "1"
        fix.Session.sendToTarget(fix_party_action("q2", "2", "ALPHA-M", "24"), qf.sid)
        assert qf.expect("DI", X2328="q2")[2332] == "1"
        assert qf.rejects_sent == []
    finally:
        qf.stop()


def fix_party_action(req: str, action: str, party: str, role: str) -> fix.Message:
    """A DH built the QuickFIX way, its Parties a real repeating group."""
    m = fix.Message()
    m.getHeader().setField(35, "DH")
    m.setField(2328, req)
    m.setField(2329, action)
    g = fix.Group(453, 448)
    g.setField(448, party)
    g.setField(447, "D")
    g.setField(452, role)
    m.addGroup(g)
    return m
