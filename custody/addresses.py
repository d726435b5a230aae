"""Addresses: the venue's own (hot, deposit) and each account's withdrawal address book.

Deposit addresses. One per account and asset, made on first request and the same ever
after. On Ethereum each is its own key generated in the token (``eth/dep/<account>/<symbol>``),
so a sweep is signed there too. On Bitcoin each is the next BIP84 child of the account
key (see :mod:`custody.bitcoin`).

Address book. A withdrawal may only go to an address in the account's book that a
second person approved; adding is open to operators and to the account's firm,
approving to the configured approvers other than whoever added it.
"""
from __future__ import annotations

from typing import Any, Callable

from custody import policy
from custody.assets import BITCOIN, ETHEREUM, ChainAsset
from custody.bitcoin import Bip84Account, check_address
from custody.errors import InvalidInput
from custody.ethereum import checksum
from custody.outcome import Outcome
from custody.secp256k1 import eth_address
from custody.signer import SignerWorker
from custody.store import Store
from venue.clock import Clock


class Addresses:
    def __init__(self, store: Store, worker: SignerWorker, clock: Clock, bitcoin_network: str,
                 bip84: Callable[[], Bip84Account]) -> None:
        self.store = store
        self.worker = worker
        self.clock = clock
        self.bitcoin_network = bitcoin_network
        self._bip84 = bip84

    # -- the venue's own keys ------------------------------------------------------------
    def own_key(self, label: str, chain: str, role: str, account: str | None = None, symbol: str | None = None) -> str:
        """The address of a venue key (created in the signer if new), recorded in the store."""
        row = self.store.one("SELECT address FROM keys WHERE label=?", (label,))
        if row is not None:
            return str(row["address"])
        pub = self.worker.ensure_key(label)
        if chain == ETHEREUM:
            address = eth_address(pub)
        else:
            from custody.bitcoin import p2wpkh_address
            address = p2wpkh_address(pub, self.bitcoin_network)
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("INSERT INTO keys(label, chain, role, account, symbol, address, pubkey, created_ns) "
                           "VALUES(?,?,?,?,?,?,?,?)", (label, chain, role, account, symbol, address, pub.hex(), now))
            self.store.audit(now, "custody", "key_created", label, chain=chain, role=role, address=address,
                             signer=self.worker.kind)
        return address

    def deposit_address(self, account: str, asset: ChainAsset) -> str:
        row = self.store.one("SELECT address FROM deposit_addresses WHERE account=? AND symbol=?", (account, asset.symbol))
        if row is not None:
            return str(row["address"])
        if asset.chain == ETHEREUM:
            label = f"eth/dep/{account}/{asset.symbol}"
            address = self.own_key(label, ETHEREUM, "deposit", account, asset.symbol)
        else:
            with self.store.tx():
                n = self.store.one("SELECT COUNT(*) AS n FROM keys WHERE chain=? AND role='deposit'", (BITCOIN,))["n"]
                label = f"bip84/0/{n}"
                key = self._bip84().key(n)
                address = key.address()
                now = self.clock.now_ns()
                self.store.run("INSERT INTO keys(label, chain, role, account, symbol, address, pubkey, path, created_ns) "
                               "VALUES(?,?,?,?,?,?,?,?,?)", (label, BITCOIN, "deposit", account, asset.symbol, address,
                                                              key.public_hex, f"0/{n}", now))
                self.store.audit(now, "custody", "key_derived", label, chain=BITCOIN, address=address, path=f"0/{n}")
        with self.store.tx():
            self.store.run("INSERT INTO deposit_addresses(account, symbol, chain, address, key_label) VALUES(?,?,?,?,?)",
                           (account, asset.symbol, asset.chain, address, label))
            self.store.audit(self.clock.now_ns(), "custody", "deposit_address", account, symbol=asset.symbol, address=address)
        return address

    def owner_of(self, chain: str, address: str) -> Any:
        return self.store.one("SELECT * FROM keys WHERE chain=? AND address=?", (chain, address))

    # -- address book --------------------------------------------------------------------
    def normalise(self, chain: str, address: str) -> str:
        if chain == ETHEREUM:
            return checksum(address)
        if chain == BITCOIN:
            return check_address(address, self.bitcoin_network)
        raise InvalidInput("chain", f"unknown chain {chain!r}")

    def entry(self, account: str, chain: str, address: str) -> policy.BookEntry | None:
        r = self.store.one("SELECT * FROM address_book WHERE account=? AND chain=? AND address=?", (account, chain, address))
        return policy.BookEntry(r["address"], r["state"], r["added_by"], r["approved_by"]) if r else None

    def add(self, actor: str, account: str, chain: str, address: str, label: str) -> Outcome:
        address = self.normalise(chain, address)
        if self.owner_of(chain, address) is not None:
            return Outcome.refused("own_address", "that is one of the venue's own addresses")
        cur = self.entry(account, chain, address)
        if cur is not None and cur.state != "removed":
            return Outcome.refused("address_exists", f"the address is in the book already ({cur.state})")
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("INSERT OR REPLACE INTO address_book(account, chain, address, label, added_by, added_ns, state) "
                           "VALUES(?,?,?,?,?,?, 'pending')", (account, chain, address, label, actor, now))
            self.store.audit(now, actor, "address_added", account, chain=chain, address=address, label=label)
        return Outcome.done(account=account, chain=chain, address=address, state="pending")

    def approve(self, actor: str, account: str, chain: str, address: str, approvers: frozenset[str]) -> Outcome:
        address = self.normalise(chain, address)
        entry = self.entry(account, chain, address)
        refusal = policy.check_address_approval(actor, entry, approvers)
        now = self.clock.now_ns()
        if refusal is not None:
            self.store.audit(now, actor, "address_approval_refused", account, address=address, code=refusal.code,
                             reason=refusal.reason)
            return Outcome.refused(refusal.code, refusal.reason)
        with self.store.tx():
            self.store.run("UPDATE address_book SET state='approved', approved_by=?, approved_ns=? "
                           "WHERE account=? AND chain=? AND address=?", (actor, now, account, chain, address))
            self.store.audit(now, actor, "address_approved", account, chain=chain, address=address)
        return Outcome.done(account=account, chain=chain, address=address, state="approved")

    def remove(self, actor: str, account: str, chain: str, address: str) -> Outcome:
        address = self.normalise(chain, address)
        if self.entry(account, chain, address) is None:
            return Outcome.refused("address_not_in_book", "no such address in the account's address book")
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("UPDATE address_book SET state='removed' WHERE account=? AND chain=? AND address=?",
                           (account, chain, address))
            self.store.audit(now, actor, "address_removed", account, chain=chain, address=address)
        return Outcome.done(account=account, chain=chain, address=address, state="removed")

    def book(self, account: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM address_book" + (" WHERE account=?" if account else "") + " ORDER BY account, added_ns"
        return [dict(r) for r in self.store.all(q, (account,) if account else ())]
