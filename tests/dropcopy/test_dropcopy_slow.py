"""A broker that reads slowly costs the venue nothing, over real sockets (the broker's
socket has a 4 KiB receive buffer, so not reading backs up at once):

- drop copy: a broker that stops reading during a flow of executions is disconnected
  once the gateway holds more than ``max_backlog`` for it (lowered here from 4 MB), the
  venue and the outbox thread go on, the gateway never holds much more than the limit,
  and the broker recovers every copy it missed by resend on its next logon, each once;
- trade capture: a broker that does not read while a large TradeCaptureReportRequest is
  answered is waited for (the gateway's buffer for it stays near ``max_backlog``), and
  then gets every report, in order, the last one alone with LastRptRequested(912)=Y.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Iterator

import pytest

from tests.dropcopy.test_dropcopy_entitlement import drained
from tests.dropcopy.world import World, wait_until
from tests.mdsessions.test_mdsession_slow import SlowClient
from tests.sessions.fixclients import Msg
from venue import commands as C
from venue.types import BUY, LIMIT, SELL

LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(str(tmp_path_factory.mktemp("dcslow") / "venue"))
    yield w
    w.stop()


class Peak:
    """The most the gateway held for one CompID, sampled every millisecond."""

    def __init__(self, w: World, comp_id: str) -> None:
        self.gw = w.server.gateways["drop_copy"]
        self.comp_id = comp_id
        self.peak = 0
        self._on = True
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while self._on:
            self.peak = max(self.peak, self.gw.backlog(self.comp_id))
            time.sleep(0.001)

    def stop(self) -> int:
        self._on = False
        self._t.join()
        return self.peak


def crossing(w: World, n: int, tag: str, wait_every: int = 0) -> None:
    """``n`` crossing pairs ALPHA-1 / BETA-1 on BTC-USD, submitted without waiting (each
    pair: two new orders and two fills, four execution reports)."""
    for i in range(n):
        w.venue.submit(C.NewOrder("ALPHA-1", f"{tag}m{i}", "BTC-USD", BUY, LIMIT, 10, 4_000_000))
        w.venue.submit(C.NewOrder("BETA-1", f"{tag}t{i}", "BTC-USD", SELL, LIMIT, 10, 4_000_000))
        if wait_every and i % wait_every == wait_every - 1:
            w.venue.query(lambda e: e.seq)


def read_all(c: SlowClient, quiet: float = 1.0) -> list[Msg]:
    """Everything the client can still read, until EOF or ``quiet`` seconds of silence."""
    out = []
    while True:
        try:
            m = c.recv(quiet)
        except (ConnectionError, OSError):
            return out
        if m is None:
            return out
        out.append(m)


def test_a_slow_broker_is_cut_off_and_recovers_by_resend(world: World) -> None:
    w = world
    dc = w.server.drop_copy
    saved = dc.max_backlog
    dc.max_backlog = LIMIT_BYTES
    w.wait_offline("BROKER-DC")
    slow = SlowClient(w.dc, "BROKER-DC")
    try:
        slow.send("A", [(98, 0), (108, 30), (141, "Y"), (553, "broker"), (554, "broker-demo")])
        slow.expect("A")
        first = w.venue.query(lambda e: e.seq) + 1
        ctx = w.server.app.ctx["BROKER-DC"]
        wait_until(lambda: ctx.logged_on, what="the logon")  # QuickFIX answers the Logon, then tells the venue
        logons = ctx.logons
        peak = Peak(w, "BROKER-DC")
        # the kernel takes a few MB (the sender's buffer grows to tcp_wmem's maximum) before
        # the gateway has to hold anything: flow on until the broker is cut off, then once more
        # (copies while it is offline)
        pairs, after = 0, 0
        while pairs < 10_000 and after < 1:
            after += bool(dc.disconnected)
            crossing(w, 500, f"s{pairs}-", wait_every=100)
            pairs += 500
            drained(w)  # the outbox thread gets through all of it, never waiting for the broker
            time.sleep(0.1)
        held = peak.stop()
        assert dc.disconnected == 1, held
        w.wait_offline("BROKER-DC")
        assert held <= LIMIT_BYTES + 256 * 1024, held  # the limit, plus what was on its way
        # what reached the broker before the cut, then the rest by resend on its next logon
        got = [m for m in read_all(slow) if m.type == "8"]
        assert 0 < len(got) < 4 * pairs
    finally:
        dc.max_backlog = saved
        slow.close()
    last = int(got[-1][34])
    again = SlowClient(w.dc, "BROKER-DC")
    try:
        again.seq = slow.seq  # the same session, its sequence numbers kept: no ResetSeqNumFlag
        again.send("A", [(98, 0), (108, 30), (553, "broker"), (554, "broker-demo")])
        logon = again.expect("A")
        assert int(logon[34]) > last + 1  # a gap: what the broker missed
        wait_until(lambda: ctx.logons == logons + 1 and ctx.logged_on, what="the venue to see the logon")
        again.send("2", [(7, last + 1), (16, 0)])
        resent: list[Msg] = []
        end = time.monotonic() + 30
        while time.monotonic() < end:
            m = again.recv(2.0)
            if m is None:
                break
            if m.type == "8":
                assert m.get(43) == "Y" and m.get(797) == "Y"
                resent.append(m)
    finally:
        again.close()
    ids = [m[17] for m in got + resent]
    assert not [k for k, n in Counter(ids).items() if n > 1]
    want = {k for k in w.expected() if int(k.split("-")[0]) >= first}
    assert set(ids) == want and len(want) == 4 * pairs


def test_trade_capture_waits_for_a_broker_that_does_not_read(world: World) -> None:
    w = world
    tc = w.server.trade_capture
    saved = tc.max_backlog
    tc.max_backlog = LIMIT_BYTES
    # an answer of several MB: the kernel alone takes up to tcp_wmem's maximum (4 MB here)
    # for a client that does not read, before the gateway has to hold anything
    for k in range(24):
        crossing(w, 500, f"tc{k}-", wait_every=250)
    w.settle()
    drained(w)  # their drop copies are all in the (offline) broker's store: none will follow the logon
    w.wait_offline("BROKER-DC")
    slow = SlowClient(w.dc, "BROKER-DC")
    try:
        slow.send("A", [(98, 0), (108, 30), (141, "Y"), (553, "broker"), (554, "broker-demo")])
        slow.expect("A")
        peak = Peak(w, "BROKER-DC")
        before = tc.reports
        slow.send("AD", [(568, "big"), (569, 0)])
        # it does not read: the answer goes out as far as the limit allows, then waits
        wait_until(lambda: tc.reports - before > 0, what="the first reports")
        time.sleep(2.0)
        stalled_at = tc.reports - before
        total = len(w.trades)
        assert stalled_at < total  # held back, not queued in the gateway
        # the limit, plus what was on its way from QuickFIX to the gateway (MB without the wait)
        assert peak.peak <= LIMIT_BYTES + 256 * 1024, peak.peak
        ack = slow.expect("AQ", timeout=10)
        assert ack[750] == "0" and int(ack[748]) == total
        reports = []
        end = time.monotonic() + 60
        while len(reports) < total and time.monotonic() < end:
            m = slow.recv(5.0)
            if m is None:
                break
            if m.type == "AE":
                reports.append(m)
        assert peak.stop() <= LIMIT_BYTES + 256 * 1024
    finally:
        tc.max_backlog = saved
        slow.close()
    ids = [r[571] for r in reports]
    assert ids == [f"{t.seq}-{t.trade_n}" for t in w.trades]  # every trade, once, in trade order
    assert reports[-1].get(912) == "Y" and not [r for r in reports[:-1] if r.get(912) == "Y"]
    assert all(r[568] == "big" and int(r[748]) == total for r in reports)
