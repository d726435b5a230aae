"""The deposit watcher: credits each deposit once, at the configured depth, reorgs or not.

Per chain it keeps a cursor (the highest block scanned) and the hashes of the last
``reorg_window`` blocks. Each poll:

1. **Reorg check.** If the stored hash at the cursor is no longer the chain's, walk back
   to the highest block that still matches, forget the blocks above it, and drop the
   uncredited deposits seen there (if their transaction is mined again elsewhere the
   scan finds it again, with the same funding id). A *credited* deposit in a dropped
   block means a reorg deeper than the confirmation depth: it is flagged for operators,
   never reversed automatically.
2. **Scan** the new blocks for transfers into deposit addresses (the chain adapter knows
   how: native values and ERC-20 logs on Ethereum).
0. **Same chain?** (:meth:`Watcher.check_chain`) The records are about one chain: its
   identity (Ethereum: chain id and genesis hash; Bitcoin: genesis hash) is stored the
   first time. A node that serves another chain, or one shorter than the records with
   none of the recent block hashes in common (a development chain started afresh, as
   the embedded EVM is each time a demo restarts), is a *replaced* chain. The service
   decides what follows (:meth:`custody.service.CustodyService`): on a development chain
   the records are reset (:meth:`Watcher.reset`), on a real node custody refuses to go on.
3. **Credit** every deposit with at least ``confirmations`` blocks on top, after checking
   the block it was seen in is still the chain's block at that height, with ``venue.commands.Deposit`` whose
   funding id is ``<chain>:<txid>:<index>``. The ledger refuses a funding id twice, so
   a restart between posting and recording, or a second sighting, never credits twice.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, NamedTuple, Protocol

from custody.assets import ChainAsset
from custody.ethereum import EthereumChain, Observed
from custody.ledger_port import LedgerPort
from custody.store import Store
from venue import commands as C
from venue.clock import Clock

log = logging.getLogger("custody.watcher")


class Source(Protocol):
    chain: str

    def identity(self) -> str: ...
    def head(self) -> int: ...
    def block_hash(self, height: int) -> str | None: ...
    def scan(self, first: int, last: int, watched: dict[str, str], own: set[str]) -> list[Observed]: ...
    def where(self, txid: str) -> tuple[int, str] | None: ...


class EthereumSource:
    """Ethereum deposits: ETH values and the configured ERC-20 tokens' Transfer logs."""

    chain = "ethereum"

    def __init__(self, eth: EthereumChain, assets: dict[str, ChainAsset]) -> None:
        self.eth = eth
        self.native = next((a.symbol for a in assets.values() if a.native), "ETH")
        self.tokens = {s: a for s, a in assets.items() if not a.native}

    def identity(self) -> str:
        ident = f"{self.eth.chain_id}/{self.eth.block_hash(0)}"
        return f"{ident}/{self.eth.instance}" if self.eth.instance else ident

    def head(self) -> int:
        return self.eth.head()

    def block_hash(self, height: int) -> str | None:
        return self.eth.block_hash(height)

    def scan(self, first: int, last: int, watched: dict[str, str], own: set[str]) -> list[Observed]:
        return self.eth.scan(first, last, watched, self.tokens, own, self.native)

    def where(self, txid: str) -> tuple[int, str] | None:
        r = self.eth.receipt(txid)
        return (r.height, r.block_hash) if r is not None and r.ok else None


class ChainReplaced(NamedTuple):
    """The node serves another chain than the one custody's records are about."""

    chain: str
    old_identity: str
    new_identity: str
    recorded_height: int
    head: int

    def describe(self) -> str:
        if self.old_identity != self.new_identity:
            return (f"the {self.chain} node serves chain {self.new_identity}, custody's records are about "
                    f"{self.old_identity}")
        return (f"the {self.chain} node's chain ends at height {self.head}, below custody's records at "
                f"{self.recorded_height}, with none of their recent blocks")


class PollReport(NamedTuple):
    head: int
    seen: int
    credited: int
    orphaned: int


class Watcher:
    def __init__(self, store: Store, ledger: LedgerPort, source: Source, assets: dict[str, ChainAsset], clock: Clock,
                 confirmations: int, reorg_window: int = 64, scan_batch: int = 200,
                 addresses: Callable[[], tuple[dict[str, tuple[str, str]], set[str]]] | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.source = source
        self.chain = source.chain
        self.assets = assets
        self.clock = clock
        self.confirmations = max(1, confirmations)
        self.reorg_window = max(reorg_window, confirmations + 2)
        self.scan_batch = scan_batch
        self.addresses = addresses or self._addresses

    def _addresses(self) -> tuple[dict[str, tuple[str, str]], set[str]]:
        """address -> (account, symbol) of this chain's deposit addresses; and every
        address of the venue on this chain (whose transfers are not deposits)."""
        dep = {r["address"]: (r["account"], r["symbol"])
               for r in self.store.all("SELECT * FROM deposit_addresses WHERE chain=?", (self.chain,))}
        own = {r["address"] for r in self.store.all("SELECT address FROM keys WHERE chain=?", (self.chain,))}
        return dep, own

    def cursor(self) -> int:
        row = self.store.one("SELECT MAX(height) AS h FROM blocks WHERE chain=?", (self.chain,))
        if row is None or row["h"] is None:
            start = self.store.get_meta(f"{self.chain}.start")
            if start is None:
                start = str(max(self.source.head() - 1, -1))
                self.store.set_meta(f"{self.chain}.start", start)
            return int(start)
        return int(row["h"])

    # -- is it the same chain? -------------------------------------------------------------
    def check_chain(self) -> ChainReplaced | None:
        """None if the node serves the chain the records are about (recording its identity
        the first time), else what differs. Node failures raise :class:`ChainError`."""
        key = f"{self.chain}.identity"
        ident = self.source.identity()
        known = self.store.get_meta(key)
        if known is None:  # records from before identities were kept (if any) are checked by height below
            self.store.set_meta(key, ident)
            known = ident
        top = self.store.one("SELECT MAX(height) AS h FROM blocks WHERE chain=?", (self.chain,))
        recorded = int(top["h"]) if top is not None and top["h"] is not None else int(self.store.get_meta(f"{self.chain}.start") or -1)
        head = self.source.head()
        if known != ident:
            return ChainReplaced(self.chain, known, ident, recorded, head)
        if head < recorded:
            rows = self.store.all("SELECT height, hash FROM blocks WHERE chain=? AND height<=? ORDER BY height DESC",
                                  (self.chain, head))
            if not any(self.source.block_hash(int(r["height"])) == r["hash"] for r in rows):
                return ChainReplaced(self.chain, known, ident, recorded, head)
        return None

    def reset(self, change: ChainReplaced) -> dict[str, int]:
        """Forget the replaced chain: its blocks; its deposits not yet credited are
        ``abandoned`` (they exist on no chain custody can see); credited ones stay credited
        (the ledger keeps them) and say where they came from. Scanning starts again near
        the new chain's head (from its genesis while it is young)."""
        now = self.clock.now_ns()
        why = change.describe()
        with self.store.tx():
            self.store.run("DELETE FROM blocks WHERE chain=?", (self.chain,))
            abandoned = self.store.run("UPDATE deposits SET state='abandoned', reason=? WHERE chain=? AND state='seen'",
                                       (f"its chain was replaced: {why}", self.chain))
            kept = self.store.run("UPDATE deposits SET reason=? WHERE chain=? AND state IN ('credited', 'swept')",
                                  ("credited on a chain that was later replaced", self.chain))
            start = max(change.head - self.reorg_window, -1)
            self.store.set_meta(f"{self.chain}.start", str(start))
            self.store.set_meta(f"{self.chain}.identity", change.new_identity)
            self.store.audit(now, "watcher", "chain_replaced", self.chain, reason=why, old=change.old_identity,
                             new=change.new_identity, recorded_height=change.recorded_height, head=change.head,
                             deposits_abandoned=abandoned, credited_kept=kept, scan_from=start + 1)
        log.warning("%s: %s; %d uncredited deposits abandoned, %d credited kept; scanning from %d",
                    self.chain, why, abandoned, kept, start + 1)
        return {"deposits_abandoned": abandoned, "credited_kept": kept, "scan_from": start + 1}

    # -- one poll ----------------------------------------------------------------------
    def poll(self) -> PollReport:
        orphaned = self._check_reorg()
        head = self.source.head()
        dep, own = self.addresses()
        watched = {a: s for a, (_acct, s) in dep.items()}
        seen = 0
        cursor = self.cursor()
        while cursor < head:
            last = min(head, cursor + self.scan_batch)
            found = self.source.scan(cursor + 1, last, watched, own) if watched else []
            hashes = [(h, self.source.block_hash(h)) for h in range(max(cursor + 1, last - self.reorg_window + 1), last + 1)]
            now = self.clock.now_ns()
            with self.store.tx():
                for ob in found:
                    seen += self._record(ob, dep[ob.address][0], now)
                for h, bh in hashes:
                    if bh is not None:
                        self.store.run("INSERT OR REPLACE INTO blocks(chain, height, hash) VALUES(?,?,?)", (self.chain, h, bh))
                if not hashes:
                    self.store.run("INSERT OR REPLACE INTO blocks(chain, height, hash) VALUES(?,?,?)",
                                   (self.chain, last, self.source.block_hash(last) or ""))
                self.store.run("DELETE FROM blocks WHERE chain=? AND height<?", (self.chain, last - self.reorg_window))
            cursor = last
        credited = self._credit(head)
        return PollReport(head, seen, credited, orphaned)

    def _record(self, ob: Observed, account: str, now: int) -> int:
        asset = self.assets[ob.symbol]
        row = self.store.one("SELECT state, height FROM deposits WHERE funding_id=?", (ob.funding_id,))
        if row is not None:
            if row["state"] == "seen" and row["height"] != ob.height:  # mined again in another block
                self.store.run("UPDATE deposits SET height=?, block_hash=? WHERE funding_id=?",
                               (ob.height, ob.block_hash, ob.funding_id))
            return 0
        self.store.run(
            "INSERT INTO deposits(funding_id, chain, symbol, account, address, txid, idx, amount_chain, amount_ledger,"
            " height, block_hash, state, seen_ns) VALUES(?,?,?,?,?,?,?,?,?,?,?, 'seen', ?)",
            (ob.funding_id, self.chain, ob.symbol, account, ob.address, ob.txid, ob.index, str(ob.amount),
             str(asset.to_ledger(ob.amount)), ob.height, ob.block_hash, now))
        self.store.audit(now, "watcher", "deposit_seen", ob.funding_id, account=account, symbol=ob.symbol,
                         amount=asset.fmt(ob.amount), height=ob.height)
        return 1

    def _check_reorg(self) -> int:
        rows = self.store.all("SELECT height, hash FROM blocks WHERE chain=? ORDER BY height DESC", (self.chain,))
        if not rows or self.source.block_hash(rows[0]["height"]) == rows[0]["hash"]:
            return 0
        fork = None
        for r in rows[1:]:
            if self.source.block_hash(r["height"]) == r["hash"]:
                fork = int(r["height"])
                break
        if fork is None:  # deeper than the window: rescan the window
            fork = int(rows[-1]["height"]) - 1
        now = self.clock.now_ns()
        dropped = 0
        with self.store.tx():
            self.store.run("DELETE FROM blocks WHERE chain=? AND height>?", (self.chain, fork))
            for d in self.store.all("SELECT * FROM deposits WHERE chain=? AND height>? AND state IN ('seen', 'credited')",
                                    (self.chain, fork)):
                if d["state"] == "seen":
                    self.store.run("DELETE FROM deposits WHERE funding_id=?", (d["funding_id"],))
                    self.store.audit(now, "watcher", "deposit_orphaned", d["funding_id"], height=d["height"], fork=fork)
                    dropped += 1
                else:
                    self.store.run("UPDATE deposits SET reason=? WHERE funding_id=?",
                                   ("credited, then its block was reorganised away: check on-chain", d["funding_id"]))
                    self.store.audit(now, "watcher", "deep_reorg_credited_deposit", d["funding_id"], height=d["height"], fork=fork)
            if not self.store.one("SELECT 1 FROM blocks WHERE chain=?", (self.chain,)):
                self.store.set_meta(f"{self.chain}.start", str(fork))
        log.warning("%s: reorganisation below height %d; %d unconfirmed deposits dropped", self.chain, rows[0]["height"], dropped)
        return dropped

    def _credit(self, head: int) -> int:
        credited = 0
        due = self.store.all("SELECT * FROM deposits WHERE chain=? AND state='seen' AND height<=? ORDER BY height, funding_id",
                             (self.chain, head - self.confirmations + 1))
        hashes: dict[int, str | None] = {}
        for d in due:
            h = int(d["height"])
            if h not in hashes:
                hashes[h] = self.source.block_hash(h)
            if hashes[h] != d["block_hash"]:
                continue  # its block was replaced: the next poll's reorg check and scan sort it out
            asset = self.assets[d["symbol"]]
            p = self.ledger.post(C.Deposit(d["funding_id"], d["account"], asset.ledger_asset, int(d["amount_ledger"])))
            now = self.clock.now_ns()
            with self.store.tx():
                if p.ok:
                    self.store.run("UPDATE deposits SET state='credited', credited_ns=? WHERE funding_id=?", (now, d["funding_id"]))
                    self.store.audit(now, "watcher", "deposit_credited", d["funding_id"], account=d["account"],
                                     asset=asset.ledger_asset, atoms=d["amount_ledger"], seq=p.seq, repeat=p.already)
                    credited += 1
                else:
                    self.store.run("UPDATE deposits SET state='refused', reason=? WHERE funding_id=?", (p.text, d["funding_id"]))
                    self.store.audit(now, "watcher", "deposit_refused", d["funding_id"], code=p.code, reason=p.text)
        return credited

    def confirmations_of(self, row: Any, head: int) -> int:
        return max(0, head - int(row["height"]) + 1)


class BitcoinSource:
    """Bitcoin deposits from a bitcoind node (real mode only; see :mod:`custody.bitcoin`).
    Scanning also records every output paying a venue address in the UTXO records."""

    chain = "bitcoin"

    def __init__(self, rpc: Any, wallet: Any, symbol: str = "BTC") -> None:
        self.rpc = rpc
        self.wallet = wallet
        self.symbol = symbol

    def identity(self) -> str:
        return str(self.rpc.block_hash(0))

    def head(self) -> int:
        return int(self.rpc.head())

    def block_hash(self, height: int) -> str | None:
        return self.rpc.block_hash(height)

    def scan(self, first: int, last: int, watched: dict[str, str], own: set[str]) -> list[Observed]:
        from custody.bitcoin import _bcl
        _, tx = _bcl()
        labels = {r["address"]: r["label"] for r in self.wallet.store.all("SELECT address, label FROM keys WHERE chain='bitcoin'")}
        out = []
        for h in range(first, last + 1):
            bhash, txs = self.rpc.block_txs(h)
            for raw in txs:
                t = tx.Transaction.parse_hex(raw, network=self.wallet.network)
                if not any(o.address in labels for o in t.outputs):
                    continue
                self.wallet.record_incoming(raw, h, labels)
                for o in t.outputs:
                    if watched.get(o.address) == self.symbol:
                        out.append(Observed(f"btc:{t.txid}:{o.output_n}", self.symbol, t.txid, o.output_n, o.address,
                                            int(o.value), h, bhash))
        return out

    def where(self, txid: str) -> tuple[int, str] | None:
        got = self.rpc.confirmations(txid)
        if got is None or got[0] <= 0:
            return None
        return self.head() - got[0] + 1, got[1]
