"""Drop copy follows entitlement as it stood when each execution happened, over real
sockets: an UpdateSession that takes a firm away stops its copies exactly at that
command, and one that gives it back resumes them exactly there, however late the outbox
thread gets to the batch; a session disabled by the operator keeps its entitlement, the
venue goes on storing its copies, and once enabled again it gets them all by resend
(a QuickFIX initiator with its own store), each ExecID once. A session created while
the venue runs gets the copies of the executions right behind its creation."""
from __future__ import annotations

import gc
import threading
from collections import Counter
from typing import Any, Iterator

import pytest

from tests.dropcopy.clients import Reader
from tests.dropcopy.test_dropcopy_recovery import Broker, trades
from tests.dropcopy.world import World, wait_until
from tests.sessions.fixclients import QfClient, logged_on
from venue.access import CreateSession, SetSessionEnabled, UpdateSession


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(str(tmp_path_factory.mktemp("dcentitlement") / "venue"))
    yield w
    w.stop()


def entitle(w: World, firms: str) -> UpdateSession:
    rec = w.server.app.registry.sessions["BROKER-DC"]
    return UpdateSession("BROKER-DC", rec.default_account, ",".join(rec.accounts), firms, rec.cancel_on_disconnect,
                         rec.msg_rate)


class HeldOutbox:
    """Holds the application's outbox thread (every reply and copy waits behind it)
    until released: the venue meanwhile runs on, so the registry is well ahead of the
    batches the outbox has yet to send."""

    def __init__(self, w: World) -> None:
        self.go = threading.Event()
        started = threading.Event()
        w.server.app.outbox.put(lambda: (started.set(), self.go.wait(30)))
        assert started.wait(10)

    def release(self) -> None:
        self.go.set()


def drained(w: World) -> None:
    """Everything processed so far has gone through the outbox."""
    w.venue.query(lambda e: e.seq)
    done = threading.Event()
    w.venue.call(lambda e: None, lambda _r: w.server.app.outbox.put(done.set))
    assert done.wait(10)


def test_an_entitlement_change_applies_at_its_command(world: World) -> None:
    w = world
    w.wait_offline("BROKER-DC")
    broker = Reader(logged_on(w.dc, "BROKER-DC", "broker", "broker-demo"))
    try:
        first = w.venue.query(lambda e: e.seq) + 1
        held = HeldOutbox(w)
        try:
            trades(w, 4, wait=False)  # ALPHA and BETA: copied
            w.venue.submit(entitle(w, "ALPHA"))  # BETA taken away ...
            trades(w, 4, wait=False)  # ... so BETA's side of these is not copied
            w.venue.submit(entitle(w, "ALPHA,BETA"))  # ... and given back
            trades(w, 4, wait=False)
            w.venue.query(lambda e: e.seq)  # all processed while nothing was sent yet
        finally:
            held.release()
        drained(w)
        ex = {k: v for k, v in w.expected().items() if int(k.split("-")[0]) >= first}
        updates = sorted(p.seq for p in w.admin if type(p.cmd) is UpdateSession and p.seq >= first)
        assert len(updates) == 2
        want = {k for k, v in ex.items()
                if v["firm"] == "ALPHA" or not updates[0] < int(k.split("-")[0]) < updates[1]}
        assert {k for k, v in ex.items() if v["firm"] == "BETA"} - want  # some BETA executions fell in between
        wait_until(lambda: {m[17] for m in broker.of_type("8")} >= want, what="the copies")
        drained(w)
        got = [m[17] for m in broker.of_type("8") if int(m[17].split("-")[0]) >= first]
    finally:
        broker.stop()
        w.venue.execute(entitle(w, "ALPHA,BETA"))
    assert not [k for k, n in Counter(got).items() if n > 1]
    assert set(got) == want


def test_a_disabled_session_keeps_its_copies_for_resend(world: World, tmp_path: Any) -> None:
    w = world
    w.wait_offline("BROKER-DC")
    broker = Broker(w, str(tmp_path / "broker"), reset=True)
    try:
        assert broker.client.wait_logon()
        first = w.venue.query(lambda e: e.seq) + 1
        trades(w, 3)
        wait_until(lambda: {k for k in w.expected() if int(k.split("-")[0]) >= first} <= set(broker.ids()),
                   what="live copies")
        ctx = w.server.app.ctx["BROKER-DC"]
        logons = ctx.logons
        w.venue.execute(SetSessionEnabled("BROKER-DC", False))
        w.wait_offline("BROKER-DC")  # the venue logged it out; the gateway refuses its logons now
        trades(w, 10)  # executions while it is disabled
        drained(w)  # their copies have been handed to QuickFIX (or not) by now
        assert not ctx.logged_on and ctx.logons == logons
        w.venue.execute(SetSessionEnabled("BROKER-DC", True))
        wait_until(lambda: ctx.logged_on and ctx.logons > logons, timeout=15, what="the broker to log on again")
        want = {k for k in w.expected() if int(k.split("-")[0]) >= first}
        wait_until(lambda: want <= set(broker.ids()), timeout=15, what="the copies of the disabled time")
        drained(w)
        got = [i for i in broker.ids() if int(i.split("-")[0]) >= first]
    finally:
        broker.close()
    assert not [k for k, n in Counter(got).items() if n > 1]
    assert set(got) == want and len(want) == 13 * 4


def test_a_session_created_while_running_gets_every_copy_from_its_creation(world: World, tmp_path: Any) -> None:
    """Its QuickFIX session appears a moment after the CreateSession (a new acceptor, on
    another thread); the executions right behind the command are copied all the same."""
    w = world
    w.venue.submit(CreateSession("BROKER2-DC", "drop_copy", "BROKER", "broker", "VENUE", "", "", "ALPHA", False, 0))
    trades(w, 5, wait=False)  # in the same batch as the creation, or right behind it
    w.venue.query(lambda e: e.seq)
    created = max(p.seq for p in w.admin if type(p.cmd) is CreateSession and p.cmd.comp_id == "BROKER2-DC")
    want = {k for k, v in w.expected().items() if v["firm"] == "ALPHA" and int(k.split("-")[0]) > created}
    assert len(want) == 5 * 2
    client = QfClient(w.dc, "BROKER2-DC", "broker", "broker-demo", str(tmp_path / "broker2"), reset=False)
    got: list[str] = []
    try:
        assert client.wait_logon(15)

        def copies() -> set[str]:
            while not client.app.inbox.empty():
                m = client.app.inbox.get()
                if m.type == "8":
                    got.append(m[17])
            return set(got)

        wait_until(lambda: copies() >= want, timeout=15, what="the copies since the creation")
        drained(w)
        copies()
    finally:
        client.stop()
        del client.initiator, client.store, client.settings
        gc.collect()
    assert not [k for k, n in Counter(got).items() if n > 1]
    assert set(got) == want
