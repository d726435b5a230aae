"""The sequencer: one owner of the engine at a time; nothing is acknowledged before it is durable.

Callers on any thread (FIX callbacks, the control endpoint, custody watchers) call
:meth:`Sequencer.submit` (a state-changing command) or :meth:`Sequencer.call` (a read
of engine state, run between commands). Whoever holds the sequencer's lock takes what
is queued as one batch, stamps each command with the next sequence number and the time,
runs it through the engine, appends the batch to the journal and fsyncs once for the
whole batch (group commit: the batch grows with the load, so one fsync covers more
commands as more arrive), and only then hands the batch's events, in order, to the
listeners (order-entry sessions, drop copy, market data, the store) and answers the
calls. So a client can never see an acknowledgement of a command a crash could lose.

The lock's holder is the sequencer thread, woken by submits, or, on the FIX order path,
the submitting thread itself: inside :meth:`Sequencer.batch` a thread's submits only
queue, and at its end the thread runs the step itself if the lock is free (else the
sequencer thread does). An order then crosses no thread between its decoding and its
ExecutionReport being handed to QuickFIX: each hand-off between Python threads cost a
wake-up and a wait for the interpreter lock, measured in bench/order_path_trace.py.

An exception from the engine is a bug. The sequencer journals and publishes what was
processed before it, then refuses everything else (:class:`VenueUnavailable`); the
process must restart, and replay skips the command that failed because it was never
journaled.
"""
from __future__ import annotations

import logging
import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple

from venue import commands as C
from venue.clock import Clock
from venue.codec import encode, normalize
from venue.engine import Engine
from venue.errors import VenueError
from venue.journal import JournalWriter, frame
from venue.snapshot import dump_engine, write_snapshot

log = logging.getLogger("venue.sequencer")

_CMD, _CALL, _SNAPSHOT, _STOP = 0, 1, 2, 3


class VenueUnavailable(VenueError, RuntimeError):
    """The venue stopped (shutdown or an engine failure) and takes no more commands."""


class Processed(NamedTuple):
    """One command's outcome, published after it is durable."""

    seq: int
    ts: int
    cmd: Any
    events: list[Any]
    origin: Any  # whatever the submitter passed (e.g. the FIX session); not journaled


Listener = Callable[[list[Processed]], None]


class Sequencer:
    def __init__(self, engine: Engine, writer: JournalWriter, clock: Clock, snapshot_dir: str | None = None,
                 snapshot_every: int = 0, max_batch: int = 4096) -> None:
        self.engine = engine
        self.writer = writer
        self.clock = clock
        self.snapshot_dir = snapshot_dir
        self.snapshot_every = snapshot_every
        self.max_batch = max_batch
        self.listeners: list[Listener] = []
        self.durable_seq = engine.seq
        self.failed: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.commands = 0
        self.batches = 0
        self.inline_steps = 0  # steps run by a submitting thread (batch()) rather than the sequencer thread
        self._in: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # held by whoever runs a step: the engine, the journal, the listeners
        self._wake = threading.Event()  # the sequencer thread has something to do
        self._deferring: set[int] = set()  # threads inside batch()
        self._owner = 0  # the thread running a step inline (_step_here), 0 if none
        self._deadline: int | None = engine.next_deadline()  # the engine's next expiry (ns), under _lock
        self._last_snapshot = engine.seq
        self._stopping = False  # stop() was called: no more submits
        self._stopped = False  # the _STOP entry was run, or the engine failed: no more steps
        self.finished = threading.Event()  # set when the sequencer thread has ended (stop or failure)
        self._thread = threading.Thread(target=self._run, name="venue-sequencer", daemon=True)

    # -- any thread ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, cmd: Any, origin: Any = None) -> None:
        """Queue a command. Raises InvalidValue for a badly built one and
        VenueUnavailable once the venue has stopped."""
        if self.failed is not None or self._stopping:
            raise VenueUnavailable("the venue is not accepting commands")
        self._in.put((_CMD, normalize(cmd), origin))
        if not self._wake.is_set() and threading.get_ident() not in self._deferring:
            self._wake.set()  # (once set, the thread clears it before it drains: this command included)

    def call(self, fn: Callable[[Engine], Any], reply: Callable[[Any], None]) -> None:
        """Run ``fn(engine)`` between commands; ``reply(result)`` (or the exception it
        raised) follows every event published before it."""
        if self.failed is not None or self._stopping:
            raise VenueUnavailable("the venue is not accepting commands")
        self._in.put((_CALL, fn, reply))
        if not self._wake.is_set() and threading.get_ident() not in self._deferring:
            self._wake.set()

    def snapshot(self, reply: Callable[[Any], None] | None = None) -> None:
        """Take a snapshot at the next batch boundary; ``reply(path)`` once written."""
        self._in.put((_SNAPSHOT, None, reply))
        self._wake.set()

    def kick(self) -> None:
        """Have what is queued run now, for a caller about to wait for an answer: on this
        thread if it is inside :meth:`batch` (after a step in progress), else on the
        sequencer thread."""
        me = threading.get_ident()
        if me in self._deferring and self._owner != me:
            self._step_here(blocking=True)
        else:
            self._wake.set()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's submits and calls inside the block only queue; at its end the
        thread runs them (and whatever else is queued) itself when no step is running,
        else leaves them to the sequencer thread. The listeners then run on this thread.
        To wait inside the block for an answer, :meth:`kick` first."""
        me = threading.get_ident()
        self._deferring.add(me)
        try:
            yield
        finally:
            self._deferring.discard(me)
            self._step_here(blocking=False)

    def _step_here(self, blocking: bool) -> None:
        if not self._lock.acquire(blocking):
            self._wake.set()  # a step is running: the sequencer thread takes over after it
            return
        try:
            if self._stopped:
                return
            self._owner = threading.get_ident()
            self.inline_steps += 1
            changed = self._step()
        finally:
            self._owner = 0
            self._lock.release()
        if changed or self._stopped or not self._in.empty():
            self._wake.set()  # a new deadline, the end, or more queued than one step takes

    def stop(self, timeout: float = 30.0) -> None:
        """Process what is queued, make it durable, publish it, and stop."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        self._in.put((_STOP, None, None))
        self._wake.set()
        self._thread.join(timeout)

    def pending(self) -> int:
        return self._in.qsize()

    # -- the sequencer thread --------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopped:
                deadline = self._deadline
                self._wake.wait(None if deadline is None else max(0.0, (deadline - self.clock.now_ns()) / 1e9))
                self._wake.clear()
                with self._lock:
                    if self._stopped:
                        break
                    self._step()
                if not self._in.empty():
                    self._wake.set()
        finally:
            self.finished.set()

    # -- a step (under _lock) --------------------------------------------------------
    def _step(self) -> bool:
        """Run what is queued (up to max_batch entries) and an expiry that is due, journal
        it, then publish it. True if the engine's next deadline changed."""
        engine, get = self.engine, self._in.get_nowait
        batch: list[Any] = []
        while len(batch) < self.max_batch:
            try:
                batch.append(get())
            except queue.Empty:
                break
        records: list[bytes] = []
        items: list[Any] = []
        stop = False
        done = 0  # batch entries handled
        try:
            deadline = self._deadline
            if deadline is not None and deadline <= self.clock.now_ns():
                self._apply(C.Tick(), None, records, items)
            for kind, a, b in batch:
                done += 1
                if kind == _CMD:
                    self._apply(a, b, records, items)
                elif kind == _CALL:
                    try:
                        result = a(engine)
                    except Exception as e:  # a failing read is the caller's answer
                        result = e
                    items.append((b, result))
                elif kind == _SNAPSHOT:
                    items.append(("snapshot", dump_engine(engine), a or b))
                    self._last_snapshot = engine.seq
                else:
                    stop = True
            if self.snapshot_every and engine.seq - self._last_snapshot >= self.snapshot_every:
                items.append(("snapshot", dump_engine(engine), None))
                self._last_snapshot = engine.seq
        except Exception as e:  # the engine failed: a bug; keep what was done before it
            log.critical("engine failure at seq %s: %r; the venue stops", engine.seq + 1, e, exc_info=True)
            self.failed = e
            stop = True
            self._refuse(batch[done:])  # the calls queued behind the failing command get an answer too
        if records or items:
            self.commands += len(records)
            try:
                self._write(b"".join(records), engine.seq, items)
            except Exception as e:  # the journal cannot be written (disk full, I/O error): nothing more is safe
                log.critical("journal write failed after seq %s: %r; the venue stops", self.durable_seq, e,
                             exc_info=True)
                self.failed = self.failed or e
                stop = True
        changed = False
        if stop:
            self._stopped = True
            self.writer.sync()
            self._refuse_pending()
            if self.failed is not None and self.on_failure is not None:
                self.on_failure(self.failed)
        else:
            deadline = engine.next_deadline()
            changed = deadline != self._deadline
            self._deadline = deadline
        return changed

    def _refuse_pending(self) -> None:
        """After a stop, answer every queued call with VenueUnavailable (nobody waits forever)."""
        while True:
            try:
                entry = self._in.get_nowait()
            except queue.Empty:
                return
            self._refuse([entry])

    @staticmethod
    def _refuse(entries: list[Any]) -> None:
        for kind, a, b in entries:
            reply = b if kind == _CALL else (a or b) if kind == _SNAPSHOT else None
            if reply is not None:
                try:
                    reply(VenueUnavailable("the venue stopped before answering"))
                except Exception:
                    log.exception("a call's reply failed")

    def _apply(self, cmd: Any, origin: Any, records: list[bytes], items: list[Any]) -> None:
        engine = self.engine
        seq = engine.seq + 1
        ts = self.clock.now_ns()
        if ts < engine.ts:
            ts = engine.ts
        record = frame(encode(seq, ts, cmd))  # before the engine sees it: what cannot be journaled never runs
        events = engine.process(seq, ts, cmd)
        records.append(record)
        items.append(Processed(seq, ts, cmd, events, origin))

    def _write(self, data: bytes, last_seq: int, items: list[Any]) -> None:
        """Append and fsync the step's records, publish its events and answer its calls
        in order, then write its snapshots (a new journal segment begins after each).
        ``items``: Processed | (reply, result) | ("snapshot", state, reply)."""
        if data:
            self.writer.append(data, last_seq)
            self.writer.sync()
            self.durable_seq = last_seq
        self.batches += 1
        processed: list[Processed] = []
        snaps = []
        for it in items:
            if type(it) is Processed:
                processed.append(it)
            elif len(it) == 2:
                if processed:
                    self._publish(processed)
                    processed = []
                reply, result = it
                try:
                    reply(result)
                except Exception:
                    log.exception("a call's reply failed")
            else:
                snaps.append(it)
        if processed:
            self._publish(processed)
        for _, state, reply in snaps:
            path = self._write_snapshot(state)
            if reply is not None:
                reply(path)

    def _publish(self, processed: list[Processed]) -> None:
        for listener in tuple(self.listeners):  # a copy: others (un)subscribe while we iterate
            try:
                listener(processed)
            except Exception:
                log.exception("listener %r failed; the others go on", listener)

    def _write_snapshot(self, state: dict[str, Any]) -> str | None:
        if not self.snapshot_dir:
            return None
        try:
            path = write_snapshot(self.snapshot_dir, state)
            if self.writer.last_seq == state["seq"]:
                self.writer.start_segment(state["seq"] + 1)
            return path
        except OSError:
            log.exception("snapshot at %s failed; the journal still holds everything", state["seq"])
            return None
