"""The kill switch on a session, an account and a firm: open orders cancelled at once, new
orders and amendments refused with KILL_SWITCH until lifted, cancels still allowed; a
firm's risk session may act for its own firm only; state in snapshots and hashes."""
from __future__ import annotations

import pytest

from venue import access
from venue import commands as C
from venue.events import CancelRejected, Execution, OrderRejected
from venue.factory import build_engine
from venue.risk import KillSwitch, KillSwitchReport
from venue.snapshot import dump_engine, load_engine
from venue.types import CancelReason, ExecKind, Reject

from tests.risk.helpers import RiskHarness
from tests.venue.harness import execs, only, rejected


@pytest.fixture
def h() -> RiskHarness:
    h = RiskHarness(pool=False)
    h.account("a1", "F1")
    h.account("a2", "F1")
    h.account("b1", "F2")
    h.ok(access.CreateUser("u1", "F1", "scrypt$test"))
    h.ok(access.CreateUser("u2", "F2", "scrypt$test"))
    h.ok(access.CreateSession("F1-OE", "order_entry", "F1", "u1"))
    h.ok(access.CreateSession("F1-OE2", "order_entry", "F1", "u1"))
    h.ok(access.CreateSession("F1-RISK", "risk", "F1", "u1"))
    h.ok(access.CreateSession("F2-RISK", "risk", "F2", "u2"))
    return h


def kill(h: RiskHarness, scope: str, target: str, active: bool = True, requester: str = "") -> KillSwitchReport:
    return only(h.do(KillSwitch(scope, target, active, "runaway algo", requester, "req-1")), KillSwitchReport)


def cancelled_ids(events: list) -> list[int]:
    return [e.info.order_id for e in execs(events, ExecKind.CANCELLED) if e.reason == CancelReason.KILL_SWITCH]


def test_account_kill_cancels_refuses_and_lifts(h: RiskHarness) -> None:
    ids = [execs(h.buy("a1", "0.1", str(100 + i)))[0].info.order_id for i in range(3)]
    other = execs(h.buy("a2", "0.1", "100"))[0].info.order_id
    events = h.do(KillSwitch("account", "a1", True, "runaway algo"))
    rep = only(events, KillSwitchReport)
    assert (rep.code, rep.cancelled, rep.text) == (0, 3, "kill switch active for account a1")
    assert cancelled_ids(events) == ids
    assert execs(events)[0].text == "kill switch on account a1: runaway algo"
    assert set(h.engine.orders) == {other}
    r = rejected(h.buy("a1", "0.1", "100"))
    assert r.code == Reject.KILL_SWITCH and r.text == "kill switch active for account a1: runaway algo"
    execs(h.buy("a2", "0.1", "100"))  # the firm's other account trades on
    rep = kill(h, "account", "a1", active=False)
    assert (rep.code, rep.text) == (0, "kill switch lifted for account a1")
    assert execs(h.buy("a1", "0.1", "100"))
    h.check()


def test_firm_kill_covers_every_account_and_amendments(h: RiskHarness) -> None:
    o = execs(h.buy("a2", "0.1", "100"))[0]
    execs(h.buy("b1", "0.1", "100"))
    rep = kill(h, "firm", "F1")
    assert rep.cancelled == 1
    for acct in ("a1", "a2"):
        assert rejected(h.buy(acct, "0.1", "100")).code == Reject.KILL_SWITCH
    assert execs(h.buy("b1", "0.1", "100"))
    (ev,) = h.do(C.AmendOrder("a2", "r1", order_id=o.info.order_id, qty=h.lots("0.2")))
    assert isinstance(ev, CancelRejected) and ev.code == Reject.ORDER_NOT_OPEN  # it was cancelled by the kill
    kill(h, "firm", "F1", active=False)
    assert execs(h.buy("a1", "0.1", "100"))


def test_session_kill_only_touches_what_that_session_sent(h: RiskHarness) -> None:
    mine = execs(h.do(C.NewOrder("a1", "s1", "BTC-USD", 1, 2, h.lots("0.1"), h.px("100"), session="F1-OE")))[0]
    theirs = execs(h.do(C.NewOrder("a1", "s2", "BTC-USD", 1, 2, h.lots("0.1"), h.px("100"), session="F1-OE2")))[0]
    events = h.do(KillSwitch("session", "F1-OE", True))
    assert cancelled_ids(events) == [mine.info.order_id]
    r = rejected(h.do(C.NewOrder("a1", "s3", "BTC-USD", 1, 2, h.lots("0.1"), h.px("100"), session="F1-OE")))
    assert r.code == Reject.KILL_SWITCH and r.text == "kill switch active for session F1-OE: kill switch"
    # the other session, and the account itself, go on; amending from the killed session is refused
    assert execs(h.do(C.NewOrder("a1", "s4", "BTC-USD", 1, 2, h.lots("0.1"), h.px("100"), session="F1-OE2")))
    (ev,) = h.do(C.AmendOrder("a1", "s5", order_id=theirs.info.order_id, qty=h.lots("0.3"), session="F1-OE"))
    assert isinstance(ev, CancelRejected) and ev.code == Reject.KILL_SWITCH
    (ev,) = h.do(C.AmendOrder("a1", "s6", order_id=theirs.info.order_id, qty=h.lots("0.3"), session="F1-OE2"))
    assert isinstance(ev, Execution) and ev.kind == ExecKind.REPLACED
    # cancels are never blocked
    h.ok(C.CancelOrder("a1", "x1", order_id=theirs.info.order_id))


def test_risk_session_acts_for_its_own_firm_only(h: RiskHarness) -> None:
    execs(h.buy("a1", "0.1", "100"))
    rep = kill(h, "account", "a1", requester="F2-RISK")
    assert rep.code == Reject.NOT_ENTITLED and rep.text == "F2-RISK may not act for firm F1"
    rep = kill(h, "account", "a1", requester="F1-OE")
    assert rep.code == Reject.NOT_ENTITLED and rep.text == "F1-OE is not a risk session"
    assert not h.risk.kills()
    rep = kill(h, "firm", "F1", requester="F1-RISK")
    assert (rep.code, rep.cancelled) == (0, 1)
    assert h.risk.kills() == [{"scope": "firm", "target": "F1", "reason": "runaway algo"}]
    assert kill(h, "firm", "F1", active=False, requester="F1-RISK").code == 0


def test_unknown_targets_and_scopes(h: RiskHarness) -> None:
    before = h.engine.state_hashes()
    assert kill(h, "account", "nobody").code == Reject.UNKNOWN_ACCOUNT
    assert kill(h, "firm", "NOPE").code == Reject.UNKNOWN_FIRM
    assert kill(h, "session", "NOPE").text == "unknown session NOPE"
    assert kill(h, "desk", "x").code == Reject.BAD_COMMAND
    assert kill(h, "account", "a1", active=False).text == "no kill switch was active for account a1"
    assert {k: v for k, v in h.engine.state_hashes().items() if k != "engine"} == \
        {k: v for k, v in before.items() if k != "engine"}


def test_kill_state_survives_a_snapshot(h: RiskHarness) -> None:
    kill(h, "session", "F1-OE")
    kill(h, "account", "b1")
    e2 = load_engine(dump_engine(h.engine), build_engine())
    assert e2.state_hashes() == h.engine.state_hashes()
    ev = e2.process(e2.seq + 1, h.ts, C.NewOrder("b1", "z", "BTC-USD", 1, 2, h.lots("0.1"), h.px("100")))
    assert isinstance(ev[0], OrderRejected) and ev[0].code == Reject.KILL_SWITCH
    assert e2.extensions["risk"].kill_state("a1", "F1-OE").startswith("kill switch active for session F1-OE")
