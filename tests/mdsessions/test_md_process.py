"""The market-data sessions in a process of their own (sessions/md_process.py), over real
sockets: a client holds the engine's book through it; a child that dies is replaced and
its sessions log on again and get the engine's book; a child that stops reading (frozen)
never holds the engine back and, once it runs again, gets a new state and its client a
new W with the engine's book; a session created while the venue runs logs on through the
child, one disabled is logged out, one changed logs on with the change; a Logon sent to
the child's acceptor without the gateway is refused; the child exits with the venue."""
from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any, Iterator

import pytest

from sessions import md_process
from sessions.auth import hash_password
from tests.marketdata.md_flow import SYMBOLS, Flow
from tests.mdsessions.fixbook import FixMdClient
from tests.mdsessions.test_mdsession_books import engine_view, matches, request
from tests.mdsessions.venues import MdVenue, wait_until
from tests.sessions.fixclients import RawClient, logged_on
from venue import access as A
from venue import commands as C


@pytest.fixture
def mv(tmp_path: Any) -> Iterator[MdVenue]:
    v = MdVenue(str(tmp_path / "venue"), Flow(31))
    assert v.server.md_process is not None and v.server.md_process.proc is not None
    yield v
    v.stop()


def subscribe(mv: MdVenue, comp_id: str = "MD-CLIENT", user: str = "md", password: str = "md-demo",
              req: str = "all") -> tuple[RawClient, FixMdClient]:
    c = logged_on(mv.port, comp_id, user, password)
    c.send("V", request(req, 0, "012", "N", tuple(SYMBOLS)))
    book = FixMdClient()
    return c, book


def pump(c: RawClient, book: FixMdClient) -> None:
    while True:
        m = c.recv(0.02)
        if m is None:
            return
        if m.type == "1":  # TestRequest
            c.send("0", [(112, m[112])])
        book.apply(m.raw)


def holds_engine_book(mv: MdVenue, c: RawClient, book: FixMdClient, req: str = "all", timeout: float = 30.0) -> None:
    final = {s: mv.venue.query(lambda e, s=s: engine_view(e, s)) for s in SYMBOLS}
    wait_until(lambda: (pump(c, book), all((req, s) in book.books and
                                           matches(book.books[(req, s)], final[s], 0, "012", "N") for s in SYMBOLS))[1],
               timeout=timeout, what="the client to hold the engine's book")


def test_a_child_that_dies_is_replaced_and_its_sessions_come_back(mv: MdVenue) -> None:
    proc = mv.server.md_process
    assert proc is not None and proc.proc is not None
    c, book = subscribe(mv)
    mv.run_flow(300)
    holds_engine_book(mv, c, book)
    first = proc.proc.pid
    os.kill(first, signal.SIGKILL)
    assert c.closed(10.0)  # its connection went with it
    c.close()
    wait_until(lambda: proc.proc is not None and proc.proc.pid != first and proc.chan is not None,
               what="a new market-data process")
    assert proc.restarts == 1
    mv.run_flow(300)  # the engine went on; the new child follows from a new state
    c, book = subscribe(mv)
    try:
        holds_engine_book(mv, c, book)
        assert all(b.gaps == 0 for b in book.books.values())
    finally:
        c.close()


def test_a_frozen_child_never_holds_the_engine_and_is_resynced(mv: MdVenue, monkeypatch: Any) -> None:
    proc = mv.server.md_process
    assert proc is not None and proc.proc is not None
    monkeypatch.setattr(md_process, "MAX_QUEUED", 50)
    c, book = subscribe(mv)
    mv.run_flow(100)
    holds_engine_book(mv, c, book)
    os.kill(proc.proc.pid, signal.SIGSTOP)  # reads nothing: its socket fills, the writer blocks
    try:
        t = time.monotonic()
        mv.run_flow(3000, waited=1.0)  # one batch per command: thousands of batches of ops
        took = time.monotonic() - t
        assert proc.resyncs == 0
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
    assert took < 60  # the engine ran on: its followers only queue
    holds_engine_book(mv, c, book)
    assert proc.resyncs >= 1  # the queue overflowed: dropped, and a new state sent instead
    snaps = [b.snapshots for b in book.books.values()]
    assert all(n >= 2 for n in snaps), snaps  # so the client got a new W of each book
    assert all(b.gaps == 0 for b in book.books.values())
    c.close()


def test_sessions_created_and_disabled_while_running(mv: MdVenue) -> None:
    for cmd in (A.CreateUser("late", "DATA", hash_password("late-demo")),
                A.CreateSession("MD-LATE", "market_data", "DATA", "late", "VENUE", "", "", "", False, 0)):
        mv.venue.execute(cmd)
    wait_until(lambda: "MD-LATE" in mv.server._route, what="a route to the new session")
    c, book = subscribe(mv, "MD-LATE", "late", "late-demo", req="late")
    mv.run_flow(200)
    holds_engine_book(mv, c, book, req="late")
    st = mv.server.status()["sessions"]
    assert st["MD-LATE"]["logged_on"] and st["MD-LATE"]["role"] == "market_data"
    mv.venue.execute(A.SetSessionEnabled("MD-LATE", False))
    logout = c.expect("5", timeout=10)
    assert "disabled" in logout[58]
    c.close()
    mv.wait_offline("MD-LATE")


def test_a_session_changed_while_running_holds_at_its_next_logon(mv: MdVenue) -> None:
    """The child keeps its own copy of the session records: a change (UpdateSession, here
    the message rate) reaches it, and the session's next Logon runs on it."""
    for cmd in (A.CreateUser("late", "DATA", hash_password("late-demo")),
                A.CreateSession("MD-LATE", "market_data", "DATA", "late", "VENUE", "", "", "", False, 0)):
        mv.venue.execute(cmd)
    wait_until(lambda: "MD-LATE" in mv.server._route, what="a route to the new session")
    mv.venue.execute(A.UpdateSession("MD-LATE", "", "", "", False, 2))  # 2 messages a second
    c = logged_on(mv.port, "MD-LATE", "late", "late-demo")
    for i in range(6):
        c.send("x", [(320, f"sl{i}"), (559, "4")])
    answers = [c.expect("j" if i else "y", timeout=10) for i in range(2)]
    assert "throttled: more than 2 messages per second" in answers[1][58]
    assert mv.server.status()["sessions"]["MD-LATE"]["throttled"] >= 1
    c.close()


def test_a_logon_that_skips_the_gateway_is_refused(mv: MdVenue) -> None:
    """The child's acceptor listens on loopback for the gateway; a Logon sent to it
    straight, even with the right password, was never checked there and is refused."""
    child_port = mv.server._route["MD-CLIENT"]
    assert child_port != mv.port
    c = RawClient(child_port, "MD-CLIENT")
    c.logon("md", "md-demo", expect=False)
    try:
        got = c.recv(5.0)
    except ConnectionError as e:  # the Logout and the close can come in one read
        assert "logon not verified" in str(e)
    else:
        assert got is not None and got.type == "5" and "not verified" in got[58]
        assert c.closed(5.0)
    c.close()
    c, book = subscribe(mv)  # the same session through the gateway is fine
    mv.run_flow(50)
    holds_engine_book(mv, c, book)
    c.close()


def test_the_child_exits_with_the_venue(tmp_path: Any) -> None:
    v = MdVenue(str(tmp_path / "venue"), Flow(5))
    proc = v.server.md_process
    assert proc is not None and proc.proc is not None
    c, _ = subscribe(v)
    pid = proc.proc.pid
    v.stop()
    assert c.expect("5", timeout=10)[58] == "venue shutting down"
    c.close()
    assert proc.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", v.port), timeout=1).close()
