"""The venue's FIX front: QuickFIX acceptors behind logon gateways.

    server = FixServer(venue, FixConfig(data_dir=...))
    server.start()   # gateways listen on the public ports; acceptors on loopback
    server.stop()

Each public port (order entry, drop copy, market data) has a :class:`LogonGateway` that
admits only the session roles of that port. Behind them one QuickFIX ``SocketAcceptor``
serves every session known at start; a session created while the venue runs gets its
own small acceptor (QuickFIX cannot add sessions to a running acceptor), and the
gateways route each CompID to its acceptor. The market-data sessions' acceptor is in a
process of their own (:mod:`sessions.md_process`; ``FixConfig.market_data_process``),
their gateway here.
"""
from __future__ import annotations

import gc
import logging
import os
import socket
import ssl
import string
import threading
from dataclasses import dataclass, field
from typing import Any

import quickfix as fix

from sessions.application import VenueApplication
from sessions.auth import LogonChecker, LogonRules
from sessions.dropcopy import DropCopy
from sessions.gateway import LogonGateway
from sessions.marketdata_session import MarketDataSessions
from sessions.md_process import MarketDataProcess
from sessions.risk_session import RiskRequests
from sessions.trade_capture import TradeCapture
from venue.access import AccessRegistry, CreateSession, SessionRecord, SetSessionEnabled, SetSessionKey, UpdateSession
from venue.commands import DefineAsset
from venue.core import Venue
from venue.events import AdminApplied
from venue.sequencer import Processed

log = logging.getLogger("sessions.server")

FIX_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fix_config")

PORT_ROLES = {
    "order_entry": ("order_entry", "risk"),
    "drop_copy": ("drop_copy",),
    "market_data": ("market_data",),
}


@dataclass
class FixConfig:
    data_dir: str
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: {"order_entry": 9878, "drop_copy": 9879, "market_data": 9880})
    settings_template: str = os.path.join(FIX_CONFIG_DIR, "acceptor.cfg")
    dictionary: str = os.path.join(FIX_CONFIG_DIR, "FIX44.xml")
    file_log: bool = True
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the gateways speak TLS
    tls_key: str = ""
    tls_client_ca: str = ""  # if set, clients must present a certificate signed by it
    # Serve the market-data sessions from a process of their own (sessions/md_process.py);
    # False: in the venue's process. Either way the gateway on the market-data port
    # checks their Logons here.
    market_data_process: bool = True
    # MarketDataSessions' settings (max_backlog, max_subscriptions, max_entries, conflate)
    market_data_options: dict[str, Any] = field(default_factory=dict)


_SESSION_COMMANDS = (CreateSession, SetSessionEnabled, SetSessionKey, UpdateSession, DefineAsset)

QUICKFIX_REQUIRED = "1.16.0+venue.8"


def check_quickfix() -> None:
    """Refuse to run on a QuickFIX without the venue's fixes (fix_config/build_quickfix.py):
    unpatched 1.16.0 connection threads read sockets they already closed, whose numbers
    the process may have given to other connections, and its acceptors listen on every
    address (the patch adds SocketAcceptAddress, which fix_config/acceptor.cfg sets to
    loopback so that only the logon gateway reaches the acceptor), and it calls the
    application back (taking the interpreter lock) for every message it sends (the patch
    adds ToAppCallback/ToAdminCallback, which acceptor.cfg turns off), and it calls
    fromApp on each connection's thread, which must take the interpreter lock for every
    message (the patch queues those callbacks for the application's inbox thread)."""
    import importlib.metadata

    try:
        have = importlib.metadata.version("quickfix")
    except importlib.metadata.PackageNotFoundError:
        have = "none"
    if have != QUICKFIX_REQUIRED:
        raise RuntimeError(f"QuickFIX {QUICKFIX_REQUIRED} is required, found {have}: "
                           f"run `python fix_config/build_quickfix.py` (or `make install`)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Acceptor:
    """One QuickFIX acceptor on a loopback port, and the QuickFIX objects it needs alive."""

    def __init__(self, app: VenueApplication, cfg: FixConfig, sessions: list[SessionRecord], name: str) -> None:
        self.port = _free_port()
        fix_dir = os.path.join(cfg.data_dir, "fix")
        os.makedirs(os.path.join(fix_dir, "store"), exist_ok=True)
        os.makedirs(os.path.join(fix_dir, "log"), exist_ok=True)
        with open(cfg.settings_template) as f:
            text = string.Template(f.read()).substitute(port=self.port, dictionary=cfg.dictionary,
                                                        data_dir=cfg.data_dir)
        for rec in sessions:
            text += (f"\n[SESSION]\nBeginString=FIX.4.4\nSenderCompID={rec.target_comp_id}\n"
                     f"TargetCompID={rec.comp_id}\n")
            if rec.role == "market_data":  # a gap is healed by a snapshot, not a resend: keep no copies
                text += "PersistMessages=N\n"
        self.path = os.path.join(fix_dir, f"acceptor-{name}.cfg")
        with open(self.path, "w") as f:
            f.write(text)
        self.settings = fix.SessionSettings(self.path)
        self.store = fix.FileStoreFactory(self.settings)
        self.logs = fix.FileLogFactory(self.settings) if cfg.file_log else None
        # ThreadedSocketAcceptor, not SocketAcceptor: SocketAcceptor::stop() closes its
        # SocketServer from the caller's thread while the acceptor thread closes and deletes
        # the same server (QuickFIX 1.16), a use-after-free we saw as segfaults and hangs.
        # The threaded acceptor hands its threads over under a mutex before closing; its
        # connection threads are safe with the venue's patch (see check_quickfix).
        if self.logs is not None:
            self.acceptor = fix.ThreadedSocketAcceptor(app, self.store, self.settings, self.logs)
        else:
            self.acceptor = fix.ThreadedSocketAcceptor(app, self.store, self.settings)
        self.comp_ids = {rec.comp_id for rec in sessions}

    def start(self) -> None:
        self.acceptor.start()

    def stop(self) -> None:
        """Stop and destroy: QuickFIX registers sessions process-wide by SessionID and only
        the acceptor's destructor unregisters them; a stopped-but-alive acceptor would keep
        a dead session that a later acceptor's sendToTarget would reach. Sessions must be
        logged out first (FixServer.stop does it): the threaded acceptor's stop spins while
        any is logged on."""
        self.acceptor.stop(True)
        del self.acceptor, self.logs, self.store, self.settings
        gc.collect()


class FixServer:
    """``store``: the venue's SQL store (TradeCaptureReportRequest on drop-copy sessions
    reads it; without it they are refused). ``market_data``: the venue's
    :class:`marketdata.MarketData`, attached before the venue started; without it the
    server attaches one of its own to the running venue."""

    def __init__(self, venue: Venue, cfg: FixConfig, store: Any = None, market_data: Any = None) -> None:
        self.venue = venue
        self.cfg = cfg
        assert venue.engine is not None, "open() the venue before building its FIX server"
        self.registry: AccessRegistry = venue.engine.extensions["access"]
        self.app = VenueApplication(venue, self.registry)
        self.store = store
        self.market_data = market_data
        self._own_market_data = market_data is None
        self.drop_copy = DropCopy(self.app, self._gateway_backlog("drop_copy"), self._gateway_disconnect("drop_copy"))
        self.trade_capture = TradeCapture(self.app, venue, store, cfg.dictionary, self._gateway_backlog("drop_copy"))
        self.risk_requests = RiskRequests(self.app, cfg.dictionary)
        self.md_sessions: MarketDataSessions | MarketDataProcess | None = None
        self.md_process: MarketDataProcess | None = None
        self.checker = LogonChecker(self.registry)
        self.logon_rules = LogonRules(cfg.dictionary)
        self.acceptors: list[_Acceptor] = []
        self.gateways: dict[str, LogonGateway] = {}
        self._route: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ssl = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not (self.cfg.tls_cert and self.cfg.tls_key):
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        if self.cfg.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.cfg.tls_client_ca)
        return ctx

    def _gateway_backlog(self, role: str) -> Any:
        return lambda comp_id: self.gateways[role].backlog(comp_id) if role in self.gateways else 0

    def _gateway_disconnect(self, role: str) -> Any:
        return lambda comp_id: self.gateways[role].disconnect(comp_id) if role in self.gateways else None

    def start(self) -> None:
        check_quickfix()
        if self.market_data is None:
            from marketdata import MarketData

            self.market_data = MarketData()
            self.market_data.attach(self.venue)
        sessions = list(self.registry.sessions.values())
        if self.cfg.market_data_process and "market_data" in self.cfg.ports:
            engine = self.venue.engine
            assert engine is not None  # the venue is open before its FIX server starts
            self.md_process = MarketDataProcess(self.cfg, [r for r in sessions if r.role == "market_data"],
                                                self.market_data, lambda: dict(engine.ledger.assets),
                                                self.cfg.market_data_options, self._add_routes)
            self.md_process.start(self._gateway_backlog("market_data"))
            self.md_sessions = self.md_process
            sessions = [r for r in sessions if r.role != "market_data"]
        else:
            self.md_sessions = MarketDataSessions(self.app, self.market_data, self.cfg.dictionary,
                                                  self._gateway_backlog("market_data"),
                                                  **self.cfg.market_data_options)
            self.md_sessions.start()
        self.app.inbox.start()  # before any acceptor: every callback goes through it
        if sessions:
            self._add_acceptor(sessions, "main")
        self.app.outbox.start()
        # First of the listeners: a client's ExecutionReport does not wait for the market-data
        # hub to apply the batch to its books (the trader hears before the public feed does).
        self.venue.subscribe(self.app.outbox.on_batch, first=True)
        self.venue.subscribe(self._watch_registry)
        for role, port in self.cfg.ports.items():
            gw = LogonGateway(role, self.cfg.host, port, self.checker, self._backend, PORT_ROLES[role],
                              self._note_verified, self._ssl, logon_rules=self.logon_rules.problem)
            gw.start()
            self.gateways[role] = gw

    def _add_acceptor(self, sessions: list[SessionRecord], name: str) -> None:
        acc = _Acceptor(self.app, self.cfg, sessions, name)
        acc.start()
        with self._lock:
            self.acceptors.append(acc)
            for rec in sessions:
                self._route[rec.comp_id] = acc.port

    def _add_routes(self, routes: dict[str, int]) -> None:
        with self._lock:
            self._route.update(routes)

    def _note_verified(self, comp_id: str, fields: dict[int, str]) -> None:
        """The gateway admitted a Logon: tell the application that serves the session."""
        if self.md_process is not None and comp_id in self.md_process.sessions:
            self.md_process.verified(comp_id, fields)
        else:
            self.app.note_verified(comp_id, fields)

    def _backend(self, comp_id: str) -> tuple[str, int] | None:
        with self._lock:
            port = self._route.get(comp_id)
        return ("127.0.0.1", port) if port else None

    def _watch_registry(self, batch: list[Processed]) -> None:
        """Sessions created or disabled while running (publishing thread: hand work off);
        assets defined, for the market-data process's SecurityList."""
        for p in batch:
            if type(p.cmd) not in _SESSION_COMMANDS:  # most commands are orders: skip their events
                continue
            if type(p.cmd) is DefineAsset:
                if self.md_process is not None and self.venue.engine is not None:
                    self.md_process.tell_in_order("assets", dict(self.venue.engine.ledger.assets))
                continue
            for ev in p.events:
                if type(ev) is AdminApplied:
                    cmd = ev.cmd
                    if (type(cmd) is not CreateSession and self.md_process is not None
                            and cmd.comp_id in self.md_process.sessions):
                        # the child reads its own copy of the record (the rate, at the next Logon)
                        rec = self.registry.sessions.get(cmd.comp_id)
                        if rec is not None:
                            self.md_process.record(rec)
                    if type(cmd) is CreateSession:
                        threading.Thread(target=self._new_session, args=(cmd.comp_id,), daemon=True).start()
                    elif type(cmd) is SetSessionEnabled and not cmd.enabled:
                        # the gateway refuses its logons from now on; enabled again, the
                        # session's next admitted Logon enables it in QuickFIX too
                        if self.md_process is not None and cmd.comp_id in self.md_process.sessions:
                            self.md_process.logout(cmd.comp_id, "session disabled")
                            continue
                        ctx = self.app.ctx.get(cmd.comp_id)
                        if ctx is not None and ctx.logged_on:
                            self.app.log_out(ctx, "session disabled")

    def _new_session(self, comp_id: str) -> None:
        rec = self.registry.sessions.get(comp_id)
        if rec is None or comp_id in self._route:
            return
        try:
            if self.md_process is not None and rec.role == "market_data":
                self.md_process.session(rec)  # its acceptor is the child's; the routes follow
            else:
                self._add_acceptor([rec], comp_id)
            log.info("FIX session %s added", comp_id)
        except Exception:
            log.exception("could not add FIX session %s", comp_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Log every session out (a Logout, not a dropped line), close the gateways, then
        stop and destroy the acceptors."""
        if self.md_process is not None:
            self.md_process.stop(timeout)  # while the gateway still relays its Logouts
        self.app.log_out_all("venue shutting down", timeout)
        for gw in self.gateways.values():
            gw.stop()
        if isinstance(self.md_sessions, MarketDataSessions):
            self.md_sessions.stop()
        self.trade_capture.stop()
        self.app.wait_logged_off(timeout)
        for acc in self.acceptors:
            try:
                acc.stop()
            except Exception:
                log.exception("acceptor stop")
        self.acceptors.clear()
        self.app.inbox.stop()
        self.app.outbox.stop()
        if self._own_market_data and self.market_data is not None:
            self.market_data.close()

    def ports(self) -> dict[str, int]:
        return {role: gw.port for role, gw in self.gateways.items()}

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "sessions": {c.comp_id: {"role": c.rec.role, "logged_on": c.logged_on, "throttled": c.refused}
                         for c in self.app.ctx.values()},
            "messages_in": self.app.messages_in,
            "messages_out": self.app.outbox.sent,
            "ports": self.ports(),
            "drop_copies": self.drop_copy.copies,
            "market_data": {},
        }
        if self.md_process is not None:
            child = self.md_process.status()
            st["sessions"].update(child["sessions"])
            st["messages_in"] += child["messages_in"]
            st["messages_out"] += child["messages_out"]
            st["market_data"] = child["market_data"]
        elif self.md_sessions is not None:
            st["market_data"] = self.md_sessions.status()
        return st
