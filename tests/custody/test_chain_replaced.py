"""A venue reopened on a chain that is not the one its custody records are about.

The embedded EVM lives in the venue's process, so a restarted demo gets a fresh chain:
custody must notice, reset its scan to the new chain (deposits there are credited),
abandon what was only on the old one and release the holds of payments that can no
longer happen, while the ledger keeps what was credited. A real node serving another
chain is refused outright."""
from __future__ import annotations

import pytest
from eth_account import Account

from custody.errors import ChainError
from custody.ethereum import DevChain, EthereumChain, embedded
from custody.service import CustodyService

from tests.custody.anvil import Anvil
from tests.custody.world import World, config

DEST = Account.from_key(b"\x79" * 32).address


def _reopen_on(world: World, chain: tuple[EthereumChain, DevChain]) -> None:
    """Stop custody and the venue, and open both again on another chain (as a demo
    restart does: the old embedded chain died with the old process)."""
    world.svc.dev = None
    world.svc.stop()
    world.venue.stop(snapshot=False)
    world.dev.stop()
    world.eth, world.dev = chain
    world.open()


def test_a_restarted_embedded_chain_resets_the_scan_and_settles_what_was_on_the_old_one(world: World) -> None:
    svc = world.svc
    world.fund_gas("5")
    world.deposit("ALPHA-1", "ETH", "10")
    world.settle()
    world.book("ALPHA-1", "ETH", DEST)
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "2", DEST)
    wid = r.data["id"]
    assert svc.approve("ops-bob", wid).ok and svc.approve("ops-carol", wid).ok
    assert svc.pause_broadcast("ops-alice", True).ok
    world.tick()
    assert svc.withdrawal(wid)["state"] == "signed"
    world.dev.mine(120)  # the old chain is taller than the new one will be for a while
    world.tick()
    seen_txid = world.deposit("BETA-1", "ETH", "1")  # seen, never credited on the old chain
    world.tick()
    assert [d["state"] for d in svc.deposits("BETA-1")] == ["seen"]
    credited = world.balance("ALPHA-1", "ETH")
    gas = sum(world.balance("VENUE-GAS", "ETH"))

    _reopen_on(world, embedded())
    svc = world.svc
    assert svc.replaced and svc.replaced[0]["chain"] == "ethereum"
    assert svc.replaced[0]["deposits_abandoned"] == 1 and svc.replaced[0]["transactions_dropped"] == 1
    # what was credited stays credited; the payment that can no longer happen releases its hold
    w = svc.withdrawal(wid)
    assert w["state"] == "failed" and w["ledger"] == "released"
    assert world.balance("ALPHA-1", "ETH") == (credited[0] + credited[1], 0)
    assert sum(world.balance("VENUE-GAS", "ETH")) == gas  # no fee was paid for it
    beta = svc.deposits("BETA-1")
    assert beta[0]["state"] == "abandoned" and beta[0]["txid"] == seen_txid and "replaced" in beta[0]["reason"]
    assert world.balance("BETA-1", "ETH") == (0, 0)
    assert any(a["action"] == "chain_replaced" for a in svc.audit_trail("ethereum"))
    # the new chain is watched from its start: a deposit there is credited
    world.deposit("BETA-1", "ETH", "0.5")
    for _ in range(4):
        world.tick(mine=1)
    assert world.balance("BETA-1", "ETH") == (world.atoms("ETH", "0.5"), 0)
    # and payments work again once the new chain's hot wallet has coins (nonces start at 0 there)
    world.dev.fund(svc.assets["ETH"], svc.hot_addresses()["ethereum"], world.units("ETH", "5"))
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST)
    assert svc.approve("ops-bob", r.data["id"]).ok and svc.approve("ops-carol", r.data["id"]).ok
    world.settle()
    assert svc.withdrawal(r.data["id"])["state"] == "completed"
    assert world.eth.w3.eth.get_balance(DEST) == world.units("ETH", "1")
    assert world.conserved()


def test_the_same_embedded_chain_reopened_is_not_replaced(world: World) -> None:
    world.deposit("ALPHA-1", "ETH", "1")
    world.settle()
    world.restart()
    assert world.svc.replaced == []
    assert world.svc.deposits("ALPHA-1")[0]["state"] in ("credited", "swept")


def test_a_real_node_serving_another_chain_is_refused(tmp_path) -> None:
    first, second = Anvil(), Anvil(chain_id=31338)  # another network (two anvils started in one second share a genesis)
    try:
        eth = EthereumChain.connect(first.url)
        dev = DevChain(eth)
        world = World(tmp_path, config(stablecoin_address=dev.deploy_stablecoin()), (eth, dev))
        world.deposit("ALPHA-1", "ETH", "1")
        world.settle()
        world.svc.dev = None
        world.svc.stop()
        other = EthereumChain.connect(second.url)
        token = DevChain(other).deploy_stablecoin()
        real = CustodyService(world.venue, config(stablecoin_address=token), ethereum=other)
        with pytest.raises(ChainError, match="custody will not credit or pay"):
            real.open()
        real.stop()
        assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "1"), 0)
        world.svc = None
        world.venue.stop()
        world.venue = None
    finally:
        first.stop()
        second.stop()
