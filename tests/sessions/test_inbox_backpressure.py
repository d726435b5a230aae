"""A client that floods the venue fills the queue between QuickFIX's connection threads and
the FIX inbox (QuickFIX patch 6); its connection thread then waits for room. The inbox
thread also runs the sequencer's step and sends the ExecutionReports itself (into that
same session), so the flood must not wedge the two against each other: every order is
answered, and the session (and another one) still works afterwards."""
from __future__ import annotations

import socket
import threading
import time

from sessions import application
from sessions.auth import hash_password
from tests.sessions.conftest import start_venue, stop_venue
from tests.sessions.fixclients import RawClient, logged_on, now_fix, order
from venue import access as A

FLOOD = 3000


def test_a_flood_through_a_full_inbox_queue_is_answered_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(application, "INBOX_LIMIT", 8)  # the queue is full almost at once
    extra = (A.CreateUser("flood", "ALPHA", hash_password("flood-pw")),
             A.CreateSession("FLOOD-OE", "order_entry", "ALPHA", "flood", "VENUE", "ALPHA-1", msg_rate=0))
    r = start_venue(str(tmp_path / "v"), extra=extra)
    try:
        c = logged_on(r.oe, "FLOOD-OE", "flood", "flood-pw")
        data = b"".join(c.build("D", order(f"f{i}", "BTC-USD", "1" if i % 2 else "2", "0.01",
                                           f"{20000 + i % 7}.00")).encode() for i in range(FLOOD))
        answered: set[str] = set()
        buf = bytearray()
        done = threading.Event()

        def read() -> None:  # the client reads while it writes, as a real one would
            c.sock.settimeout(0.5)
            deadline = time.monotonic() + 60
            while len(answered) < FLOOD and time.monotonic() < deadline:
                try:
                    chunk = c.sock.recv(1 << 16)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf.extend(chunk)
                while True:
                    end = buf.find(b"\x0110=")
                    if end < 0 or len(buf) < end + 8:
                        break
                    msg, rest = bytes(buf[:end]), buf[end + 8:]
                    buf[:] = rest
                    if b"\x0135=8\x01" in msg:
                        i = msg.find(b"\x0111=")
                        answered.add(msg[i + 4:msg.find(b"\x01", i + 4)].decode())
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        c.sock.sendall(data)  # one burst, far faster than the venue answers
        reader.join(90)
        assert done.is_set() and len(answered) == FLOOD, f"{len(answered)} of {FLOOD} orders answered"
        c.sock.settimeout(None)
        c.send("1", [(112, "still-there")])  # the flooding session itself goes on
        assert c.expect("0", X112="still-there")[112] == "still-there"
        other = logged_on(r.oe, "ALPHA-OE", "alpha", "alpha-demo")  # and so do the others
        other.send("D", order("after-flood", "BTC-USD", "1", "0.01", "19000.00"))
        assert other.expect("8", X11="after-flood", X150="0")[39] == "0"
        other.close()
        c.close()
    finally:
        stop_venue(r)
