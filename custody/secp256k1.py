"""secp256k1 arithmetic custody needs around a signer: low-s, recovery ids, encodings.

A PKCS#11 token returns an ECDSA signature as raw ``r || s`` and knows nothing of
Ethereum's recovery id or Bitcoin's DER and low-s rules. This module turns a raw
signature into what each chain wants. It does not sign (the signers do) and holds no key.
"""
from __future__ import annotations

from typing import Final

import coincurve
from eth_keys import keys as eth_keys
from eth_utils import keccak, to_checksum_address

from custody.errors import SignerError

N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N: Final = N // 2
CURVE_OID: Final = "1.3.132.0.10"  # secp256k1


def low_s(r: int, s: int) -> tuple[int, int]:
    """The same signature with ``s`` in the lower half of the order (BIP62, EIP-2)."""
    if not (0 < r < N and 0 < s < N):
        raise SignerError("signature values out of range")
    return r, (N - s if s > HALF_N else s)


def split_raw(raw: bytes) -> tuple[int, int]:
    """``r || s`` (64 bytes, as CKM_ECDSA returns it) as two integers."""
    if len(raw) != 64:
        raise SignerError(f"expected a 64-byte r||s signature, got {len(raw)} bytes")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def point_from_ec_point(ec_point: bytes) -> bytes:
    """The 65-byte uncompressed point from a PKCS#11 CKA_EC_POINT (a DER OCTET STRING
    wrapping ``04 || X || Y``; some modules return the bare point)."""
    if len(ec_point) == 67 and ec_point[0] == 0x04 and ec_point[1] == 65:
        ec_point = ec_point[2:]
    if len(ec_point) != 65 or ec_point[0] != 0x04:
        raise SignerError("the token returned an EC point that is not an uncompressed secp256k1 point")
    return ec_point


def compressed(pub65: bytes) -> bytes:
    return coincurve.PublicKey(pub65).format(compressed=True)


def eth_address(pub65: bytes) -> str:
    """The checksummed Ethereum address of an uncompressed public key."""
    return to_checksum_address(keccak(pub65[1:])[12:])


def recovery_id(digest: bytes, r: int, s: int, pub65: bytes) -> int:
    """The ``v`` (0 or 1) for which the signature recovers to ``pub65``."""
    want = eth_keys.PublicKey(pub65[1:])
    for v in (0, 1):
        try:
            if eth_keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest) == want:
                return v
        except Exception:  # an invalid candidate point: try the other
            continue
    raise SignerError("no recovery id reproduces the signer's public key: the signature does not match the key")


def der(r: int, s: int) -> bytes:
    """DER encoding of (r, s) for Bitcoin scripts (without the sighash byte)."""
    def _int(x: int) -> bytes:
        b = x.to_bytes((x.bit_length() + 7) // 8 or 1, "big")
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b
    body = _int(r) + _int(s)
    return b"\x30" + bytes([len(body)]) + body


def verify(pub65: bytes, digest: bytes, r: int, s: int) -> bool:
    """Check an ECDSA signature over a 32-byte digest (independently of the signer)."""
    try:
        return coincurve.PublicKey(pub65).verify(der(r, s), digest, hasher=None)
    except Exception:
        return False
