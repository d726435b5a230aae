"""The venue's local control endpoint: an authenticated Unix socket, and its handler registry.

A running venue listens on ``<data_dir>/control.sock`` (mode 0600). The ``venue`` command
(and anything else local) sends one JSON object per line and reads one JSON object back::

    -> {"op": "halt", "args": {"symbol": "BTC-USD"}, "reason": "bad feed",
        "operator": "ops", "secret": "..."}
    <- {"ok": true, "result": {...}}          or   {"ok": false, "error": "one line"}

Every request is authenticated against the operator credentials of the data directory
(:mod:`cli.operators`: scrypt hashes in ``operators.json``). A state change never edits
the engine: a handler builds venue commands and calls :meth:`ControlContext.execute`,
which wraps them in one :class:`venue.operator.OperatorCommand` carrying the operator,
the reason and the action, and sends it through the sequencer, so it is journaled,
replayed and audited (the store writes the audit row from the journal).

Registering handlers (other packages do this at import time)::

    from cli.control import ControlContext, ControlError, register

    @register("custody.approve", help="approve a pending withdrawal")
    def approve(ctx: ControlContext, args: dict) -> dict:
        wid = args.get("withdrawal_id") or ""
        if not wid:
            raise ControlError("withdrawal_id is required")        # -> one-line error
        ctx.audit("custody.approve", {"withdrawal_id": wid})        # journaled note, or:
        p = ctx.execute("custody.approve", args, SomeCommand(...))  # journaled commands
        ctx.check(p)                                                # refusals -> ControlError
        return {"approved": wid}                                    # any JSON value

- ``register(name, fn=None, *, help="")``: add a handler (usable as a decorator); a name
  may be registered once (re-registering the same function is allowed).
- A handler gets a :class:`ControlContext` (``venue``, ``operator``, ``reason``,
  ``store``, ``execute``, ``check``, ``query``, ``audit``) and the request's ``args``
  dict; it returns a JSON value or raises :class:`ControlError` with a one-line message.
  Any other exception is logged and answered "internal error" (the venue keeps running).
- ``register_status(name, fn)``: add a section to ``venue status`` (``fn(venue)`` returns
  a JSON dict; e.g. the FIX acceptor's connected sessions).

This module does not know what the actions mean (``cli/handlers.py`` holds the venue's
own) and does not keep operator secrets (only their hashes, in ``cli.operators``).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from cli.errors import ControlError
from cli.operators import Credential, OperatorFile, load_client_credential
from venue.errors import InvalidValue
from venue.events import CancelRejected, CommandRejected, MassCancelReport
from venue.operator import operator_command
from venue.risk import KillSwitchReport
from venue.sequencer import Processed, VenueUnavailable

log = logging.getLogger("venue.control")

SOCKET_NAME = "control.sock"
MAX_REQUEST = 1 << 20  # bytes of one request line
FAILED_AUTH_DELAY = 0.5  # seconds, slows guessing


Handler = Callable[["ControlContext", dict], Any]


@dataclass
class Registration:
    name: str
    fn: Handler
    help: str = ""


HANDLERS: dict[str, Registration] = {}
STATUS: dict[str, Callable[[Any], dict]] = {}


def register(name: str, fn: Handler | None = None, *, help: str = "") -> Any:
    """Register ``fn`` as the handler of control op ``name`` (or decorate)."""

    def add(f: Handler) -> Handler:
        old = HANDLERS.get(name)
        if old is not None and old.fn is not f:
            raise ValueError(f"control op {name!r} is already registered")
        HANDLERS[name] = Registration(name, f, help or (f.__doc__ or "").strip().split("\n")[0])
        return f

    return add(fn) if fn is not None else add


def register_status(name: str, fn: Callable[[Any], dict]) -> None:
    """Add a section ``name`` to ``venue status``: ``fn(venue) -> dict``."""
    STATUS[name] = fn


@dataclass
class ControlContext:
    """What a handler may use. ``store`` is the venue's SQL store (None if it runs
    without one); ``server`` the endpoint (rates and status)."""

    venue: Any
    operator: str
    reason: str
    request_id: str
    store: Any = None
    server: Any = None
    extra: dict = field(default_factory=dict)

    def execute(self, action: str, args: dict, *cmds: Any, timeout: float = 30.0) -> Processed:
        """Journal ``cmds`` as one audited operator action and wait until durable."""
        try:
            wrapped = operator_command(self.operator, self.reason, action, _plain(args), list(cmds), self.request_id)
            return self.venue.execute(wrapped, timeout=timeout)
        except InvalidValue as e:
            raise ControlError(str(e)) from None
        except VenueUnavailable:
            raise ControlError("the venue is stopping and takes no more commands") from None
        except TimeoutError:
            raise ControlError("the venue did not confirm the command in time") from None

    def audit(self, action: str, args: dict) -> Processed:
        """Journal an audit note: an operator action whose effect is outside the engine."""
        return self.execute(action, args)

    def query(self, fn: Callable[[Any], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(engine)`` on the sequencer thread (reads only)."""
        try:
            return self.venue.query(fn, timeout)
        except VenueUnavailable:
            raise ControlError("the venue is stopping") from None
        except TimeoutError:
            raise ControlError("the venue did not answer in time") from None

    @staticmethod
    def check(p: Processed) -> list[Any]:
        """The events of ``p``; raises ControlError with the engine's text if it refused."""
        for ev in p.events:
            if isinstance(ev, (CommandRejected, CancelRejected)):
                raise ControlError(ev.text)
            if isinstance(ev, (MassCancelReport, KillSwitchReport)) and ev.code:
                raise ControlError(ev.text)
        return p.events


def _plain(args: dict) -> dict:
    """``args`` as plain JSON values (what the journal may hold)."""
    return json.loads(json.dumps(args, default=str))


class RateMeter:
    """Commands per second over the last few seconds, sampled once a second."""

    def __init__(self, read: Callable[[], int], window: int = 10) -> None:
        self.read = read
        self.window = window
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def sample(self) -> None:
        with self._lock:
            self.samples.append((time.monotonic(), self.read()))
            del self.samples[:-self.window - 1]

    def rate(self) -> float:
        with self._lock:
            if len(self.samples) < 2:
                return 0.0
            (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


class ControlServer:
    """The endpoint of one running venue. ``start()`` binds the socket (refusing if
    another venue already serves this data directory); ``stop()`` removes it."""

    def __init__(self, venue: Any, data_dir: str, store: Any = None,
                 handlers: dict[str, Registration] | None = None) -> None:
        self.venue = venue
        self.data_dir = os.path.abspath(data_dir)
        self.path = os.path.join(self.data_dir, SOCKET_NAME)
        self.store = store
        self.handlers = HANDLERS if handlers is None else handlers
        self.operators = OperatorFile(self.data_dir)
        self.started = time.time()
        self.requests = 0
        self.rates = RateMeter(lambda: venue.sequencer.commands if venue.sequencer else 0)
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        import cli.handlers  # noqa: F401  (registers the venue's own handlers)

        if os.path.exists(self.path):
            if _alive(self.path):
                raise ControlError(f"another venue is already running on {self.data_dir}")
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: nobody else may even connect
        try:
            s.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        s.listen(16)
        s.settimeout(0.5)
        self._sock = s
        for target, name in ((self._accept_loop, "venue-control"), (self._sample_loop, "venue-rates")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # -- threads ---------------------------------------------------------------------
    def _sample_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.rates.sample()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="venue-control-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(300)
            f = conn.makefile("rwb")
            try:
                while True:
                    line = f.readline(MAX_REQUEST + 1)
                    if not line:
                        return
                    if len(line) > MAX_REQUEST:
                        f.write(_reply(False, error="request too large"))
                        f.flush()
                        return
                    f.write(self.handle_line(line))
                    f.flush()
            except (OSError, ValueError):
                return

    # -- requests --------------------------------------------------------------------
    def handle_line(self, line: bytes) -> bytes:
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            return _reply(False, error="malformed request (one JSON object per line)")
        op = req.get("op")
        args = req.get("args") or {}
        if not isinstance(op, str) or not isinstance(args, dict):
            return _reply(False, error="a request needs an op name and an args object")
        cred = Credential(str(req.get("operator") or ""), str(req.get("secret") or ""))
        if not self.operators.verify(cred):
            log.warning("control: refused credentials for operator %r (op %s)", cred.name, op)
            time.sleep(FAILED_AUTH_DELAY)
            return _reply(False, error="the venue refused the operator's credentials", code="auth")
        reg = self.handlers.get(op)
        if reg is None:
            return _reply(False, error=f"unknown operation {op!r}")
        self.requests += 1
        ctx = ControlContext(self.venue, cred.name, str(req.get("reason") or ""),
                             str(req.get("id") or uuid.uuid4().hex), self.store, self)
        try:
            result = reg.fn(ctx, args)
        except (ControlError, InvalidValue) as e:
            return _reply(False, error=_one_line(str(e)))
        except VenueUnavailable:
            return _reply(False, error="the venue is stopping")
        except Exception:  # a handler bug must not take the venue down
            log.exception("control op %s failed", op)
            return _reply(False, error=f"internal error in {op} (see the venue's log)")
        return _reply(True, result=result)


def _one_line(s: str) -> str:
    return " ".join(s.split()) or "failed"


def _reply(ok: bool, **kw: Any) -> bytes:
    return (json.dumps({"ok": ok, **kw}, default=str) + "\n").encode()


def _alive(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class ControlClient:
    """Talks to the venue of ``data_dir``. Credentials: ``credential`` or, by default,
    VENUE_OPERATOR / VENUE_OPERATOR_SECRET, else ``<data_dir>/operator.secret``."""

    def __init__(self, data_dir: str, credential: Credential | None = None, timeout: float = 120.0) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.path = os.path.join(self.data_dir, SOCKET_NAME)
        self.credential = credential
        self.timeout = timeout

    def call(self, op: str, args: dict | None = None, reason: str = "") -> Any:
        cred = self.credential or load_client_credential(self.data_dir)
        if not os.path.exists(self.path):
            raise ControlError(f"no venue is running on {self.data_dir} (no control socket)")
        req = {"op": op, "args": args or {}, "reason": reason, "operator": cred.name, "secret": cred.secret,
               "id": uuid.uuid4().hex}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            try:
                s.connect(self.path)
            except PermissionError:
                raise ControlError(f"not allowed to open the control socket of {self.data_dir}") from None
            except OSError:
                raise ControlError(f"no venue is running on {self.data_dir} (the control socket does not answer)") from None
            f = s.makefile("rwb")
            f.write((json.dumps(req) + "\n").encode())
            f.flush()
            line = f.readline()
        except socket.timeout:
            raise ControlError("the venue did not answer in time") from None
        except OSError as e:
            raise ControlError(f"the control connection failed: {e.strerror or e}") from None
        finally:
            s.close()
        if not line:
            raise ControlError("the venue closed the control connection without answering")
        rep = json.loads(line)
        if not rep.get("ok"):
            raise ControlError(rep.get("error") or "failed")
        return rep.get("result")
