"""Payment rails: how custody pays out on one chain, behind one small interface.

A rail plans a transfer (and bounds its network fee, so the fee can be held in the
ledger before anything is signed), signs it with a key in the signer, broadcasts the
signed bytes and reports what the chain says about it. :class:`custody.outbox.Outbox`
drives rails; it does not know which chain it talks to.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from custody.assets import ChainAsset
from custody.bitcoin import HOT_LABEL, BitcoindRpc, BitcoinWallet, SignedBtc
from custody.errors import ChainError
from custody.ethereum import NATIVE_GAS, EthereumChain, sign_transaction
from custody.signer import SignerWorker
from custody.store import Store


class Plan(NamedTuple):
    max_fee: int  # chain units of the rail's fee asset, an upper bound
    data: Any
    amount: int  # chain units that will arrive (a sweep of "everything" knows it only here)


class Signed(NamedTuple):
    txid: str
    raw: str  # hex
    nonce: int | None


class TxStatus(NamedTuple):
    state: str  # pending | mined | gone (see EthereumRail.status)
    confirmations: int = 0
    ok: bool = False
    fee: int = 0  # chain units of the fee asset actually paid
    height: int = 0
    block_hash: str = ""


class Rail(Protocol):
    chain: str
    fee_asset: ChainAsset

    def plan(self, asset: ChainAsset, sender: str, to: str, amount: int | None) -> Plan | None:
        """``amount=None``: everything the sender holds of a native asset, less the fee."""
    def sign(self, label: str, plan: Plan) -> Signed: ...
    def broadcast(self, raw: str) -> None: ...
    def status(self, txid: str, sender: str, nonce: int | None) -> TxStatus: ...
    def settled(self, txid: str, state: str, height: int) -> None:
        """The outbox made ``txid`` final (``confirmed``, ``reverted`` or ``dropped``);
        called inside the store transaction that records it."""
    def balance(self, address: str, asset: ChainAsset) -> int: ...


class EthereumRail:
    chain = "ethereum"

    def __init__(self, eth: EthereumChain, worker: SignerWorker, store: Store, fee_asset: ChainAsset,
                 confirmations: int = 1) -> None:
        self.eth = eth
        self.worker = worker
        self.store = store
        self.fee_asset = fee_asset
        self.confirmations = max(1, confirmations)

    def next_nonce(self, sender: str) -> int:
        """The chain's pending nonce, or past every transaction custody signed that is
        still in flight (those may not have reached the node yet). Final ones are in the
        node's count already (and a fresh development chain starts again from 0)."""
        row = self.store.one("SELECT MAX(nonce) AS n FROM chain_txs WHERE chain='ethereum' AND from_addr=? "
                             "AND state IN ('signed', 'broadcast')", (sender,))
        local = row["n"] + 1 if row and row["n"] is not None else 0
        return max(self.eth.nonce(sender, pending=True), local)

    def plan(self, asset: ChainAsset, sender: str, to: str, amount: int | None) -> Plan | None:
        max_fee, tip = self.eth.fee_params()
        if amount is None:
            if not asset.native:
                raise ChainError("only a native asset can be swept whole")
            amount = self.eth.balance(sender, asset) - NATIVE_GAS * max_fee
            if amount <= 0:
                return None
        tx = self.eth.transfer(asset, sender, to, amount, self.next_nonce(sender), max_fee, tip)
        fee = tx["gas"] * max_fee
        eth_committed, token_committed = self._committed(sender, asset)
        eth_needed = fee + eth_committed + (amount if asset.native else 0)
        if self.eth.balance(sender, self.fee_asset) < eth_needed:
            return None
        if not asset.native and self.eth.balance(sender, asset) < amount + token_committed:
            return None
        return Plan(fee, tx, amount)

    def _committed(self, sender: str, asset: ChainAsset) -> tuple[int, int]:
        """What in-flight transactions from ``sender`` will still take: (native units
        including their fees, units of ``asset`` if it is a token)."""
        native = token = 0
        mined = self.eth.nonce(sender, pending=False)  # transactions below this nonce are in the balance already
        for r in self.store.all("SELECT symbol, amount_chain, gas_hold_ledger FROM chain_txs WHERE chain='ethereum' "
                                "AND from_addr=? AND state IN ('signed', 'broadcast') AND nonce>=?", (sender, mined)):
            native += self.fee_asset.to_chain(int(r["gas_hold_ledger"] or 0))
            if r["symbol"] == self.fee_asset.symbol:
                native += int(r["amount_chain"])
            elif r["symbol"] == asset.symbol:
                token += int(r["amount_chain"])
        return native, token

    def sign(self, label: str, plan: Plan) -> Signed:
        raw, txid = sign_transaction(self.worker, label, plan.data)
        return Signed(txid, raw.hex(), int(plan.data["nonce"]))

    def broadcast(self, raw: str) -> None:
        self.eth.send_raw(bytes.fromhex(raw.removeprefix("0x")))

    def status(self, txid: str, sender: str, nonce: int | None) -> TxStatus:
        """``mined`` (with its depth), ``pending`` (the node has it, or it may still be
        sent), or ``gone``: the node positively says it knows no such transaction *and*
        the sender's nonce was consumed by a block at least ``confirmations`` deep, so
        another transaction took the nonce and this one can never be mined. A node that
        fails to answer any of these questions raises :class:`ChainError`: a lookup that
        failed is never read as "not found"."""
        r = self.eth.receipt(txid)
        if r is not None:
            return TxStatus("mined", self.eth.head() - r.height + 1, r.ok, r.fee, r.height, r.block_hash)
        if nonce is None or self.eth.known(txid):
            return TxStatus("pending")
        deep = self.eth.head() - self.confirmations + 1
        if deep >= 0 and self.eth.nonce(sender, height=deep) > nonce:
            if self.eth.receipt(txid) is None and not self.eth.known(txid):  # mined in the meantime?
                return TxStatus("gone")
            return TxStatus("pending")
        return TxStatus("pending")

    def settled(self, txid: str, state: str, height: int) -> None:
        pass  # the chain keeps Ethereum balances; custody keeps no coin records to update

    def balance(self, address: str, asset: ChainAsset) -> int:
        return self.eth.balance(address, asset)


class BitcoinRail:
    chain = "bitcoin"

    def __init__(self, wallet: BitcoinWallet, rpc: BitcoindRpc | None, fee_asset: ChainAsset) -> None:
        self.wallet = wallet
        self.rpc = rpc
        self.fee_asset = fee_asset

    def plan(self, asset: ChainAsset, sender: str, to: str, amount: int | None) -> Plan | None:
        if amount is None:
            raise ChainError("Bitcoin sweeps of a whole address are not supported; name the amount")
        got = self.wallet.plan(amount)
        if got is None:
            return None
        inputs, fee = got
        return Plan(fee, (to, amount, inputs, fee), amount)

    def sign(self, label: str, plan: Plan) -> Signed:
        if label != HOT_LABEL:
            raise ChainError("Bitcoin payouts are signed by the hot wallet key only")
        to, amount, inputs, fee = plan.data
        signed: SignedBtc = self.wallet.sign_payment(to, amount, list(inputs), fee)
        self.wallet.reserve(signed)
        return Signed(signed.txid, signed.raw, None)

    def broadcast(self, raw: str) -> None:
        if self.rpc is None:
            raise ChainError("no Bitcoin node is configured (bitcoind_url): the signed transaction waits for one")
        self.rpc.send_raw(raw)

    def status(self, txid: str, sender: str, nonce: int | None) -> TxStatus:
        if self.rpc is None:
            return TxStatus("pending")
        got = self.rpc.confirmations(txid)  # None: bitcoind positively knows no such transaction
        if got is None or got[0] <= 0:
            return TxStatus("pending")
        confs, bhash = got
        fee_row = self.wallet.store.one("SELECT SUM(amount) AS i FROM utxos WHERE spent_by=?", (txid,))
        out = self.wallet.store.one("SELECT raw FROM chain_txs WHERE txid=?", (txid,))
        fee = 0
        if fee_row and out:
            from custody.bitcoin import _bcl
            _, tx = _bcl()
            t = tx.Transaction.parse_hex(out["raw"], network=self.wallet.network)
            fee = int(fee_row["i"]) - sum(int(o.value) for o in t.outputs)
        return TxStatus("mined", confs, True, fee, self.rpc.head() - confs + 1, bhash)

    def settled(self, txid: str, state: str, height: int) -> None:
        """Confirmed: its inputs are spent and its change spendable. Otherwise its inputs
        are unspent again and its change never existed."""
        self.wallet.settle(txid, height, state == "confirmed")

    def balance(self, address: str, asset: ChainAsset) -> int:
        return sum(u.amount for u in self.wallet.unspent() if u.address == address)
