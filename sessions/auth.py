"""Logon checks: passwords against slow-KDF hashes, Ed25519-signed logons, and the shape
of the Logon itself (:class:`LogonRules`).

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (hashlib.scrypt,
a memory-hard KDF) and compared in constant time. A signed logon follows Binance's FIX
scheme: the client signs ``MsgType, SenderCompID, TargetCompID, MsgSeqNum, SendingTime``
joined by SOH with its Ed25519 key and puts the base64 signature in RawData(96); the
venue holds the session's public key. SendingTime must be within ``MAX_SKEW`` of the
venue's clock, and a signature is accepted once, so a captured logon cannot be replayed.

The check runs on the gateway's worker threads (scrypt takes tens of milliseconds), never
on the sequencer's.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import NamedTuple

import quickfix as fix
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from venue.access import AccessRegistry, SessionRecord

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_SKEW_S = 60
SOH = "\x01"


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, dk = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(dk)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def logon_payload(msg_type: str, sender: str, target: str, seq: str, sending_time: str) -> bytes:
    return SOH.join((msg_type, sender, target, seq, sending_time)).encode()


def parse_sending_time(s: str) -> float | None:
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return datetime.strptime(s[:21] if "." in s else s, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


class LogonRules:
    """What a Logon must look like before it is passed to QuickFIX. QuickFIX answers a
    Logon that its data dictionary refuses (a bad CancelOrdersOnDisconnect value, a field
    the Logon does not declare, no EncryptMethod) with a session Reject and no Logout, and
    drops one without HeartBtInt: the client would wait for an answer that never comes.
    The gateway refuses such a Logon with a Logout that says why. The venue also wants
    EncryptMethod 0 (TLS does the encrypting) and a heartbeat of 1 to 300 seconds (0 would
    turn off the heartbeats, and with them QuickFIX's detection of a dead peer and its
    logout timeout; Coinbase caps at 300). Thread-safe (the dictionary is only read)."""

    MAX_HEARTBEAT_S = 300

    def __init__(self, dictionary: str, begin_string: str = "FIX.4.4") -> None:
        self.begin_string = begin_string
        self._dd = fix.DataDictionary(dictionary)
        self._dd.checkFieldsOutOfOrder(False)  # as the acceptor (fix_config/acceptor.cfg)

    def problem(self, raw: bytes, fields: dict[int, str]) -> str | None:
        """Why the Logon ``raw`` (whose fields are ``fields``) cannot be passed on, or None."""
        if fields.get(8) != self.begin_string:
            return f"BeginString must be {self.begin_string}"
        encrypt = fields.get(98)
        if encrypt is None:
            return "EncryptMethod(98) is required"
        if encrypt != "0":
            return "EncryptMethod(98) must be 0 (none): connect with TLS for encryption"
        hb = fields.get(108)
        if hb is None:
            return "HeartBtInt(108) is required"
        if not (hb.isdigit() and 1 <= int(hb) <= self.MAX_HEARTBEAT_S):
            return f"HeartBtInt(108) must be a whole number of seconds from 1 to {self.MAX_HEARTBEAT_S}"
        try:
            self._dd.validate(fix.Message(raw.decode("latin-1"), self._dd, True))
        except Exception as e:  # QuickFIX's validation errors (IncorrectTagValue, InvalidTagNumber, ...)
            return f"invalid Logon: {e}"
        return None


class LogonDecision(NamedTuple):
    ok: bool
    reason: str
    session: SessionRecord | None


class LogonChecker:
    """Decides whether a Logon may proceed. Thread-safe."""

    def __init__(self, registry: AccessRegistry, clock=time.time) -> None:
        self.registry = registry
        self.clock = clock
        self._seen: OrderedDict[bytes, None] = OrderedDict()  # signatures already used
        self._lock = threading.Lock()

    def check(self, fields: dict[int, str], port_roles: tuple[str, ...] = ()) -> LogonDecision:
        """``fields``: the Logon's tags. ``port_roles``: roles allowed on the port it came in on."""
        sender = fields.get(49, "")
        target = fields.get(56, "")
        rec = self.registry.sessions.get(sender)
        if rec is None:
            return LogonDecision(False, f"unknown SenderCompID {sender}", None)
        if not rec.enabled:
            return LogonDecision(False, "session disabled", None)
        if target != rec.target_comp_id:
            return LogonDecision(False, f"TargetCompID must be {rec.target_comp_id}", None)
        if port_roles and rec.role not in port_roles:
            return LogonDecision(False, f"{rec.role.replace('_', '-')} sessions do not connect to this port", None)
        user = self.registry.users.get(rec.user)
        if user is None or not user.enabled:
            return LogonDecision(False, "user disabled", None)
        username = fields.get(553, "")
        if username and username != rec.user:
            return LogonDecision(False, "wrong username or password", None)
        if rec.ed25519_key:
            raw = fields.get(96, "")
            if not raw:
                return LogonDecision(False, "this session requires an Ed25519-signed logon (RawData 96)", None)
            return self._check_signature(fields, rec, raw)
        password = fields.get(554)
        if not username or password is None:
            return LogonDecision(False, "Username(553) and Password(554) are required", None)
        if not verify_password(password, user.password_hash):
            return LogonDecision(False, "wrong username or password", None)
        return LogonDecision(True, "", rec)

    def _check_signature(self, fields: dict[int, str], rec: SessionRecord, raw: str) -> LogonDecision:
        sent = parse_sending_time(fields.get(52, ""))
        if sent is None or abs(self.clock() - sent) > MAX_SKEW_S:
            return LogonDecision(False, f"SendingTime must be within {MAX_SKEW_S}s of the venue's clock", None)
        try:
            sig = base64.b64decode(raw, validate=True)
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(rec.ed25519_key))
            key.verify(sig, logon_payload(fields.get(35, "A"), fields.get(49, ""), fields.get(56, ""),
                                          fields.get(34, ""), fields.get(52, "")))
        except (ValueError, InvalidSignature):
            return LogonDecision(False, "invalid logon signature", None)
        with self._lock:
            if sig in self._seen:
                return LogonDecision(False, "logon signature already used", None)
            self._seen[sig] = None
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        return LogonDecision(True, "", rec)
