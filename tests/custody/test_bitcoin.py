"""Bitcoin: BIP84 deposit addresses, and an HSM-signed P2WPKH withdrawal that verifies
under an independent BIP143 implementation."""
from __future__ import annotations

import coincurve

from custody.bitcoin import HOT_LABEL, hash160
from venue import commands as C

from tests.custody import bip143
from tests.custody.world import World


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
