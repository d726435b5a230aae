"""The custody service: one object, inside the venue process, that runs custody.

``CustodyService(venue, config).open()`` opens (or creates) custody's state under the
venue's data directory, the signer (SoftHSM2 token there by default, any PKCS#11 module,
or the software keystore where no module exists), the chains (the in-process EVM by
default or a JSON-RPC node; Bitcoin offline, or a bitcoind node), and recovers: gas holds
orphaned by a crash are released, signed transactions are re-sent as they are.
``start()`` runs :meth:`tick` on a background thread; tests call :meth:`tick` directly.

Every public method is one step for the operator control plane or a firm's request and
answers an :class:`custody.outcome.Outcome` (refusals are values with a code and a
reason). They and the tick take one lock, so custody's own state changes one step at a
time; ledger postings go through ``Venue.execute``.

Layout under ``<data_dir>/custody/``: ``custody.sqlite`` (state and audit), ``hsm/`` (the
SoftHSM2 token and its PIN files, 0600) or ``keystore/``, ``bitcoinlib/``.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable

from custody import bitcoin as btc
from custody.addresses import Addresses
from custody.assets import BITCOIN, ETHEREUM, ChainAsset
from custody.config import CustodyConfig
from custody.errors import ChainError, ConfigError, CustodyError, InvalidInput
from custody.ethereum import DevChain, EthereumChain, checksum, embedded
from custody.ledger_port import GAS_ACCOUNT, LedgerPort
from custody.outbox import Outbox
from custody.outcome import Outcome
from custody.pkcs11_signer import Pkcs11Signer, TokenConfig, find_softhsm_module, softhsm_token
from custody.rails import BitcoinRail, EthereumRail, Rail
from custody.reserves import MerkleSumTree, canonical
from custody.signer import Signer, SignerWorker
from custody.software_signer import SoftwareSigner
from custody.store import Store
from custody.treasury import Treasury
from custody.watcher import BitcoinSource, EthereumSource, Watcher
from custody.withdrawals import STATES, Withdrawals
from venue.clock import Clock
from venue.core import Venue

log = logging.getLogger("custody")

ETH_HOT = "eth/hot"
ATTEST_LABEL = "attest/reserves"
RESERVES_SECRET = "reserves/salt-secret"

RUNNING: dict[str, "CustodyService"] = {}  # venue data directory -> its open custody service


def service_for(venue: Venue) -> "CustodyService | None":
    """The custody service open inside ``venue`` (the control endpoint's handlers use it)."""
    return RUNNING.get(venue.data_dir)


class CustodyService:
    def __init__(self, venue: Venue, config: CustodyConfig | None = None, *, data_dir: str | None = None,
                 ethereum: EthereumChain | None = None, dev: DevChain | None = None, clock: Clock | None = None,
                 signer_factory: Callable[[], Signer] | None = None) -> None:
        self.venue = venue
        self.config = config or CustodyConfig()
        self.dir = data_dir or os.path.join(venue.data_dir, "custody")
        self.clock = clock or venue.clock
        self.eth = ethereum
        self.dev = dev
        self._signer_factory = signer_factory
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_error = ""
        self.fallback = ""  # set when custody fell back to the software keystore
        self.demo_note = ""  # what the demo's start did for the newcomer (custody.demo)

    # ================================================================== life cycle
    def open(self) -> CustodyService:
        cfg = self.config
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        btc.use_data_dir(os.path.join(self.dir, "bitcoinlib"))
        self.store = Store(os.path.join(self.dir, "custody.sqlite"))
        self.worker = SignerWorker(self._signer_factory or self._default_signer())
        self.ledger = LedgerPort(self.venue)
        self.ledger.ensure_gas_account()
        if self.eth is None:
            if cfg.ethereum_url:
                self.eth = EthereumChain.connect(cfg.ethereum_url)
            else:
                self.eth, self.dev = embedded()
        self.assets = self._assets()
        self._bip84: btc.Bip84Account | None = None
        self.addresses = Addresses(self.store, self.worker, self.clock, cfg.bitcoin_network, self.bip84)
        self.hot: dict[str, tuple[str, str]] = {}
        rails: dict[str, Rail] = {}
        eth_assets = {s: a for s, a in self.assets.items() if a.chain == ETHEREUM}
        if "ETH" in self.assets:
            self.hot[ETHEREUM] = (ETH_HOT, self.addresses.own_key(ETH_HOT, ETHEREUM, "hot"))
            rails[ETHEREUM] = EthereumRail(self.eth, self.worker, self.store, self.assets["ETH"], cfg.confirmations)
        self.rpc = btc.BitcoindRpc(cfg.bitcoind_url) if cfg.bitcoind_url else None
        self.wallet: btc.BitcoinWallet | None = None
        if "BTC" in self.assets:
            self.wallet = btc.BitcoinWallet(self.store, self.worker, cfg.bitcoin_network, cfg.bitcoin_fee_rate)
            self.hot[BITCOIN] = (btc.HOT_LABEL, self.addresses.own_key(btc.HOT_LABEL, BITCOIN, "hot"))
            rails[BITCOIN] = BitcoinRail(self.wallet, self.rpc, self.assets["BTC"])
        self.outbox = Outbox(self.store, self.ledger, rails, self.clock, cfg.confirmations)
        self.withdrawals = Withdrawals(self.store, self.ledger, self.outbox, self.addresses, self.assets, self.clock,
                                       cfg, self.hot)
        self.treasury = Treasury(self.store, self.outbox, self.addresses, self.assets, self.clock, cfg, self.hot, self.eth)
        self.watchers: list[Watcher] = []
        if eth_assets:
            self.watchers.append(Watcher(self.store, self.ledger, EthereumSource(self.eth, eth_assets), eth_assets,
                                         self.clock, cfg.confirmations, cfg.reorg_window, cfg.scan_batch))
        if self.rpc is not None and self.wallet is not None:
            self.watchers.append(Watcher(self.store, self.ledger, BitcoinSource(self.rpc, self.wallet),
                                         {"BTC": self.assets["BTC"]}, self.clock, cfg.confirmations, cfg.reorg_window,
                                         cfg.scan_batch))
        self.replaced: list[dict[str, Any]] = []  # chains found replaced (development chains only)
        for w in self.watchers:
            self._same_chain(w)
            w.cursor()  # deposits are watched from here on
        released = self.outbox.release_orphan_holds()
        self.outbox.resettle()
        RUNNING[self.venue.data_dir] = self
        self.store.audit(self.clock.now_ns(), "custody", "custody_opened", "custody", signer=self.worker.kind,
                         signer_warning=self.fallback, chain_id=self.eth.chain_id, assets=sorted(self.assets),
                         released_gas_holds=released, chains_replaced=self.replaced)
        return self

    def _same_chain(self, w: Watcher) -> None:
        """Is the node's chain the one the records are about? On a development chain (the
        embedded EVM starts afresh each time the venue does; anvil too) a replaced chain
        resets the records; on a real node custody refuses to credit or pay anything."""
        change = w.check_chain()
        if change is None:
            return
        if self.dev is None:
            raise ChainError(f"{change.describe()} (a different network, or a node that lost its chain or is still "
                             f"syncing): custody will not credit or pay on it. Point custody at its chain's node, or "
                             f"move {self.store.path} aside to start custody afresh on this chain")
        counts = w.reset(change)
        dropped = self.outbox.abandon(w.chain, change.describe())
        self.replaced.append({"chain": w.chain, "reason": change.describe(), "transactions_dropped": len(dropped),
                              **counts})

    def _default_signer(self) -> Callable[[], Signer]:
        cfg = self.config
        if cfg.pkcs11_module:
            if not os.path.isfile(cfg.pkcs11_module):
                raise ConfigError(f"pkcs11_module {cfg.pkcs11_module}: no such PKCS#11 module")
            pin = os.environ.get(cfg.pkcs11_pin_env, "")
            if not pin:
                raise ConfigError(f"set {cfg.pkcs11_pin_env} to the PIN of token {cfg.pkcs11_token!r}")
            tc = TokenConfig(cfg.pkcs11_module, cfg.pkcs11_token, pin)
            return lambda: Pkcs11Signer(tc)
        if not cfg.use_pkcs11:
            log.warning("use_pkcs11 is off: custody keys are kept in the software keystore")
            keystore = os.path.join(self.dir, "keystore")
            return lambda: SoftwareSigner(keystore)
        module = find_softhsm_module()  # a VENUE_PKCS11_MODULE that does not exist raises
        if module is not None:
            hsm_dir = os.path.join(self.dir, "hsm")
            return lambda: Pkcs11Signer(softhsm_token(hsm_dir, module))
        log.error("NO PKCS#11 MODULE: SoftHSM2 is not installed (Debian package softhsm2) and VENUE_PKCS11_MODULE "
                  "is not set. Custody keys are kept in the SOFTWARE KEYSTORE under %s: encrypted at rest, but in "
                  "this process's memory while it runs. Install softhsm2 or name an HSM's module.",
                  os.path.join(self.dir, "keystore"))
        self.fallback = "software keystore: no PKCS#11 module found"
        keystore = os.path.join(self.dir, "keystore")
        return lambda: SoftwareSigner(keystore)

    def _assets(self) -> dict[str, ChainAsset]:
        cfg = self.config
        dec = self.ledger.asset_decimals()
        out: dict[str, ChainAsset] = {}
        if "ETH" in dec:
            out["ETH"] = ChainAsset("ETH", ETHEREUM, 18, "ETH", dec["ETH"])
        if cfg.stablecoin_ledger_asset in dec:
            token = cfg.stablecoin_address or self._dev_stablecoin()
            if token:
                out[cfg.stablecoin_symbol] = ChainAsset(cfg.stablecoin_symbol, ETHEREUM, cfg.stablecoin_decimals,
                                                        cfg.stablecoin_ledger_asset, dec[cfg.stablecoin_ledger_asset],
                                                        checksum(token))
        if "BTC" in dec:
            out["BTC"] = ChainAsset("BTC", BITCOIN, 8, "BTC", dec["BTC"])
        return out

    def _dev_stablecoin(self) -> str:
        """On a development chain with no token configured: the test stablecoin, deployed
        once per chain (its address is remembered; a fresh embedded chain gets a new one)."""
        if self.dev is None or self.eth is None:
            return ""
        known = self.store.get_meta(f"eth.{self.eth.chain_id}.stablecoin")
        if known and len(self.eth.w3.eth.get_code(known)) > 0:
            return known
        addr = self.dev.deploy_stablecoin(decimals=self.config.stablecoin_decimals)
        self.store.set_meta(f"eth.{self.eth.chain_id}.stablecoin", addr)
        return addr

    def bip84(self) -> btc.Bip84Account:
        if self._bip84 is None:
            self._bip84 = btc.Bip84Account(self.worker, self.config.bitcoin_network)
        return self._bip84

    def start(self) -> None:
        """Run :meth:`tick` every ``poll_seconds`` on a background thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="custody", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as e:  # a node hiccup must not stop custody; say it
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("custody pass failed")
            self._stop.wait(self.config.poll_seconds)

    def stop(self) -> None:
        """Stop the loop and close the signer and the store (a crash loses nothing more)."""
        self._stop.set()
        if RUNNING.get(self.venue.data_dir) is self:
            del RUNNING[self.venue.data_dir]
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.dev is not None:
            self.dev.stop()
        if hasattr(self, "worker"):
            self.worker.close()
        if hasattr(self, "store"):
            self.store.close()

    # ================================================================== the pass
    def tick(self) -> dict[str, Any]:
        """Watch, decide, sign, broadcast, settle, sweep, rebalance: one pass. A node that
        fails to answer makes this pass skip what depended on it (said in the report and
        in ``status()['last_error']``); the next pass tries again."""
        with self._lock:
            report: dict[str, Any] = {}
            for w in self.watchers:
                try:
                    self._same_chain(w)
                    report[w.chain] = w.poll()._asdict()
                except ChainError as e:
                    report[w.chain] = {"error": str(e)}
                    self.last_error = str(e)
            self.withdrawals.advance()
            report["settled"] = self.outbox.pump()
            if self.outbox.last_error:
                self.last_error, self.outbox.last_error = self.outbox.last_error, ""
            for step, run, enabled in (("sweeps", self.treasury.sweep, self.config.auto_sweep),
                                       ("cold", self.treasury.rebalance, self.config.auto_rebalance)):
                if not enabled:
                    continue
                try:
                    report[step] = run()
                except ChainError as e:
                    report[step] = {"error": str(e)}
                    self.last_error = str(e)
            return report

    # ================================================================== deposits
    def _asset(self, symbol: str) -> ChainAsset | None:
        return self.assets.get(symbol) or self.assets.get(symbol.upper())

    def _entitled(self, account: str, firm: str) -> Outcome | None:
        acct_firm = self.ledger.account_firm(account)
        if acct_firm is None:
            return Outcome.refused("unknown_account", f"unknown account {account}")
        if firm and firm != acct_firm:
            return Outcome.refused("not_entitled", f"{firm} may not act for {account}")
        return None

    def deposit_address(self, account: str, symbol: str, firm: str = "") -> Outcome:
        """The account's deposit address for the asset: made once, the same ever after."""
        asset = self._asset(symbol)
        if asset is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}; it holds {', '.join(sorted(self.assets))}")
        with self._lock:
            refused = self._entitled(account, firm)
            if refused:
                return refused
            address = self.addresses.deposit_address(account, asset)
        return Outcome.done(account=account, symbol=asset.symbol, chain=asset.chain, address=address,
                            confirmations=self.config.confirmations)

    def deposits(self, account: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.all("SELECT * FROM deposits" + (" WHERE account=?" if account else "") + " ORDER BY seen_ns",
                              (account,) if account else ())
        heads = {w.chain: w.source.head() for w in self.watchers}
        out = []
        for r in rows:
            d = dict(r)
            a = self.assets.get(r["symbol"])
            d["amount"] = a.fmt(int(r["amount_chain"])) if a else r["amount_chain"]
            replaced = r["state"] == "abandoned" or "replaced" in r["reason"]  # its block is on a chain gone
            d["confirmations"] = None if replaced else max(0, heads.get(r["chain"], 0) - int(r["height"]) + 1)
            out.append(d)
        return out

    def faucet(self, symbol: str, to: str, amount: str) -> Outcome:
        """Demo and development chains only: send test coins from the funded faucet to an
        address (or to an account's deposit address, when ``to`` names an account)."""
        asset = self._asset(symbol)
        if self.dev is None:
            return Outcome.refused("no_faucet", "only a development chain has a faucet")
        if asset is None or asset.chain != ETHEREUM:
            return Outcome.refused("unknown_asset", f"the faucet sends {', '.join(s for s, a in self.assets.items() if a.chain == ETHEREUM)}")
        try:
            units = asset.parse(amount)
            if self.ledger.account_firm(to) is not None:
                got = self.deposit_address(to, asset.symbol)
                to = str(got.data["address"]) if got.data else to
            txid = self.dev.fund(asset, to, units)
        except (InvalidInput, ChainError) as e:
            return Outcome.refused(getattr(e, "code", "chain"), str(e))
        return Outcome.done(txid=txid, to=to, symbol=asset.symbol, amount=asset.fmt(units))

    # ================================================================== address book
    def add_address(self, actor: str, account: str, symbol: str, address: str, label: str = "", firm: str = "") -> Outcome:
        asset = self._asset(symbol)
        if asset is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}")
        with self._lock:
            refused = self._entitled(account, firm)
            if refused:
                return refused
            try:
                return self.addresses.add(actor, account, asset.chain, address, label)
            except InvalidInput as e:
                return Outcome.refused(e.code, e.text)

    def approve_address(self, actor: str, account: str, symbol: str, address: str) -> Outcome:
        asset = self._asset(symbol)
        if asset is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}")
        with self._lock:
            try:
                return self.addresses.approve(actor, account, asset.chain, address, self.withdrawals.approvers)
            except InvalidInput as e:
                return Outcome.refused(e.code, e.text)

    def remove_address(self, actor: str, account: str, symbol: str, address: str, firm: str = "") -> Outcome:
        asset = self._asset(symbol)
        if asset is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}")
        with self._lock:
            refused = self._entitled(account, firm)
            if refused:
                return refused
            try:
                return self.addresses.remove(actor, account, asset.chain, address)
            except InvalidInput as e:
                return Outcome.refused(e.code, e.text)

    def address_book(self, account: str | None = None) -> list[dict[str, Any]]:
        return self.addresses.book(account)

    # ================================================================== withdrawals
    def request_withdrawal(self, actor: str, account: str, symbol: str, amount: str, destination: str,
                           firm: str = "", request_id: str = "") -> Outcome:
        asset = self._asset(symbol)
        with self._lock:
            return self.withdrawals.request(actor, account, asset.symbol if asset else symbol, amount, destination,
                                            firm, request_id)

    def approve(self, actor: str, withdrawal_id: str) -> Outcome:
        with self._lock:
            return self.withdrawals.approve(actor, withdrawal_id)

    def reject(self, actor: str, withdrawal_id: str, reason: str = "") -> Outcome:
        with self._lock:
            return self.withdrawals.reject(actor, withdrawal_id, reason)

    def list_withdrawals(self, account: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        if state and state not in STATES:
            raise InvalidInput("state", f"no withdrawal state {state!r}; one of {', '.join(STATES)}")
        return self.withdrawals.list(account, state)

    def withdrawal(self, withdrawal_id: str) -> dict[str, Any] | None:
        return self.withdrawals.get(withdrawal_id)

    def set_limits(self, actor: str, account: str, symbol: str, per_tx: str, daily: str) -> Outcome:
        asset = self._asset(symbol)
        with self._lock:
            if self.ledger.account_firm(account) is None:
                return Outcome.refused("unknown_account", f"unknown account {account}")
            return self.withdrawals.set_limits(actor, account, asset.symbol if asset else symbol, per_tx, daily)

    def limits(self, account: str | None = None) -> list[dict[str, Any]]:
        """Withdrawal limits: the defaults, or one account's (set or default) per asset with
        what it withdrew in the last 24 hours."""
        out = []
        for sym, a in sorted(self.assets.items()):
            if account is None:
                lim = self.withdrawals.default_limits[sym]
                out.append({"account": "(default)", "asset": sym, "per_tx": a.fmt(a.to_chain(lim.per_tx)),
                            "daily": a.fmt(a.to_chain(lim.daily)), "set_by": "config", "withdrawn_24h": ""})
                continue
            row = self.store.one("SELECT set_by FROM limits WHERE account=? AND symbol=?", (account, sym))
            lim = self.withdrawals.limits(account, sym)
            out.append({"account": account, "asset": sym, "per_tx": a.fmt(a.to_chain(lim.per_tx)),
                        "daily": a.fmt(a.to_chain(lim.daily)), "set_by": row["set_by"] if row else "config",
                        "withdrawn_24h": a.fmt(a.to_chain(self.withdrawals.withdrawn_24h(account, sym)))})
        if account is None:
            for r in self.store.all("SELECT * FROM limits ORDER BY account, symbol"):
                held = self.assets.get(r["symbol"])
                if held is not None:
                    out.append({"account": r["account"], "asset": r["symbol"],
                                "per_tx": held.fmt(held.to_chain(int(r["per_tx"]))),
                                "daily": held.fmt(held.to_chain(int(r["daily"]))), "set_by": r["set_by"],
                                "withdrawn_24h": ""})
        return out

    def pause_broadcast(self, actor: str, paused: bool) -> Outcome:
        """Stop (or resume) sending signed transactions to the network; signing goes on."""
        with self._lock:
            self.outbox.broadcast_paused = paused
            self.store.audit(self.clock.now_ns(), actor, "broadcast_paused" if paused else "broadcast_resumed", "custody")
        return Outcome.done(paused=paused)

    # ================================================================== treasury
    def sweep(self, actor: str, symbol: str | None = None) -> Outcome:
        if symbol:
            asset = self._asset(symbol)
            if asset is None:
                return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}; it holds {', '.join(sorted(self.assets))}")
            if asset.chain != ETHEREUM:
                return Outcome.refused("unsupported", f"{asset.symbol} deposits are not swept (Ethereum assets only)")
            symbol = asset.symbol
        with self._lock:
            self.store.audit(self.clock.now_ns(), actor, "sweep_requested", symbol or "*")
            try:
                sent = self.treasury.sweep(symbol)
            except ChainError as e:
                return Outcome.refused("chain", str(e))
        return Outcome.done(sent=sent)

    def rebalance(self, actor: str) -> Outcome:
        with self._lock:
            try:
                sent = self.treasury.rebalance()
            except ChainError as e:
                return Outcome.refused("chain", str(e))
            self.store.audit(self.clock.now_ns(), actor, "rebalance_requested", "*", sent=len(sent))
        return Outcome.done(sent=sent)

    def cold_unsigned(self, actor: str, symbol: str, amount: str) -> Outcome:
        with self._lock:
            return self.treasury.cold_unsigned(actor, symbol, amount)

    def cold_submit(self, actor: str, request_id: str, raw_hex: str) -> Outcome:
        with self._lock:
            return self.treasury.cold_submit(actor, request_id, raw_hex)

    def chain_balance(self, address: str, symbol: str = "") -> Outcome:
        """What ``address`` holds on-chain (Ethereum: read from the node at its head)."""
        if symbol:
            asset = self._asset(symbol)
            if asset is None:
                return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}")
            wanted = [asset]
        else:
            wanted = [a for a in self.assets.values() if a.chain == ETHEREUM]
        if any(a.chain != ETHEREUM for a in wanted) or self.eth is None:
            return Outcome.refused("unsupported", "on-chain balances are read for Ethereum assets only")
        try:
            address = checksum(address)
            return Outcome.done(address=address, **{a.symbol: a.fmt(self.eth.balance(address, a)) for a in wanted})
        except InvalidInput as e:
            return Outcome.refused(e.code, e.text)
        except ChainError as e:
            return Outcome.refused("chain", str(e))

    def hot_addresses(self) -> dict[str, str]:
        return {chain: addr for chain, (_label, addr) in self.hot.items()}

    # ================================================================== reserves
    def onchain_balances(self) -> dict[str, dict[str, Any]]:
        """Per ledger asset: what every venue address holds on-chain, at one height."""
        out: dict[str, dict[str, Any]] = {}
        height = self.eth.head() if self.eth is not None else None
        for sym, a in sorted(self.assets.items()):
            addrs = [r["address"] for r in self.store.all("SELECT address FROM keys WHERE chain=?", (a.chain,))]
            cold = self.config.cold_address.get(a.chain)
            if cold:
                addrs.append(cold)
            per: dict[str, str] = {}
            total = 0
            if a.chain == ETHEREUM:
                assert self.eth is not None
                for ad in addrs:
                    units = self.eth.balance(ad, a, height)
                    if units:
                        per[ad] = str(a.to_ledger(units))
                        total += a.to_ledger(units)
                source = f"{self.eth.name} chain {self.eth.chain_id} at height {height}"
            else:
                assert self.wallet is not None
                mine = set(addrs)
                # A coin a signed payment spends ('reserved') is not counted beside that
                # payment's change ('pending'): the two are the same money, before and after.
                # Counting the change (not the coin) never claims more than the chain will
                # hold once the payment is mined; a signed payment's amount and fee are then
                # still held in the ledger, so reserves read low by them until it confirms.
                for u in self.wallet.store.all("SELECT address, amount FROM utxos WHERE state IN ('unspent', 'pending')"):
                    if u["address"] in mine:
                        per[u["address"]] = str(int(per.get(u["address"], "0")) + a.to_ledger(int(u["amount"])))
                        total += a.to_ledger(int(u["amount"]))
                source = ("the venue's UTXO records, kept from bitcoind's blocks" if self.rpc
                          else "the venue's UTXO records (no node configured)")
            entry = out.setdefault(a.ledger_asset, {"total": "0", "by_symbol": {}})
            entry["by_symbol"][sym] = {"addresses": per, "total": str(total), "source": source}
            entry["total"] = str(int(entry["total"]) + total)
        return out

    def reserves(self, actor: str = "custody") -> Outcome:
        """Publish the liabilities' Merkle-sum roots beside on-chain balances, signed."""
        with self._lock:
            secret = self.worker.get_secret(RESERVES_SECRET)
            if secret is None:
                self.worker.put_secret(RESERVES_SECRET, os.urandom(32))
                secret = self.worker.get_secret(RESERVES_SECRET)
            assert secret is not None
            epoch = str(self.clock.now_ns())
            onchain = self.onchain_balances()
            trees = {}
            assets: dict[str, Any] = {}
            for ledger_asset, chain_side in onchain.items():
                tree = MerkleSumTree(self.ledger.client_balances(ledger_asset), secret, epoch, ledger_asset)
                trees[ledger_asset] = tree
                root, total = tree.root
                assets[ledger_asset] = {"liabilities": {"root": root, "total": str(total), "accounts": len(tree.balances)},
                                        "reserves": chain_side,
                                        "covered": int(chain_side["total"]) >= total}
            statement = {"epoch": epoch, "assets": assets, "signer_kind": self.worker.kind}
            from eth_utils import keccak
            signer_addr = self.addresses.own_key(ATTEST_LABEL, ETHEREUM, "attest")
            v, r, s = self.worker.sign_recoverable(ATTEST_LABEL, keccak(canonical(statement)))
            att = {"statement": statement, "signer": signer_addr, "signature": {"v": v, "r": hex(r), "s": hex(s)}}
            now = self.clock.now_ns()
            with self.store.tx():
                self.store.run("INSERT INTO reserves(epoch, ns, attestation, liabilities) VALUES(?,?,?,?)",
                               (epoch, now, json.dumps(att, sort_keys=True),
                                json.dumps({a: {k: str(x) for k, x in t.balances.items()} for a, t in trees.items()},
                                           sort_keys=True)))
                self.store.audit(now, actor, "reserves_published", epoch,
                                 roots={k: v["liabilities"]["root"] for k, v in assets.items()})
        return Outcome.done(**att)

    def liability_proof(self, account: str, asset: str, epoch: str = "") -> Outcome:
        """The account's leaf and path in the tree of ``asset`` of a publication (the
        latest, or ``epoch``), rebuilt from what was published: it survives restarts."""
        q = "SELECT * FROM reserves " + ("WHERE epoch=?" if epoch else "ORDER BY ns DESC LIMIT 1")
        row = self.store.one(q, (epoch,) if epoch else ())
        if row is None:
            return Outcome.refused("no_reserves", f"no publication {epoch}" if epoch else "publish reserves first")
        att = json.loads(row["attestation"])
        stmt = att["statement"]["assets"].get(asset)
        balances = json.loads(row["liabilities"]).get(asset)
        if stmt is None or balances is None:
            return Outcome.refused("unknown_asset", f"publication {row['epoch']} has no {asset!r}; it has "
                                                    f"{', '.join(sorted(att['statement']['assets']))}")
        secret = self.worker.get_secret(RESERVES_SECRET)
        assert secret is not None
        tree = MerkleSumTree({a: int(x) for a, x in balances.items()}, secret, row["epoch"], asset)
        root, total = tree.root
        if root != stmt["liabilities"]["root"] or str(total) != stmt["liabilities"]["total"]:
            raise CustodyError(f"publication {row['epoch']}: its {asset} tree no longer rebuilds to its root")
        proof = tree.proof(account)
        if proof is None:
            return Outcome.refused("no_leaf", f"{account} had no {asset} balance in publication {row['epoch']}")
        return Outcome.done(epoch=row["epoch"], root=root, total=str(total), proof=proof)

    def publications(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.store.all("SELECT epoch, attestation FROM reserves ORDER BY ns DESC LIMIT ?", (limit,))
        out = []
        for r in rows:
            st = json.loads(r["attestation"])["statement"]
            out.append({"epoch": r["epoch"], **{f"{a}_covered": v["covered"] for a, v in sorted(st["assets"].items())}})
        return out

    # ================================================================== checks
    def audit_trail(self, subject: str | None = None) -> list[dict[str, Any]]:
        return self.store.audit_trail(subject)

    def status(self) -> dict[str, Any]:
        return {"signer": self.worker.kind, **({"signer_warning": self.fallback} if self.fallback else {}),
                "hot": self.hot_addresses(), "assets": sorted(self.assets),
                "chain_id": self.eth.chain_id if self.eth else None, "embedded": self.dev is not None,
                "broadcast_paused": self.outbox.broadcast_paused, "last_error": self.last_error,
                "gas_account": GAS_ACCOUNT, "confirmations": self.config.confirmations}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (for scripts and tests)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


__all__ = ["CustodyService", "CustodyError", "Outcome", "wait_until"]
