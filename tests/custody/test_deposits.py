"""Deposits on a real EVM: credited at N confirmations and not before, once, across
restarts, reorgs and replays."""
from __future__ import annotations

from venue import commands as C
from venue.events import CommandRejected
from venue.types import Reject

from tests.custody.world import World


def test_deposit_address_is_per_account_and_asset_and_stable(world: World) -> None:
    svc = world.svc
    a1 = svc.deposit_address("ALPHA-1", "ETH")
    assert a1.ok and a1.data["address"].startswith("0x")
    assert svc.deposit_address("ALPHA-1", "ETH").data["address"] == a1.data["address"]
    assert svc.deposit_address("ALPHA-1", "USDC").data["address"] != a1.data["address"]
    assert svc.deposit_address("BETA-1", "ETH").data["address"] != a1.data["address"]
    b = svc.deposit_address("ALPHA-1", "BTC")
    assert b.ok and b.data["address"].startswith("bcrt1q")
    assert svc.deposit_address("ALPHA-1", "BTC").data["address"] == b.data["address"]
    world.restart()
    assert world.svc.deposit_address("ALPHA-1", "ETH").data["address"] == a1.data["address"]
    assert world.svc.deposit_address("ALPHA-1", "BTC").data["address"] == b.data["address"]


def test_deposit_address_refusals(world: World) -> None:
    svc = world.svc
    r = svc.deposit_address("NOBODY", "ETH")
    assert not r.ok and r.code == "unknown_account"
    r = svc.deposit_address("ALPHA-1", "DOGE")
    assert not r.ok and r.code == "unknown_asset"
    r = svc.deposit_address("ALPHA-1", "ETH", firm="BETA")
    assert not r.ok and r.code == "not_entitled"


def test_eth_and_stablecoin_credited_after_n_confirmations_and_not_before(world: World) -> None:
    world.cfg.auto_sweep = False
    world.deposit("ALPHA-1", "ETH", "2.5")
    world.deposit("ALPHA-1", "USDC", "1234.56")
    # the two transfers are mined in their own blocks: 1 and 2 confirmations now
    world.tick()
    assert world.balance("ALPHA-1", "ETH") == (0, 0)
    assert world.balance("ALPHA-1", "USD") == (0, 0)
    world.tick(mine=1)  # ETH: 3 confirmations, USDC: 2
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "2.5"), 0)
    assert world.balance("ALPHA-1", "USD") == (0, 0)
    world.tick(mine=1)
    assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "1234.56"), 0)
    assert world.atoms("USDC", "1234.56") == 123456000000  # 8-decimal USD atoms from 6-decimal token units
    for _ in range(5):
        world.tick(mine=1)
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "2.5"), 0)
    assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "1234.56"), 0)
    deps = world.svc.deposits("ALPHA-1")
    assert sorted(d["state"] for d in deps) == ["credited", "credited"]
    assert world.conserved()
    assert world.onchain("ETH") == world.external("ETH")
    assert world.onchain("USD") == world.external("USD")


def test_a_restart_and_a_second_sighting_do_not_credit_twice(world: World) -> None:
    txid = world.deposit("BETA-1", "ETH", "1")
    world.settle()
    assert world.balance("BETA-1", "ETH")[0] == world.atoms("ETH", "1")
    world.restart()
    # forget the watcher's progress: it rescans the same blocks and sees the deposit again
    world.svc.store.run("DELETE FROM blocks")
    world.svc.store.run("DELETE FROM deposits")
    world.svc.store.set_meta("ethereum.start", "0")
    for _ in range(4):
        world.tick(mine=1)
    assert world.balance("BETA-1", "ETH")[0] == world.atoms("ETH", "1")
    assert world.svc.deposits("BETA-1")[0]["txid"] == txid
    assert world.svc.deposits("BETA-1")[0]["state"] in ("credited", "swept")
    assert world.conserved()


def test_a_crash_between_posting_and_recording_credits_once(world: World) -> None:
    world.cfg.auto_sweep = False
    txid = world.deposit("ALPHA-1", "ETH", "3")
    world.tick()
    fid = f"eth:{txid}:v"
    # the ledger got the Deposit but custody never recorded it (as if it crashed right after)
    world.venue.execute(C.Deposit(fid, "ALPHA-1", "ETH", world.atoms("ETH", "3")))
    world.tick(mine=3)
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "3"), 0)
    assert world.svc.deposits("ALPHA-1")[0]["state"] == "credited"


def test_a_replayed_funding_id_is_refused_and_loses_nothing(world: World) -> None:
    txid = world.deposit("ALPHA-1", "ETH", "1")
    world.settle()
    before = world.balance("ALPHA-1", "ETH")
    p = world.venue.execute(C.Deposit(f"eth:{txid}:v", "ALPHA-1", "ETH", world.atoms("ETH", "1")))
    rej = [e for e in p.events if isinstance(e, CommandRejected)]
    assert rej and rej[0].code == Reject.DUPLICATE_FUNDING_ID and "already used" in rej[0].text
    assert world.balance("ALPHA-1", "ETH") == before
    assert world.conserved()


def test_a_reorg_shorter_than_the_depth_does_not_double_credit(world: World) -> None:
    world.cfg.auto_sweep = False
    svc = world.svc
    addr = svc.deposit_address("ALPHA-1", "ETH").data["address"]
    world.tick()
    snap = world.dev.snapshot()
    txid = world.dev.fund(svc.assets["ETH"], addr, world.units("ETH", "4"))
    world.tick(mine=1)  # seen with 2 confirmations, not credited
    assert [d["txid"] for d in svc.deposits("ALPHA-1")] == [txid]
    assert world.balance("ALPHA-1", "ETH") == (0, 0)
    # the chain reorganises: the block with the deposit is replaced by a longer branch
    world.dev.revert(snap)
    world.dev.mine(3)
    rep = world.tick()
    assert rep["ethereum"]["orphaned"] == 1
    assert svc.deposits("ALPHA-1") == []
    assert world.balance("ALPHA-1", "ETH") == (0, 0)
    # the same transaction is mined again on the new branch: same funding id, credited once
    again = world.dev.fund(svc.assets["ETH"], addr, world.units("ETH", "4"))
    assert again == txid
    for _ in range(6):
        world.tick(mine=1)
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "4"), 0)
    assert len(svc.deposits("ALPHA-1")) == 1
    assert any(a["action"] == "deposit_orphaned" for a in svc.audit_trail(f"eth:{txid}:v"))
    assert world.conserved()


def test_the_background_loop_credits_a_deposit(world: World) -> None:
    from custody.service import wait_until

    world.dev.start_block_timer(0.05)
    world.svc.start()
    world.deposit("ALPHA-1", "ETH", "0.75")
    assert wait_until(lambda: world.balance("ALPHA-1", "ETH")[0] == world.atoms("ETH", "0.75"), timeout=30)
