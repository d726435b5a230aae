"""Bitcoin with bitcoinlib: BIP84 deposit addresses, the venue's own UTXO records,
withdrawals built offline and signed in the token, and a small bitcoind RPC adapter.

Keys. The hot wallet key is a non-extractable secp256k1 key in the token (``btc/hot``);
every withdrawal input is signed there over its BIP143 digest. Deposit addresses are
BIP84 (native segwit, P2WPKH) children ``m/84'/coin'/0'/0/i`` of an account key. A
PKCS#11 token cannot derive BIP32 children (SoftHSM2 has no such mechanism; some network
HSMs have vendor mechanisms for it), so the BIP84 seed is kept as a private data object
in the token (encrypted at rest under the token PIN, readable only after login) and the
child keys are derived in memory when a deposit is swept to the hot wallet. Addresses
come from the account's public key alone.

UTXOs. Custody records every output paying one of its addresses (``record_incoming``
parses the raw transaction), reserves the inputs of what it signs and records its change.
Nothing here asks a node which coins exist.

Node. :class:`BitcoindRpc` is the real mode: a bitcoind JSON-RPC URL the operator brings.
No bitcoind ships with Debian 12 or PyPI, so that adapter is kept small and is not
exercised by the test suite; everything before broadcast is.

bitcoinlib reads ``BCL_DATA_DIR`` when first imported; :func:`use_data_dir` sets it to a
directory under the venue's data directory before that import.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any, NamedTuple

from custody import secp256k1
from custody.errors import ChainError, InvalidInput
from custody.signer import SignerWorker
from custody.store import Store

HOT_LABEL = "btc/hot"
SEED_LABEL = "btc/bip84-seed"
COIN_TYPE = {"bitcoin": 0, "testnet": 1, "regtest": 1}
HRP = {"bitcoin": "bc", "testnet": "tb", "regtest": "bcrt"}


def use_data_dir(path: str) -> None:
    """Make bitcoinlib keep its files under ``path`` (only effective before its import)."""
    os.makedirs(path, exist_ok=True)
    os.environ.setdefault("BCL_DATA_DIR", path)


def _bcl() -> Any:
    import logging
    import warnings

    with warnings.catch_warnings():  # its SQLAlchemy 1.x idioms and an unclosed file, on import
        warnings.simplefilter("ignore")
        from bitcoinlib import keys, transactions  # noqa: F401  (imported after BCL_DATA_DIR is set)
    logging.getLogger("bitcoinlib").setLevel(logging.ERROR)
    return keys, transactions


def hash160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest()


def p2wpkh_address(pub: bytes, network: str) -> str:
    keys, _ = _bcl()
    pub33 = pub if len(pub) == 33 else secp256k1.compressed(pub)
    return keys.Address(hashed_data=hash160(pub33), script_type="p2wpkh", witness_type="segwit",
                        encoding="bech32", network=network).address


def check_address(address: str, network: str) -> str:
    """``address`` if it is a bech32 segwit address of ``network``; else refuse."""
    keys, _ = _bcl()
    if not isinstance(address, str) or not address.lower().startswith(HRP[network] + "1"):
        raise InvalidInput("address", f"{address!r} is not a {network} segwit (bech32) address")
    try:
        keys.Address.parse(address, network=network)
    except Exception as e:
        raise InvalidInput("address", f"{address!r} is not a valid {network} address: {e}") from e
    return address.lower()


class Bip84Account:
    """The BIP84 account ``m/84'/coin'/0'`` of a seed held by the signer."""

    def __init__(self, worker: SignerWorker, network: str) -> None:
        keys, _ = _bcl()
        seed = worker.get_secret(SEED_LABEL)
        if seed is None:
            worker.put_secret(SEED_LABEL, secrets.token_bytes(32))
            seed = worker.get_secret(SEED_LABEL)
        assert seed is not None
        self.network = network
        root = keys.HDKey.from_seed(seed, network=network, witness_type="segwit")
        self._account = root.key_for_path(f"m/84'/{COIN_TYPE[network]}'/0'")
        self.xpub = self._account.wif_public()

    def key(self, index: int) -> Any:
        return self._account.key_for_path(f"0/{index}")

    def address(self, index: int) -> str:
        return self.key(index).address()


class Utxo(NamedTuple):
    txid: str
    vout: int
    address: str
    amount: int
    key_label: str


class SignedBtc(NamedTuple):
    txid: str
    raw: str
    fee: int
    inputs: list[Utxo]
    change: int


class BitcoinWallet:
    """The venue's Bitcoin coins and the transactions it builds from them."""

    def __init__(self, store: Store, worker: SignerWorker, network: str = "regtest", fee_rate: int = 10) -> None:
        self.store = store
        self.worker = worker
        self.network = network
        self.fee_rate = fee_rate  # sat per vbyte
        self.bip84 = Bip84Account(worker, network)
        self.hot_pub = worker.ensure_key(HOT_LABEL)
        self.hot_address = p2wpkh_address(self.hot_pub, network)

    # -- coins -----------------------------------------------------------------------
    def record_incoming(self, raw_hex: str, height: int | None, labels: dict[str, str]) -> list[Utxo]:
        """Record the outputs of a transaction that pay one of ``labels`` (address -> key
        label, e.g. ``btc/hot`` or ``bip84/0/7``); idempotent. Returns the new ones."""
        _, tx = _bcl()
        t = tx.Transaction.parse_hex(raw_hex, network=self.network)
        txid = t.txid
        new = []
        with self.store.tx():
            for o in t.outputs:
                label = labels.get(o.address)
                if label is None:
                    continue
                n = self.store.run("INSERT OR IGNORE INTO utxos(txid, vout, address, amount, key_label, height, state)"
                                   " VALUES(?,?,?,?,?,?, 'unspent')", (txid, o.output_n, o.address, int(o.value), label, height))
                if n:
                    new.append(Utxo(txid, o.output_n, o.address, int(o.value), label))
        return new

    def unspent(self, key_label: str | None = None) -> list[Utxo]:
        q = "SELECT txid, vout, address, amount, key_label FROM utxos WHERE state='unspent'"
        rows = self.store.all(q + (" AND key_label=?" if key_label else "") + " ORDER BY amount DESC, txid, vout",
                              (key_label,) if key_label else ())
        return [Utxo(r["txid"], r["vout"], r["address"], int(r["amount"]), r["key_label"]) for r in rows]

    def hot_balance(self) -> int:
        return sum(u.amount for u in self.unspent(HOT_LABEL))

    def vsize(self, n_in: int, n_out: int) -> int:
        """P2WPKH in, P2WPKH out: an upper bound on the virtual size."""
        return 11 + 68 * n_in + 31 * n_out

    def plan(self, amount: int) -> tuple[list[Utxo], int] | None:
        """Hot coins to pay ``amount`` and the fee (largest first), or None if short."""
        picked: list[Utxo] = []
        total = 0
        for u in self.unspent(HOT_LABEL):
            picked.append(u)
            total += u.amount
            fee = self.vsize(len(picked), 2) * self.fee_rate
            if total >= amount + fee:
                return picked, fee
        return None

    # -- building and signing ----------------------------------------------------------
    def sign_payment(self, to: str, amount: int, inputs: list[Utxo], fee: int) -> SignedBtc:
        """A P2WPKH transaction paying ``amount`` to ``to`` from hot ``inputs``, change to
        the hot address, every input signed in the token. Verified before it is returned."""
        keys, tx = _bcl()
        to = check_address(to, self.network)
        change = sum(u.amount for u in inputs) - amount - fee
        if change < 0:
            raise InvalidInput("funds", "the inputs do not cover the amount and the fee")
        hot_key = keys.Key(secp256k1.compressed(self.hot_pub).hex(), network=self.network)
        t = tx.Transaction(network=self.network, witness_type="segwit", version=2)
        for u in inputs:
            if u.key_label != HOT_LABEL:
                raise InvalidInput("input", f"{u.txid}:{u.vout} is not a hot-wallet coin")
            t.add_input(u.txid, u.vout, keys=[hot_key], value=u.amount, witness_type="segwit")
        t.add_output(amount, to)
        if change >= 546:  # dust below this goes to the miner
            t.add_output(change, self.hot_address)
        for i in range(len(inputs)):
            digest = t.signature_hash(i)
            r, s = self.worker.sign(HOT_LABEL, digest)
            t.inputs[i].signatures = [keys.Signature(r, s, message=digest, public_key=hot_key)]
            t.inputs[i].update_scripts()
        if not t.verify():
            raise ChainError("a withdrawal signed in the token does not verify")
        raw = t.raw_hex()
        real = tx.Transaction.parse_hex(raw, network=self.network)  # a hand-built txid can be stale
        return SignedBtc(real.txid, raw, sum(u.amount for u in inputs) - sum(int(o.value) for o in real.outputs),
                         inputs, change if change >= 546 else 0)

    def reserve(self, signed: SignedBtc) -> None:
        """Mark the inputs as spent by ``signed`` and record its change (durably)."""
        with self.store.tx():
            for u in signed.inputs:
                n = self.store.run("UPDATE utxos SET state='reserved', spent_by=? WHERE txid=? AND vout=? AND state='unspent'",
                                   (signed.txid, u.txid, u.vout))
                if n != 1:
                    raise ChainError(f"coin {u.txid}:{u.vout} is no longer unspent")
            self.record_incoming(signed.raw, None, {self.hot_address: HOT_LABEL})
            self.store.run("UPDATE utxos SET state='pending' WHERE txid=? AND state='unspent'", (signed.txid,))

    def settle(self, txid: str, height: int, ok: bool) -> None:
        """``txid`` is confirmed (its inputs are spent, its change spendable) or failed."""
        with self.store.tx():
            if ok:
                self.store.run("UPDATE utxos SET state='spent' WHERE spent_by=? AND state='reserved'", (txid,))
                self.store.run("UPDATE utxos SET state='unspent', height=? WHERE txid=? AND state='pending'", (height, txid))
            else:
                self.store.run("UPDATE utxos SET state='unspent', spent_by=NULL WHERE spent_by=? AND state='reserved'", (txid,))
                self.store.run("UPDATE utxos SET state='void' WHERE txid=? AND state='pending'", (txid,))


RPC_NOT_FOUND = -5  # bitcoind: "No such mempool or blockchain transaction"
RPC_OUT_OF_RANGE = -8  # bitcoind: "Block height out of range"


class RpcError(ChainError):
    """bitcoind answered with an error object (``code`` is its RPC error code)."""

    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"bitcoind {method}: {error}")
        self.code = int(error.get("code", 0)) if isinstance(error, dict) else 0


class BitcoindRpc:
    """The real-mode node: bitcoind's JSON-RPC (``http://user:pass@host:port``).
    A failed call raises :class:`ChainError`; only bitcoind's own "not found" answers
    become None, so a node that does not answer is never read as "no such thing"."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._auth = ""
        if "@" in url:
            scheme, rest = url.split("://", 1)
            cred, host = rest.rsplit("@", 1)
            self._url = f"{scheme}://{host}"
            self._auth = "Basic " + base64.b64encode(cred.encode()).decode()

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "1.0", "id": "venue", "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self._url, body, {"Content-Type": "application/json"})
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                doc = json.loads(resp.read(), parse_float=Decimal)
        except urllib.error.HTTPError as e:  # bitcoind answers RPC errors with HTTP 404/500 and a JSON body
            try:
                doc = json.loads(e.read(), parse_float=Decimal)
            except Exception:
                raise ChainError(f"bitcoind {method} failed: {e}") from e
        except Exception as e:
            raise ChainError(f"bitcoind {method} failed: {e}") from e
        if not isinstance(doc, dict):
            raise ChainError(f"bitcoind {method}: unexpected answer {doc!r:.200}")
        if doc.get("error"):
            raise RpcError(method, doc["error"])
        return doc.get("result")

    def head(self) -> int:
        return int(self.call("getblockcount"))

    def block_hash(self, height: int) -> str | None:
        try:
            return str(self.call("getblockhash", height))
        except RpcError as e:
            if e.code == RPC_OUT_OF_RANGE:
                return None
            raise

    def block_txs(self, height: int) -> tuple[str, list[str]]:
        h = self.call("getblockhash", height)
        blk = self.call("getblock", h, 2)
        return str(h), [str(t["hex"]) for t in blk["tx"]]

    def send_raw(self, raw_hex: str) -> str:
        return str(self.call("sendrawtransaction", raw_hex))

    def confirmations(self, txid: str) -> tuple[int, str] | None:
        """(confirmations, block hash) of ``txid`` (0 while in the mempool), or None if
        bitcoind positively knows no such transaction."""
        try:
            t = self.call("getrawtransaction", txid, True)
        except RpcError as e:
            if e.code == RPC_NOT_FOUND:
                return None
            raise
        return int(t.get("confirmations", 0)), str(t.get("blockhash", ""))
