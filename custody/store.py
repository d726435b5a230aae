"""Custody's own durable state: one SQLite file under the venue's data directory.

What lives here is what the ledger does not know: which key and address belongs to which
account, what the watcher has seen on each chain, each withdrawal's progress, approvals,
the address book, limits, the transactions custody signed (persisted *before* they are
broadcast, so a restart re-sends the same bytes and never signs a second payment) and
the hash-chained audit trail, and every proof-of-reserves publication (its signed
attestation and the balances its trees were built from, so a client's proof can be
given for it after a restart). Balances are not here: the venue's journal is the truth,
and custody reconciles against it.

Amounts are stored as decimal text (wei do not fit SQLite's 64-bit integers).
The file uses WAL with ``synchronous=FULL``: a committed step survives a crash.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys(
    label TEXT PRIMARY KEY, chain TEXT NOT NULL, role TEXT NOT NULL, account TEXT, symbol TEXT,
    address TEXT NOT NULL, pubkey TEXT NOT NULL, path TEXT, created_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS keys_address ON keys(chain, address);
CREATE TABLE IF NOT EXISTS deposit_addresses(
    account TEXT NOT NULL, symbol TEXT NOT NULL, chain TEXT NOT NULL, address TEXT NOT NULL,
    key_label TEXT NOT NULL, PRIMARY KEY(account, symbol));
CREATE TABLE IF NOT EXISTS blocks(chain TEXT NOT NULL, height INTEGER NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY(chain, height));
CREATE TABLE IF NOT EXISTS deposits(
    funding_id TEXT PRIMARY KEY, chain TEXT NOT NULL, symbol TEXT NOT NULL, account TEXT NOT NULL,
    address TEXT NOT NULL, txid TEXT NOT NULL, idx INTEGER NOT NULL, amount_chain TEXT NOT NULL,
    amount_ledger TEXT NOT NULL, height INTEGER NOT NULL, block_hash TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', seen_ns INTEGER NOT NULL, credited_ns INTEGER, sweep_txid TEXT);
CREATE INDEX IF NOT EXISTS deposits_state ON deposits(state);
CREATE TABLE IF NOT EXISTS withdrawals(
    id TEXT PRIMARY KEY, account TEXT NOT NULL, symbol TEXT NOT NULL, asset TEXT NOT NULL,
    amount_ledger TEXT NOT NULL, amount_chain TEXT NOT NULL, destination TEXT NOT NULL,
    requested_by TEXT NOT NULL, firm TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', approvals_required INTEGER NOT NULL DEFAULT 0,
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, txid TEXT,
    ledger TEXT NOT NULL DEFAULT 'none');
CREATE INDEX IF NOT EXISTS withdrawals_state ON withdrawals(state);
CREATE TABLE IF NOT EXISTS approvals(withdrawal_id TEXT NOT NULL, approver TEXT NOT NULL, ns INTEGER NOT NULL,
    PRIMARY KEY(withdrawal_id, approver));
CREATE TABLE IF NOT EXISTS address_book(
    account TEXT NOT NULL, chain TEXT NOT NULL, address TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',
    added_by TEXT NOT NULL, added_ns INTEGER NOT NULL, approved_by TEXT, approved_ns INTEGER,
    state TEXT NOT NULL, PRIMARY KEY(account, chain, address));
CREATE TABLE IF NOT EXISTS limits(account TEXT NOT NULL, symbol TEXT NOT NULL, per_tx TEXT NOT NULL,
    daily TEXT NOT NULL, set_by TEXT NOT NULL, PRIMARY KEY(account, symbol));
CREATE TABLE IF NOT EXISTS chain_txs(
    txid TEXT PRIMARY KEY, chain TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, symbol TEXT NOT NULL,
    from_addr TEXT NOT NULL, to_addr TEXT NOT NULL, amount_chain TEXT NOT NULL, nonce INTEGER,
    raw TEXT NOT NULL, state TEXT NOT NULL, height INTEGER, block_hash TEXT, fee_chain TEXT,
    gas_hold_id TEXT, gas_hold_ledger TEXT, fee_posted INTEGER NOT NULL DEFAULT 0,
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chain_txs_state ON chain_txs(state);
CREATE TABLE IF NOT EXISTS utxos(
    txid TEXT NOT NULL, vout INTEGER NOT NULL, address TEXT NOT NULL, amount INTEGER NOT NULL,
    key_label TEXT NOT NULL, height INTEGER, state TEXT NOT NULL, spent_by TEXT,
    PRIMARY KEY(txid, vout));
CREATE TABLE IF NOT EXISTS cold_requests(
    id TEXT PRIMARY KEY, chain TEXT NOT NULL, symbol TEXT NOT NULL, amount_chain TEXT NOT NULL,
    unsigned TEXT NOT NULL, state TEXT NOT NULL, txid TEXT, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reserves(
    epoch TEXT PRIMARY KEY, ns INTEGER NOT NULL, attestation TEXT NOT NULL, liabilities TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT, ns INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
"""

GENESIS_HASH = "0" * 64


def _audit_hash(prev: str, ns: int, actor: str, action: str, subject: str, detail: str) -> str:
    return hashlib.sha256(json.dumps([prev, ns, actor, action, subject, detail]).encode()).hexdigest()


class Store:
    """A thread-safe handle on the custody database. Write in ``with store.tx():``."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def tx(self) -> Iterator[Store]:
        """One atomic, durable step (nests: the outermost commits)."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    def run(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def get_meta(self, k: str) -> str | None:
        row = self.one("SELECT v FROM meta WHERE k=?", (k,))
        return row["v"] if row else None

    def set_meta(self, k: str, v: str) -> None:
        self.run("INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))

    # -- audit -----------------------------------------------------------------------
    def audit(self, ns: int, actor: str, action: str, subject: str, **detail: Any) -> None:
        """Append an audit record chained to the previous one by hash."""
        text = json.dumps(detail, sort_keys=True, default=str)
        with self.tx():
            row = self.one("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
            prev = row["hash"] if row else GENESIS_HASH
            h = _audit_hash(prev, ns, actor, action, subject, text)
            self.run("INSERT INTO audit(ns, actor, action, subject, detail, prev, hash) VALUES(?,?,?,?,?,?,?)",
                     (ns, actor, action, subject, text, prev, h))

    def audit_trail(self, subject: str | None = None) -> list[dict[str, Any]]:
        rows = (self.all("SELECT * FROM audit WHERE subject=? ORDER BY id", (subject,)) if subject
                else self.all("SELECT * FROM audit ORDER BY id"))
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def verify_audit(self) -> int | None:
        """The id of the first audit record whose chain is broken, or None if intact."""
        prev = GENESIS_HASH
        for r in self.all("SELECT * FROM audit ORDER BY id"):
            if r["prev"] != prev or _audit_hash(prev, r["ns"], r["actor"], r["action"], r["subject"], r["detail"]) != r["hash"]:
                return int(r["id"])
            prev = r["hash"]
        return None

    def close(self) -> None:
        with self._lock:
            self._db.close()
