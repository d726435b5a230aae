"""Who may connect and what they may touch: users, credentials and FIX sessions.

This is venue data, not code: it changes only through journaled commands, so it is
replayed and audited like everything else, and it lives in the engine's snapshot as an
extension. Credentials are stored as slow-KDF hashes computed at the edge (the journal
never sees a password); Ed25519 public keys are stored for signed logons.

The records are immutable NamedTuples replaced wholesale on change, so the FIX threads
may read ``AccessRegistry.sessions`` / ``users`` without locks (the sequencer thread is
the only writer). This module knows nothing of FIX; ``sessions/auth.py`` checks logons.
"""
from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from venue import commands as C
from venue.events import AdminApplied, CommandRejected
from venue.types import Reject

ROLES = ("order_entry", "drop_copy", "market_data", "risk")


class CreateUser(NamedTuple):
    user: str
    firm: str
    password_hash: str  # see sessions.auth.hash_password
    name: str = ""


class SetUserPassword(NamedTuple):
    user: str
    password_hash: str


class SetUserEnabled(NamedTuple):
    user: str
    enabled: bool


class CreateSession(NamedTuple):
    """A FIX session: the client's SenderCompID, what it is for, whose it is."""

    comp_id: str  # the client's SenderCompID
    role: str  # one of ROLES
    firm: str
    user: str  # the user whose credentials log it on
    target_comp_id: str = "VENUE"
    default_account: str = ""
    accounts: str = ""  # comma list the session may use; empty = every account of its firm
    entitled_firms: str = ""  # drop copy / risk: comma list of firms it may see
    cancel_on_disconnect: bool = False
    msg_rate: int = 500  # messages per second before throttling (0 = unlimited)
    ed25519_key: str = ""  # hex public key; set = signed logon required


class SetSessionEnabled(NamedTuple):
    comp_id: str
    enabled: bool


class SetSessionKey(NamedTuple):
    comp_id: str
    ed25519_key: str  # hex, "" to remove


class UpdateSession(NamedTuple):
    comp_id: str
    default_account: str
    accounts: str
    entitled_firms: str
    cancel_on_disconnect: bool
    msg_rate: int


for _tag, _cls in ((30, CreateUser), (31, SetUserPassword), (32, SetUserEnabled), (33, CreateSession),
                   (34, SetSessionEnabled), (35, SetSessionKey), (36, UpdateSession)):
    C.register(_tag, _cls)


class UserRecord(NamedTuple):
    user: str
    firm: str
    password_hash: str
    name: str
    enabled: bool


class SessionRecord(NamedTuple):
    comp_id: str
    role: str
    firm: str
    user: str
    target_comp_id: str
    default_account: str
    accounts: tuple[str, ...]
    entitled_firms: tuple[str, ...]
    cancel_on_disconnect: bool
    msg_rate: int
    ed25519_key: str
    enabled: bool


class AccessRegistry:
    """The engine extension holding users and sessions (name: ``access``)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.users: dict[str, UserRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.version = 0  # rises on every change (readers cache by it)
        for cls, fn in ((CreateUser, self._create_user), (SetUserPassword, self._set_password),
                        (SetUserEnabled, self._set_user_enabled), (CreateSession, self._create_session),
                        (SetSessionEnabled, self._set_session_enabled), (SetSessionKey, self._set_key),
                        (UpdateSession, self._update_session)):
            engine.register_handler(cls, fn)

    # -- reads (any thread) -----------------------------------------------------------
    def session_accounts(self, rec: SessionRecord) -> tuple[str, ...]:
        """The accounts a session may trade or see: its list, or all of its firm's."""
        if rec.accounts:
            return rec.accounts
        firm = self.engine.ledger.firms.get(rec.firm)
        return tuple(a.id for a in firm.accounts) if firm else ()

    # -- handlers (sequencer thread) ---------------------------------------------------
    def _ok(self, c: Any) -> None:
        self.version += 1
        e = self.engine
        e._ev.append(AdminApplied(e.seq, e.ts, c))

    def _no(self, c: Any, code: Reject, text: str) -> None:
        e = self.engine
        e._ev.append(CommandRejected(e.seq, e.ts, c, int(code), text))

    def _create_user(self, c: CreateUser) -> None:
        if not c.user or c.user in self.users:
            return self._no(c, Reject.BAD_COMMAND, f"user {c.user!r} exists or is empty")
        if c.firm not in self.engine.ledger.firms:
            return self._no(c, Reject.UNKNOWN_FIRM, f"unknown firm {c.firm}")
        if not c.password_hash.startswith("scrypt$"):
            return self._no(c, Reject.BAD_COMMAND, "password must be given as a scrypt hash")
        self.users[c.user] = UserRecord(c.user, c.firm, c.password_hash, c.name, True)
        self._ok(c)

    def _set_password(self, c: SetUserPassword) -> None:
        u = self.users.get(c.user)
        if u is None:
            return self._no(c, Reject.BAD_COMMAND, f"unknown user {c.user}")
        if not c.password_hash.startswith("scrypt$"):
            return self._no(c, Reject.BAD_COMMAND, "password must be given as a scrypt hash")
        self.users[c.user] = u._replace(password_hash=c.password_hash)
        self._ok(c)

    def _set_user_enabled(self, c: SetUserEnabled) -> None:
        u = self.users.get(c.user)
        if u is None:
            return self._no(c, Reject.BAD_COMMAND, f"unknown user {c.user}")
        self.users[c.user] = u._replace(enabled=bool(c.enabled))
        self._ok(c)

    def _check_session(self, c: Any, firm: str, default_account: str, accounts: tuple[str, ...],
                       entitled: tuple[str, ...]) -> str | None:
        led = self.engine.ledger
        for a in accounts + ((default_account,) if default_account else ()):
            acct = led.accounts.get(a)
            if acct is None or acct.firm.id != firm:
                return f"account {a} is not an account of firm {firm}"
        for f in entitled:
            if f not in led.firms:
                return f"unknown firm {f}"
        if c.msg_rate < 0:
            return "msg_rate must be >= 0"
        return None

    def _create_session(self, c: CreateSession) -> None:
        if not c.comp_id or c.comp_id in self.sessions:
            return self._no(c, Reject.BAD_COMMAND, f"session {c.comp_id!r} exists or is empty")
        if c.role not in ROLES:
            return self._no(c, Reject.BAD_COMMAND, f"role must be one of {', '.join(ROLES)}")
        if c.firm not in self.engine.ledger.firms:
            return self._no(c, Reject.UNKNOWN_FIRM, f"unknown firm {c.firm}")
        u = self.users.get(c.user)
        if u is None or u.firm != c.firm:
            return self._no(c, Reject.BAD_COMMAND, f"user {c.user} is not a user of firm {c.firm}")
        accounts = _split(c.accounts)
        entitled = _split(c.entitled_firms)
        err = self._check_session(c, c.firm, c.default_account, accounts, entitled)
        if err:
            return self._no(c, Reject.BAD_COMMAND, err)
        self.sessions[c.comp_id] = SessionRecord(c.comp_id, c.role, c.firm, c.user, c.target_comp_id or "VENUE",
                                                 c.default_account, accounts, entitled, bool(c.cancel_on_disconnect),
                                                 c.msg_rate, c.ed25519_key.lower(), True)
        self._ok(c)

    def _update_session(self, c: UpdateSession) -> None:
        s = self.sessions.get(c.comp_id)
        if s is None:
            return self._no(c, Reject.BAD_COMMAND, f"unknown session {c.comp_id}")
        accounts = _split(c.accounts)
        entitled = _split(c.entitled_firms)
        err = self._check_session(c, s.firm, c.default_account, accounts, entitled)
        if err:
            return self._no(c, Reject.BAD_COMMAND, err)
        self.sessions[c.comp_id] = s._replace(default_account=c.default_account, accounts=accounts,
                                              entitled_firms=entitled, cancel_on_disconnect=bool(c.cancel_on_disconnect),
                                              msg_rate=c.msg_rate)
        self._ok(c)

    def _set_session_enabled(self, c: SetSessionEnabled) -> None:
        s = self.sessions.get(c.comp_id)
        if s is None:
            return self._no(c, Reject.BAD_COMMAND, f"unknown session {c.comp_id}")
        self.sessions[c.comp_id] = s._replace(enabled=bool(c.enabled))
        self._ok(c)

    def _set_key(self, c: SetSessionKey) -> None:
        s = self.sessions.get(c.comp_id)
        if s is None:
            return self._no(c, Reject.BAD_COMMAND, f"unknown session {c.comp_id}")
        key = c.ed25519_key.lower()
        if key and (len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key)):
            return self._no(c, Reject.BAD_COMMAND, "an Ed25519 public key is 32 bytes in hex")
        self.sessions[c.comp_id] = s._replace(ed25519_key=key)
        self._ok(c)

    # -- extension protocol (snapshots, hashes) ----------------------------------------
    def dump_state(self) -> dict[str, Any]:
        return {"users": [list(u) for u in self.users.values()],
                "sessions": [[*s[:6], list(s.accounts), list(s.entitled_firms), *s[8:]] for s in self.sessions.values()]}

    def load_state(self, d: dict[str, Any]) -> None:
        self.users = {u[0]: UserRecord(*u) for u in d.get("users", [])}
        self.sessions = {}
        for s in d.get("sessions", []):
            rec = SessionRecord(*s[:6], tuple(s[6]), tuple(s[7]), *s[8:])
            self.sessions[rec.comp_id] = rec
        self.version += 1

    def state_hash(self) -> str:
        h = hashlib.sha256()
        for k in sorted(self.users):
            h.update(repr(tuple(self.users[k])).encode())
        for k in sorted(self.sessions):
            h.update(repr(tuple(self.sessions[k])).encode())
        return h.hexdigest()


def _split(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def install(engine: Any) -> AccessRegistry:
    reg = AccessRegistry(engine)
    engine.extensions["access"] = reg
    return reg
