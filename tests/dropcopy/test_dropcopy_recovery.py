"""Drop-copy recovery over real sockets with a QuickFIX initiator as the broker's engine
(its own FileStore): executions that happen while the broker is logged out, or while its
connection is cut (the gateway drops it mid-flow and the initiator reconnects), reach it
through the FIX sequence gap (ResendRequest; the copies come again with PossDupFlag=Y),
each ExecID exactly once in the end."""
from __future__ import annotations

import gc
import itertools
import queue
import threading
import time
from collections import Counter
from typing import Any, Iterator

import pytest

from tests.dropcopy.world import World, wait_until
from tests.sessions.fixclients import Msg, QfClient
from venue import commands as C
from venue.types import BUY, LIMIT, SELL

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(str(tmp_path_factory.mktemp("dcrecovery") / "venue"))
    yield w
    w.stop()


class Broker:
    """A QuickFIX initiator for BROKER-DC whose store survives it, and what it received."""

    def __init__(self, world: World, store_dir: str, reset: bool) -> None:
        self.client = QfClient(world.dc, "BROKER-DC", "broker", "broker-demo", store_dir, reset=reset)
        self.client.app.reset = False  # later (re)logons keep the sequence numbers: recovery by resend
        self.got: list[Msg] = []
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop:
            try:
                self.got.append(self.client.app.inbox.get(timeout=0.1))
            except queue.Empty:
                pass

    def ids(self) -> list[str]:
        return [m[17] for m in list(self.got) if m.type == "8"]

    def close(self) -> None:
        """Log out and destroy the initiator (QuickFIX registers sessions process-wide)."""
        self.client.stop()
        self._stop = True
        self._thread.join(5)
        del self.client.initiator, self.client.store, self.client.settings
        gc.collect()


def trades(w: World, n: int, wait: bool = True) -> None:
    """``n`` crossing pairs between ALPHA-1 and BETA-1 on BTC-USD (each: two new orders, two fills)."""
    for _ in range(n):
        k = next(_ids)
        maker, taker = ("ALPHA-1", "BETA-1") if k % 2 else ("BETA-1", "ALPHA-1")
        cmds = [C.NewOrder(maker, f"m{k}", "BTC-USD", BUY, LIMIT, 100, 4_000_000),
                C.NewOrder(taker, f"t{k}", "BTC-USD", SELL, LIMIT, 100, 4_000_000)]
        for c in cmds:
            if wait:
                w.venue.execute(c)
            else:
                w.venue.submit(c)


def test_executions_missed_while_offline_or_cut_off_arrive_by_resend(world: World, tmp_path: Any) -> None:
    w = world
    store_dir = str(tmp_path / "broker")
    broker = Broker(w, store_dir, reset=True)
    try:
        assert broker.client.wait_logon()
        trades(w, 10)
        wait_until(lambda: set(broker.ids()) >= set(w.expected()), what="live copies")
        live = len(broker.ids())
    finally:
        broker.close()
    w.wait_offline("BROKER-DC")

    # offline: the venue keeps copying into the session's store
    trades(w, 25)
    offline = set(w.expected()) - set(broker.ids())
    assert len(offline) == 25 * 4

    broker2 = Broker(w, store_dir, reset=False)
    try:
        assert broker2.client.wait_logon()
        wait_until(lambda: set(broker2.ids()) >= offline, what="the copies sent while offline")
        resent = [m for m in broker2.got if m.type == "8"]
        assert all(m.get(43) == "Y" for m in resent)  # PossDupFlag: a resend
        assert all(m.get(797) == "Y" for m in resent)

        # cut off mid-flow: the gateway drops the connection; the initiator reconnects and asks again
        ctx = w.server.app.ctx["BROKER-DC"]
        logons = ctx.logons
        trades(w, 20, wait=False)
        w.server.gateways["drop_copy"].disconnect("BROKER-DC")
        trades(w, 20, wait=False)
        w.venue.query(lambda e: e.seq)
        wait_until(lambda: ctx.logons > logons and ctx.logged_on, timeout=10,
                   what="the broker to lose the line and log on again")
        wait_until(lambda: set(broker2.ids()) | set(broker.ids()) >= set(w.expected()), timeout=30,
                   what="every copy after the reconnect")
        time.sleep(0.3)
        every = broker.ids() + broker2.ids()
    finally:
        broker2.close()
    dup = [k for k, n in Counter(every).items() if n > 1]
    assert not dup, dup[:5]
    assert set(every) == set(w.expected())
    assert live >= 40 and len(every) == live + 25 * 4 + 40 * 4
