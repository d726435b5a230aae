"""A venue with its market data and FIX server for market-data session tests.

Seeded with the market-data flow's instruments and accounts (tests/marketdata/md_flow.py)
and a market-data session MD-CLIENT (user md, password md-demo, no message limit), or
with the demo's data. The :class:`marketdata.MarketData` is attached before the venue
starts, as ``venue demo`` does, and handed to the FIX server. ``process``: the
market-data sessions run in a process of their own, as in ``venue demo`` (False: in the
venue's process, where a test can reach MarketDataSessions itself)."""
from __future__ import annotations

import time
from typing import Any, Callable

from cli.demo import demo_commands
from marketdata import MarketData
from sessions.auth import hash_password
from sessions.server import FixConfig, FixServer
from tests.marketdata.md_flow import Flow
from venue import access as A
from venue import commands as C
from venue.core import Venue


class MdVenue:
    def __init__(self, data_dir: str, flow: Flow | None = None, *, process: bool = True,
                 max_pending: int | None = None, **options: Any) -> None:
        self.venue = Venue(data_dir, fsync=False)
        self.venue.open()
        self.md = MarketData() if max_pending is None else MarketData(max_pending=max_pending)
        self.md.attach(self.venue)
        self.venue.start()
        self.flow = flow
        cmds: list[Any] = [p.cmd for p in flow.setup] if flow is not None else demo_commands()
        cmds += [C.CreateFirm("QUANT"), A.CreateUser("quant", "QUANT", hash_password("quant-demo")),
                 A.CreateSession("MD-QUANT", "market_data", "QUANT", "quant", "VENUE", "", "", "", False, 0)]
        if flow is not None:
            cmds += [C.CreateFirm("DATA"), A.CreateUser("md", "DATA", hash_password("md-demo")),
                     A.CreateSession("MD-CLIENT", "market_data", "DATA", "md", "VENUE", "", "", "", False, 0)]
        for c in cmds:
            p = self.venue.execute(c)
            assert not any(type(e).__name__ == "CommandRejected" for e in p.events), p.events
        self.server = FixServer(self.venue, FixConfig(data_dir=data_dir, file_log=False,
                                                      ports={"order_entry": 0, "drop_copy": 0, "market_data": 0},
                                                      market_data_process=process, market_data_options=options),
                                market_data=self.md)
        self.server.start()
        self.port = self.server.ports()["market_data"]
        self.oe_port = self.server.ports()["order_entry"]

    def run_flow(self, n: int, waited: float = 0.15) -> None:
        """``n`` commands of the random flow, most queued at once (large batches), a
        fraction ``waited`` waited for (batch boundaries everywhere; 1.0: one batch each)."""
        flow = self.flow
        assert flow is not None
        for _ in range(n):
            cmd = flow.command()
            flow.process(cmd)  # the flow's shadow engine keeps its choices plausible
            if flow.rng.random() < waited:
                self.venue.execute(cmd)
            else:
                self.venue.submit(cmd)
        self.venue.query(lambda e: e.seq)

    def wait_offline(self, comp_id: str, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.server.status()["sessions"].get(comp_id)
            if st is None or not st["logged_on"]:
                return
            time.sleep(0.02)
        raise AssertionError(f"{comp_id} still logged on")

    def configure(self, **settings: Any) -> None:
        """Change MarketDataSessions' settings (and the hub's max_pending) while running."""
        if self.server.md_process is not None:
            self.server.md_process.configure(**settings)
            return
        for k, v in settings.items():
            target = self.md if k == "max_pending" else self.server.md_sessions
            assert hasattr(target, k), k
            setattr(target, k, v)

    def md_status(self) -> dict[str, Any]:
        """MarketDataSessions' counters (sent, built, stalls, skipped, subscriptions) and
        the subscriptions of the hub that serves the sessions (``hub_subscriptions``)."""
        st = dict(self.server.status()["market_data"])
        st.setdefault("hub_subscriptions", self.md.subscriptions())
        return st

    def stop(self) -> None:
        self.server.stop()
        self.venue.stop(snapshot=False)
        self.md.close()


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
