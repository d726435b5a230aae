"""Proof of reserves: a Merkle-sum tree of client liabilities beside on-chain balances.

Liabilities. For each ledger asset, every client account with a balance is a leaf
``(H(account : salt), balance)``; an inner node is ``H(left, left_sum, right, right_sum)``
carrying ``left_sum + right_sum``, so the root commits to every balance and to their
total, and no leaf can hide a negative amount (each sum is a 256-bit unsigned field).
The salt is an HMAC of the account under a secret the venue keeps, so the published tree
names nobody; each client receives its own salt and path (:meth:`MerkleSumTree.proof`)
and checks it with :func:`verify_proof`, independently of the venue.

Reserves. The balances of every address the venue controls (hot, deposit, cold), read
from the chain at one height (Bitcoin: from the venue's UTXO records when no node is
configured, and labelled so).

The attestation is the canonical JSON of both, signed in the token with a dedicated key
(``attest/reserves``); :func:`verify_attestation` recovers the signer's address.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from eth_keys import keys as eth_keys
from eth_utils import keccak

from custody.errors import InvalidInput

PAD = hashlib.sha256(b"\x02venue-reserves-pad").digest()


def _sum(n: int) -> bytes:
    if n < 0 or n >= 1 << 256:
        raise InvalidInput("balance", "a liability must be within 0 .. 2^256")
    return n.to_bytes(32, "big")


def commitment(account: str, salt: str) -> bytes:
    return hashlib.sha256(f"{account}:{salt}".encode()).digest()


def leaf(account: str, salt: str, balance: int) -> bytes:
    return hashlib.sha256(b"\x00" + commitment(account, salt) + _sum(balance)).digest()


def node(lh: bytes, ls: int, rh: bytes, rs: int) -> tuple[bytes, int]:
    return hashlib.sha256(b"\x01" + lh + _sum(ls) + rh + _sum(rs)).digest(), ls + rs


class MerkleSumTree:
    def __init__(self, balances: dict[str, int], secret: bytes, epoch: str, asset: str) -> None:
        self.asset = asset
        self.epoch = epoch
        self._salt = {a: hmac.new(secret, f"{epoch}|{asset}|{a}".encode(), hashlib.sha256).hexdigest() for a in balances}
        items = sorted(((leaf(a, self._salt[a], b), b, a) for a, b in balances.items()), key=lambda x: x[0])
        self.balances = dict(balances)
        self.index = {a: i for i, (_h, _b, a) in enumerate(items)}
        level: list[tuple[bytes, int]] = [(h, b) for h, b, _a in items] or [(PAD, 0)]
        self.levels = [level]
        while len(level) > 1:
            if len(level) % 2:
                level = level + [(PAD, 0)]
                self.levels[-1] = level
            level = [node(level[i][0], level[i][1], level[i + 1][0], level[i + 1][1]) for i in range(0, len(level), 2)]
            self.levels.append(level)

    @property
    def root(self) -> tuple[str, int]:
        h, s = self.levels[-1][0]
        return h.hex(), s

    def proof(self, account: str) -> dict[str, Any] | None:
        """What a client needs to check its own balance is in the root."""
        i = self.index.get(account)
        if i is None:
            return None
        path = []
        for level in self.levels[:-1]:
            sib = i ^ 1
            h, s = level[sib]
            path.append({"side": "L" if sib < i else "R", "hash": h.hex(), "sum": str(s)})
            i //= 2
        return {"asset": self.asset, "epoch": self.epoch, "account": account, "salt": self._salt[account],
                "balance": str(self.balances[account]), "path": path}


def verify_proof(root_hash: str, root_sum: int, proof: dict[str, Any]) -> bool:
    """Recompute the root from a client's leaf and path: the client's own check."""
    try:
        h = leaf(proof["account"], proof["salt"], int(proof["balance"]))
        s = int(proof["balance"])
        for step in proof["path"]:
            sh, ss = bytes.fromhex(step["hash"]), int(step["sum"])
            h, s = node(sh, ss, h, s) if step["side"] == "L" else node(h, s, sh, ss)
    except (KeyError, ValueError, InvalidInput):
        return False
    return h.hex() == root_hash and s == root_sum


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def verify_attestation(att: dict[str, Any]) -> bool:
    """True if ``att['signature']`` over ``att['statement']`` recovers ``att['signer']``."""
    try:
        digest = keccak(canonical(att["statement"]))
        sig = att["signature"]
        pub = eth_keys.Signature(vrs=(int(sig["v"]), int(sig["r"], 16), int(sig["s"], 16))).recover_public_key_from_msg_hash(digest)
        return bool(pub.to_checksum_address() == att["signer"])
    except Exception:
        return False
