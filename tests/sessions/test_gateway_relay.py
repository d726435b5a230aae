"""The logon gateway's relay, byte by byte, in both implementations: the native one
(sessions/_relay.c, what the venue runs when it is built) and the Python one (TLS, or
``VENUE_PY_RELAY=1``). The gateway checks real Logons against a real venue's registry;
behind it, instead of QuickFIX, a TCP server the test drives, so that what each side sends
and receives is exact: order, back-pressure (``backlog``), half-close and linger, one
relayed connection per CompID."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from cli.demo import demo_commands
from sessions import gateway as G
from sessions.auth import LogonChecker
from tests.sessions.fixclients import RawClient
from venue.core import Venue

RELAYS = ["python"] + (["native"] if G._native_relay() is not None else [])


class Backend:
    """Accepts the gateway's connections; keeps each socket with the bytes it has read."""

    def __init__(self) -> None:
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self._ready:
                self.conns.append(s)
                self._ready.notify_all()

    def conn(self, n: int = 1, timeout: float = 5.0) -> socket.socket:
        with self._ready:
            assert self._ready.wait_for(lambda: len(self.conns) >= n, timeout), "the gateway did not connect"
            return self.conns[n - 1]

    def close(self) -> None:
        self.ls.close()
        for s in self.conns:
            s.close()


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}; got {got[-200:]!r}"
        got += chunk
    return got


def read_exactly(sock: socket.socket, n: int, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    parts, have = [], 0
    while have < n:
        chunk = sock.recv(min(1 << 20, n - have))
        assert chunk, f"closed after {have} of {n} bytes"
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    v = Venue(str(tmp_path_factory.mktemp("relay")))
    v.open()
    v.start()
    for c in demo_commands():
        v.execute(c)
    yield v.engine.extensions["access"]
    v.stop()


@pytest.fixture(params=RELAYS)
def relay(request, registry, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(G, "_NATIVE", None)
    else:
        assert G._NATIVE is not None
    backend = Backend()
    gw = G.LogonGateway("order_entry", "127.0.0.1", 0, LogonChecker(registry),
                        lambda comp_id: ("127.0.0.1", backend.port), ("order_entry",), lambda c, f: None)
    gw.start()
    yield gw, backend
    gw.stop()
    backend.close()


def logged_on(gw: G.LogonGateway, backend: Backend, comp_id: str = "ALPHA-OE", user: str = "alpha",
              n: int = 1) -> tuple[RawClient, socket.socket]:
    """A client through the gateway, its Logon forwarded to the backend, which answers."""
    c = RawClient(gw.port, comp_id)
    c.logon(user, f"{user}-demo", expect=False)
    b = backend.conn(n)
    logon = read_until(b, b"\x0110=")
    assert b"35=A\x01" in logon and f"49={comp_id}\x01".encode() in logon
    b.sendall(c.build("A", [(98, 0), (108, 30)]).encode())  # the "acceptor's" Logon answer
    assert c.expect("A")
    return c, b


def test_bytes_pass_both_ways_in_order_and_the_session_is_listed(relay):
    gw, backend = relay
    c, b = logged_on(gw, backend)
    assert wait_for(lambda: gw.active() == ["ALPHA-OE"])
    blob = bytes(range(256)) * 4096  # 1 MiB, every byte value
    c.send_raw(blob)
    assert read_exactly(b, len(blob)) == blob
    b.sendall(blob[::-1])
    assert read_exactly(c.sock, len(blob)) == blob[::-1]
    assert gw.backlog("ALPHA-OE") == 0


def test_a_second_logon_is_refused_while_relayed_and_accepted_after(relay):
    gw, backend = relay
    c, b = logged_on(gw, backend)
    other = RawClient(gw.port, "ALPHA-OE")
    other.logon("alpha", "alpha-demo", expect=False)
    assert "already logged on" in other.expect("5")[58]
    assert other.closed()
    c.close()  # the client goes: the backend sees the end, the session is free again
    b.settimeout(5)
    assert b.recv(100) == b""
    assert wait_for(lambda: gw.active() == [])
    # the refused Logon had its backend connection opened (and closed unused): the third
    again, _ = logged_on(gw, backend, n=3)
    again.close()


def test_a_slow_reader_is_held_in_backlog_and_gets_every_byte(relay):
    gw, backend = relay
    c, b = logged_on(gw, backend)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    blob = b"x" * (64 * 1024 * 1024)  # far more than the kernel buffers and HIGH_WATER
    sent = [0]

    def push() -> None:
        b.settimeout(30)
        view = memoryview(blob)
        while sent[0] < len(blob):
            sent[0] += b.send(view[sent[0]:sent[0] + (1 << 20)])

    t = threading.Thread(target=push, daemon=True)
    t.start()
    # the client reads nothing: the gateway buffers up to HIGH_WATER, then stops reading
    # the backend, whose sends then block
    assert wait_for(lambda: gw.backlog("ALPHA-OE") >= G.HIGH_WATER // 2, 10)
    time.sleep(0.3)
    held = sent[0]
    time.sleep(0.3)
    assert sent[0] == held < len(blob), "the gateway kept reading a side whose peer does not read"
    assert gw.backlog("ALPHA-OE") <= G.HIGH_WATER + (1 << 20)
    assert read_exactly(c.sock, len(blob), 30) == blob
    t.join(10)
    assert wait_for(lambda: gw.backlog("ALPHA-OE") == 0)


def test_the_last_words_before_a_close_reach_the_client(relay):
    gw, backend = relay
    c, b = logged_on(gw, backend)
    logout = c.build("5", [(58, "bye")]).encode()
    b.sendall(logout)
    b.close()  # the acceptor's Logout, then its close: the client must get the Logout, then EOF
    assert c.expect("5")[58] == "bye"
    assert c.closed()
    assert wait_for(lambda: gw.active() == [])


def test_disconnect_closes_both_sides(relay):
    gw, backend = relay
    c, b = logged_on(gw, backend)
    gw.disconnect("ALPHA-OE")
    assert c.closed()
    b.settimeout(5)
    assert b.recv(100) == b""
    assert wait_for(lambda: gw.active() == [])
