"""Market-data sessions served from a process of their own.

The venue's process keeps the engine, the journal, the order-entry and drop-copy
sessions, the logon gateways (every Logon is still checked there, credentials never
leave it) and its market-data hub. The market-data FIX sessions (their QuickFIX acceptor,
:class:`sessions.marketdata_session.MarketDataSessions`, the hub they read and its
dispatcher) run in a child process, which follows the venue's hub
(:meth:`marketdata.MarketData.follow`): the state once, then the book ops of every durable
batch, pickled over a Unix socket. The gateway on the market-data port routes those
sessions' bytes to the child's acceptor on loopback as it routes the others to the
venue's.

Why: with the sessions in the venue's process, 100 subscribed sessions cost the engine
about a quarter of its throughput on two cores, most of it not the fan-out's own work but
the engine's thread waiting for the interpreter lock and for a CPU behind the dispatcher
(bench/market_data.py, the note on issue 5). In a process of its own the fan-out has its
own interpreter lock; what the engine's thread pays is handing each batch's ops on.

What crosses the socket, each message one pickle with a length in front:

- venue -> child: ``("init", {...})`` (the QuickFIX settings, the market-data session
  records, the hub's state, the assets, the sessions' options), then lists of ops and
  :class:`marketdata.hub.HubState` (a reload) in the order the hub made them, and requests
  ``(name, id, *args)``: ``verified`` (a Logon the gateway admitted, before it forwards
  it), ``session`` (a record created or changed), ``logout``, ``backlog`` (bytes the
  gateway holds per session), ``assets``, ``status``, ``stop``.
- child -> venue: ``("reply", id, value)`` and ``("resync",)`` (the child's books stopped
  fitting the ops: send a new state).

The engine's thread only puts each list of ops in a queue; a writer thread pickles and
sends. If the child falls more than ``MAX_QUEUED`` batches behind, the queue is dropped
and the child gets a new state once it has caught up (its subscribers a new W), so a
stuck child never holds memory or the engine. If the child dies, the venue logs it and
starts another; its sessions reconnect through the gateway.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable

log = logging.getLogger("sessions.md_process")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_QUEUED = 10_000  # batches of ops waiting for the child before it is resynced instead
BACKLOG_EVERY = 0.02  # seconds between two reports of the gateway's backlogs to the child
RESTART_DELAY = 1.0  # seconds before another try when a child would not start
_LEN = struct.Struct("!Q")


class Channel:
    """Length-prefixed pickles over a stream socket; ``send`` from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._file = sock.makefile("rb", buffering=1 << 20)

    def send(self, obj: Any) -> None:
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self.sock.sendall(_LEN.pack(len(data)) + data)

    def recv(self) -> Any:
        """The next object; EOFError when the other side has gone."""
        head = self._file.read(_LEN.size)
        if len(head) < _LEN.size:
            raise EOFError("channel closed")
        n = _LEN.unpack(head)[0]
        data = self._file.read(n)
        if len(data) < n:
            raise EOFError("channel closed")
        return pickle.loads(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


# ====================================================================== the venue's side
class MarketDataProcess:
    """The child process and the venue's end of its socket (see the module docstring).

    ``hub``: the venue's :class:`marketdata.MarketData`, attached and loaded. ``assets``:
    a callable returning the venue's assets by code (for SecurityList). ``on_routes``:
    called with ``{comp_id: port}`` whenever the child's acceptors change (start, a new
    session, a restart).

    One writer thread owns the socket's sending side: it starts the child, sends the
    state, then what the queue holds in order (ops and requests), and starts over (new
    state) when the child asks, falls behind or dies."""

    def __init__(self, cfg: Any, sessions: list[Any], hub: Any, assets: Callable[[], dict[str, Any]],
                 options: dict[str, Any], on_routes: Callable[[dict[str, int]], None]) -> None:
        self.cfg = cfg
        self.sessions = {r.comp_id: r for r in sessions}
        self.hub = hub
        self.assets = assets
        self.options = dict(options)
        self.on_routes = on_routes
        self.proc: subprocess.Popen[bytes] | None = None
        self.chan: Channel | None = None
        self.restarts = 0  # children started after the first
        self.resyncs = 0  # states sent after the first (the child asked, or fell MAX_QUEUED behind)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._behind = False  # the queue is full: drop ops until the writer sends a new state
        self._ids = itertools.count(1)
        self._replies: dict[int, list[Any]] = {}
        self._reply_cv = threading.Condition()
        self._stopping = False
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._backlog: Callable[[str], int] | None = None
        self._hub_settings: dict[str, Any] = {}  # configure()d: for a child started later too
        self._writer = threading.Thread(target=self._write, name="md-process-writer", daemon=True)

    # -- life ----------------------------------------------------------------------------
    def start(self, backlog: Callable[[str], int] | None = None, timeout: float = 60.0) -> None:
        """Start the child and wait until its acceptor listens (``on_routes`` called)."""
        self._backlog = backlog
        self._queue.put(_SPAWN)
        self._writer.start()
        if not self._started.wait(timeout) or self._start_error is not None:
            self._stopping = True
            self._queue.put(None)
            raise RuntimeError(f"the market-data process did not start: {self._start_error!r}")
        threading.Thread(target=self._report_backlogs, name="md-process-backlog", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        """Log the child's sessions out, stop its acceptor and let it exit."""
        self._stopping = True  # its exit is no crash
        if self.chan is not None:
            try:
                self.call("stop", timeout, timeout=timeout + 5)
            except Exception as e:
                log.warning("market-data process did not stop cleanly: %s", e)
        self.hub.unfollow(self._on_ops)
        self._queue.put(None)
        self._writer.join(timeout)
        chan, proc = self.chan, self.proc
        self.chan = None
        if chan is not None:
            chan.close()
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- the publishing thread -----------------------------------------------------------
    def _on_ops(self, ops: Any) -> None:
        """The hub's follower (its lock held): queue, never wait."""
        if self._behind:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            self._behind = True
            self._queue.put(_RESYNC)
            return
        self._queue.put(ops)

    # -- the writer thread ---------------------------------------------------------------
    def _write(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if item is _SPAWN or item is _RESYNC:
                    self.hub.unfollow(self._on_ops)  # no more ops until the new state
                    self._drain()
                    if item is _SPAWN:
                        self._spawn()
                    else:
                        self._resend_state()
                elif self.chan is not None:
                    self.chan.send(item)
            except OSError:
                pass  # the child has gone: the reader starts another
            except Exception as e:
                log.exception("market-data process: %s failed", "starting" if item is _SPAWN else "sending")
                if not self._started.is_set():
                    self._start_error = e
                    self._started.set()
                    return
                if item is _SPAWN and not self._stopping:  # try again in a while
                    threading.Timer(RESTART_DELAY, self._queue.put, args=(_SPAWN,)).start()

    def _drain(self) -> None:
        """Drop the queued ops (the next state holds them); keep requests and a stop."""
        kept = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is None or type(item) is tuple:
                    kept.append(item)
        for item in kept:
            self._queue.put(item)

    def _follow(self) -> Any:
        self._behind = False
        end = time.monotonic() + 30
        while True:
            state = self.hub.follow(self._on_ops)  # from here on the hub queues ops again
            if state is not None:
                return state
            if time.monotonic() > end:
                raise RuntimeError("the market-data hub did not load its books")
            time.sleep(0.01)  # the hub is (re)loading

    def _spawn(self) -> None:
        old = self.proc
        if old is not None:
            with contextlib.suppress(Exception):
                old.kill()
                old.wait(5)
            self.restarts += 1
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen([sys.executable, "-m", "sessions.md_process", str(child.fileno())],
                                pass_fds=(child.fileno(),), env=env, cwd=ROOT)
        child.close()
        chan = Channel(parent)
        try:
            chan.send(("init", {"cfg": _cfg_fields(self.cfg), "sessions": list(self.sessions.values()),
                                "state": self._follow(), "assets": self.assets(), "options": self.options,
                                "hub": dict({"max_pending": self.hub.max_pending, "tape_size": self.hub.tape_size},
                                            **self._hub_settings),
                                "log_level": logging.getLogger().getEffectiveLevel()}))
            first = chan.recv()
            if first[0] != "ready":
                raise RuntimeError(f"unexpected first message {first[0]!r}")
        except BaseException:
            self.hub.unfollow(self._on_ops)
            proc.kill()
            proc.wait()
            chan.close()
            raise
        self.proc, self.chan = proc, chan
        threading.Thread(target=self._read, args=(chan, proc), name="md-process-reader", daemon=True).start()
        self.on_routes(first[1])
        self._started.set()

    def _resend_state(self) -> None:
        state = self._follow()
        self.resyncs += 1
        if self.chan is not None:
            self.chan.send(state)

    # -- requests ------------------------------------------------------------------------
    def call(self, name: str, *args: Any, timeout: float = 5.0) -> Any:
        """Ask the child and wait for its answer (any thread; sent at once, ahead of the
        ops still queued for the writer)."""
        rid = next(self._ids)
        with self._reply_cv:
            self._replies[rid] = []
        try:
            self._send((name, rid) + args)
        except BaseException:
            with self._reply_cv:
                del self._replies[rid]
            raise
        end = time.monotonic() + timeout
        with self._reply_cv:
            try:
                while not self._replies[rid]:
                    left = end - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"the market-data process did not answer {name}")
                    self._reply_cv.wait(left)
                return self._replies[rid][0]
            finally:
                del self._replies[rid]

    def tell(self, name: str, *args: Any) -> None:
        """Tell the child without waiting (any thread)."""
        with contextlib.suppress(ConnectionError):
            self._send((name, 0) + args)

    def tell_in_order(self, name: str, *args: Any) -> None:
        """Tell the child after the ops queued so far (any thread, never waits: the
        writer sends it)."""
        self._queue.put((name, 0) + args)

    def _send(self, msg: tuple[Any, ...]) -> None:
        chan = self.chan
        if chan is None:
            raise ConnectionError("the market-data process is not running")
        try:
            chan.send(msg)
        except OSError as e:
            raise ConnectionError(f"the market-data process is not reachable: {e}") from e

    def _read(self, chan: Channel, proc: subprocess.Popen[bytes]) -> None:
        while True:
            try:
                msg = chan.recv()
            except (EOFError, OSError):
                break
            except Exception:
                log.exception("market-data process: a message that does not unpickle")
                break
            if msg[0] == "reply":
                with self._reply_cv:
                    if msg[1] in self._replies:
                        self._replies[msg[1]].append(msg[2])
                        self._reply_cv.notify_all()
            elif msg[0] == "resync":
                log.error("the market-data process lost track of the books: sending it a new state")
                self._queue.put(_RESYNC)
            elif msg[0] == "routes":
                self.on_routes(msg[1])
        if self._stopping or self.chan is not chan:
            return
        log.critical("the market-data process exited (code %s); starting another", proc.poll())
        self.chan = None
        chan.close()
        self._queue.put(_SPAWN)

    # -- the backlog reporter -----------------------------------------------------------
    def _report_backlogs(self) -> None:
        """The gateway's backlog of each market-data session, for the child's slow-consumer
        check (it reads them at every delivery; they are at most BACKLOG_EVERY old)."""
        last: dict[str, int] = {}
        while not self._stopping:
            time.sleep(BACKLOG_EVERY)
            if self._backlog is None:
                continue
            now = {c: self._backlog(c) for c in list(self.sessions)}
            changed = {c: n for c, n in now.items() if last.get(c, 0) != n}
            if changed:
                self.tell("backlog", changed)
                last = now

    # -- what the server asks ------------------------------------------------------------
    def verified(self, comp_id: str, fields: dict[int, str]) -> None:
        """Before the gateway forwards an admitted Logon (see VenueApplication.note_verified)."""
        self.call("verified", comp_id, fields)

    def session(self, rec: Any) -> None:
        """A market-data session created or changed (a new one gets its acceptor)."""
        self.sessions[rec.comp_id] = rec
        self.call("session", rec, timeout=30)

    def record(self, rec: Any) -> None:
        """A known session's record changed (any thread, never waits)."""
        self.sessions[rec.comp_id] = rec
        self.tell_in_order("session", rec)

    def logout(self, comp_id: str, reason: str) -> None:
        """Log a session out (any thread, never waits: the publishing thread calls it)."""
        self.tell_in_order("logout", comp_id, reason)

    def configure(self, **settings: Any) -> None:
        """Change settings of the child's MarketDataSessions (max_backlog, max_entries,
        max_subscriptions, conflate) or hub (max_pending) while it runs; they also hold
        for a child started later."""
        bad = self.call("configure", settings)
        if bad:
            raise ValueError(f"no such market-data setting: {', '.join(bad)}")
        for k, v in settings.items():
            (self._hub_settings if k == "max_pending" else self.options)[k] = v

    def status(self) -> dict[str, Any]:
        try:
            st: dict[str, Any] = self.call("status")
        except (TimeoutError, ConnectionError):
            return {"sessions": {}, "messages_in": 0, "messages_out": 0,
                    "market_data": {"error": "the market-data process does not answer"}}
        st["market_data"].update(restarts=self.restarts, resyncs=self.resyncs)
        return st

    @property
    def stalls(self) -> int:
        return int(self.status()["market_data"].get("stalls", 0))


_SPAWN = object()  # start the child (first, or after it died)
_RESYNC = object()  # send the child a new state (it asked, or fell MAX_QUEUED behind)


def _cfg_fields(cfg: Any) -> dict[str, Any]:
    return {"data_dir": cfg.data_dir, "settings_template": cfg.settings_template, "dictionary": cfg.dictionary,
            "file_log": cfg.file_log}


# ====================================================================== the child process
class _Registry:
    """What the application reads of the access registry: the session records."""

    def __init__(self, sessions: dict[str, Any]) -> None:
        self.sessions = sessions
        self.version = 0


class _NoVenue:
    """What the application reads of a venue in a process without one."""

    engine = None

    @staticmethod
    def batch() -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _application(registry: _Registry, hub: Any, assets: dict[str, Any]) -> Any:
    from sessions.application import VenueApplication

    class MarketDataApplication(VenueApplication):
        """VenueApplication with instruments from the hub and assets from the venue."""

        def instrument(self, symbol: str) -> Any:
            try:
                return hub.instrument(symbol)
            except Exception:
                return None

        def asset(self, code: str) -> Any:
            return assets[code]

    return MarketDataApplication(_NoVenue(), registry)  # type: ignore[arg-type]


def main(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the venue stops it (a Ctrl-C reaches the whole group)
    chan = Channel(socket.socket(fileno=fd))
    kind, init = chan.recv()
    assert kind == "init"
    logging.basicConfig(level=init["log_level"], format="%(asctime)s md-process %(levelname)s %(name)s: %(message)s")
    from marketdata import MarketData
    from sessions.marketdata_session import MarketDataSessions
    from sessions.server import FixConfig, _Acceptor, check_quickfix

    check_quickfix()
    cfg = FixConfig(**init["cfg"])
    registry = _Registry({r.comp_id: r for r in init["sessions"]})
    hub = MarketData(**init["hub"])
    hub.load_state(init["state"])
    assets: dict[str, Any] = dict(init["assets"])
    app = _application(registry, hub, assets)
    backlogs: dict[str, int] = {}
    sessions = MarketDataSessions(app, hub, cfg.dictionary, lambda c: backlogs.get(c, 0), **init["options"])
    sessions.start()
    app.inbox.start()
    acceptors: list[Any] = []
    routes: dict[str, int] = {}

    def add(recs: list[Any], name: str) -> None:
        acc = _Acceptor(app, cfg, recs, name)
        acc.start()
        acceptors.append(acc)
        routes.update({r.comp_id: acc.port for r in recs})

    if registry.sessions:
        add(list(registry.sessions.values()), "md")
    chan.send(("ready", dict(routes)))

    def reply(rid: int, value: Any) -> None:
        if rid:
            chan.send(("reply", rid, value))

    try:
        while True:
            msg = chan.recv()
            if type(msg) is list:
                try:
                    hub.apply_ops(msg)
                except Exception:
                    chan.send(("resync",))
                continue
            if type(msg) is not tuple:
                hub.load_state(msg)  # a HubState: the venue's hub reloaded, or this one was behind
                continue
            name, rid, *args = msg
            if name == "verified":
                app.note_verified(*args)
                reply(rid, True)
            elif name == "backlog":
                backlogs.update(args[0])
            elif name == "logout":
                ctx = app.ctx.get(args[0])
                if ctx is not None and ctx.logged_on:
                    app.log_out(ctx, args[1])
            elif name == "session":
                rec = args[0]
                known = rec.comp_id in registry.sessions
                registry.sessions[rec.comp_id] = rec
                registry.version += 1
                if not known:
                    try:
                        add([rec], rec.comp_id)
                    except Exception:
                        log.exception("could not add FIX session %s", rec.comp_id)
                    chan.send(("routes", dict(routes)))
                reply(rid, True)
            elif name == "assets":
                assets.update(args[0])
            elif name == "configure":
                bad = [k for k in args[0] if not hasattr(hub if k == "max_pending" else sessions, k)]
                if not bad:
                    for k, v in args[0].items():
                        setattr(hub if k == "max_pending" else sessions, k, v)
                reply(rid, bad)
            elif name == "status":
                reply(rid, {"sessions": {c.comp_id: {"role": c.rec.role, "logged_on": c.logged_on,
                                                     "throttled": c.refused} for c in app.ctx.values()},
                            "messages_in": app.messages_in, "messages_out": sessions.sent,
                            "market_data": dict(sessions.status(), hub_subscriptions=hub.subscriptions())})
            elif name == "stop":
                _stop(app, sessions, hub, acceptors, float(args[0]))
                reply(rid, True)
                return
    except EOFError:  # the venue has gone: nothing to serve
        _stop(app, sessions, hub, acceptors, 1.0)


def _stop(app: Any, sessions: Any, hub: Any, acceptors: list[Any], timeout: float) -> None:
    app.log_out_all("venue shutting down", timeout)
    sessions.stop()
    for acc in acceptors:
        try:
            acc.stop()
        except Exception:
            log.exception("acceptor stop")
    acceptors.clear()
    app.inbox.stop()
    hub.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
