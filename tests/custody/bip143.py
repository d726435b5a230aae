"""An independent BIP143 (segwit v0) signature-hash for P2WPKH inputs, and a minimal
transaction parser, written from the BIP to check custody's Bitcoin signatures without
trusting the library custody builds them with."""
from __future__ import annotations

import hashlib
import io
from typing import NamedTuple


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _varint(f: io.BytesIO) -> int:
    n = f.read(1)[0]
    if n < 0xFD:
        return n
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[n]
    return int.from_bytes(f.read(size), "little")


def _enc_varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


class TxIn(NamedTuple):
    prev_txid: bytes  # internal byte order
    vout: int
    script_sig: bytes
    sequence: int
    witness: list[bytes]


class TxOut(NamedTuple):
    value: int
    script: bytes


class Tx(NamedTuple):
    version: int
    inputs: list[TxIn]
    outputs: list[TxOut]
    locktime: int

    def txid(self) -> str:
        raw = self.version.to_bytes(4, "little") + _enc_varint(len(self.inputs))
        for i in self.inputs:
            raw += i.prev_txid + i.vout.to_bytes(4, "little") + _enc_varint(len(i.script_sig)) + i.script_sig + \
                i.sequence.to_bytes(4, "little")
        raw += _enc_varint(len(self.outputs))
        for o in self.outputs:
            raw += o.value.to_bytes(8, "little") + _enc_varint(len(o.script)) + o.script
        raw += self.locktime.to_bytes(4, "little")
        return dsha(raw)[::-1].hex()


def parse(raw_hex: str) -> Tx:
    f = io.BytesIO(bytes.fromhex(raw_hex))
    version = int.from_bytes(f.read(4), "little")
    marker = f.read(2)
    segwit = marker == b"\x00\x01"
    if not segwit:
        f.seek(4)
    ins = []
    for _ in range(_varint(f)):
        prev = f.read(32)
        vout = int.from_bytes(f.read(4), "little")
        script = f.read(_varint(f))
        seq = int.from_bytes(f.read(4), "little")
        ins.append(TxIn(prev, vout, script, seq, []))
    outs = []
    for _ in range(_varint(f)):
        value = int.from_bytes(f.read(8), "little")
        outs.append(TxOut(value, f.read(_varint(f))))
    if segwit:
        for k, i in enumerate(ins):
            items = [f.read(_varint(f)) for _ in range(_varint(f))]
            ins[k] = i._replace(witness=items)
    locktime = int.from_bytes(f.read(4), "little")
    return Tx(version, ins, outs, locktime)


def p2wpkh_script(pubkey_hash: bytes) -> bytes:
    return b"\x00\x14" + pubkey_hash


def sighash_p2wpkh(tx: Tx, index: int, pubkey_hash: bytes, amount: int, hashtype: int = 1) -> bytes:
    """BIP143 digest for input ``index`` spending a P2WPKH output of ``amount`` sat."""
    prevouts = b"".join(i.prev_txid + i.vout.to_bytes(4, "little") for i in tx.inputs)
    sequences = b"".join(i.sequence.to_bytes(4, "little") for i in tx.inputs)
    outputs = b"".join(o.value.to_bytes(8, "little") + _enc_varint(len(o.script)) + o.script for o in tx.outputs)
    inp = tx.inputs[index]
    script_code = b"\x19\x76\xa9\x14" + pubkey_hash + b"\x88\xac"
    pre = (tx.version.to_bytes(4, "little") + dsha(prevouts) + dsha(sequences) + inp.prev_txid +
           inp.vout.to_bytes(4, "little") + script_code + amount.to_bytes(8, "little") +
           inp.sequence.to_bytes(4, "little") + dsha(outputs) + tx.locktime.to_bytes(4, "little") +
           hashtype.to_bytes(4, "little"))
    return dsha(pre)
