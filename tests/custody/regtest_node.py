"""A stand-in for bitcoind's JSON-RPC on loopback, for custody's Bitcoin real-mode path.

No Bitcoin Core binary can be installed here (none in Debian 12, PyPI or npm), so this
small node plays its part over real HTTP with bitcoind's method names, answers and error
codes. It is *not* a consensus implementation: it checks what custody's transactions
must get right, independently of the library custody builds them with - every input
spends an unspent P2WPKH output it knows, its BIP143 signature verifies under the pubkey
in the witness (tests/custody/bip143.py + coincurve, low s), and the outputs do not
exceed the inputs - and it keeps a UTXO set, a mempool and a chain of blocks mined on
demand. Coins enter through :meth:`RegtestNode.fund` (a block paying an address, the way
a coinbase or another wallet would).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import coincurve

from custody.bitcoin import hash160
from tests.custody import bip143

HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RegtestNode:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.blocks: list[tuple[str, list[str]]] = [(secrets.token_hex(32), [])]  # genesis
        self.mempool: dict[str, str] = {}  # txid -> raw hex
        self.utxos: dict[tuple[str, int], tuple[int, bytes]] = {}  # (txid, vout) -> (value, script)
        self.where: dict[str, int] = {}  # txid -> height
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                try:
                    result, error, status = node.call(doc["method"], doc.get("params", [])), None, 200
                except RpcFailure as e:
                    result, error, status = None, {"code": e.code, "message": e.message}, 500
                out = json.dumps({"result": result, "error": error, "id": doc.get("id")}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://user:pass@127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the RPC methods custody uses ------------------------------------------------------
    def call(self, method: str, params: list[Any]) -> Any:
        with self.lock:
            if method == "getblockcount":
                return len(self.blocks) - 1
            if method == "getblockhash":
                h = int(params[0])
                if not 0 <= h < len(self.blocks):
                    raise RpcFailure(-8, "Block height out of range")
                return self.blocks[h][0]
            if method == "getblock":
                for bh, txs in self.blocks:
                    if bh == params[0]:
                        return {"hash": bh, "tx": [{"txid": bip143.parse(r).txid(), "hex": r} for r in txs]}
                raise RpcFailure(-5, "Block not found")
            if method == "sendrawtransaction":
                return self._accept(str(params[0]))
            if method == "getrawtransaction":
                txid = str(params[0])
                if txid in self.mempool:
                    return {"txid": txid, "hex": self.mempool[txid], "confirmations": 0}
                if txid in self.where:
                    h = self.where[txid]
                    return {"txid": txid, "confirmations": len(self.blocks) - h, "blockhash": self.blocks[h][0]}
                raise RpcFailure(-5, "No such mempool or blockchain transaction")
            raise RpcFailure(-32601, "Method not found")

    def _accept(self, raw: str) -> str:
        tx = bip143.parse(raw)
        txid = tx.txid()
        if txid in self.mempool or txid in self.where:
            return txid
        spent = [(i.prev_txid[::-1].hex(), i.vout) for i in tx.inputs]
        total_in = 0
        for k, (op, inp) in enumerate(zip(spent, tx.inputs)):
            if op not in self.utxos or any(op in self._spends(r) for r in self.mempool.values()):
                raise RpcFailure(-25, f"bad-txns-inputs-missingorspent {op[0]}:{op[1]}")
            value, script = self.utxos[op]
            if len(inp.witness) != 2 or script != bip143.p2wpkh_script(hash160(inp.witness[1])):
                raise RpcFailure(-26, "non-mandatory-script-verify-flag (witness does not match the output)")
            sig, pub = inp.witness
            if sig[-1] != 1:
                raise RpcFailure(-26, "only SIGHASH_ALL is expected here")
            digest = bip143.sighash_p2wpkh(tx, k, hash160(pub), value)
            if not coincurve.PublicKey(pub).verify(sig[:-1], digest, hasher=None):
                raise RpcFailure(-26, "mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)")
            r_len = sig[3]
            if int.from_bytes(sig[4 + r_len + 2:-1], "big") > HALF_N:
                raise RpcFailure(-26, "non-mandatory-script-verify-flag (Non-canonical signature: S value is unnecessarily high)")
            total_in += value
        if sum(o.value for o in tx.outputs) > total_in:
            raise RpcFailure(-26, "bad-txns-in-belowout")
        self.mempool[txid] = raw
        return txid

    @staticmethod
    def _spends(raw: str) -> set[tuple[str, int]]:
        return {(i.prev_txid[::-1].hex(), i.vout) for i in bip143.parse(raw).inputs}

    # -- what a test does to the chain -----------------------------------------------------
    def mine(self, n: int = 1) -> None:
        with self.lock:
            for _ in range(n):
                txs = list(self.mempool.values())
                self.mempool.clear()
                h = len(self.blocks)
                self.blocks.append((hashlib.sha256(secrets.token_bytes(32)).hexdigest(), txs))
                for raw in txs:
                    self._apply(raw, h)

    def _apply(self, raw: str, height: int) -> None:
        tx = bip143.parse(raw)
        txid = tx.txid()
        for op in self._spends(raw):
            self.utxos.pop(op, None)
        for n, o in enumerate(tx.outputs):
            self.utxos[(txid, n)] = (o.value, o.script)
        self.where[txid] = height

    def fund(self, raw: str) -> str:
        """Mine a block with ``raw``, a transaction whose inputs come from outside (as a
        coinbase's would): its outputs become spendable coins."""
        with self.lock:
            h = len(self.blocks)
            self.blocks.append((hashlib.sha256(secrets.token_bytes(32)).hexdigest(), [raw]))
            self._apply(raw, h)
            return bip143.parse(raw).txid()

    def unspent_value(self, script: bytes) -> int:
        with self.lock:
            return sum(v for (v, s) in self.utxos.values() if s == script)
