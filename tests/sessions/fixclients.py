"""Two independent FIX clients for end-to-end tests over real sockets.

``RawClient`` speaks FIX with simplefix over a plain (or TLS) socket, and does nothing
for you: it is how malformed, garbled and hostile traffic is sent. ``QfClient`` is a
QuickFIX initiator (its own engine, store and session logic), the way an institution's
FIX stack would connect.
"""
from __future__ import annotations

import base64
import os
import queue
import socket
import ssl
import sys
import threading
import time
from datetime import datetime, timezone

import quickfix as fix
import simplefix

SOH = "\x01"


def now_fix() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Msg(dict):
    """A received message: tag (int) -> value (str) of the first occurrence; ``raw`` keeps all."""

    raw: bytes = b""

    @property
    def type(self) -> str:
        return self.get(35, "")

    def __repr__(self) -> str:
        return self.raw.decode(errors="replace").replace(SOH, "|")


def parse(raw: bytes) -> Msg:
    m = Msg()
    for part in raw.split(b"\x01"):
        if part:
            t, _, v = part.partition(b"=")
            m.setdefault(int(t), v.decode())
    m.raw = raw
    return m


class RawClient:
    def __init__(self, port: int, sender: str, host: str = "127.0.0.1", target: str = "VENUE",
                 tls: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=10)
        self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.sender = sender
        self.target = target
        self.seq = 1
        self.parser = simplefix.FixParser()
        self.inbox: list[Msg] = []
        self.received: list[bytes] = []

    # -- sending ------------------------------------------------------------------------
    def build(self, msg_type: str, fields: list[tuple[int, object]], seq: int | None = None) -> simplefix.FixMessage:
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4")
        m.append_pair(35, msg_type)
        m.append_pair(49, self.sender)
        m.append_pair(56, self.target)
        m.append_pair(34, self.seq if seq is None else seq)
        m.append_pair(52, now_fix())
        for t, v in fields:
            m.append_pair(t, v)
        if seq is None:
            self.seq += 1
        return m

    def send(self, msg_type: str, fields: list[tuple[int, object]]) -> None:
        self.sock.sendall(self.build(msg_type, fields).encode())

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def logon(self, user: str | None, password: str | None, reset: bool = True, extra: list | None = None,
              expect: bool = True) -> Msg | None:
        fields: list[tuple[int, object]] = [(98, 0), (108, 30)]
        if reset:
            fields.append((141, "Y"))
        if user is not None:
            fields.append((553, user))
        if password is not None:
            fields.append((554, password))
        fields += extra or []
        self.send("A", fields)
        return self.expect("A") if expect else None

    def signed_logon(self, user: str, key, reset: bool = True, extra: list | None = None,
                     tamper: bool = False) -> bytes:
        """Binance-style: Ed25519 over 35,49,56,34,52 joined by SOH, base64 in RawData(96).
        Returns the bytes sent (to replay them)."""
        data = signed_logon_bytes(self.sender, self.target, user, key, self.seq, now_fix(), reset, extra, tamper)
        self.seq += 1
        self.sock.sendall(data)
        return data

    # -- receiving ----------------------------------------------------------------------
    def recv(self, timeout: float = 5.0) -> Msg | None:
        """The next message, or None on timeout; raises ConnectionError when closed."""
        if self.inbox:
            return self.inbox.pop(0)
        end = time.monotonic() + timeout
        while True:
            raw = self.parser.get_message()
            if raw is not None:
                return parse(raw.encode())
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise ConnectionError(f"closed by the venue (received: {b''.join(self.received)[-300:]!r})")
            self.received.append(data)
            self.parser.append_buffer(data)

    def expect(self, msg_type: str, timeout: float = 5.0, **match: str) -> Msg:
        """The next message of ``msg_type`` (others are kept for later), answering
        TestRequests and ignoring Heartbeats."""
        end = time.monotonic() + timeout
        kept: list[Msg] = []
        try:
            while time.monotonic() < end:
                try:
                    m = self.recv(max(0.0, end - time.monotonic()))
                except ConnectionError as e:
                    raise ConnectionError(f"{e}; before it: {kept}") from None
                if m is None:
                    break
                if m.type == "1":
                    self.send("0", [(112, m[112])])
                    continue
                if m.type == "0" and msg_type != "0":
                    continue
                if m.type == msg_type and all(m.get(int(k[1:])) == v for k, v in match.items()):
                    return m
                kept.append(m)
        finally:
            self.inbox = kept + self.inbox
        raise AssertionError(f"no {msg_type} {match} within {timeout}s; got {kept}")

    def closed(self, timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.recv(0.2) is None:
                    continue
            except (ConnectionError, OSError):
                return True
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def signed_logon_bytes(sender: str, target: str, user: str, key, seq: int, sending_time: str, reset: bool = True,
                       extra: list | None = None, tamper: bool = False) -> bytes:
    payload = SOH.join(("A", sender, target, str(seq), sending_time)).encode()
    sig = base64.b64encode(key.sign(payload + (b"x" if tamper else b""))).decode()
    m = simplefix.FixMessage()
    for t, v in ((8, "FIX.4.4"), (35, "A"), (49, sender), (56, target), (34, seq), (52, sending_time), (98, 0),
                 (108, 30), (95, len(sig)), (96, sig), (553, user)):
        m.append_pair(t, v)
    if reset:
        m.append_pair(141, "Y")
    for t, v in extra or []:
        m.append_pair(t, v)
    return m.encode()


def logged_on(port: int, sender: str, user: str, password: str, ext: bool = False, **kw) -> RawClient:
    """``ext``: ask for the venue's extension tags (Logon 25005=Y)."""
    c = RawClient(port, sender, **kw)
    c.logon(user, password, extra=[(25005, "Y")] if ext else None)
    return c


def order(clid: str, symbol: str, side: str, qty: str, price: str | None = None, ord_type: str = "2",
          tif: str = "1", extra: list | None = None) -> list[tuple[int, object]]:
    f: list[tuple[int, object]] = [(11, clid), (55, symbol), (54, side), (38, qty), (40, ord_type), (59, tif),
                                   (60, now_fix())]
    if price is not None:
        f.append((44, price))
    return f + (extra or [])


# ------------------------------------------------------------------------------ QuickFIX initiator
def stock_dictionary() -> str:
    """QuickFIX's own FIX 4.4 data dictionary, as installed with the package: what an
    institution's unmodified FIX engine validates the venue's messages against."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, "share", "quickfix", "FIX44.xml")
        if os.path.exists(path):
            return path
    raise FileNotFoundError("QuickFIX's FIX44.xml is not installed")


class _QfApp(fix.Application):
    def __init__(self, user: str, password: str, reset: bool) -> None:
        super().__init__()
        self.user, self.password, self.reset = user, password, reset
        self.inbox: queue.Queue = queue.Queue()
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()
        self.sid: fix.SessionID | None = None
        self.admin: list[str] = []
        self.rejects_sent: list[str] = []  # session Rejects this engine sent: messages it refused

    def onCreate(self, sid):  # noqa: N802
        self.sid = sid

    def onLogon(self, sid):  # noqa: N802
        self.logged_out.clear()
        self.logged_on.set()

    def onLogout(self, sid):  # noqa: N802
        self.logged_on.clear()
        self.logged_out.set()

    def toAdmin(self, msg, sid):  # noqa: N802
        if msg.getHeader().getField(35) == "3":
            self.rejects_sent.append(msg.toString().replace(SOH, "|"))
        if msg.getHeader().getField(35) == "A":
            msg.setField(553, self.user)
            msg.setField(554, self.password)
            if self.reset:
                msg.setField(141, "Y")

    def fromAdmin(self, msg, sid):  # noqa: N802
        self.admin.append(msg.toString().replace(SOH, "|"))

    def toApp(self, msg, sid):  # noqa: N802
        pass

    def fromApp(self, msg, sid):  # noqa: N802
        self.inbox.put(parse(msg.toString().encode()))


class QfClient:
    """A QuickFIX initiator with its own FileStore under ``store_dir``, validating what it
    receives against ``dictionary`` (default: the venue's, fix_config/FIX44.xml). ``stock``:
    behave as an unmodified FIX 4.4 engine, QuickFIX's own FIX44.xml and its default
    validation settings. A message with a field the dictionary does not declare is refused
    with a session Reject (recorded in ``rejects_sent``) and never delivered."""

    def __init__(self, port: int, sender: str, user: str, password: str, store_dir: str, reset: bool = True,
                 dictionary: str | None = None, stock: bool = False) -> None:
        os.makedirs(store_dir, exist_ok=True)
        cfg = os.path.join(store_dir, f"{sender}.cfg")
        if stock:
            dd = stock_dictionary()
        else:
            dd = dictionary or os.path.join(os.path.dirname(__file__), "..", "..", "fix_config", "FIX44.xml")
        with open(cfg, "w") as f:
            f.write(f"""[DEFAULT]
ConnectionType=initiator
ReconnectInterval=1
FileStorePath={store_dir}/store
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
SocketNodelay=Y
UseDataDictionary=Y
DataDictionary={os.path.abspath(dd)}
{"" if stock else "ValidateFieldsOutOfOrder=N"}
[SESSION]
BeginString=FIX.4.4
SenderCompID={sender}
TargetCompID=VENUE
SocketConnectHost=127.0.0.1
SocketConnectPort={port}
""")
        self.app = _QfApp(user, password, reset)
        self.settings = fix.SessionSettings(cfg)
        self.store = fix.FileStoreFactory(self.settings)
        self.initiator = fix.SocketInitiator(self.app, self.store, self.settings)
        self.initiator.start()

    @property
    def sid(self) -> fix.SessionID:
        assert self.app.sid is not None
        return self.app.sid

    def wait_logon(self, timeout: float = 10.0) -> bool:
        return self.app.logged_on.wait(timeout)

    def send(self, msg_type: str, fields: list[tuple[int, object]]) -> None:
        m = fix.Message()
        m.getHeader().setField(35, msg_type)
        for t, v in fields:
            m.setField(t, str(v))
        fix.Session.sendToTarget(m, self.sid)

    def expect(self, msg_type: str, timeout: float = 5.0, **match: str) -> Msg:
        end = time.monotonic() + timeout
        kept = []
        try:
            while time.monotonic() < end:
                try:
                    m = self.app.inbox.get(timeout=max(0.01, end - time.monotonic()))
                except queue.Empty:
                    break
                if m.type == msg_type and all(m.get(int(k[1:])) == v for k, v in match.items()):
                    return m
                kept.append(m)
        finally:
            for m in kept:
                self.app.inbox.put(m)
        raise AssertionError(f"no {msg_type} {match} within {timeout}s; got {kept}")

    @property
    def rejects_sent(self) -> list[str]:
        return self.app.rejects_sent

    def stop(self) -> None:
        self.initiator.stop()
