"""Withdrawals on a real EVM with a real token: policy, approvals, payment, settlement,
and the refusals that must lose nothing."""
from __future__ import annotations

from eth_account import Account

from custody.policy import DAY_NS

from tests.custody.world import World

DEST = Account.from_key(b"\x11" * 32).address
DEST2 = Account.from_key(b"\x22" * 32).address


def _funded(world: World, eth: str = "10", usdc: str = "5000") -> None:
    world.fund_gas("5")
    world.deposit("ALPHA-1", "ETH", eth)
    world.deposit("ALPHA-1", "USDC", usdc)
    world.settle()
    assert world.balance("ALPHA-1", "ETH")[0] == world.atoms("ETH", eth)


def test_eth_withdrawal_with_approvals_pays_the_destination(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "ETH", DEST)
    before_chain = world.eth.w3.eth.get_balance(DEST)
    gas_before = sum(world.balance("VENUE-GAS", "ETH"))
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1.25", DEST, request_id="w1")
    assert r.ok and r.data["state"] == "pending_approval"
    wid = r.data["id"]
    amount = world.atoms("ETH", "1.25")
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "10") - amount, amount)  # held at once
    self_ok = svc.approve("ops-alice", wid)
    assert not self_ok.ok and self_ok.code == "self_approval"
    assert svc.approve("ops-bob", wid).ok
    again = svc.approve("ops-bob", wid)
    assert not again.ok and again.code == "duplicate_approval"
    outsider = svc.approve("mallory", wid)
    assert not outsider.ok and outsider.code == "not_an_approver"
    world.tick()
    assert svc.withdrawal(wid)["state"] == "pending_approval"  # one approval of two: nothing signed
    assert world.eth.w3.eth.get_balance(DEST) == before_chain
    assert svc.approve("ops-carol", wid).data["state"] == "approved"
    world.tick()
    w = svc.withdrawal(wid)
    assert w["state"] in ("signed", "broadcast") and w["txid"]
    assert world.balance("ALPHA-1", "ETH")[1] == amount  # still held until confirmed
    world.settle()
    w = svc.withdrawal(wid)
    assert w["state"] == "completed" and w["ledger"] == "completed"
    assert world.eth.w3.eth.get_balance(DEST) == before_chain + world.units("ETH", "1.25")
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "10") - amount, 0)
    fee = int(svc.store.one("SELECT fee_chain FROM chain_txs WHERE txid=?", (w["txid"],))["fee_chain"])
    assert fee > 0
    assert sum(world.balance("VENUE-GAS", "ETH")) < gas_before  # the venue paid the gas
    assert world.conserved()
    assert world.onchain("ETH") == world.external("ETH")
    actions = [a["action"] for a in svc.audit_trail(wid)]
    for step in ("withdrawal_requested", "withdrawal_held", "approval_refused", "withdrawal_approved",
                 "withdrawal_fully_approved", "tx_signed", "tx_broadcast", "tx_confirmed", "withdrawal_confirmed",
                 "ledger_completed"):
        assert step in actions, step
    assert svc.store.verify_audit() is None


def test_stablecoin_withdrawal_pays_the_token(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "USDC", DEST2)
    token = svc.assets["USDC"]
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "USDC", "1000.5", DEST2)
    assert r.ok
    assert svc.approve("ops-bob", r.data["id"]).ok and svc.approve("ops-carol", r.data["id"]).ok
    world.settle()
    assert svc.withdrawal(r.data["id"])["state"] == "completed"
    assert world.eth.balance(DEST2, token) == world.units("USDC", "1000.5")
    assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "3999.5"), 0)
    assert world.conserved()
    assert world.onchain("USD") == world.external("USD")
    assert world.onchain("ETH") == world.external("ETH")


def test_velocity_breaches_are_refused_and_lose_nothing(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "ETH", DEST)
    assert not svc.set_limits("mallory", "ALPHA-1", "ETH", "1", "1.5").ok
    assert svc.set_limits("ops-bob", "ALPHA-1", "ETH", "1", "1.5").ok
    full = world.balance("ALPHA-1", "ETH")
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "2", DEST)
    assert not r.ok and r.code == "velocity_per_tx" and "per-transaction limit" in r.reason
    assert world.balance("ALPHA-1", "ETH") == full
    ok = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST)
    assert ok.ok
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "0.6", DEST)
    assert not r.ok and r.code == "velocity_daily" and "24 hours" in r.reason
    amount = world.atoms("ETH", "1")
    assert world.balance("ALPHA-1", "ETH") == (full[0] - amount, amount)  # only the allowed one is held
    assert svc.withdrawal(r.data["id"])["state"] == "rejected"
    assert svc.withdrawal(r.data["id"])["ledger"] == "released"
    world.clock.advance(DAY_NS + 1)  # the window rolls on
    later = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "0.6", DEST)
    assert later.ok, later
    assert world.conserved()


def test_unapproved_and_unknown_addresses_are_refused_and_lose_nothing(world: World) -> None:
    _funded(world)
    svc = world.svc
    full = world.balance("ALPHA-1", "ETH")
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST)
    assert not r.ok and r.code == "address_not_in_book"
    assert svc.add_address("ops-alice", "ALPHA-1", "ETH", DEST, "treasury").ok
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST)
    assert not r.ok and r.code == "address_unapproved" and "second person" in r.reason
    own = svc.approve_address("ops-alice", "ALPHA-1", "ETH", DEST)
    assert not own.ok and own.code == "self_approval"
    assert world.balance("ALPHA-1", "ETH") == full
    bad = svc.add_address("ops-alice", "ALPHA-1", "ETH", "0x1234", "typo")
    assert not bad.ok and bad.code == "address"
    mine = svc.add_address("ops-alice", "ALPHA-1", "ETH", svc.hot_addresses()["ethereum"], "hot")
    assert not mine.ok and mine.code == "own_address"
    assert svc.approve_address("ops-bob", "ALPHA-1", "ETH", DEST).ok
    assert svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST).ok
    assert world.conserved()


def test_bad_requests_get_a_clear_answer(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "ETH", DEST)
    full = world.balance("ALPHA-1", "ETH")
    cases = [
        (("ops-alice", "ALPHA-1", "ETH", "abc", DEST), "amount"),
        (("ops-alice", "ALPHA-1", "ETH", "-1", DEST), "amount"),
        (("ops-alice", "ALPHA-1", "ETH", "0.0000000000000000001", DEST), "precision"),
        (("ops-alice", "ALPHA-1", "USDC", "1.0000001", DEST), "precision"),
        (("ops-alice", "ALPHA-1", "ETH", "1", "not-an-address"), "address"),
        (("ops-alice", "ALPHA-1", "XRP", "1", DEST), "unknown_asset"),
        (("ops-alice", "NOBODY", "ETH", "1", DEST), "unknown_account"),
        (("ops-alice", "ALPHA-1", "ETH", "50", DEST), "insufficient_funds"),
    ]
    for args, code in cases:
        r = svc.request_withdrawal(*args)
        assert not r.ok and r.code == code, (args, r)
        assert r.reason
    assert world.balance("ALPHA-1", "ETH") == full
    assert world.conserved()


def test_a_replayed_withdrawal_request_is_refused_and_holds_nothing_twice(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "ETH", DEST)
    assert svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST, request_id="abc").ok
    held = world.balance("ALPHA-1", "ETH")
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "1", DEST, request_id="abc")
    assert not r.ok and r.code == "duplicate_request"
    assert world.balance("ALPHA-1", "ETH") == held


def test_a_firm_requests_for_its_own_accounts_only(world: World) -> None:
    _funded(world)
    svc = world.svc
    assert svc.add_address("alpha-trader", "ALPHA-1", "ETH", DEST, firm="ALPHA").ok
    assert not svc.add_address("beta-trader", "ALPHA-1", "ETH", DEST2, firm="BETA").ok
    assert svc.approve_address("ops-bob", "ALPHA-1", "ETH", DEST).ok
    r = svc.request_withdrawal("beta-trader", "ALPHA-1", "ETH", "1", DEST, firm="BETA")
    assert not r.ok and r.code == "not_entitled"
    r = svc.request_withdrawal("alpha-trader", "ALPHA-1", "ETH", "1", DEST, firm="ALPHA")
    assert r.ok and r.data["requested_by"] == "alpha-trader"
    assert svc.approve("ops-alice", r.data["id"]).ok and svc.approve("ops-bob", r.data["id"]).ok
    world.settle()
    assert svc.withdrawal(r.data["id"])["state"] == "completed"


def test_rejection_releases_the_hold(world: World) -> None:
    _funded(world)
    svc = world.svc
    world.book("ALPHA-1", "ETH", DEST)
    full = world.balance("ALPHA-1", "ETH")
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "ETH", "2", DEST)
    assert world.balance("ALPHA-1", "ETH")[1] == world.atoms("ETH", "2")
    assert not svc.reject("mallory", r.data["id"]).ok
    done = svc.reject("ops-carol", r.data["id"], "the client called to cancel")
    assert done.ok and done.data["state"] == "rejected"
    assert world.balance("ALPHA-1", "ETH") == full
    assert not svc.approve("ops-bob", r.data["id"]).ok
    world.settle()
    assert world.eth.w3.eth.get_balance(DEST) == 0
    assert world.conserved()
