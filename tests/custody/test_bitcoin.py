"""Bitcoin: BIP84 deposit addresses, an HSM-signed P2WPKH withdrawal that verifies under
an independent BIP143 implementation, and the real-mode path (deposits credited by the
watcher, a withdrawal broadcast, confirmed and settled in the coin records) against a
bitcoind stand-in on loopback (tests/custody/regtest_node.py: no Bitcoin Core binary can
be installed here)."""
from __future__ import annotations

import coincurve

from custody.bitcoin import HOT_LABEL, hash160
from venue import commands as C

from tests.custody import bip143
from tests.custody.regtest_node import RegtestNode
from tests.custody.world import World, config


def _funding_tx(to_address: str, amount: int) -> str:
    """A real signed segwit transaction paying ``to_address`` (from a throw-away key)."""
    from bitcoinlib.keys import HDKey
    from bitcoinlib.transactions import Transaction

    k = HDKey(network="regtest", witness_type="segwit")
    t = Transaction(network="regtest", witness_type="segwit")
    t.add_input("ab" * 32, 1, keys=[k], value=amount + 10_000, witness_type="segwit")
    t.add_output(amount, to_address)
    t.sign([k])
    assert t.verify()
    return str(t.raw_hex())


def test_bip84_addresses_derive_from_the_account_key(world: World) -> None:
    svc = world.svc
    a = svc.deposit_address("ALPHA-1", "BTC").data["address"]
    b = svc.deposit_address("BETA-1", "BTC").data["address"]
    acct = svc.bip84()
    assert a.startswith("bcrt1q") and len(a) == 44  # native segwit v0 key hash (P2WPKH)
    assert {a, b} == {acct.address(0), acct.address(1)}
    # from the public key alone, as a watch-only wallet would
    from bitcoinlib.keys import HDKey
    pub = HDKey(acct.xpub, network="regtest")
    assert pub.key_for_path("0/0").address() == acct.address(0)
    assert not pub.is_private


def test_hsm_signed_segwit_withdrawal_verifies(world: World) -> None:
    svc = world.svc
    wallet = svc.wallet
    hot = svc.hot_addresses()["bitcoin"]
    # coins: the client's BTC and the venue's gas BTC were posted by an operator (no node
    # here), and the hot wallet holds a real output paying it
    world.venue.execute(C.Deposit("op:btc:1", "ALPHA-1", "BTC", 50_000_000))
    world.venue.execute(C.Deposit("op:btc:gas", "VENUE-GAS", "BTC", 1_000_000))
    funding = _funding_tx(hot, 80_000_000)
    got = wallet.record_incoming(funding, 100, {hot: HOT_LABEL})
    assert len(got) == 1 and got[0].amount == 80_000_000
    assert wallet.record_incoming(funding, 100, {hot: HOT_LABEL}) == []  # idempotent
    dest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    world.book("ALPHA-1", "BTC", dest)
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "BTC", "0.3", dest)
    assert r.ok, r
    assert svc.approve("ops-bob", r.data["id"]).ok and svc.approve("ops-carol", r.data["id"]).ok
    world.tick()
    w = svc.withdrawal(r.data["id"])
    assert w["state"] == "signed" and w["txid"]  # no node: it waits for broadcast
    assert any(a["action"] == "broadcast_failed" and "no Bitcoin node" in a["detail"]["error"]
               for a in svc.audit_trail(r.data["id"]))
    row = svc.store.one("SELECT * FROM chain_txs WHERE txid=?", (w["txid"],))
    tx = bip143.parse(row["raw"])
    assert tx.txid() == w["txid"]
    hot_pub = coincurve.PublicKey(bytes.fromhex(svc.store.one("SELECT pubkey FROM keys WHERE label=?", (HOT_LABEL,))["pubkey"]))
    pub33 = hot_pub.format(compressed=True)
    assert len(tx.inputs) == 1 and tx.inputs[0].vout == got[0].vout
    sig_der_and_type, witness_pub = tx.inputs[0].witness
    assert witness_pub == pub33
    assert sig_der_and_type[-1] == 1  # SIGHASH_ALL
    digest = bip143.sighash_p2wpkh(tx, 0, hash160(pub33), 80_000_000)
    assert hot_pub.verify(sig_der_and_type[:-1], digest, hasher=None)
    assert not hot_pub.verify(sig_der_and_type[:-1], bip143.sighash_p2wpkh(tx, 0, hash160(pub33), 80_000_001), hasher=None)
    # low s, as the network's standardness rules want
    r_len = sig_der_and_type[3]
    s = int.from_bytes(sig_der_and_type[4 + r_len + 2:-1], "big")
    assert s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    # outputs: the amount to the destination, the change to the hot wallet, a bounded fee
    from custody.bitcoin import p2wpkh_address
    values = {o.script: o.value for o in tx.outputs}
    assert values[b"\x00\x14" + bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")] == 30_000_000
    assert values[bip143.p2wpkh_script(hash160(pub33))] == 80_000_000 - 30_000_000 - int(row["gas_hold_ledger"])
    assert p2wpkh_address(pub33, "regtest") == hot
    assert int(row["gas_hold_ledger"]) == wallet.vsize(1, 2) * wallet.fee_rate
    # the coin is reserved, the change recorded; the client's amount stays held
    assert wallet.unspent(HOT_LABEL) == []
    assert world.balance("ALPHA-1", "BTC") == (20_000_000, 30_000_000)
    assert world.conserved()


def test_reserves_count_a_spent_coin_or_its_change_never_both(world: World) -> None:
    svc = world.svc
    hot = svc.hot_addresses()["bitcoin"]
    world.venue.execute(C.Deposit("op:btc:1", "ALPHA-1", "BTC", 50_000_000))
    world.venue.execute(C.Deposit("op:btc:gas", "VENUE-GAS", "BTC", 30_000_000))
    svc.wallet.record_incoming(_funding_tx(hot, 80_000_000), 100, {hot: HOT_LABEL})
    assert world.onchain("BTC") == 80_000_000 == world.external("BTC")
    dest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    world.book("ALPHA-1", "BTC", dest)
    r = svc.request_withdrawal("ops-alice", "ALPHA-1", "BTC", "0.3", dest)
    assert svc.approve("ops-bob", r.data["id"]).ok and svc.approve("ops-carol", r.data["id"]).ok
    world.tick()
    row = svc.store.one("SELECT * FROM chain_txs WHERE ref=?", (r.data["id"],))
    change = 80_000_000 - 30_000_000 - int(row["gas_hold_ledger"])
    assert world.onchain("BTC") == change  # not 80M + change


BTC_DEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def test_btc_deposit_credited_and_withdrawal_settled_through_a_node(tmp_path) -> None:
    node = RegtestNode()
    world = World(tmp_path, config(bitcoind_url=node.url))
    try:
        svc = world.svc
        wallet = svc.wallet
        dep = svc.deposit_address("ALPHA-1", "BTC").data["address"]
        funding = node.fund(_funding_tx(dep, 50_000_000))
        world.tick()
        assert world.balance("ALPHA-1", "BTC") == (0, 0)  # one confirmation of three
        assert [d["state"] for d in svc.deposits("ALPHA-1")] == ["seen"]
        node.mine(1)
        world.tick()
        assert world.balance("ALPHA-1", "BTC") == (0, 0)
        node.mine(1)
        world.tick()
        assert world.balance("ALPHA-1", "BTC") == (50_000_000, 0)
        d = svc.deposits("ALPHA-1")[0]
        assert d["state"] == "credited" and d["funding_id"] == f"btc:{funding}:0"
        # the venue's own coins reach the hot wallet (its funding is posted to the gas account)
        hot = svc.hot_addresses()["bitcoin"]
        node.fund(_funding_tx(hot, 80_000_000))
        world.venue.execute(C.Deposit("op:btc:hot", "VENUE-GAS", "BTC", 80_000_000))
        node.mine(2)
        world.tick()
        assert wallet.hot_balance() == 80_000_000
        assert world.onchain("BTC") == world.external("BTC") == 130_000_000
        world.book("ALPHA-1", "BTC", BTC_DEST)
        r = svc.request_withdrawal("ops-alice", "ALPHA-1", "BTC", "0.3", BTC_DEST)
        wid = r.data["id"]
        assert svc.approve("ops-bob", wid).ok and svc.approve("ops-carol", wid).ok
        world.tick()  # signed, and accepted by the node (which checked every signature)
        w = svc.withdrawal(wid)
        assert w["state"] in ("signed", "broadcast") and w["txid"] in node.mempool
        dest_script = b"\x00\x14" + bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
        for _ in range(3):
            node.mine(1)
            world.tick()
        w = svc.withdrawal(wid)
        assert w["state"] == "completed" and w["ledger"] == "completed", w
        assert node.unspent_value(dest_script) == 30_000_000
        states = {(u["txid"], u["state"]) for u in svc.store.all("SELECT txid, state FROM utxos")}
        assert not any(s in ("reserved", "pending") for _t, s in states)  # settled: no coin left in limbo
        assert (w["txid"], "unspent") in states  # the change is spendable again
        fee = int(svc.store.one("SELECT fee_chain FROM chain_txs WHERE txid=?", (w["txid"],))["fee_chain"])
        assert wallet.hot_balance() == 80_000_000 - 30_000_000 - fee
        assert world.balance("ALPHA-1", "BTC") == (20_000_000, 0)
        assert world.onchain("BTC") == world.external("BTC")  # the ledger and the coin records agree
        assert world.conserved()
        # the change can pay the next withdrawal
        r2 = svc.request_withdrawal("ops-alice", "ALPHA-1", "BTC", "0.1", BTC_DEST)
        assert svc.approve("ops-bob", r2.data["id"]).ok and svc.approve("ops-carol", r2.data["id"]).ok
        world.tick()
        assert svc.withdrawal(r2.data["id"])["txid"] in node.mempool
    finally:
        world.close()
        node.stop()
