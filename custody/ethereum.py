"""Ethereum through web3: the in-process EVM by default, any JSON-RPC node in real mode.

:class:`EthereumChain` is what custody needs from a node and nothing more: the head and
block hashes (for confirmations and reorgs), a scan for deposits (native transfers to
watched addresses, ERC-20 ``Transfer`` logs), receipts, balances, nonces, fee
parameters, EIP-1559 transfers to sign, and broadcast. Every call holds one lock: the
in-process EVM is not thread-safe, and a node connection gains nothing from racing.

Signing is not here: :func:`sign_transaction` hashes the typed transaction, has the
signer worker sign the digest (low-s, recovery id) and encodes the signed bytes.

:class:`DevChain` adds what only a development chain has: funded unlocked accounts (the
faucet), mining on demand, snapshots to stage a reorg. It works on the embedded EVM and
on anvil. ``embedded()`` builds the default: a fresh in-process chain with the test
stablecoin deployed. The embedded chain lives in memory: it starts empty with each
process (say so to demo users; a real node keeps its history).
"""
from __future__ import annotations

import secrets
import threading
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

from eth_abi import encode as abi_encode
from eth_account.typed_transactions import TypedTransaction
from eth_utils import is_address, keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.providers.eth_tester import EthereumTesterProvider

from custody import stablecoin
from custody.assets import ChainAsset
from custody.errors import ChainError, InvalidInput
from custody.signer import SignerWorker

GWEI = 10 ** 9
NATIVE_GAS = 21_000


class Observed(NamedTuple):
    """A transfer into a watched address, as seen in one block."""

    funding_id: str  # chain:txid:index, stable across blocks (the index is within the transaction)
    symbol: str
    txid: str
    index: int  # -1 for a native value transfer, else the log's position in its transaction
    address: str
    amount: int  # chain units
    height: int
    block_hash: str


class Receipt(NamedTuple):
    txid: str
    height: int
    block_hash: str
    ok: bool
    fee: int  # wei paid for gas


def _hex(b: Any) -> str:
    h = HexBytes(b).hex()
    return h if h.startswith("0x") else "0x" + h


def checksum(address: str) -> str:
    if not isinstance(address, str) or not is_address(address):
        raise InvalidInput("address", f"{address!r} is not an Ethereum address")
    return to_checksum_address(address)


class EthereumChain:
    chain = "ethereum"

    def __init__(self, w3: Web3, name: str = "") -> None:
        self.w3 = w3
        self.lock = threading.RLock()
        self.name = name or "rpc"
        self.instance = ""  # set for a chain that lives in this process only (the embedded EVM)
        self.tip = GWEI
        with self.lock:
            self.chain_id = int(w3.eth.chain_id)

    @classmethod
    def connect(cls, url: str) -> EthereumChain:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        try:
            return cls(w3, url)
        except Exception as e:
            raise ChainError(f"cannot reach the Ethereum node at {url}: {e}") from e

    @contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Hold the lock; turn whatever the node or the transport raised into a
        :class:`ChainError`. A failed call is never an answer: callers that can tell "not
        found" from "failed" catch the node's not-found exception inside this block."""
        with self.lock:
            try:
                yield
            except ChainError:
                raise
            except Exception as e:
                raise ChainError(f"{self.name}: {what} failed: {type(e).__name__}: {e}") from e

    # -- reads -----------------------------------------------------------------------
    def head(self) -> int:
        with self._rpc("eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def block_hash(self, height: int) -> str | None:
        """The hash of the block at ``height``; None only if the node says there is none."""
        with self._rpc(f"eth_getBlockByNumber({height})"):
            try:
                return _hex(self.w3.eth.get_block(height)["hash"])
            except BlockNotFound:
                return None

    def receipt(self, txid: str) -> Receipt | None:
        """The receipt of a mined transaction; None only if the node says it has none
        (pending or unknown). A node that fails to answer raises :class:`ChainError`."""
        with self._rpc(f"eth_getTransactionReceipt({txid})"):
            try:
                r = self.w3.eth.get_transaction_receipt(txid)
            except TransactionNotFound:
                return None
            if r is None or r.get("blockNumber") is None:
                return None
            return Receipt(txid, int(r["blockNumber"]), _hex(r["blockHash"]), int(r["status"]) == 1,
                           int(r["gasUsed"]) * int(r["effectiveGasPrice"]))

    def known(self, txid: str) -> bool:
        """Whether the node knows the transaction (pending or mined); False only on the
        node's positive "not found"."""
        with self._rpc(f"eth_getTransactionByHash({txid})"):
            try:
                return self.w3.eth.get_transaction(txid) is not None
            except TransactionNotFound:
                return False

    def balance(self, address: str, asset: ChainAsset, height: int | None = None) -> int:
        block = "latest" if height is None else height
        with self._rpc(f"balance of {address} in {asset.symbol}"):
            if asset.native:
                return int(self.w3.eth.get_balance(address, block_identifier=block))
            data = b"\x70\xa0\x82\x31" + abi_encode(["address"], [address])  # balanceOf(address)
            out = self.w3.eth.call({"to": asset.token, "data": _hex(data)}, block_identifier=block)
            return int.from_bytes(bytes(out), "big") if out else 0

    def nonce(self, address: str, pending: bool = True, height: int | None = None) -> int:
        """Transactions from ``address`` counted in the pending state, the latest block,
        or (``height``) the block at that height."""
        block: Any = height if height is not None else ("pending" if pending else "latest")
        with self._rpc(f"eth_getTransactionCount({address}, {block})"):
            return int(self.w3.eth.get_transaction_count(address, block))

    def fee_params(self) -> tuple[int, int]:
        """(max fee per gas, priority tip): twice the base fee plus the tip, as wallets do."""
        with self._rpc("eth_getBlockByNumber(latest)"):
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        return 2 * base + self.tip, self.tip

    # -- deposits --------------------------------------------------------------------
    def scan(self, first: int, last: int, watched: dict[str, str], tokens: dict[str, ChainAsset],
             own: set[str], native_symbol: str = "ETH") -> list[Observed]:
        """Transfers in blocks ``first..last`` into ``watched`` (address -> symbol the
        address is for) that did not come from one of the venue's ``own`` addresses
        (sweeps and gas top-ups are not deposits). Only successful transactions count."""
        out: list[Observed] = []
        if first > last:
            return out
        by_token = {a.token.lower(): a for a in tokens.values()}
        with self._rpc(f"scan of blocks {first}..{last}"):
            for h in range(first, last + 1):
                blk = self.w3.eth.get_block(h, full_transactions=True)
                bhash = _hex(blk["hash"])
                for tx in blk["transactions"]:
                    to = tx.get("to")
                    if not to or int(tx["value"]) <= 0 or tx["from"] in own:
                        continue
                    to = to_checksum_address(to)
                    if watched.get(to) != native_symbol:
                        continue
                    txid = _hex(tx["hash"])
                    r = self.w3.eth.get_transaction_receipt(txid)
                    if int(r["status"]) == 1:
                        out.append(Observed(f"eth:{txid}:v", native_symbol, txid, -1, to, int(tx["value"]), h, bhash))
            if by_token:
                logs = self.w3.eth.get_logs({"fromBlock": first, "toBlock": last,
                                             "address": [a.token for a in tokens.values()],
                                             "topics": [stablecoin.TRANSFER_TOPIC]})
                receipts: dict[str, Any] = {}
                for lg in logs:
                    asset = by_token.get(str(lg["address"]).lower())
                    if asset is None or len(lg["topics"]) != 3:
                        continue
                    to = to_checksum_address(bytes(lg["topics"][2])[-20:])
                    frm = to_checksum_address(bytes(lg["topics"][1])[-20:])
                    if watched.get(to) != asset.symbol or frm in own:
                        continue
                    txid = _hex(lg["transactionHash"])
                    r = receipts.get(txid) or receipts.setdefault(txid, self.w3.eth.get_transaction_receipt(txid))
                    if int(r["status"]) != 1:
                        continue
                    pos = next(i for i, x in enumerate(r["logs"]) if int(x["logIndex"]) == int(lg["logIndex"]))
                    out.append(Observed(f"eth:{txid}:{pos}", asset.symbol, txid, pos, to,
                                        int.from_bytes(bytes(lg["data"]), "big"), int(lg["blockNumber"]),
                                        _hex(lg["blockHash"])))
        return out

    # -- transfers -------------------------------------------------------------------
    def transfer(self, asset: ChainAsset, sender: str, to: str, amount: int, nonce: int,
                 max_fee: int, tip: int, gas: int | None = None) -> dict[str, Any]:
        """An unsigned EIP-1559 transfer of ``amount`` chain units."""
        if asset.native:
            call = {"to": to, "value": amount, "data": b""}
        else:
            data = stablecoin.TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to, amount])
            call = {"to": asset.token, "value": 0, "data": data}
        if gas is None:
            gas = NATIVE_GAS if asset.native else self.estimate_gas(sender, call)
        return {"type": 2, "chainId": self.chain_id, "nonce": nonce, "gas": gas, "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip, "accessList": [], **call}

    def estimate_gas(self, sender: str, call: dict[str, Any]) -> int:
        """Gas for ``call`` from ``sender`` (priced at zero: a deposit address about to be
        topped up with gas money can be estimated before it has any)."""
        with self.lock:
            try:
                est = int(self.w3.eth.estimate_gas({"from": sender, "to": call["to"], "value": call["value"],
                                                    "data": _hex(call["data"]), "gasPrice": 0}))
            except Exception as e:
                raise ChainError(f"the node cannot estimate the transfer (would it fail?): {e}") from e
        return est * 5 // 4 + 5_000  # margin: storage refunds and warm/cold slots differ between blocks

    def send_raw(self, raw: bytes) -> str:
        """Broadcast signed bytes; sending bytes the node already has is not an error."""
        txid = _hex(keccak(raw))
        with self.lock:
            try:
                got = _hex(self.w3.eth.send_raw_transaction(raw))
            except Exception as e:
                if self.known(txid):  # raises ChainError itself if the node cannot say
                    return txid
                raise ChainError(f"the node refused the transaction {txid}: {e}") from e
        if got != txid:
            raise ChainError(f"the node reports {got} for the transaction {txid}")
        return txid


def sign_transaction(worker: SignerWorker, label: str, tx: dict[str, Any]) -> tuple[bytes, str]:
    """Sign an EIP-1559 transaction with the key ``label``; (raw bytes, txid)."""
    digest = TypedTransaction.from_dict(tx).hash()
    v, r, s = worker.sign_recoverable(label, bytes(digest))
    raw = TypedTransaction.from_dict({**tx, "v": v, "r": r, "s": s}).encode()
    return bytes(raw), _hex(keccak(raw))


def decode_signed(raw: bytes) -> dict[str, Any]:
    """The fields and the sender of signed EIP-1559 bytes (for transactions signed offline)."""
    from eth_account import Account

    try:
        t = TypedTransaction.from_bytes(HexBytes(raw))
        sender = Account.recover_transaction(raw)
    except Exception as e:
        raise InvalidInput("transaction", f"not a signed EIP-1559 transaction: {e}") from e
    d = {k: (_hex(v) if isinstance(v, (bytes, bytearray)) else v) for k, v in t.as_dict().items()}
    if d.get("to"):
        d["to"] = to_checksum_address(d["to"])
    return {**d, "from": to_checksum_address(sender), "txid": _hex(keccak(raw))}


class DevChain:
    """A development chain's extras: faucet, mining, snapshots. Embedded EVM or anvil."""

    def __init__(self, chain: EthereumChain) -> None:
        self.chain = chain
        self.w3 = chain.w3
        self.tester = getattr(chain.w3.provider, "ethereum_tester", None)
        with chain.lock:
            self.faucet = to_checksum_address(self.w3.eth.accounts[0])
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()

    def mine(self, n: int = 1) -> None:
        with self.chain.lock:
            if self.tester is not None:
                self.tester.mine_blocks(n)
            else:
                self.w3.provider.make_request("anvil_mine", [hex(n)])

    def snapshot(self) -> Any:
        with self.chain.lock:
            if self.tester is not None:
                return self.tester.take_snapshot()
            return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snap: Any) -> None:
        with self.chain.lock:
            if self.tester is not None:
                self.tester.revert_to_snapshot(snap)
            else:
                self.w3.provider.make_request("evm_revert", [snap])

    def send_raw(self, raw: bytes) -> str:
        return self.chain.send_raw(raw)

    def deploy_stablecoin(self, name: str = "USD Coin (venue test)", symbol: str = "USDC", decimals: int = 6) -> str:
        c = stablecoin.compiled()
        with self.chain.lock:
            contract = self.w3.eth.contract(abi=c["abi"], bytecode=c["bytecode"])
            h = contract.constructor(name, symbol, decimals).transact({"from": self.faucet})
            r = self.w3.eth.wait_for_transaction_receipt(h, timeout=30)
            return to_checksum_address(r["contractAddress"])

    def fund(self, asset: ChainAsset, to: str, amount: int) -> str:
        """Send ``amount`` chain units from the faucet (minting the test token). The txid.
        More ETH than the faucet holds is refused (:class:`InvalidInput` ``faucet_dry``);
        a node that fails raises :class:`ChainError`."""
        to = checksum(to)
        if asset.native:
            have = self.chain.balance(self.faucet, asset)
            if amount + NATIVE_GAS * self.chain.fee_params()[0] > have:
                raise InvalidInput("faucet_dry", f"the faucet holds {asset.fmt(have)} {asset.symbol}, "
                                                 f"less than {asset.fmt(amount)} and the fee")
        elif amount >= 2 ** 255:
            raise InvalidInput("amount", f"{asset.symbol} amount too large for the token")
        with self.chain._rpc(f"faucet transfer of {asset.symbol}"):
            if asset.native:
                h = self.w3.eth.send_transaction({"from": self.faucet, "to": to, "value": amount})
            else:
                token = self.w3.eth.contract(address=asset.token, abi=stablecoin.compiled()["abi"])
                h = token.functions.mint(to, amount).transact({"from": self.faucet})
            r = self.w3.eth.wait_for_transaction_receipt(h, timeout=30)
            if int(r["status"]) != 1:
                raise ChainError(f"the faucet transfer {_hex(h)} failed")
            return _hex(h)

    def start_block_timer(self, seconds: float) -> None:
        """Mine an empty block every ``seconds`` so confirmations advance (demo only)."""
        def run() -> None:
            while not self._stop.wait(seconds):
                self.mine(1)
        self._timer = threading.Thread(target=run, name="dev-chain-blocks", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)


def embedded() -> tuple[EthereumChain, DevChain]:
    """A fresh in-process EVM (web3's tester provider) with a funded faucet. Its genesis
    block is the same every time, so it carries a random instance id: custody tells one
    embedded chain from the next by it (see :meth:`custody.watcher.Watcher.check_chain`)."""
    chain = EthereumChain(Web3(EthereumTesterProvider()), "embedded")
    chain.instance = secrets.token_hex(8)
    return chain, DevChain(chain)
