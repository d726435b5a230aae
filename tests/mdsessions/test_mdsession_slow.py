"""A market-data client that stops reading costs nobody anything: over real sockets, while
one client (with a tiny receive buffer) reads nothing during a random flow, the venue
processes every command, a second client keeps receiving every increment and ends with
the engine's book, the gateway never holds more than the stall limit (plus one delivery)
for the slow one, and when the slow client reads again it gets a new W for each of its
books and then follows the engine exactly, without a gap."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Iterator

import pytest
import simplefix

from tests.marketdata.md_flow import SYMBOLS, Flow
from tests.mdsessions.fixbook import FixMdClient, send
from tests.mdsessions.test_mdsession_books import drain, engine_view, matches, request
from tests.mdsessions.venues import MdVenue, wait_until
from tests.sessions.fixclients import Msg, QfClient, now_fix, parse

LIMIT = 64 * 1024
SLOW_SUBS = [(f"l3-{i}", "N") for i in range(6)] + [(f"l2-{i}", "Y") for i in range(6)]  # volume: 24 books


@pytest.fixture(scope="module")
def mv(tmp_path_factory: Any) -> Iterator[MdVenue]:
    v = MdVenue(str(tmp_path_factory.mktemp("mdslow") / "venue"), Flow(77), max_backlog=LIMIT)
    yield v
    v.stop()


class SlowClient:
    """A bare FIX client whose socket has a 4 KiB receive buffer (set before connecting,
    so TCP negotiates a small window), so that not reading backs up fast."""

    def __init__(self, port: int, sender: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sender = sender
        self.seq = 1
        self.parser = simplefix.FixParser()

    def send(self, msg_type: str, fields: list[tuple[int, object]]) -> None:
        m = simplefix.FixMessage()
        for t, v in [(8, "FIX.4.4"), (35, msg_type), (49, self.sender), (56, "VENUE"), (34, self.seq),
                     (52, now_fix())] + fields:
            m.append_pair(t, v)
        self.seq += 1
        self.sock.sendall(m.encode())

    def recv(self, timeout: float) -> Msg | None:
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
                raise ConnectionError("closed by the venue")
            self.parser.append_buffer(data)

    def expect(self, msg_type: str, timeout: float = 10.0) -> Msg:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.recv(end - time.monotonic())
            if m is not None and m.type == msg_type:
                return m
        raise AssertionError(f"no {msg_type}")

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_stops_reading_is_stalled_and_healed_with_snapshots(mv: MdVenue, tmp_path: Any) -> None:
    gw = mv.server.gateways["market_data"]
    slow = SlowClient(mv.port, "MD-CLIENT")
    slow.send("A", [(98, 0), (108, 30), (141, "Y"), (553, "md"), (554, "md-demo")])
    slow.expect("A")
    slow_book = FixMdClient()
    for req, agg in SLOW_SUBS:
        slow.send("V", request(req, 0, "012", agg, SYMBOLS))
    for _ in range(len(SLOW_SUBS) * len(SYMBOLS)):
        slow_book.apply(slow.expect("W").raw)
    fast = QfClient(mv.port, "MD-QUANT", "quant", "quant-demo", str(tmp_path / "fast"))
    fast_book = FixMdClient()
    try:
        assert fast.wait_logon()
        send(fast, "V", request("l3", 0, "012", "N", SYMBOLS))
        wait_until(lambda: (drain(fast, fast_book), len(fast_book.books) == 2)[1], what="the fast client's W")
        peak = [0]
        watching = [True]

        def watch() -> None:
            while watching[0]:
                peak[0] = max(peak[0], gw.backlog("MD-CLIENT"))
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        seq0 = mv.venue.query(lambda e: e.seq)
        for _ in range(8):
            mv.run_flow(500, waited=1.0)  # one batch per command: the most increments
            drain(fast, fast_book)
        seq1 = mv.venue.query(lambda e: e.seq)
        assert seq1 - seq0 >= 4000  # the venue processed the whole flow while the slow client read nothing
        final = {sym: mv.venue.query(lambda e, s=sym: engine_view(e, s)) for sym in SYMBOLS}
        wait_until(lambda: (drain(fast, fast_book),
                            all(matches(fast_book.books[("l3", s)], final[s], 0, "012", "N") for s in SYMBOLS))[1],
                   what="the fast client to hold the engine's book")
        st = mv.md_status()
        assert st["stalls"] >= 1 and st["skipped"] > 1000  # it would have been sent thousands of messages
        watching[0] = False
        watcher.join()
        assert all(b.snapshots == 1 and b.gaps == 0 for b in fast_book.books.values())  # never held back

        # the slow client reads again: what was buffered, then a new W per book, then live X
        def caught_up() -> bool:
            while True:
                m = slow.recv(0.05)
                if m is None:
                    break
                slow_book.apply(m.raw)
            return all(matches(slow_book.books[(req, s)], final[s], 0, "012", agg)
                       for req, agg in SLOW_SUBS for s in SYMBOLS)

        wait_until(caught_up, timeout=60, what="the slow client to catch up")
        for b in slow_book.books.values():
            assert b.gaps == 0 and b.snapshots >= 2, (b.req_id, b.symbol, b.snapshots)
        assert peak[0] <= LIMIT + 256 * 1024, peak[0]  # bounded by the stall limit and one delivery
    finally:
        fast.stop()
        slow.close()
