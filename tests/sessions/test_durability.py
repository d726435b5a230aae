"""An order acknowledged over FIX survives kill -9 of the venue: on restart the journal is
replayed, the order is in the book, OrderStatusRequest answers for it, and the session
resumes with its sequence numbers (a ResendRequest gets the messages again).

The venue runs as a real `venue demo` subprocess on its own data directory."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from tests.sessions.fixclients import RawClient, now_fix, order

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Demo:
    def __init__(self, data_dir: str, ports: list[int]) -> None:
        self.data_dir, self.ports = data_dir, ports
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "demo", "--data-dir", self.data_dir, "--fix-ports",
             ",".join(map(str, self.ports))],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        end = time.monotonic() + 120
        assert self.proc.stdout is not None
        while time.monotonic() < end:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("FIX 4.4"):
                return "".join(lines)
        self.kill()
        raise AssertionError("the demo did not start:\n" + "".join(lines))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def demo(tmp_path):
    d = Demo(str(tmp_path / "demo"), _free_ports(3))
    yield d
    d.kill()


def test_acknowledged_order_survives_kill_9_and_the_session_resumes(demo):
    out = demo.start()
    assert "seeded a new demo venue" in out
    oe = demo.ports[0]
    a = RawClient(oe, "ALPHA-OE")
    a.logon("alpha", "alpha-demo", reset=True)
    clid = "dur-1"
    a.send("D", order(clid, "BTC-USD", "1", "0.75", "45000.00"))
    ack = a.expect("8", X11=clid)
    assert ack[150] == "0"
    order_id, ack_seq = ack[37], int(ack[34])
    last_in = a.seq - 1  # what the venue has from us

    demo.kill()  # no goodbye, no snapshot, no flush beyond what the journal already made durable
    a.close()

    out = demo.start()
    assert "resumed the demo venue" in out
    b = RawClient(oe, "ALPHA-OE")
    b.seq = last_in + 1
    logon = b.logon("alpha", "alpha-demo", reset=False)
    assert int(logon[34]) == ack_seq + 1  # the venue's numbers carried on
    # we pretend to have missed everything: the venue resends it
    b.send("2", [(7, 1), (16, 0)])
    resent = b.expect("8", X11=clid)
    assert resent[43] == "Y" and resent[37] == order_id and int(resent[34]) == ack_seq
    b.send("H", [(11, clid), (55, "BTC-USD"), (54, "1")])
    status = b.expect("8", X150="I", X11=clid)
    assert status[39] == "0" and status[37] == order_id and Decimal(status[151]) == Decimal("0.75")
    # and it is really in the book: BETA trades against it
    s = RawClient(oe, "BETA-OE")
    s.logon("beta", "beta-demo")
    s.send("D", order("dur-s", "BTC-USD", "2", "0.25", "45000.00"))
    assert s.expect("8", X11="dur-s", X150="F")[31] in ("45000", "45000.00")
    fill = b.expect("8", X11=clid, X150="F")
    assert Decimal(fill[151]) == Decimal("0.5")
    b.close()
    s.close()
    demo.stop()
    assert demo.proc is not None and demo.proc.returncode == 0
