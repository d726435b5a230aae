"""The logon gateway: the venue's public FIX port, in front of the QuickFIX acceptor.

QuickFIX resets a session's sequence numbers on a Logon with ResetSeqNumFlag=Y before the
application may refuse the Logon (Session::nextLogon resets, then verify() calls
fromAdmin). So anybody who knows a session's CompIDs could wipe its recovery state with a
wrong password. The gateway closes that hole: it reads the first message of every
connection, checks it (its shape with ``logon_rules``, see :class:`sessions.auth.LogonRules`;
then the credentials, :class:`sessions.auth.LogonChecker`), and only a Logon that passes
is passed on to the QuickFIX acceptor listening on loopback; a bad one gets a Logout with
the reason and a disconnect, and no session state anywhere changes. A CompID has at most
one connection relayed at a time: a second Logon while the first is relayed is refused
(QuickFIX would hold it unanswered for seconds, then drop it).

After the Logon the gateway relays bytes both ways without reading them: on a native
thread (:mod:`sessions._relay`, C, built with the venue) that never takes the
interpreter lock, so relaying costs the venue's Python threads nothing (relayed in
Python, every read and every write gave the lock up and queued to take it back behind
the busy threads); in Python when the module is not built (``VENUE_PY_RELAY=1`` forces
it) and for TLS connections, which terminate here. One thread multiplexes the logons and
the Python relays (selectors/epoll); the checks (scrypt takes tens of ms) and the backend
connects run on a small worker pool.
Repeated failed logons of one session from one address are refused for a while without
checking the credentials (brute-force protection keyed by address *and* CompID, so firms
behind a shared NAT cannot lock each other out); an address that floods the port with
garbage is dropped at accept.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from typing import Callable

from sessions import fixwire
from sessions.auth import LogonChecker, LogonDecision

log = logging.getLogger("sessions.gateway")


def _native_relay() -> object | None:
    """:mod:`sessions._relay` if it is built from the source beside it, else None."""
    if os.environ.get("VENUE_PY_RELAY"):
        return None
    try:
        from sessions import _relay  # type: ignore[attr-defined]
    except ImportError:
        log.warning("the gateway's native relay is not built: relaying in Python (pip install -e . builds it)")
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    record = os.path.join(os.path.dirname(here), "build", "relay-compiled.json")
    if os.path.exists(record):  # an editable install: the source may have changed since
        with open(record) as f:
            built = json.load(f).get("_relay.c")
        try:
            with open(os.path.join(here, "_relay.c"), "rb") as f:
                current = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            current = built
        if built != current:
            log.warning("the gateway's native relay was built before sessions/_relay.c changed: relaying in "
                        "Python (rebuild: python3 -m pip install -e .)")
            return None
    return _relay


_NATIVE = _native_relay()

_LOGON, _CHECKING, _RELAY_STATE, _CLOSING, _DRAINING = range(5)
LINGER = 2.0  # seconds to wait for the peer to close after our last words
MAX_LOGON_BYTES = 16 * 1024
HIGH_WATER = 8 * 1024 * 1024  # stop reading a side whose peer has this much unsent
READS_PER_EVENT = 4  # 64 KiB reads of one side per readiness, at most (back-pressure acts between them)


class _Conn:
    __slots__ = ("sock", "peer", "buf", "out", "state", "deadline", "addr", "comp_id", "paused", "reading", "tls")

    def __init__(self, sock: socket.socket, addr: str, state: int, deadline: float = 0.0) -> None:
        self.sock = sock
        self.peer: _Conn | None = None
        self.buf = bytearray()
        self.out = bytearray()
        self.state = state
        self.deadline = deadline
        self.addr = addr
        self.comp_id = ""
        self.paused = False
        self.reading = True
        self.tls = isinstance(sock, ssl.SSLSocket)


Route = Callable[[str], tuple[str, int] | None]  # comp_id -> backend address
LogonRules = Callable[[bytes, dict[int, str]], str | None]  # (Logon, its fields) -> why not, or None


class LogonGateway:
    def __init__(self, name: str, host: str, port: int, checker: LogonChecker, route: Route,
                 roles: tuple[str, ...], on_verified: Callable[[str, dict[int, str]], None],
                 ssl_context: ssl.SSLContext | None = None, logon_timeout: float = 10.0,
                 max_failures: int = 10, failure_window: float = 60.0, max_address_failures: int = 200,
                 logon_rules: LogonRules | None = None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.checker = checker
        self.route = route
        self.roles = roles
        self.on_verified = on_verified
        self.logon_rules = logon_rules
        self.ssl_context = ssl_context
        self.logon_timeout = logon_timeout
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.failure_window = failure_window
        self.connections = 0
        self.refused = 0
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)  # (address, CompID)
        self._address_failures: dict[str, deque[float]] = defaultdict(deque)
        self._sel = selectors.DefaultSelector()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"gw-{name}")
        self._wake_r, self._wake_w = socket.socketpair()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._conns: set[_Conn] = set()
        # CompID -> its client's connection while relayed in Python, or the native relay's id
        self._relays: dict[str, _Conn | int] = {}

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(128)
        ls.setblocking(False)
        self.port = ls.getsockname()[1]
        self._listener = ls
        self._wake_r.setblocking(False)
        self._sel.register(ls, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"gateway-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
        for c in list(self._conns):
            self._close(c)
        for rid in [r for r in self._relays.values() if isinstance(r, int)]:
            _NATIVE.close(rid)  # type: ignore[union-attr]
        self._relays.clear()
        if self._listener is not None:
            self._listener.close()
        self._pool.shutdown(wait=False)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- the loop --------------------------------------------------------------------
    def _loop(self) -> None:
        while self._running:
            try:
                events = self._sel.select(timeout=0.5)
            except OSError:
                continue
            for key, mask in events:
                data = key.data
                try:
                    if data is None:
                        self._accept()
                    elif data == "wake":
                        self._drain_wake()
                    else:
                        if mask & selectors.EVENT_WRITE:
                            self._flush(data)
                        if mask & selectors.EVENT_READ and data in self._conns:
                            self._read(data)
                except Exception:  # one connection's trouble never stops the gateway
                    log.exception("gateway %s: connection error", self.name)
                    if isinstance(data, _Conn):
                        self._close(data)
            now = time.monotonic()
            for c in [c for c in self._conns if c.state in (_LOGON, _CHECKING, _DRAINING) and c.deadline < now]:
                if c.state == _DRAINING:
                    self._close(c)
                else:
                    self._refuse(c, "no valid Logon in time", count=False)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:
                return
            ip = addr[0]
            if self._too_many(self._address_failures, ip, self.max_address_failures):
                self.refused += 1
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            if self.ssl_context is not None:
                sock.settimeout(self.logon_timeout)
                self._pool.submit(self._tls_handshake, sock, ip)
                continue
            self._add_client(sock, ip)

    def _add_client(self, sock: socket.socket, ip: str) -> None:
        sock.setblocking(False)
        c = _Conn(sock, ip, _LOGON, time.monotonic() + self.logon_timeout)
        log.debug("gateway %s: connection from %s (fd %s)", self.name, ip, sock.fileno())
        self._conns.add(c)
        self._sel.register(sock, selectors.EVENT_READ, c)

    def _tls_handshake(self, sock: socket.socket, ip: str) -> None:
        assert self.ssl_context is not None
        try:
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.info("gateway %s: TLS handshake with %s failed: %s", self.name, ip, e)
            sock.close()
            return
        self._done.put(("tls", tls, ip))
        self._wake()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return
            if item[0] == "tls":
                self._add_client(item[1], item[2])
            elif item[0] == "drop":
                c = self._relays.get(item[1])
                if c is not None:
                    log.info("gateway %s: disconnecting %s", self.name, item[1])
                    if isinstance(c, int):
                        del self._relays[item[1]]
                        _NATIVE.close(c)  # type: ignore[union-attr]
                    else:
                        self._close_pair(c)
            else:
                self._checked(*item[1:])

    # -- reading and writing ---------------------------------------------------------
    def _recv(self, c: _Conn) -> bytes | None:
        """What is readable now, up to READS_PER_EVENT reads; b"" at EOF; None if nothing."""
        chunks = []
        try:
            while True:
                data = c.sock.recv(65536)
                if not data:
                    if chunks:
                        break
                    return b""
                chunks.append(data)
                if c.tls and c.sock.pending():  # decrypted bytes select cannot see: take them now
                    continue
                if len(data) < 65536 or len(chunks) >= READS_PER_EVENT:  # the rest: next time
                    break
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            return b""
        return b"".join(chunks) if chunks else None

    def _read(self, c: _Conn) -> None:
        data = self._recv(c)
        if data is None:
            return
        if c.state == _DRAINING:  # we said our last words; discard until the peer closes
            if data == b"":
                self._close(c)
            return
        if data == b"":
            if c.state == _RELAY_STATE and c.peer is not None:
                self._close_pair(c)
            else:
                self._close(c)
            return
        if c.state == _RELAY_STATE:
            peer = c.peer
            assert peer is not None
            if not peer.out:  # the usual case: straight through, no buffering, no re-registering
                try:
                    n = peer.sock.send(data)
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    n = 0
                except OSError:
                    self._close_pair(c)
                    return
                if n == len(data):
                    return
                data = data[n:]
            peer.out += data
            self._set_events(peer)
            if len(peer.out) > HIGH_WATER and not c.paused:
                c.paused = True
                self._set_events(c)
            return
        if c.state == _CHECKING:
            c.buf += data  # bytes after the Logon wait for the backend
            return
        if c.state == _LOGON:
            c.buf += data
            try:
                msg, used = fixwire.next_message(c.buf)
            except fixwire.FramingError as e:
                return self._refuse(c, f"malformed Logon: {e}", count=True)
            if msg is None:
                if len(c.buf) > MAX_LOGON_BYTES:
                    self._refuse(c, "Logon too long", count=True)
                return
            try:
                f = fixwire.fields(msg)
            except fixwire.FramingError as e:
                return self._refuse(c, f"malformed Logon: {e}", count=True)
            if f.get(35) != "A":
                return self._refuse(c, "the first message must be a Logon (35=A)", count=True, fields=f)
            c.comp_id = f.get(49, "")
            if self._too_many(self._failures, (c.addr, c.comp_id), self.max_failures):
                self.refused += 1
                return self._refuse(c, "too many failed logons; try again later", count=False, fields=f)
            if self.logon_rules is not None:
                problem = self.logon_rules(msg, f)
                if problem:
                    return self._refuse(c, problem, count=False, fields=f)
            c.state = _CHECKING
            log.debug("gateway %s: checking logon of %s from %s", self.name, c.comp_id, c.addr)
            self._pool.submit(self._check, c, f)

    def _check(self, c: _Conn, f: dict[int, str]) -> None:
        """Worker thread: check the Logon, connect to the backend if it passes."""
        backend = None
        try:
            decision = self.checker.check(f, self.roles)
            if decision.ok:
                addr = self.route(f.get(49, ""))
                if addr is None:
                    decision = LogonDecision(False, "session not available", None)
                else:
                    backend = socket.create_connection(addr, timeout=5)
                    backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception as e:
            log.exception("gateway %s: logon check failed", self.name)
            decision = LogonDecision(False, f"logon failed: {type(e).__name__}", None)
            if backend is not None:
                backend.close()
                backend = None
        self._done.put(("checked", c, f, decision, backend))
        self._wake()

    def _checked(self, c: _Conn, f: dict[int, str], decision: LogonDecision, backend: socket.socket | None) -> None:
        if c not in self._conns:
            log.debug("gateway %s: %s went away during its logon check", self.name, c.comp_id)
            if backend is not None:
                backend.close()
            return
        if not decision.ok or backend is None:
            log.info("gateway %s: refused logon of %s from %s: %s", self.name, f.get(49), c.addr, decision.reason)
            return self._refuse(c, decision.reason, count=True, fields=f)
        if self._relayed(c.comp_id):
            backend.close()
            log.info("gateway %s: refused a second logon of %s from %s", self.name, c.comp_id, c.addr)
            return self._refuse(c, f"{c.comp_id} is already logged on", count=False, fields=f)
        try:
            self.on_verified(c.comp_id, f)  # before QuickFIX can see the Logon
        except Exception:
            log.exception("gateway %s: logon of %s not handed over", self.name, c.comp_id)
            backend.close()
            return self._refuse(c, "logon failed: internal error", count=False, fields=f)
        if _NATIVE is not None and not c.tls:
            self._sel.unregister(c.sock)
            self._conns.discard(c)
            try:
                rid = _NATIVE.add(c.sock.fileno(), backend.fileno(), bytes(c.buf))  # type: ignore[attr-defined]
            except OSError:
                log.exception("gateway %s: native relay refused %s", self.name, c.comp_id)
                backend.close()
                c.sock.close()
                return
            c.sock.detach()  # the relay owns both descriptors now
            backend.detach()
            c.state = _RELAY_STATE
            self._relays[c.comp_id] = rid
            log.info("gateway %s: %s logged on from %s", self.name, c.comp_id, c.addr)
            return
        backend.setblocking(False)
        b = _Conn(backend, "backend", _RELAY_STATE)
        b.comp_id = c.comp_id
        c.peer, b.peer = b, c
        c.state = _RELAY_STATE
        c.deadline = 0.0
        self._relays[c.comp_id] = c
        self._conns.add(b)
        self._sel.register(backend, selectors.EVENT_READ, b)
        b.out += c.buf  # the Logon and anything the client sent after it
        c.buf = bytearray()
        self._flush(b)
        log.info("gateway %s: %s logged on from %s", self.name, c.comp_id, c.addr)

    def _flush(self, c: _Conn) -> None:
        if c.out:
            try:
                n = c.sock.send(c.out)
                del c.out[:n]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
            except OSError:
                if c.peer is not None:
                    self._close_pair(c)
                else:
                    self._close(c)
                return
        if not c.out and c.state == _CLOSING:
            self._linger(c)
            return
        peer = c.peer
        if peer is not None and peer.paused and len(c.out) < HIGH_WATER // 2:
            peer.paused = False
            self._set_events(peer)
        self._set_events(c)

    def _linger(self, c: _Conn) -> None:
        """Everything is sent: half-close and wait for the peer to close before closing,
        so the last message (a Logout) is not lost to a reset: closing a socket with unread
        input sends RST, and the peer's kernel then drops data it has not delivered yet."""
        log.debug("gateway %s: lingering on %s %s", self.name, c.comp_id, c.addr)
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(c)
            return
        c.state = _DRAINING
        c.deadline = time.monotonic() + LINGER
        c.paused = False
        self._set_events(c)

    def _set_events(self, c: _Conn) -> None:
        if c not in self._conns:
            return
        ev = 0
        if not c.paused and c.state != _CLOSING:
            ev |= selectors.EVENT_READ
        if c.out:
            ev |= selectors.EVENT_WRITE
        try:
            key = self._sel.get_key(c.sock)
        except KeyError:  # paused with nothing to write: not watched until one changes
            if ev:
                self._sel.register(c.sock, ev, c)
            return
        if ev == 0:  # a selector cannot watch for nothing; watching READ would undo the pause
            self._sel.unregister(c.sock)
        elif key.events != ev:
            self._sel.modify(c.sock, ev, c)

    # -- refusing and closing --------------------------------------------------------
    def _refuse(self, c: _Conn, reason: str, count: bool, fields: dict[int, str] | None = None) -> None:
        f = fields or {}
        logout = fixwire.build("5", [
            (49, f.get(56, "VENUE")), (56, f.get(49, "UNKNOWN")), (34, "1"), (52, fixwire.utc_timestamp()),
            (58, reason[:200]),
        ], begin=f.get(8, "FIX.4.4"))
        c.out += logout
        c.state = _CLOSING
        c.buf = bytearray()
        if count:
            now = time.monotonic()
            self._failures[(c.addr, f.get(49, ""))].append(now)
            self._address_failures[c.addr].append(now)
        self._flush(c)

    def _too_many(self, table: dict, key, limit: int) -> bool:
        q = table.get(key)
        if not q:
            return False
        now = time.monotonic()
        while q and q[0] < now - self.failure_window:
            q.popleft()
        return len(q) >= limit

    def forgive(self) -> None:
        """Forget recorded failures (operators, after dealing with the cause)."""
        self._failures.clear()
        self._address_failures.clear()

    def _close(self, c: _Conn) -> None:
        log.debug("gateway %s: closing %s %s state %s", self.name, c.comp_id, c.addr, c.state)
        if self._relays.get(c.comp_id) is c:
            del self._relays[c.comp_id]
        if c in self._conns:
            self._conns.discard(c)
            try:
                self._sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
        try:
            c.sock.close()
        except OSError:
            pass

    def _close_pair(self, c: _Conn) -> None:
        peer = c.peer
        self._close(c)
        if peer is not None:
            peer.peer = None
            peer.state = _CLOSING  # let what is left (a Logout) reach it, then linger
            self._flush(peer)

    # -- introspection ---------------------------------------------------------------
    def backlog(self, comp_id: str) -> int:
        """Bytes held here for ``comp_id``'s client because it reads slower than the venue
        writes (0 when none or not connected). Any thread: senders check it so that
        nothing queues without bound behind a slow reader."""
        c = self._relays.get(comp_id)
        if c is None:
            return 0
        if isinstance(c, int):
            return _NATIVE.backlog(c)  # type: ignore[union-attr,no-any-return]
        return len(c.out)

    def disconnect(self, comp_id: str) -> None:
        """Close ``comp_id``'s connection, both sides (any thread; done by the loop)."""
        self._done.put(("drop", comp_id))
        self._wake()

    def active(self) -> list[str]:
        python = [c.comp_id for c in self._conns if c.state == _RELAY_STATE and c.addr != "backend"]
        native = [k for k, r in list(self._relays.items()) if isinstance(r, int) and _NATIVE.alive(r)]  # type: ignore[union-attr]
        return sorted(python + native)

    def _relayed(self, comp_id: str) -> bool:
        """``comp_id`` has a connection relayed now (a second Logon is refused)."""
        live = self._relays.get(comp_id)
        if isinstance(live, int):
            if _NATIVE.alive(live):  # type: ignore[union-attr]
                return True
            del self._relays[comp_id]  # ended by itself: forget it
            return False
        return live is not None and live.state == _RELAY_STATE and live in self._conns
