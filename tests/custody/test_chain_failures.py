"""What custody concludes when a payment goes wrong on-chain, or the node does.

- A node that fails to answer (or a lagging backend that answers "not found" for a
  while) about a withdrawal that *was* mined must not make custody call it dropped and
  release its hold: that would pay the client twice. Real anvil behind a relay that
  fails or nulls chosen JSON-RPC methods.
- A withdrawal that really failed (reverted by its destination, or dropped because
  another transaction took its nonce) releases the hold, and the ledger still matches
  the chain."""
from __future__ import annotations

from typing import Iterator

import pytest
from eth_account import Account

from custody.ethereum import DevChain, EthereumChain, sign_transaction
from custody.outbox import DROP_PASSES
from custody.service import ETH_HOT

from tests.custody.anvil import Anvil
from tests.custody.flaky_node import FlakyNode
from tests.custody.world import World, config

DEST = Account.from_key(b"\x78" * 32).address
LOOKUPS = {"eth_getTransactionReceipt", "eth_getTransactionByHash"}


@pytest.fixture
def flaky(tmp_path) -> Iterator[tuple[World, FlakyNode]]:
    anvil = Anvil()
    node = FlakyNode(anvil.url)
    eth = EthereumChain.connect(node.url)
    dev = DevChain(eth)
    world = World(tmp_path, config(stablecoin_address=dev.deploy_stablecoin()), (eth, dev))
    try:
        yield world, node
    finally:
        world.close()
        node.stop()
        anvil.stop()


def _approved(world: World, amount: str = "2", dest: str = DEST) -> str:
    world.fund_gas("5")
    world.deposit("ALPHA-1", "ETH", "10")
    world.settle()
    world.book("ALPHA-1", "ETH", dest)
    r = world.svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", amount, dest)
    assert r.ok, r
    wid = r.data["id"]
    assert world.svc.approve("ops-bob", wid).ok and world.svc.approve("ops-carol", wid).ok
    return str(wid)


def _paid_once(world: World, wid: str, amount: str = "2") -> None:
    w = world.svc.withdrawal(wid)
    assert w["state"] == "completed" and w["ledger"] == "completed", w
    assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", amount)
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "10") - world.atoms("ETH", amount), 0)
    assert world.conserved()
    assert world.onchain("ETH") == world.external("ETH")


def test_a_node_that_fails_receipt_lookups_does_not_make_a_mined_payment_dropped(flaky) -> None:
    world, node = flaky
    wid = _approved(world)
    world.tick()  # signed and broadcast; anvil mines it at once
    world.tick(mine=1)
    assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "2")  # paid on-chain
    held = world.balance("ALPHA-1", "ETH")
    node.fail |= LOOKUPS
    for _ in range(DROP_PASSES + 3):  # the nonce is consumed many blocks deep meanwhile
        world.tick(mine=1)
        assert world.svc.withdrawal(wid)["state"] in ("signed", "broadcast")
        assert world.balance("ALPHA-1", "ETH") == held  # the hold stays
    assert "eth_getTransactionReceipt" in world.svc.status()["last_error"]
    node.heal()
    world.settle()
    _paid_once(world, wid)


def test_a_lagging_backend_saying_not_found_for_a_while_does_not_drop_a_mined_payment(flaky) -> None:
    world, node = flaky
    wid = _approved(world)
    world.tick()  # signed and broadcast; anvil mines it at once
    world.dev.mine(4)  # its nonce is consumed more than 3 blocks deep before custody looks again
    node.null |= LOOKUPS  # a backend that has not seen the block yet: "no such transaction"
    for _ in range(DROP_PASSES - 1):
        world.tick()
        assert world.svc.withdrawal(wid)["state"] in ("signed", "broadcast")
    node.heal()
    world.settle()
    _paid_once(world, wid)


def test_a_withdrawal_whose_nonce_another_transaction_took_is_dropped_and_releases_the_hold(world: World) -> None:
    svc = world.svc
    wid = _approved(world)
    full = world.atoms("ETH", "10")
    assert svc.pause_broadcast("ops-alice", True).ok
    world.tick()
    w = svc.withdrawal(wid)
    assert w["state"] == "signed"
    row = svc.store.one("SELECT * FROM chain_txs WHERE txid=?", (w["txid"],))
    # the hot key signs something else with the same nonce (a replacement made elsewhere), mined first
    hot = svc.hot_addresses()["ethereum"]
    max_fee, tip = world.eth.fee_params()
    other = world.eth.transfer(svc.assets["ETH"], hot, hot, 0, int(row["nonce"]), max_fee, tip)
    raw, other_txid = sign_transaction(svc.worker, ETH_HOT, other)
    world.eth.send_raw(raw)
    other_fee = world.eth.receipt(other_txid).fee
    assert svc.pause_broadcast("ops-alice", False).ok
    world.tick(mine=1)
    assert svc.withdrawal(wid)["state"] == "signed"  # nonce consumed, but not yet deep enough
    assert world.balance("ALPHA-1", "ETH") == (full - world.atoms("ETH", "2"), world.atoms("ETH", "2"))
    for _ in range(6):
        world.tick(mine=1)
    w = svc.withdrawal(wid)
    assert w["state"] == "failed" and w["ledger"] == "released" and "dropped" in w["reason"]
    assert world.balance("ALPHA-1", "ETH") == (full, 0)  # the hold is released
    assert world.eth.w3.eth.get_balance(DEST) == 0
    assert world.conserved()
    # the chain paid the replacement's fee, which custody did not sign and the ledger never saw
    assert world.onchain("ETH") == world.external("ETH") - world.svc.assets["ETH"].to_ledger(other_fee)
    actions = [a["action"] for a in svc.audit_trail(wid)]
    assert "tx_dropped" in actions and "withdrawal_failed" in actions and "ledger_released" in actions


REVERTING_CONTRACT = "0x6005600c60003960056000f360006000fd"  # runtime code: REVERT(0, 0)


def test_a_reverted_withdrawal_releases_the_hold_and_the_venue_pays_the_fee(world: World) -> None:
    w3 = world.eth.w3
    h = w3.eth.send_transaction({"from": world.dev.faucet, "data": REVERTING_CONTRACT})
    contract = w3.eth.wait_for_transaction_receipt(h)["contractAddress"]
    assert w3.eth.get_code(contract)
    wid = _approved(world, "1.5", contract)
    gas_before = sum(world.balance("VENUE-GAS", "ETH"))
    world.settle()
    w = world.svc.withdrawal(wid)
    assert w["state"] == "failed" and w["ledger"] == "released" and "reverted" in w["reason"]
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "10"), 0)
    assert w3.eth.get_balance(contract) == 0
    fee = int(world.svc.store.one("SELECT fee_chain FROM chain_txs WHERE txid=?", (w["txid"],))["fee_chain"])
    assert fee > 0 and sum(world.balance("VENUE-GAS", "ETH")) == gas_before - fee
    assert world.conserved()
    assert world.onchain("ETH") == world.external("ETH")
