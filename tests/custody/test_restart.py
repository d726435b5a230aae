"""A restart in the middle of a withdrawal neither pays twice nor loses the hold."""
from __future__ import annotations

from eth_account import Account

from venue import commands as C

from tests.custody.world import World

DEST = Account.from_key(b"\x33" * 32).address


def _approved(world: World, amount: str) -> str:
    world.fund_gas("5")
    world.deposit("ALPHA-1", "ETH", "10")
    world.settle()
    world.book("ALPHA-1", "ETH", DEST)
    r = world.svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", amount, DEST)
    assert world.svc.approve("ops-bob", r.data["id"]).ok
    assert world.svc.approve("ops-carol", r.data["id"]).ok
    return str(r.data["id"])


def test_restart_after_broadcast_before_confirmation(world: World) -> None:
    wid = _approved(world, "2")
    world.tick()  # signs and broadcasts; mined in one block, far from 3 confirmations
    w = world.svc.withdrawal(wid)
    assert w["state"] in ("signed", "broadcast")
    txid = w["txid"]
    amount = world.atoms("ETH", "2")
    assert world.balance("ALPHA-1", "ETH")[1] == amount
    world.restart()  # the venue replays its journal, custody reopens its file and the token
    assert world.balance("ALPHA-1", "ETH")[1] == amount  # the hold survived
    world.settle()
    w = world.svc.withdrawal(wid)
    assert w["state"] == "completed" and w["txid"] == txid
    assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "2")  # paid once
    assert world.svc.store.one("SELECT COUNT(*) AS n FROM chain_txs WHERE ref=?", (wid,))["n"] == 1
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "8"), 0)
    assert world.conserved()
    assert world.onchain("ETH") == world.external("ETH")


def test_restart_after_signing_before_broadcast_sends_the_same_bytes(world: World) -> None:
    wid = _approved(world, "1.5")
    assert world.svc.pause_broadcast("ops-alice", True).ok
    world.tick()
    w = world.svc.withdrawal(wid)
    assert w["state"] == "signed"
    txid = w["txid"]
    assert not world.eth.known(txid)  # signed and stored, never sent
    raw = world.svc.store.one("SELECT raw FROM chain_txs WHERE txid=?", (txid,))["raw"]
    world.restart()  # broadcasting is not paused in the new process
    world.settle()
    w = world.svc.withdrawal(wid)
    assert w["state"] == "completed" and w["txid"] == txid
    assert world.svc.store.one("SELECT raw FROM chain_txs WHERE txid=?", (txid,))["raw"] == raw
    assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "1.5")
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "8.5"), 0)
    assert world.conserved()


def test_a_gas_hold_orphaned_by_a_crash_is_released_at_start(world: World) -> None:
    world.fund_gas("5")
    gas = world.balance("VENUE-GAS", "ETH")
    # a crash after holding the fee and before the transaction was stored
    world.venue.execute(C.HoldWithdrawal("gashold:withdrawal:wd:x:1", "VENUE-GAS", "ETH", 10**15))
    assert world.balance("VENUE-GAS", "ETH")[1] == 10**15
    world.restart()
    assert world.balance("VENUE-GAS", "ETH") == gas
    assert world.conserved()
