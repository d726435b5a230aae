"""A running venue process: the core, its SQL store and its control endpoint, together.

:func:`start_venue` recovers the core from its data directory, brings the store level
with the journal (catching up after a crash), starts the sequencer, the store's writer
and the control endpoint, and writes the local operator credential if there is none.
``venue run`` then starts whatever was registered with :func:`register_acceptor` (the FIX
acceptor in ``sessions/`` registers itself there); ``venue demo`` does the same on the
demo's defaults. With ``with_market_data`` the venue's :class:`marketdata.MarketData` is
attached before the sequencer starts (replayed trades feed its tape and bars) and kept as
``RunningVenue.market_data``; :func:`start_redis_publisher` fans it out to Redis.

This module does not parse command lines (``cli.main`` does) or know FIX.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from cli.control import ControlServer
from cli.operators import Credential, ensure_local_operator
from venue import commands as C
from venue.core import RecoveryReport, Venue
from venue.operator import operator_command
from venue.store import Store, default_url
from venue.store.catchup import open_venue_with_store
from venue.store.follower import StoreFollower

log = logging.getLogger("venue.runtime")


class Stoppable(Protocol):
    def stop(self) -> None: ...


AcceptorHook = Callable[["RunningVenue", Any], Stoppable | None]
ACCEPTORS: list[AcceptorHook] = []


def register_acceptor(hook: AcceptorHook) -> AcceptorHook:
    """``hook(running, config)`` starts a front end (the FIX acceptor) once the core,
    store and control endpoint run; it returns something with ``stop()``. ``config`` is
    the :class:`cli.config.VenueConfig` (its ``fix`` section holds host and ports)."""
    if hook not in ACCEPTORS:
        ACCEPTORS.append(hook)
    return hook


@dataclass
class RunningVenue:
    venue: Venue
    store: Store | StoreFollower | None
    control: ControlServer
    credential: Credential
    report: RecoveryReport
    front_ends: list[Stoppable] = field(default_factory=list)
    market_data: Any = None  # marketdata.MarketData, when started with_market_data

    def execute_as(self, operator: str, reason: str, action: str, args: dict, cmds: list) -> Any:
        """Journal ``cmds`` as an audited action of the venue itself (configuration)."""
        return self.venue.execute(operator_command(operator, reason, action, args, cmds))

    def start_front_ends(self, config: Any) -> None:
        for hook in ACCEPTORS:
            fe = hook(self, config)
            if fe is not None:
                self.front_ends.append(fe)

    def stop(self) -> None:
        # The endpoint first: no operator command during shutdown, and its threads are gone
        # before QuickFIX stops (QuickFIX's stop() was seen to crash now and then while
        # other Python threads ran).
        self.control.stop()
        for fe in reversed(self.front_ends):
            try:
                fe.stop()
            except Exception:
                log.exception("stopping %r failed", fe)
        self.venue.stop()
        if self.market_data is not None:
            self.market_data.close()
        if self.store is not None:
            self.store.stop()


def start_venue(data_dir: str, db_url: str | None = None, *, with_store: bool = True, fsync: bool = True,
                snapshot_every: int = 200_000, progress: Callable[[int], None] | None = None,
                with_market_data: bool = False, store_process: bool = True) -> RunningVenue:
    """``store_process``: the SQL store follows the journal in its own process
    (:mod:`venue.store.follower`, the default: it costs matching nothing), or runs on a
    thread of this one (``False``)."""
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    cred = ensure_local_operator(data_dir)
    venue = Venue(data_dir, fsync=fsync, snapshot_every=snapshot_every)
    store: Store | StoreFollower | None = None
    md = None
    if with_market_data:
        from marketdata import MarketData

        md = MarketData()
    on_replay = md.on_replay if md is not None else None
    url = db_url or default_url(data_dir)
    if with_store and store_process:
        store = StoreFollower(data_dir, url).open()
        report = venue.open(on_replay=on_replay)
    elif with_store:
        store = Store(url).open()
        report = open_venue_with_store(venue, store, progress, on_replay)
    else:
        report = venue.open(on_replay=on_replay)
    if md is not None:
        md.attach(venue)
    venue.start()
    if store is not None:
        store.start()
    if isinstance(store, StoreFollower) and progress is not None:  # show the follower catching up
        done = store.last_seq
        while done < report.last_seq and not store.failed:
            time.sleep(0.1)
            now = store.last_seq
            progress(now - done)
            done = now
    control = ControlServer(venue, data_dir, store)
    try:
        control.start()
    except Exception:
        venue.stop(snapshot=False)
        if store is not None:
            store.stop()
        raise
    return RunningVenue(venue, store, control, cred, report, market_data=md)


def start_redis_publisher(running: RunningVenue, url: str, prefix: str = "md") -> Stoppable:
    """Publish the venue's market data to Redis at ``url`` (a channel, a stream and a
    snapshot key per instrument, see marketdata.redis_fanout); it follows the books of
    ``running.market_data``. Added to the front ends, so ``running.stop()`` stops it."""
    import redis

    from marketdata.redis_fanout import RedisPublisher

    if running.market_data is None:
        raise ValueError("start the venue with_market_data to publish it")
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.ping()
    pub = RedisPublisher(running.market_data, client, prefix=prefix)
    pub.start()
    running.front_ends.append(pub)
    return pub


def define_missing(running: RunningVenue, config: Any) -> list[str]:
    """Journal the assets and instruments of ``config`` the venue does not have yet."""
    have = running.venue.query(lambda e: (set(e.ledger.assets), set(e.markets)))
    cmds: list[Any] = [C.DefineAsset(a.code, a.decimals) for a in config.assets if a.code not in have[0]]
    cmds += [C.DefineInstrument(i.to_record()) for i in config.instruments if i.symbol not in have[1]]
    if cmds:
        names = [getattr(c, "code", "") or c.record["symbol"] for c in cmds]
        running.execute_as("config", f"defined by {config.path or 'the defaults'}", "config.define",
                           {"defined": names}, cmds)
        return names
    return []
