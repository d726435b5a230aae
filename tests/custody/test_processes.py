"""Custody as a newcomer and an operator meet it: the real ``venue demo`` and ``venue
run`` processes, and ``venue custody ...`` commands as separate processes over the
control socket (the commands of the README's custody section, verbatim)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterator

import pytest

from tests.cli.test_processes import ROOT, start, stop, venue_cmd

DEST = "0x1111111111111111111111111111111111111111"


@pytest.fixture
def data_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="vcp")  # short: a Unix socket path has at most 107 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ok(data_dir: str, *args: str, env: dict[str, str] | None = None) -> Any:
    r = venue_cmd(data_dir, *args, "--json", env=env)
    assert r.returncode == 0, (args, r.stderr)
    return json.loads(r.stdout)


def eventually(fn: Callable[[], Any], timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.5)


def eth(data_dir: str, account: str) -> tuple[str, str]:
    rows = {r["asset"]: r for r in ok(data_dir, "balances", "--account", account)}
    return rows["ETH"]["available"], rows["ETH"]["held"]


def test_a_newcomer_deposits_trades_nothing_and_withdraws_with_approvals_in_the_demo(data_dir: str) -> None:
    demo = start(["demo", "--data-dir", data_dir, "--fix-ports", "0,0,0"], data_dir, "Control:")
    try:
        first = ok(data_dir, "custody", "address", "ALPHA-1", "ETH")
        again = ok(data_dir, "custody", "address", "ALPHA-1", "ETH")
        assert first["address"] == again["address"] and first["address"].startswith("0x")
        assert eth(data_dir, "ALPHA-1") == ("1000", "0")  # the demo's seeded balance
        sent = ok(data_dir, "custody", "faucet", "ETH", "ALPHA-1", "2.5")
        assert sent["to"] == first["address"]
        assert eventually(lambda: eth(data_dir, "ALPHA-1") == ("1002.5", "0")), eth(data_dir, "ALPHA-1")
        dep = ok(data_dir, "custody", "deposits", "--account", "ALPHA-1")
        assert len(dep) == 1 and dep[0]["txid"] == sent["txid"] and dep[0]["confirmations"] >= 3

        # a withdrawal: the destination is added, a second person approves it; the
        # request is held at once and paid after two approvers other than the requester
        alice = ok(data_dir, "operators", "set", "ops-alice")["secret"]
        bob = ok(data_dir, "operators", "set", "ops-bob")["secret"]
        as_alice = {"VENUE_OPERATOR": "ops-alice", "VENUE_OPERATOR_SECRET": alice}
        as_bob = {"VENUE_OPERATOR": "ops-bob", "VENUE_OPERATOR_SECRET": bob}
        ok(data_dir, "custody", "addresses", "add", "ALPHA-1", "ETH", DEST, "--label", "my wallet")
        assert ok(data_dir, "custody", "addresses", "approve", "ALPHA-1", "ETH", DEST, env=as_alice)["state"] == "approved"
        w = ok(data_dir, "custody", "withdraw", "ALPHA-1", "ETH", "1", DEST, "--request-id", "first")
        assert w["id"] == "wd:ALPHA-1:first" and w["state"] == "pending_approval"
        assert eth(data_dir, "ALPHA-1") == ("1001.5", "1")  # held at once
        own = venue_cmd(data_dir, "custody", "approve", w["id"])
        assert own.returncode == 1 and "self_approval" in own.stderr  # the requester cannot approve
        ok(data_dir, "custody", "approve", w["id"], env=as_alice)
        assert ok(data_dir, "custody", "approve", w["id"], env=as_bob)["state"] == "approved"
        assert eventually(lambda: ok(data_dir, "custody", "withdrawals", "--state", "completed"))
        assert ok(data_dir, "custody", "chain-balance", DEST, "ETH")["ETH"] == "1"
        assert eth(data_dir, "ALPHA-1") == ("1001.5", "0")
        status = ok(data_dir, "status")["custody"]
        assert status["signer"] == "pkcs11" and status["embedded"] is True
    finally:
        assert stop(demo) in (0, -11)  # see tests/cli/test_processes.py on QuickFIX's stop()
    assert not os.path.exists(os.path.join(data_dir, "control.sock"))

    # a restarted demo has a fresh embedded chain: custody says so and carries on
    again = start(["demo", "--data-dir", data_dir, "--fix-ports", "0,0,0"], data_dir, "Control:")
    try:
        assert eth(data_dir, "ALPHA-1") == ("1001.5", "0")  # the ledger kept what was credited
        ok(data_dir, "custody", "faucet", "ETH", "ALPHA-1", "0.5")
        assert eventually(lambda: eth(data_dir, "ALPHA-1") == ("1002", "0")), eth(data_dir, "ALPHA-1")
        trail = ok(data_dir, "custody", "audit", "--subject", "ethereum")
        assert any(t["action"] == "chain_replaced" for t in trail)
    finally:
        stop(again)


def test_the_demo_with_a_fix_port_in_use_says_so_in_one_line(data_dir: str) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VENUE_")}
        r = subprocess.run([sys.executable, "-m", "cli", "demo", "--data-dir", data_dir, "--fix-ports", f"{port},0,0"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "already in use" in r.stderr
    assert not os.path.exists(os.path.join(data_dir, "control.sock"))  # everything it started is stopped


CONFIG = """
[venue]
data_dir = "{data_dir}"

[fix]
order_entry_port = 0
drop_copy_port = 0
market_data_port = 0
"""


def test_venue_run_starts_custody_when_the_data_directory_asks_for_it(data_dir: str, tmp_path) -> None:
    venue_dir = os.path.join(data_dir, "v")
    cfg = tmp_path / "venue.toml"
    cfg.write_text(CONFIG.format(data_dir=venue_dir))
    ok(venue_dir, "init", "--config", str(cfg))
    p = start(["run", "--config", str(cfg)], venue_dir, "venue running")
    try:
        down = venue_cmd(venue_dir, "custody", "address", "ALPHA-1", "ETH")
        assert down.returncode == 1 and "custody is not running" in down.stderr  # not asked for
    finally:
        stop(p)
    with open(os.path.join(venue_dir, "custody.toml"), "w") as f:
        f.write("confirmations = 2\ndev_block_seconds = 0.2\napprovers = [\"ops-alice\", \"ops-bob\"]\n")
    p = start(["run", "--config", str(cfg)], venue_dir, "venue running")
    try:
        ok(venue_dir, "firms", "create", "ACME")
        ok(venue_dir, "accounts", "create", "ACME-1", "--firm", "ACME")
        addr = ok(venue_dir, "custody", "address", "ACME-1", "ETH")
        assert addr["confirmations"] == 2
        ok(venue_dir, "custody", "faucet", "ETH", "ACME-1", "3")
        assert eventually(lambda: ok(venue_dir, "balances", "--account", "ACME-1") ==
                          [{"account": "ACME-1", "asset": "ETH", "available": "3", "held": "0", "total": "3"}])
    finally:
        assert stop(p) in (0, -11)
    # a named PKCS#11 module that does not exist stops it with one line, not a quiet fall back
    r = venue_cmd(venue_dir, "run", "--config", str(cfg), env={"VENUE_PKCS11_MODULE": "/nonexistent/libhsm.so"})
    assert r.returncode == 1 and "no such PKCS#11 module" in r.stderr and len(r.stderr.strip().splitlines()) == 1
