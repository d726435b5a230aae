"""Hot/cold and proof of reserves on a real EVM."""
from __future__ import annotations

from eth_account import Account

from custody.reserves import verify_attestation, verify_proof

from tests.custody.world import World, config

COLD = Account.from_key(b"\x55" * 32)  # the offline key: never in the online token


def test_excess_goes_to_cold_and_comes_back_signed_offline(tmp_path) -> None:
    w = World(tmp_path, config(hot_ceiling={"ETH": "3"}, cold_address={"ethereum": COLD.address}, auto_rebalance=True))
    try:
        svc = w.svc
        w.fund_gas("2")
        w.deposit("ALPHA-1", "ETH", "6")
        w.settle()
        hot = svc.hot_addresses()["ethereum"]
        assert w.eth.w3.eth.get_balance(hot) <= w.units("ETH", "3")
        assert w.eth.w3.eth.get_balance(COLD.address) > w.units("ETH", "4")
        assert w.onchain("ETH") == w.external("ETH")  # cold counts among the venue's reserves
        # back from cold: the venue builds it, the offline key signs it, the venue checks and sends it
        u = svc.cold_unsigned("ops-alice", "ETH", "1")
        assert u.ok and u.data["signer"] == COLD.address
        tx = dict(u.data["tx"])
        signed = COLD.sign_transaction(tx)
        wrong = Account.from_key(b"\x66" * 32).sign_transaction(tx)
        r = svc.cold_submit("ops-alice", u.data["id"], bytes(wrong.raw_transaction).hex())
        assert not r.ok and r.code == "wrong_signer"
        tampered = COLD.sign_transaction({**tx, "value": tx["value"] * 2})
        r = svc.cold_submit("ops-alice", u.data["id"], bytes(tampered.raw_transaction).hex())
        assert not r.ok and r.code == "mismatch"
        before = w.eth.w3.eth.get_balance(hot)
        r = svc.cold_submit("ops-alice", u.data["id"], bytes(signed.raw_transaction).hex())
        assert r.ok, r
        w.cfg.auto_rebalance = False
        w.settle()
        assert w.eth.w3.eth.get_balance(hot) == before + w.units("ETH", "1")
        assert w.onchain("ETH") == w.external("ETH")
        assert w.conserved()
    finally:
        w.close()


def test_proof_of_reserves(world: World) -> None:
    svc = world.svc
    world.deposit("ALPHA-1", "ETH", "2")
    world.deposit("BETA-1", "ETH", "3.5")
    world.deposit("BETA-1", "USDC", "10")
    world.settle()
    r = svc.reserves("ops-alice")
    assert r.ok
    att = dict(r.data)
    assert verify_attestation(att)
    eth = att["statement"]["assets"]["ETH"]
    assert int(eth["liabilities"]["total"]) == world.atoms("ETH", "5.5")
    assert int(eth["reserves"]["total"]) == world.onchain("ETH") >= int(eth["liabilities"]["total"])
    assert eth["covered"] is True
    for account, amount in (("ALPHA-1", "2"), ("BETA-1", "3.5")):
        p = svc.liability_proof(account, "ETH")
        assert p.ok
        assert verify_proof(p.data["root"], int(p.data["total"]), p.data["proof"])
        assert int(p.data["proof"]["balance"]) == world.atoms("ETH", amount)
        forged = {**p.data["proof"], "balance": str(int(p.data["proof"]["balance"]) - 1)}
        assert not verify_proof(p.data["root"], int(p.data["total"]), forged)
    assert "ALPHA-1" not in str(att)  # the published statement names nobody
    tampered = {**att, "statement": {**att["statement"], "epoch": "0"}}
    assert not verify_attestation(tampered)
    assert not svc.liability_proof("VENUE-GAS", "ETH").ok  # the venue's own money is not a liability


def test_sweeps_move_the_coins_to_the_hot_wallet_and_mark_the_deposits_swept(world: World) -> None:
    svc = world.svc
    world.fund_gas("2")
    hot = svc.hot_addresses()["ethereum"]
    eth, usdc = svc.assets["ETH"], svc.assets["USDC"]
    hot_eth, hot_usdc = world.eth.balance(hot, eth), world.eth.balance(hot, usdc)
    eth_addr = svc.deposit_address("ALPHA-1", "ETH").data["address"]
    usdc_addr = svc.deposit_address("ALPHA-1", "USDC").data["address"]
    world.cfg.auto_sweep = False
    world.deposit("ALPHA-1", "ETH", "3")
    world.deposit("ALPHA-1", "USDC", "1500")
    world.settle()
    assert {d["state"] for d in svc.deposits("ALPHA-1")} == {"credited"}
    assert world.eth.balance(eth_addr, eth) == world.units("ETH", "3")  # nothing moved yet
    assert not svc.sweep("ops-alice", "DOGE").ok
    assert svc.sweep("ops-alice").ok  # the ETH is swept; the USDC address first gets gas from the hot wallet
    world.cfg.auto_sweep = True
    world.settle()
    deps = {d["symbol"]: d for d in svc.deposits("ALPHA-1")}
    assert deps["ETH"]["state"] == "swept" and deps["USDC"]["state"] == "swept"
    for sym, addr in (("ETH", eth_addr), ("USDC", usdc_addr)):
        tx = svc.store.one("SELECT * FROM chain_txs WHERE txid=?", (deps[sym]["sweep_txid"],))
        assert tx["kind"] == "sweep" and tx["state"] == "confirmed"
        assert tx["from_addr"] == addr and tx["to_addr"] == hot and tx["symbol"] == sym
    # the coins are in the hot wallet: all the tokens, the ETH less the sweep's fee (a little
    # dust of the fee bound stays behind)
    assert world.eth.balance(usdc_addr, usdc) == 0
    assert world.eth.balance(hot, usdc) == hot_usdc + world.units("USDC", "1500")
    assert world.eth.balance(eth_addr, eth) < world.units("ETH", "0.001")
    topups = svc.store.all("SELECT amount_chain FROM chain_txs WHERE kind='topup' AND to_addr=?", (usdc_addr,))
    assert len(topups) == 1
    assert world.eth.balance(hot, eth) > hot_eth + world.units("ETH", "3") - int(topups[0]["amount_chain"]) \
        - world.units("ETH", "0.01")
    # the client's balance did not change; the venue's gas account paid every fee
    assert world.balance("ALPHA-1", "ETH") == (world.atoms("ETH", "3"), 0)
    assert world.balance("ALPHA-1", "USD") == (world.atoms("USDC", "1500"), 0)
    assert world.onchain("ETH") == world.external("ETH")
    assert world.onchain("USD") == world.external("USD")
    assert world.conserved()
