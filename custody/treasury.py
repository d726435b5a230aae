"""Moving the venue's own coins: sweeps to the hot wallet, hot to cold, cold to hot.

Sweeps. Deposits land on per-account addresses; once every deposit at an address is
credited, its balance is swept to the hot wallet (signed in the token with that
address's key). A token address first needs ETH for gas: the hot wallet tops it up, and
the sweep follows on a later pass. Ledger balances do not change (the coins were the
client's before and after); network fees are paid by the venue's gas account.

Hot and cold. The hot wallet keeps at most its configured ceiling per asset; the excess
is sent to the cold address, whose key is not in the online token. Coming back from
cold, the venue produces the *unsigned* transaction (and its digest) for the offline
signer, and accepts the signed bytes back only if they are exactly that transaction,
signed by the cold key. Ethereum only; Bitcoin cold storage takes the excess (the same
HSM-signed path) but its return trip is not built here.
"""
from __future__ import annotations

import json
from typing import Any

from custody.addresses import Addresses
from custody.assets import ETHEREUM, ChainAsset
from custody.config import CustodyConfig
from custody.errors import ChainError, InvalidInput
from custody.ethereum import EthereumChain, checksum, decode_signed
from custody.outbox import Outbox
from custody.outcome import Outcome
from custody.store import Store
from venue.clock import Clock


def _jsonable(tx: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in tx.items()}


class Treasury:
    def __init__(self, store: Store, outbox: Outbox, addresses: Addresses, assets: dict[str, ChainAsset],
                 clock: Clock, config: CustodyConfig, hot: dict[str, tuple[str, str]],
                 eth: EthereumChain | None) -> None:
        self.store = store
        self.outbox = outbox
        self.addresses = addresses
        self.assets = assets
        self.clock = clock
        self.config = config
        self.hot = hot
        self.eth = eth
        self.minimum = {s: a.parse(config.sweep_minimum[s]) for s, a in assets.items() if s in config.sweep_minimum}
        self.ceiling = {s: a.parse(config.hot_ceiling[s]) for s, a in assets.items() if s in config.hot_ceiling}
        self.cold = {c: a for c, a in config.cold_address.items()}
        outbox.handlers["sweep"] = self._on_sweep
        self.native = next((a for a in assets.values() if a.chain == ETHEREUM and a.native), None)

    # -- sweeps ------------------------------------------------------------------------
    def sweep(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """One pass over the deposit addresses (of ``symbol``, or all). What was sent."""
        out: list[dict[str, Any]] = []
        if self.eth is None or ETHEREUM not in self.hot or self.native is None:
            return out
        hot_label, hot_addr = self.hot[ETHEREUM]
        rows = self.store.all("SELECT d.*, k.label FROM deposit_addresses d JOIN keys k ON k.address=d.address "
                              "WHERE d.chain=?" + (" AND d.symbol=?" if symbol else ""),
                              (ETHEREUM, symbol) if symbol else (ETHEREUM,))
        for r in rows:
            asset = self.assets.get(r["symbol"])
            if asset is None:
                continue
            addr = r["address"]
            if self.store.one("SELECT 1 FROM deposits WHERE address=? AND state='seen'", (addr,)):
                continue  # not every deposit here is credited yet
            if self.outbox.in_flight(sender=addr) or self.outbox.in_flight(to=addr):
                continue
            bal = self.eth.balance(addr, asset)
            if bal < self.minimum.get(asset.symbol, 1):
                continue
            now = self.clock.now_ns()
            if asset.native:
                sent = self.outbox.send("sweep", f"{addr}:{now}", asset, r["label"], addr, hot_addr, None)
                out.append({"address": addr, "symbol": asset.symbol, "kind": "sweep", **sent._asdict()})
                continue
            max_fee, _tip = self.eth.fee_params()
            gas = self.eth.transfer(asset, addr, hot_addr, bal, 0, max_fee, 0)["gas"]
            need = gas * max_fee
            have = self.eth.balance(addr, self.native)
            if have < need:
                sent = self.outbox.send("topup", f"{addr}:{now}", self.native, hot_label, hot_addr, addr, need - have)
                out.append({"address": addr, "symbol": self.native.symbol, "kind": "topup", **sent._asdict()})
            else:
                sent = self.outbox.send("sweep", f"{addr}:{now}", asset, r["label"], addr, hot_addr, bal)
                out.append({"address": addr, "symbol": asset.symbol, "kind": "sweep", **sent._asdict()})
        return out

    def _on_sweep(self, tx: Any, ok: bool) -> None:
        if ok:
            self.store.run("UPDATE deposits SET state='swept', sweep_txid=? WHERE address=? AND symbol=? AND state='credited' "
                           "AND height<=?", (tx["txid"], tx["from_addr"], tx["symbol"], tx["height"]))

    # -- hot to cold -------------------------------------------------------------------
    def rebalance(self) -> list[dict[str, Any]]:
        """Send each asset's hot balance above its ceiling to the cold address."""
        out: list[dict[str, Any]] = []
        for sym, ceiling in self.ceiling.items():
            asset = self.assets[sym]
            cold = self.cold.get(asset.chain)
            hot = self.hot.get(asset.chain)
            rail = self.outbox.rails.get(asset.chain)
            if cold is None or hot is None or rail is None:
                continue
            label, hot_addr = hot
            if any(r["symbol"] == sym for r in self.outbox.in_flight(sender=hot_addr, to=cold)):
                continue
            excess = rail.balance(hot_addr, asset) - ceiling
            if excess < self.minimum.get(sym, 1):
                continue
            sent = self.outbox.send("cold", f"{sym}:{self.clock.now_ns()}", asset, label, hot_addr, cold, excess)
            out.append({"symbol": sym, "amount": asset.fmt(excess), "to": cold, **sent._asdict()})
        return out

    # -- cold to hot (signed offline) ----------------------------------------------------
    def cold_unsigned(self, actor: str, symbol: str, amount: str) -> Outcome:
        asset = self.assets.get(symbol)
        if asset is None or asset.chain != ETHEREUM or self.eth is None:
            return Outcome.refused("unsupported", f"cold withdrawals are built for Ethereum assets only, not {symbol!r}")
        cold = self.cold.get(ETHEREUM)
        if cold is None:
            return Outcome.refused("no_cold_address", "no Ethereum cold address is configured")
        try:
            units = asset.parse(amount)
        except InvalidInput as e:
            return Outcome.refused(e.code, e.text)
        _label, hot_addr = self.hot[ETHEREUM]
        max_fee, tip = self.eth.fee_params()
        try:
            tx = self.eth.transfer(asset, cold, hot_addr, units, self.eth.nonce(cold), max_fee, tip)
        except ChainError as e:
            return Outcome.refused("chain", str(e))
        from eth_account.typed_transactions import TypedTransaction
        digest = "0x" + bytes(TypedTransaction.from_dict(tx).hash()).hex()
        now = self.clock.now_ns()
        rid = f"cold:{symbol}:{now}"
        unsigned = _jsonable(tx)
        with self.store.tx():
            self.store.run("INSERT INTO cold_requests(id, chain, symbol, amount_chain, unsigned, state, created_ns, updated_ns)"
                           " VALUES(?,?,?,?,?, 'awaiting_signature', ?, ?)",
                           (rid, ETHEREUM, symbol, str(units), json.dumps(unsigned), now, now))
            self.store.audit(now, actor, "cold_unsigned", rid, symbol=symbol, amount=asset.fmt(units), digest=digest)
        return Outcome.done(id=rid, tx=unsigned, digest=digest, signer=cold)

    def cold_submit(self, actor: str, rid: str, raw_hex: str) -> Outcome:
        req = self.store.one("SELECT * FROM cold_requests WHERE id=?", (rid,))
        if req is None or req["state"] != "awaiting_signature":
            return Outcome.refused("unknown_request", f"no cold request {rid} awaits a signature")
        asset = self.assets[req["symbol"]]
        try:
            raw = bytes.fromhex(raw_hex.removeprefix("0x"))
            got = decode_signed(raw)
        except (ValueError, InvalidInput) as e:
            return Outcome.refused("bad_transaction", str(e))
        want = json.loads(req["unsigned"])
        cold = checksum(self.cold[ETHEREUM])
        if got["from"] != cold:
            return Outcome.refused("wrong_signer", f"signed by {got['from']}, not the cold key {cold}")
        for k in ("chainId", "nonce", "to", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas"):
            g = got.get(k)
            if str(g) != str(want[k]):
                return Outcome.refused("mismatch", f"the signed transaction's {k} is {g}, the request's {want[k]}")
        if str(got.get("data") or "0x").lower() != str(want["data"] or "0x").lower():
            return Outcome.refused("mismatch", "the signed transaction's data differs from the request's")
        _label, hot_addr = self.hot[ETHEREUM]
        sent = self.outbox.adopt("cold_in", rid, asset, cold, hot_addr, int(req["amount_chain"]), got["txid"],
                                 raw.hex(), int(want["nonce"]), int(want["gas"]) * int(want["maxFeePerGas"]))
        if not sent.ok:
            return Outcome.refused(sent.code, sent.reason)
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("UPDATE cold_requests SET state='submitted', txid=?, updated_ns=? WHERE id=?", (got["txid"], now, rid))
            self.store.audit(now, actor, "cold_signed_accepted", rid, txid=got["txid"])
        return Outcome.done(id=rid, txid=got["txid"])
