"""A running venue with its FIX server on ephemeral ports, seeded with the demo's data."""
from __future__ import annotations

import pytest

from cli.demo import demo_commands
from sessions.server import FixConfig, FixServer
from venue.core import Venue


class Running:
    def __init__(self, venue: Venue, server: FixServer, data_dir: str) -> None:
        self.venue = venue
        self.server = server
        self.data_dir = data_dir
        ports = server.ports()
        self.oe, self.dc, self.md = ports["order_entry"], ports["drop_copy"], ports["market_data"]

    def execute(self, cmd):
        return self.venue.execute(cmd)

    def query(self, fn):
        return self.venue.query(fn)

    def wait_offline(self, comp_id: str, timeout: float = 5.0) -> None:
        """QuickFIX refuses a second logon of a session still logged on: wait until a
        previous connection's end has reached the venue."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ctx = self.server.app.ctx.get(comp_id)
            if ctx is None or not ctx.logged_on:
                return
            time.sleep(0.02)
        raise AssertionError(f"{comp_id} still logged on")


def start_venue(data_dir: str, seed: bool = True, extra: tuple = (), **fix_kw) -> Running:
    """``extra``: commands executed after the demo's, before the FIX server starts (so
    that sessions they create are served by its main acceptor)."""
    v = Venue(data_dir)
    v.open()
    v.start()
    if seed:
        for c in demo_commands():
            v.execute(c)
    for c in extra:
        v.execute(c)
    srv = FixServer(v, FixConfig(data_dir=data_dir, ports={"order_entry": 0, "drop_copy": 0, "market_data": 0},
                                 **fix_kw))
    srv.start()
    return Running(v, srv, data_dir)


def stop_venue(r: Running) -> None:
    r.server.stop()
    r.venue.stop()


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    r = start_venue(str(tmp_path_factory.mktemp("venue")))
    yield r
    stop_venue(r)
