"""A venue's core at run time: its data directory, recovery, and the running sequencer.

``Venue(data_dir).open()`` recovers: the newest readable snapshot, then every journal
record after it (a torn tail is cut off; corruption anywhere else refuses to start).
``start()`` runs the sequencer; the edges then ``submit`` commands, ``query`` state and
``subscribe`` to durable events.

Data directory layout::

    <data_dir>/journal/seg-*.jnl      the journal (the truth)
    <data_dir>/snapshots/snap-*.msgpack
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from contextlib import nullcontext
from typing import Any, Callable, ContextManager

from venue import journal
from venue.clock import Clock, LiveClock
from venue.engine import Engine
from venue.factory import build_engine
from venue.errors import JournalError
from venue.sequencer import Listener, Processed, Sequencer, VenueUnavailable
from venue.snapshot import latest_snapshot, load_engine

log = logging.getLogger("venue.core")

ReplayListener = Callable[[Processed], None]


@dataclass
class RecoveryReport:
    snapshot_seq: int
    replayed: int
    last_seq: int
    torn_bytes: int
    problem: str
    seconds: float


def tune_gc() -> None:
    """The engine frees its objects by reference counting (it breaks its own cycles), so
    the cyclic collector only costs time on the hot path: freeze what recovery built and
    collect young objects rarely. Measured in bench/engine.py (all contenders alike)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class Venue:
    def __init__(self, data_dir: str, *, fsync: bool = True, snapshot_every: int = 200_000,
                 clock: Clock | None = None) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.journal_dir = os.path.join(self.data_dir, "journal")
        self.snapshot_dir = os.path.join(self.data_dir, "snapshots")
        self.fsync = fsync
        self.snapshot_every = snapshot_every
        self.clock = clock or LiveClock()
        self.engine: Engine | None = None
        self.sequencer: Sequencer | None = None
        self.report: RecoveryReport | None = None
        self._writer: journal.JournalWriter | None = None
        self._listeners: list[Listener] = []

    # -- life cycle ------------------------------------------------------------------
    def open(self, on_replay: ReplayListener | None = None,
             engine_factory: Callable[[], Engine] = build_engine) -> RecoveryReport:
        """Recover state from the data directory. ``on_replay`` sees every replayed
        command with its events (the store uses it to catch up)."""
        t0 = time.perf_counter()
        os.makedirs(self.data_dir, exist_ok=True)
        writer = journal.JournalWriter(self.journal_dir, fsync=self.fsync)
        rec = writer.open()
        if rec.torn_bytes:
            log.warning("journal: cut a torn tail of %d bytes (%s); those commands were never acknowledged",
                        rec.torn_bytes, rec.problem)
        snap = latest_snapshot(self.snapshot_dir, at_most=rec.last_seq)
        engine = engine_factory()
        snap_seq = 0
        if snap is not None:
            snap_seq = snap[0]
            load_engine(snap[1], engine)
        first_seg = rec.segments[0].first_seq if rec.segments else 1
        if engine.seq + 1 < first_seg:
            raise JournalError(f"the journal starts at {first_seg} but the newest snapshot is at {engine.seq}")
        replayed = 0
        for r in journal.read(self.journal_dir, after_seq=engine.seq):
            events = engine.process(r.seq, r.ts, r.cmd)
            replayed += 1
            if on_replay is not None:
                on_replay(Processed(r.seq, r.ts, r.cmd, events, None))
        if engine.seq != rec.last_seq:
            raise JournalError(f"recovered to {engine.seq} but the journal ends at {rec.last_seq}")
        self.engine = engine
        self._writer = writer
        self.report = RecoveryReport(snap_seq, replayed, engine.seq, rec.torn_bytes, rec.problem,
                                     time.perf_counter() - t0)
        return self.report

    def start(self) -> None:
        if self.engine is None or self._writer is None:
            raise RuntimeError("open() the venue first")
        seq = Sequencer(self.engine, self._writer, self.clock, self.snapshot_dir, self.snapshot_every)
        seq.listeners.extend(self._listeners)
        self.sequencer = seq
        tune_gc()
        seq.start()

    def stop(self, snapshot: bool = True) -> None:
        """Drain, make durable, optionally snapshot, stop."""
        seq = self.sequencer
        if seq is None:
            return
        if snapshot and seq.failed is None:
            done = threading.Event()
            try:
                seq.snapshot(lambda _path: done.set())
                done.wait(30)
            except VenueUnavailable:
                pass
        seq.stop()
        if self._writer is not None:
            self._writer.close()
        self.sequencer = None

    # -- use -------------------------------------------------------------------------
    def subscribe(self, listener: Listener, first: bool = False) -> None:
        """``listener(list[Processed])`` after durability, in order, one batch at a time, on the
        thread that ran the sequencer's step (its own, or a FIX inbox's: Sequencer.batch).
        Listeners run in the order they subscribed; ``first`` puts this one before all
        others (the answers to the clients, ahead of market data and the store).
        Keep it quick: hand work to your own thread if it may block."""
        for ls in (self._listeners, self.sequencer.listeners if self.sequencer is not None else None):
            if ls is not None:
                ls.insert(0 if first else len(ls), listener)

    def submit(self, cmd: Any, origin: Any = None) -> None:
        if self.sequencer is None:
            raise VenueUnavailable("the venue is not running")
        self.sequencer.submit(cmd, origin)

    def batch(self) -> ContextManager[None]:
        """Inside it this thread's submits queue, and at its end this thread runs them
        (Sequencer.batch); a no-op context while the venue is not running."""
        seq = self.sequencer
        return seq.batch() if seq is not None else nullcontext()

    def kick(self) -> None:
        """Run what is queued now (Sequencer.kick), for a caller about to wait for it."""
        seq = self.sequencer
        if seq is not None:
            seq.kick()

    def call(self, fn: Callable[[Engine], Any], reply: Callable[[Any], None]) -> None:
        if self.sequencer is None:
            raise VenueUnavailable("the venue is not running")
        self.sequencer.call(fn, reply)

    def query(self, fn: Callable[[Engine], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(engine)`` between commands and wait for its result. Never call
        this from a listener (it runs inside the sequencer's step): it would wait for itself."""
        box: list[Any] = []
        done = threading.Event()

        def reply(result: Any) -> None:
            box.append(result)
            done.set()

        self.call(fn, reply)
        self.kick()  # even from inside a batch(): it waits for the answer
        if not done.wait(timeout):
            raise TimeoutError("the venue did not answer in time")
        result = box[0]
        if isinstance(result, Exception):
            raise result
        return result

    def execute(self, cmd: Any, timeout: float = 10.0) -> Processed:
        """Submit ``cmd`` and wait until it is durable; return its outcome (for the
        control plane and tests, not for the FIX hot path)."""
        box: list[Processed] = []
        done = threading.Event()
        token = object()

        def listener(batch: list[Processed]) -> None:
            for p in batch:
                if p.origin is token:
                    box.append(p)
                    done.set()

        self.subscribe(listener)
        try:
            self.submit(cmd, token)
            self.kick()  # even from inside a batch(): it waits for the outcome
            seq = self.sequencer
            deadline = time.monotonic() + timeout
            while not done.wait(0.05):
                if seq is None or seq.finished.is_set():  # stopped or failed: it will never come
                    if done.is_set():
                        break
                    raise VenueUnavailable("the venue stopped before the command was durable")
                if time.monotonic() > deadline:
                    raise TimeoutError("the venue did not process the command in time")
            return box[0]
        finally:
            self._listeners.remove(listener)
            if self.sequencer is not None and listener in self.sequencer.listeners:
                self.sequencer.listeners.remove(listener)
