"""A store-backed demo venue with its FIX server, for drop-copy tests.

The venue is started as ``venue demo`` starts it (cli.runtime.start_venue: the core, its
SQL store under the data directory and the control endpoint), seeded with the demo's
firms and sessions plus a firm GAMMA (account GAMMA-1) that the broker BROKER-DC is not
entitled to. A listener records, from the venue's own durable events, every execution
report the engine produced (ExecID -> what it says), every trade, to compare with what
the broker received, and every control command applied."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from cli.demo import ASSETS, demo_commands
from cli.runtime import RunningVenue, start_venue
from sessions.server import FixConfig, FixServer
from venue import commands as C
from venue.events import AdminApplied, Execution, OrderRejected, Trade
from venue.types import AccountKind, STP

ENTITLED = ("ALPHA", "BETA")


class World:
    def __init__(self, data_dir: str) -> None:
        self.running: RunningVenue = start_venue(data_dir, fsync=False)
        self.venue = self.running.venue
        self.store = self.running.store
        self.lock = threading.Lock()
        self.executions: dict[str, dict[str, Any]] = {}  # ExecID -> facts, every firm
        self.trades: list[Any] = []
        self.admin: list[AdminApplied] = []  # control commands applied (sessions, firms, ...)
        self.venue.subscribe(self._record)
        cmds = demo_commands() + [C.CreateFirm("GAMMA", "Gamma Trading"),
                                  C.CreateAccount("GAMMA-1", "GAMMA", int(AccountKind.CASH), 200, 500,
                                                  int(STP.CANCEL_NEWEST))]
        for asset, amount in (("USD", "1000000"), ("ETH", "1000"), ("BTC", "100")):
            cmds.append(C.Deposit(f"demo-GAMMA-1-{asset}", "GAMMA-1", asset, ASSETS[asset].to_atoms(amount)))
        if self.running.report.last_seq == 0:  # a new venue (a restarted one keeps its data)
            for c in cmds:
                self.venue.execute(c)
        self.server = FixServer(self.venue, FixConfig(data_dir=data_dir, file_log=False,
                                                      ports={"order_entry": 0, "drop_copy": 0, "market_data": 0}),
                                store=self.store)
        self.server.start()
        ports = self.server.ports()
        self.oe, self.dc = ports["order_entry"], ports["drop_copy"]

    def _record(self, batch: list[Any]) -> None:
        with self.lock:
            for p in batch:
                for ev in p.events:
                    t = type(ev)
                    if t is Execution:
                        self.executions[f"{ev.seq}-{ev.exec_n}"] = {
                            "firm": ev.info.firm, "account": ev.info.account, "order_id": str(ev.info.order_id),
                            "kind": ev.kind, "reason": ev.reason, "cl_ord_id": ev.cl_ord_id}
                    elif t is OrderRejected:
                        self.executions[f"{ev.seq}-{ev.exec_n}"] = {
                            "firm": ev.firm, "account": ev.cmd.account, "order_id": "NONE", "kind": -1,
                            "reason": ev.code, "cl_ord_id": ev.cmd.cl_ord_id}
                    elif t is Trade:
                        self.trades.append(ev)
                    elif t is AdminApplied:
                        self.admin.append(ev)

    def expected(self, firms: tuple[str, ...] = ENTITLED) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: v for k, v in self.executions.items() if v["firm"] in firms}

    def wait_offline(self, comp_id: str, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ctx = self.server.app.ctx.get(comp_id)
            if ctx is None or not ctx.logged_on:
                return
            time.sleep(0.02)
        raise AssertionError(f"{comp_id} still logged on")

    def settle(self) -> None:
        """Everything submitted so far is processed and in the store."""
        seq = self.venue.query(lambda e: e.seq)
        assert self.store is not None and self.store.wait_for(seq, 30)

    def stop(self) -> None:
        self.server.stop()
        self.running.stop()


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
