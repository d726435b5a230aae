"""Session behaviour over real sockets: logon checks (passwords, Ed25519 signatures), the
sequence-number hole QuickFIX leaves on a refused Logon, cancel-on-disconnect, the
throttle, garbled input, entitlements per port, TLS, and a failing callback."""
from __future__ import annotations

import itertools
import socket
import time

import pytest
import quickfix as fix
import simplefix
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessions.auth import hash_password
from tests.sessions.fixclients import logged_on as _logged_on
from tests.sessions.fixclients import RawClient, now_fix, order
from venue import access as A
from venue import commands as C

_ids = itertools.count(1)


def logged_on(port, comp_id, user, password, **kw):
    _VENUE[0].wait_offline(comp_id)
    return _logged_on(port, comp_id, user, password, **kw)


_VENUE: list = [None]


@pytest.fixture(autouse=True)
def _remember_venue(venue):
    _VENUE[0] = venue


def cid(p: str = "s") -> str:
    return f"{p}{next(_ids)}"


def open_orders(venue, account: str) -> list[int]:
    return venue.query(lambda e: sorted(e.ledger.accounts[account].orders))


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def add_session(venue, comp_id: str, *, user: str, password: str = "pw", rate: int = 1000, cod: bool = False,
                key: str = "", firm: str = "ALPHA", account: str = "ALPHA-1", role: str = "order_entry") -> None:
    venue.execute(A.CreateUser(user, firm, hash_password(password)))
    p = venue.execute(A.CreateSession(comp_id, role, firm, user, "VENUE", account, "", "", cod, rate, key))
    assert type(p.events[0]).__name__ == "AdminApplied", p.events
    assert wait_for(lambda: comp_id in venue.server._route)


# ------------------------------------------------------------------------------ logon
def test_wrong_password_unknown_session_and_non_logon_first(venue):
    c = RawClient(venue.oe, "ALPHA-OE")
    c.logon("alpha", "not-it", expect=False)
    lo = c.expect("5")
    assert lo[58] == "wrong username or password"
    assert c.closed()
    c = RawClient(venue.oe, "NOBODY")
    c.logon("x", "y", expect=False)
    assert "unknown SenderCompID" in c.expect("5")[58]
    c = RawClient(venue.oe, "ALPHA-OE")
    c.send("D", order(cid(), "BTC-USD", "1", "1", "1.00"))
    assert "must be a Logon" in c.expect("5")[58]
    assert c.closed()


def test_refused_logon_with_reset_leaves_sequence_numbers_untouched(venue):
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    for _ in range(3):
        clid = cid()
        c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
        c.expect("8", X11=clid)
    session = fix.Session.lookupSession(venue.server.app.ctx["ALPHA-OE"].sid)
    c.send("5", [(58, "bye")])
    c.expect("5")
    c.close()
    assert wait_for(lambda: not session.isLoggedOn())
    before = (session.getExpectedSenderNum(), session.getExpectedTargetNum())
    assert before[0] > 2 and before[1] > 2
    attacker = RawClient(venue.oe, "ALPHA-OE")
    attacker.logon("alpha", "guess", reset=True, expect=False)
    assert attacker.expect("5")[58] == "wrong username or password"
    time.sleep(0.2)
    assert (session.getExpectedSenderNum(), session.getExpectedTargetNum()) == before
    # the real client resumes where it left off, without a reset
    back = RawClient(venue.oe, "ALPHA-OE")
    back.seq = before[1]
    back.logon("alpha", "alpha-demo", reset=False)
    clid = cid()
    back.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert back.expect("8", X11=clid)[34] == str(before[0] + 1)
    back.close()


def _advance_and_leave(venue, comp_id: str, user: str, password: str) -> tuple[int, int]:
    """Log on through the gateway, trade a little, log out: the session's (next sender,
    next target) sequence numbers, well past 1."""
    c = logged_on(venue.oe, comp_id, user, password)
    for _ in range(3):
        clid = cid()
        c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
        c.expect("8", X11=clid)
    c.send("5", [(58, "bye")])
    c.expect("5")
    c.close()
    session = fix.Session.lookupSession(venue.server.app.ctx[comp_id].sid)
    assert wait_for(lambda: not session.isLoggedOn())
    seqs = (session.getExpectedSenderNum(), session.getExpectedTargetNum())
    assert seqs[0] > 2 and seqs[1] > 2
    return seqs


def _this_hosts_address() -> str | None:
    """An address of this machine other than loopback (where a remote client would come
    from), or None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def _reset_logons(comp_id: str) -> bytes:
    """Two Logons with ResetSeqNumFlag=Y and a NewOrderSingle in one segment, as an attacker
    who knows the CompIDs would send them straight to the QuickFIX acceptor."""
    out = b""
    for seq in (1, 1, 2):
        m = simplefix.FixMessage()
        for t, v in ((8, "FIX.4.4"), (35, "A" if seq == 1 else "D"), (49, comp_id), (56, "VENUE"), (34, seq),
                     (52, now_fix())):
            m.append_pair(t, v)
        if seq == 1:
            for t, v in ((98, 0), (108, 30), (141, "Y"), (553, "alpha"), (554, "guess")):
                m.append_pair(t, v)
        else:
            for t, v in order(cid(), "BTC-USD", "1", "0.01", "1000.00"):
                m.append_pair(t, v)
        out += m.encode()
    return out


def test_the_quickfix_acceptor_is_reachable_from_the_gateway_only(venue):
    """The acceptor behind the gateway listens on loopback (SocketAcceptAddress, the venue's
    QuickFIX patch) and serves 127.0.0.1 only (AllowedRemoteAddresses): a Logon with 141=Y
    sent to it directly, from another host or from another loopback address, changes no
    session state, and the session logs on through the gateway as before."""
    before = _advance_and_leave(venue, "ALPHA-OE", "alpha", "alpha-demo")
    port = venue.server._route["ALPHA-OE"]
    session = fix.Session.lookupSession(venue.server.app.ctx["ALPHA-OE"].sid)
    ip = _this_hosts_address()
    if ip is not None:  # as a remote host sees it: nothing listens on the machine's own address
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((ip, port), timeout=5, source_address=(ip, 0)).close()
    # from 127.0.0.2: the listener takes the connection, QuickFIX refuses it before the session sees a byte
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
    try:
        s.sendall(_reset_logons("ALPHA-OE"))
        s.settimeout(5)
        try:
            got = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            got = b""
        assert got == b"", got  # no Logon, no Logout: closed unanswered
    finally:
        s.close()
    time.sleep(0.3)
    assert (session.getExpectedSenderNum(), session.getExpectedTargetNum()) == before
    back = RawClient(venue.oe, "ALPHA-OE")
    back.seq = before[1]
    back.logon("alpha", "alpha-demo", reset=False)
    clid = cid()
    back.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert back.expect("8", X11=clid)[34] == str(before[0] + 1)
    back.close()


@pytest.mark.parametrize("fields,why", [
    ([(98, 0), (108, 30), (141, "Y"), (8013, "X")], "8013"),  # not a CancelOrdersOnDisconnect value
    ([(98, 0), (141, "Y")], "HeartBtInt(108)"),  # FIX requires it; QuickFIX drops the Logon
    ([(98, 0), (108, 0), (141, "Y")], "HeartBtInt(108)"),  # no heartbeat, no dead-peer detection
    ([(98, 1), (108, 30), (141, "Y")], "EncryptMethod(98)"),
    ([(108, 30), (141, "Y")], "EncryptMethod(98)"),
    ([(98, 0), (108, 30), (141, "Y"), (58, "hello")], "invalid Logon"),  # Text is not a Logon field
])
def test_a_logon_quickfix_would_leave_unanswered_gets_a_logout_that_says_why(venue, fields, why):
    venue.wait_offline("ALPHA-OE")
    c = RawClient(venue.oe, "ALPHA-OE")
    c.send("A", fields + [(553, "alpha"), (554, "alpha-demo")])
    lo = c.expect("5")
    assert why in lo[58], lo
    assert c.closed()


def test_a_second_logon_of_a_logged_on_session_is_refused_and_the_first_goes_on(venue):
    first = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    second = RawClient(venue.oe, "ALPHA-OE")
    second.logon("alpha", "alpha-demo", expect=False)
    assert second.expect("5")[58] == "ALPHA-OE is already logged on"
    assert second.closed()
    clid = cid()
    first.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert first.expect("8", X11=clid)[150] == "0"
    first.close()
    venue.wait_offline("ALPHA-OE")
    again = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")  # once the first is gone, it may
    again.close()


def test_a_sequence_reset_logon_inside_the_session_is_accepted(venue):
    """FIX 4.4: a Logon with ResetSeqNumFlag=Y during an active session resets both sides'
    sequence numbers to 1; the acceptor answers with a Logon 141=Y and the session goes on."""
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    for _ in range(3):
        clid = cid()
        c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
        c.expect("8", X11=clid)
    c.seq = 1
    c.send("A", [(98, 0), (108, 30), (141, "Y")])
    answer = c.expect("A")
    assert answer[141] == "Y" and answer[34] == "1"
    clid = cid()
    c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    er = c.expect("8", X11=clid)
    assert er[150] == "0" and er[34] == "2"
    session = fix.Session.lookupSession(venue.server.app.ctx["ALPHA-OE"].sid)
    assert session.isLoggedOn() and session.getExpectedTargetNum() == 3
    c.close()


def test_ed25519_signed_logon(venue):
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    add_session(venue, "SIGNED-OE", user="signer", key=pub)
    c = RawClient(venue.oe, "SIGNED-OE")
    c.signed_logon("signer", key)
    assert c.expect("A")[49] == "VENUE"
    clid = cid()
    c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert c.expect("8", X11=clid)[150] == "0"
    c.close()
    bad = RawClient(venue.oe, "SIGNED-OE")
    bad.signed_logon("signer", key, tamper=True)
    assert bad.expect("5")[58] == "invalid logon signature"
    other = Ed25519PrivateKey.generate()
    bad = RawClient(venue.oe, "SIGNED-OE")
    bad.signed_logon("signer", other)
    assert bad.expect("5")[58] == "invalid logon signature"
    nosig = RawClient(venue.oe, "SIGNED-OE")
    nosig.logon("signer", "pw", expect=False)
    assert "Ed25519" in nosig.expect("5")[58]


def test_a_captured_signed_logon_cannot_be_replayed(venue):
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    add_session(venue, "REPLAY-OE", user="replayer", key=pub)
    c = RawClient(venue.oe, "REPLAY-OE")
    captured = c.signed_logon("replayer", key)
    assert c.expect("A")[49] == "VENUE"
    c.close()
    eve = RawClient(venue.oe, "REPLAY-OE")
    eve.send_raw(captured)  # the very same bytes, seconds later
    assert eve.expect("5")[58] == "logon signature already used"
    assert eve.closed()


def test_session_roles_are_kept_to_their_ports(venue):
    c = RawClient(venue.oe, "BROKER-DC")
    c.logon("broker", "broker-demo", expect=False)
    assert "do not connect to this port" in c.expect("5")[58]
    dc = logged_on(venue.dc, "BROKER-DC", "broker", "broker-demo")
    clid = cid()
    dc.send("D", order(clid, "BTC-USD", "1", "1", "1.00"))
    rej = dc.expect("j")
    assert rej[380] == "6" and "cannot trade" in rej[58]
    dc.send("F", [(41, "x"), (11, cid()), (55, "BTC-USD"), (54, "1"), (60, now_fix())])
    assert dc.expect("j")[372] == "F"
    dc.close()
    md = logged_on(venue.md, "MD-CLIENT", "md", "md-demo")
    md.send("D", order(cid(), "BTC-USD", "1", "1", "1.00"))
    assert md.expect("j")[380] == "6"
    md.close()


# ------------------------------------------------------------------------------ cancel on disconnect
def test_cancel_on_disconnect_per_session_and_per_logon(venue):
    add_session(venue, "COD-OE", user="cod", cod=True)
    c = logged_on(venue.oe, "COD-OE", "cod", "pw")
    clid = cid()
    c.send("D", order(clid, "ETH-USD", "1", "0.1", "100.00"))
    oid = int(c.expect("8", X11=clid)[37])
    keep = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    k = cid()
    keep.send("D", order(k, "ETH-USD", "1", "0.1", "100.00"))
    kid = int(keep.expect("8", X11=k)[37])
    c.close()  # a dropped connection, no Logout
    assert wait_for(lambda: oid not in open_orders(venue, "ALPHA-1"))
    assert kid in open_orders(venue, "ALPHA-1")  # entered by another session: kept
    status = venue.query(lambda e: e.find_order("ALPHA-1", oid).status)
    assert status == 4
    # 8013=N on the Logon switches it off for this connection
    c = RawClient(venue.oe, "COD-OE")
    c.logon("cod", "pw", extra=[(8013, "N")])
    clid = cid()
    c.send("D", order(clid, "ETH-USD", "1", "0.1", "100.00"))
    oid2 = int(c.expect("8", X11=clid)[37])
    c.close()
    time.sleep(0.5)
    assert oid2 in open_orders(venue, "ALPHA-1")
    # 8013=Y on ALPHA-OE: every order of its accounts goes on disconnect
    keep.close()
    y = RawClient(venue.oe, "ALPHA-OE")
    y.logon("alpha", "alpha-demo", extra=[(8013, "Y")])
    y.close()
    assert wait_for(lambda: not open_orders(venue, "ALPHA-1"))


def test_cancel_on_disconnect_comes_after_every_order_sent_before_the_disconnect(venue):
    """Orders still on their way into the venue when the connection drops are entered
    first and cancelled with the rest: none is left open after cancel-on-disconnect."""
    add_session(venue, "BURST-OE", user="burst", cod=True, rate=0)
    before = set(open_orders(venue, "ALPHA-1"))
    c = logged_on(venue.oe, "BURST-OE", "burst", "pw")
    ids = [cid("burst") for _ in range(300)]
    for clid in ids:
        c.send("D", order(clid, "ETH-USD", "1", "0.01", "100.00"))
    c.expect("8", X11=ids[0])  # the venue is taking them
    c.close()  # dropped at once: most answers are never read
    venue.wait_offline("BURST-OE")
    assert wait_for(lambda: set(open_orders(venue, "ALPHA-1")) <= before)
    entered = venue.query(lambda e: sum(e.clid_taken(e.ledger.accounts["ALPHA-1"], x) for x in ids))
    assert entered >= 1
    time.sleep(0.3)  # nothing left behind the cancel to be entered later
    assert set(open_orders(venue, "ALPHA-1")) <= before


# ------------------------------------------------------------------------------ throttle
def test_throttle_refuses_then_logs_out_once_and_the_session_may_log_on_again(venue, caplog):
    add_session(venue, "SLOW-OE", user="slow", rate=5)
    c = logged_on(venue.oe, "SLOW-OE", "slow", "pw")
    ids = [cid() for _ in range(8)]
    for clid in ids:
        c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    answers = [c.expect("8", X11=clid) for clid in ids]
    throttled = [a for a in answers if a[39] == "8" and "throttled" in a.get(58, "")]
    assert 1 <= len(throttled) <= 4 and all(a[103] == "0" and 25002 not in a for a in throttled)
    assert sum(1 for a in answers if a[150] == "0") >= 4
    caplog.set_level("WARNING", logger="sessions.application")
    for _ in range(30):
        c.send("D", order(cid(), "BTC-USD", "1", "0.01", "1000.00"))
    lo = c.expect("5", timeout=5)
    assert "throttled" in lo[58] and "logged out" in lo[58]
    c.send("5", [])  # the Logout's answer: the venue disconnects at once
    assert c.closed()
    logouts = [r for r in caplog.records if "far over its message rate" in r.getMessage()]
    assert len(logouts) == 1  # one logout for the whole burst, not one per message
    # the throttle's logout is no ban: the session logs on again at once, and trades
    venue.wait_offline("SLOW-OE")
    again = RawClient(venue.oe, "SLOW-OE")
    again.logon("slow", "pw")
    clid = cid()
    again.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert again.expect("8", X11=clid)[150] == "0"
    again.close()


# ------------------------------------------------------------------------------ garbled input
def test_garbled_message_is_ignored_and_the_gap_is_recovered(venue):
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    garbled = bytearray(c.build("D", order(cid(), "BTC-USD", "1", "0.01", "1000.00")).encode())
    garbled[-4:-1] = b"000" if garbled[-4:-1] != b"000" else b"001"  # wrong checksum
    c.send_raw(bytes(garbled))
    clid = cid()
    c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    rr = c.expect("2")  # the venue noticed the gap and asks for it again
    missing = c.seq - 2
    assert int(rr[7]) == missing
    # gap fill over the garbled one (not resent: it was never valid); the queued order then goes through
    c.send_raw(c.build("4", [(43, "Y"), (122, now_fix()), (123, "Y"), (36, missing + 1)], seq=missing).encode())
    assert c.expect("8", X11=clid)[150] == "0"
    clid2 = cid()
    c.send("D", order(clid2, "BTC-USD", "1", "0.01", "1000.00"))
    assert c.expect("8", X11=clid2)[150] == "0"
    c.close()


# ------------------------------------------------------------------------------ failures inside
def test_a_failing_callback_rejects_one_message_and_nothing_else(venue):
    app = venue.server.app
    original = app.handlers["order_entry"]["H"]

    def boom(msg, ctx):
        raise RuntimeError("simulated bug")

    app.handlers["order_entry"]["H"] = boom
    try:
        a = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
        b = logged_on(venue.oe, "BETA-OE", "beta", "beta-demo")
        a.send("H", [(11, "x"), (55, "BTC-USD"), (54, "1")])
        rej = a.expect("j")
        assert "internal error" in rej[58]
        for client in (a, b):
            clid = cid()
            client.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
            assert client.expect("8", X11=clid)[150] == "0"
        a.close()
        b.close()
    finally:
        app.handlers["order_entry"]["H"] = original


def test_a_session_disabled_while_logged_on_is_logged_out_and_enabled_logs_on_again(venue):
    add_session(venue, "TEMP-OE", user="temp")
    c = logged_on(venue.oe, "TEMP-OE", "temp", "pw")
    venue.execute(A.SetSessionEnabled("TEMP-OE", False))
    assert "disabled" in c.expect("5")[58]
    assert c.closed()
    venue.wait_offline("TEMP-OE")
    again = RawClient(venue.oe, "TEMP-OE")
    again.logon("temp", "pw", expect=False)
    assert again.expect("5")[58] == "session disabled"
    venue.execute(A.SetSessionEnabled("TEMP-OE", True))
    back = RawClient(venue.oe, "TEMP-OE")
    back.logon("temp", "pw")
    clid = cid()
    back.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
    assert back.expect("8", X11=clid)[150] == "0"
    back.close()


def test_operator_cancel_reaches_the_owners_session(venue):
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    clid = cid()
    c.send("D", order(clid, "ETH-USD", "2", "0.1", "90000.00"))
    oid = int(c.expect("8", X11=clid)[37])
    venue.execute(C.CancelOrder("ALPHA-1", "ops-1", order_id=oid, reason=6))
    er = c.expect("8", X150="4")
    assert er[37] == str(oid) and er[39] == "4"
    c.close()


def test_send_many_sends_in_order_with_each_items_field_and_skips_unknown_sessions(venue, caplog):
    """VenueApplication.send_many (QuickFIX patch 5, Session.sendToTargets): one message
    object sent several times with its own value of a field each time, in order; an item
    for a session QuickFIX does not know is skipped (and logged), the rest still go out."""
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    try:
        app = venue.server.app
        sid = app.ctx["ALPHA-OE"].sid
        news = fix.Message()
        news.getHeader().setField(35, "B")
        nobody = fix.SessionID("FIX.4.4", "VENUE", "NOBODY")
        sent = app.outbox.sent
        app.send_many([(news, sid, 148, "one"), (news, nobody, 148, "lost"), (news, sid, 148, "two"),
                       (news, sid)])
        assert [c.expect("B")[148] for _ in range(3)] == ["one", "two", "two"]
        assert app.outbox.sent - sent == 3
        assert "no FIX session FIX.4.4:VENUE->NOBODY" in caplog.text
        with pytest.raises(TypeError):
            app.send_many([(news, "not a session id")])
    finally:
        c.close()
