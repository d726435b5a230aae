"""Operator credentials of a data directory: scrypt hashes kept by the venue, and the
local demo credential the ``venue`` command uses.

``<data_dir>/operators.json`` (mode 0600) maps each operator's name to
``scrypt$n$r$p$salt$hash`` (hashlib.scrypt, a memory-hard KDF; the secret itself is
never stored there). ``<data_dir>/operator.secret`` (mode 0600) holds one operator's
name and secret for local use by the CLI (written by ``venue init`` / ``venue demo``);
VENUE_OPERATOR and VENUE_OPERATOR_SECRET take precedence over it.

Verification reads the file again when it changed, so an operator added or rotated
while the venue runs takes effect at once. This module does not talk to the venue.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from typing import NamedTuple

from cli.errors import ControlError

OPERATORS_FILE = "operators.json"
SECRET_FILE = "operator.secret"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
DEFAULT_OPERATOR = "operator"


class Credential(NamedTuple):
    name: str
    secret: str


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, dk = stored.split("$")
        want = base64.b64decode(dk)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and hmac.compare_digest(got, want)


_DUMMY = hash_secret("not an operator")  # unknown names cost the same time as known ones


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class OperatorFile:
    """The operators of one data directory (their hashes)."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, OPERATORS_FILE)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._hashes: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return {}
        with self._lock:
            if mtime != self._mtime:
                with open(self.path) as f:
                    self._hashes = dict(json.load(f).get("operators", {}))
                self._mtime = mtime
            return self._hashes

    def names(self) -> list[str]:
        return sorted(self._load())

    def verify(self, cred: Credential) -> bool:
        try:
            stored = self._load().get(cred.name)
        except (OSError, ValueError):
            return False
        ok = check_secret(cred.secret, stored or _DUMMY)
        return ok and stored is not None and bool(cred.name)

    def set(self, name: str) -> str:
        """Create or rotate ``name``'s secret; returns the new secret (shown once)."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ControlError(f"operator name {name!r} must be letters, digits, '-', '_' or '.'")
        secret = secrets.token_urlsafe(32)
        hashes = dict(self._load())
        hashes[name] = hash_secret(secret)
        _write_private(self.path, json.dumps({"operators": hashes}, indent=1, sort_keys=True))
        return secret

    def remove(self, name: str) -> None:
        hashes = dict(self._load())
        if name not in hashes:
            raise ControlError(f"unknown operator {name}")
        del hashes[name]
        _write_private(self.path, json.dumps({"operators": hashes}, indent=1, sort_keys=True))


def write_client_credential(data_dir: str, cred: Credential) -> str:
    path = os.path.join(data_dir, SECRET_FILE)
    _write_private(path, json.dumps({"operator": cred.name, "secret": cred.secret}))
    return path


def ensure_local_operator(data_dir: str, name: str = DEFAULT_OPERATOR) -> Credential:
    """The local credential of ``data_dir``, created (hash + secret file) if missing or stale."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    ops = OperatorFile(data_dir)
    path = os.path.join(data_dir, SECRET_FILE)
    if os.path.exists(path):
        try:
            cred = _read_secret_file(path)
            if ops.verify(cred):
                return cred
        except ControlError:
            pass
    cred = Credential(name, ops.set(name))
    write_client_credential(data_dir, cred)
    return cred


def _read_secret_file(path: str) -> Credential:
    try:
        with open(path) as f:
            d = json.load(f)
        return Credential(str(d["operator"]), str(d["secret"]))
    except PermissionError:
        raise ControlError(f"not allowed to read the operator credential {path}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ControlError(f"the operator credential {path} is unreadable") from None


def load_client_credential(data_dir: str) -> Credential:
    name, secret = os.environ.get("VENUE_OPERATOR"), os.environ.get("VENUE_OPERATOR_SECRET")
    if name and secret:
        return Credential(name, secret)
    path = os.path.join(data_dir, SECRET_FILE)
    if not os.path.exists(path):
        raise ControlError(f"no operator credential: set VENUE_OPERATOR and VENUE_OPERATOR_SECRET or create {path} with 'venue init'")
    return _read_secret_file(path)
