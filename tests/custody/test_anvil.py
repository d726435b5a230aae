"""Custody against a real JSON-RPC node (anvil): deposits, a withdrawal, and a process
killed after signing, before confirmation."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest
from eth_account import Account

from custody.ethereum import DevChain, EthereumChain

from tests.custody.anvil import Anvil
from tests.custody.world import World, config

DEST = Account.from_key(b"\x44" * 32).address
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    a = Anvil()
    yield a
    a.stop()


def _world(tmp_path, anvil: Anvil) -> tuple[World, str]:
    eth = EthereumChain.connect(anvil.url)
    dev = DevChain(eth)
    token = dev.deploy_stablecoin()
    return World(tmp_path, config(stablecoin_address=token), (eth, dev)), token


def test_deposits_and_a_withdrawal_on_anvil(tmp_path, anvil: Anvil) -> None:
    world, _token = _world(tmp_path, anvil)
    try:
        assert world.eth.chain_id == 31337
        world.fund_gas("3")
        world.deposit("ALPHA-1", "ETH", "4")
        world.deposit("ALPHA-1", "USDC", "750")
        world.tick()
        assert world.balance("ALPHA-1", "ETH") == (0, 0)  # not yet 3 deep
        world.settle()
        assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "4"), 0)
        assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "750"), 0)
        world.book("ALPHA-1", "USDC", DEST)
        r = world.svc.request_withdrawal("ops-alice", "ALPHA-1", "USDC", "250", DEST)
        assert world.svc.approve("ops-bob", r.data["id"]).ok and world.svc.approve("ops-carol", r.data["id"]).ok
        world.settle()
        assert world.svc.withdrawal(r.data["id"])["state"] == "completed"
        assert world.eth.balance(DEST, world.svc.assets["USDC"]) == world.units("USDC", "250")
        assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "500"), 0)
        assert world.conserved()
        assert world.onchain("ETH") == world.external("ETH")
        assert world.onchain("USD") == world.external("USD")
    finally:
        world.close()


@pytest.mark.parametrize("mode", ["before_broadcast", "after_broadcast"])
def test_a_killed_process_after_signing_neither_pays_twice_nor_loses_the_hold(tmp_path, anvil: Anvil, mode: str) -> None:
    world, token = _world(tmp_path, anvil)
    world.fund_gas("3")
    world.deposit("ALPHA-1", "ETH", "5")
    world.settle()
    world.book("ALPHA-1", "ETH", DEST)
    r = world.svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "2", DEST)
    wid = r.data["id"]
    assert world.svc.approve("ops-bob", wid).ok and world.svc.approve("ops-carol", wid).ok
    world.close()  # this process lets go of the venue, the token and the custody file
    out = subprocess.run([sys.executable, "-m", "tests.custody.crash_child", str(tmp_path), anvil.url, token, mode],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 9, out.stderr[-2000:]
    txid = out.stdout.strip().splitlines()[-1]
    eth = EthereumChain.connect(anvil.url)
    assert eth.known(txid) == (mode == "after_broadcast")
    world = World(tmp_path, config(stablecoin_address=token), (eth, DevChain(eth)), seed=False)
    try:
        assert world.balance("ALPHA-1", "ETH")[1] == world.atoms("ETH", "2")  # the hold survived the kill
        world.settle()
        w = world.svc.withdrawal(wid)
        assert w["state"] == "completed" and w["txid"] == txid
        assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "2")  # once
        assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "3"), 0)
        assert world.conserved()
        assert world.onchain("ETH") == world.external("ETH")
    finally:
        world.close()


@pytest.mark.parametrize("left_by", ["this_version", "earlier_version"])
def test_a_process_killed_while_settling_a_confirmed_withdrawal_completes_it_on_restart(tmp_path, anvil: Anvil,
                                                                                     left_by: str) -> None:
    world, token = _world(tmp_path, anvil)
    world.fund_gas("3")
    world.deposit("ALPHA-1", "ETH", "5")
    world.settle()
    world.book("ALPHA-1", "ETH", DEST)
    r = world.svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "2", DEST)
    wid = r.data["id"]
    assert world.svc.approve("ops-bob", wid).ok and world.svc.approve("ops-carol", wid).ok
    world.close()
    out = subprocess.run([sys.executable, "-m", "tests.custody.crash_child", str(tmp_path), anvil.url, token,
                          "in_withdrawal_handler"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 9, out.stderr[-2000:]
    txid = out.stdout.strip().splitlines()[-1]
    if left_by == "earlier_version":
        # an earlier version committed fee_posted=1 before telling the withdrawal: that
        # is what its crash left on disk (the fee postings themselves were made)
        from custody.store import Store
        st = Store(os.path.join(str(tmp_path), "venue", "custody", "custody.sqlite"))
        assert st.run("UPDATE chain_txs SET fee_posted=1 WHERE txid=? AND state='confirmed'", (txid,)) == 1
        st.close()
    eth = EthereumChain.connect(anvil.url)
    world = World(tmp_path, config(stablecoin_address=token), (eth, DevChain(eth)), seed=False)
    try:
        assert world.balance("ALPHA-1", "ETH")[1] == world.atoms("ETH", "2")  # still held after the kill
        world.settle()
        w = world.svc.withdrawal(wid)
        assert w["state"] == "completed" and w["ledger"] == "completed" and w["txid"] == txid
        assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "3"), 0)
        assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "2")
        assert world.conserved()
        assert world.onchain("ETH") == world.external("ETH")
    finally:
        world.close()
