"""The software keystore: the fallback signer where no PKCS#11 module exists.

Keys and secrets live in one JSON file under the data directory, each entry sealed with
AES-256-GCM under a key derived (scrypt) from a password. The password comes from
``VENUE_KEYSTORE_PASSWORD`` or, on first use, is generated into a 0600 file beside the
keystore (so the keystore alone, e.g. in a backup, reveals nothing). Keys are decrypted
in memory while the signer is open. This is weaker than a token (a process memory dump
shows the keys) and says so in :attr:`kind`; it exists so the venue runs anywhere.
"""
from __future__ import annotations

import base64
import json
import os
import secrets

import coincurve
from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt

from custody.errors import SignerError
from custody.signer import Signer


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class SoftwareSigner(Signer):
    kind = "software"

    def __init__(self, directory: str, password: str | None = None) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, "keystore.json")
        if password is None:
            password = os.environ.get("VENUE_KEYSTORE_PASSWORD") or self._password_file(directory)
        if os.path.exists(self.path):
            with open(self.path) as f:
                self._doc = json.load(f)
        else:
            self._doc = {"format": 1, "salt": _b64(secrets.token_bytes(16)), "entries": {}}
        salt = base64.b64decode(self._doc["salt"])
        self._key = scrypt(password.encode(), salt, 32, N=2 ** 15, r=8, p=1)
        self._keys: dict[str, coincurve.PrivateKey] = {}
        self._secrets: dict[str, bytes] = {}
        for name, e in self._doc["entries"].items():
            label = name.split(":", 1)[1]
            data = self._open(e)
            if e["kind"] == "key":
                self._keys[label] = coincurve.PrivateKey(data)
            else:
                self._secrets[label] = data

    @staticmethod
    def _password_file(directory: str) -> str:
        p = os.path.join(directory, "keystore.pass")
        if not os.path.exists(p):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(24))
        with open(p) as f:
            return f.read().strip()

    def _seal(self, kind: str, data: bytes) -> dict[str, str]:
        nonce = secrets.token_bytes(12)
        ct, tag = AES.new(self._key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(data)
        return {"kind": kind, "nonce": _b64(nonce), "ct": _b64(ct), "tag": _b64(tag)}

    def _open(self, e: dict[str, str]) -> bytes:
        c = AES.new(self._key, AES.MODE_GCM, nonce=base64.b64decode(e["nonce"]))
        try:
            return c.decrypt_and_verify(base64.b64decode(e["ct"]), base64.b64decode(e["tag"]))
        except ValueError as err:
            raise SignerError("the keystore password is wrong or the keystore is damaged") from err

    def _save(self) -> None:
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._doc, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def generate(self, label: str) -> bytes:
        if label in self._keys:
            raise SignerError(f"a key labelled {label!r} exists already")
        key = coincurve.PrivateKey()
        self._doc["entries"]["key:" + label] = self._seal("key", key.secret)
        self._save()
        self._keys[label] = key
        return key.public_key.format(compressed=False)

    def public_key(self, label: str) -> bytes | None:
        key = self._keys.get(label)
        return key.public_key.format(compressed=False) if key else None

    def sign_digest(self, label: str, digest: bytes) -> tuple[int, int]:
        key = self._keys.get(label)
        if key is None:
            raise SignerError(f"no key labelled {label!r}")
        sig = key.sign_recoverable(digest, hasher=None)
        return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")

    def labels(self) -> list[str]:
        return sorted(self._keys)

    def put_secret(self, label: str, data: bytes) -> None:
        if label in self._secrets:
            raise SignerError(f"a secret labelled {label!r} exists already")
        self._doc["entries"]["secret:" + label] = self._seal("secret", data)
        self._save()
        self._secrets[label] = data

    def get_secret(self, label: str) -> bytes | None:
        return self._secrets.get(label)
