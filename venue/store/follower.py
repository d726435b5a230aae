"""The SQL store in its own process, following the journal: history that costs matching nothing.

Written from the venue's own process, the store's projection and SQL work shares the
interpreter lock with the sequencer and the FIX callbacks, and
measurably slows them. So a running venue starts the store as a *follower*: a separate
process (``python -m venue.store.follower``) that reads the journal the venue writes,
runs its own copy of the deterministic engine over the commands (the very events the
venue produced, since replay is exact) and writes them to SQL in batches. It reads
only records the venue has made durable (``journal.durable_seq``), so the store is never
ahead of the journal, and after any crash, of either process, it goes on from the
store's own ``last_seq``: catch-up and live following are the same loop.

:class:`StoreFollower` is the venue's side: it starts the process (the database URL goes
through the environment, never the command line), reads the store's position and health
from the database and the follower's status file, and stops the follower after the
venue has stopped (it drains to the durable end first). The follower exits by itself if
the venue process dies. For reads (reports, trade capture) the venue uses the same
:class:`~venue.store.Store` API, on its own connection.

This module does not decide *whether* to run a follower: :func:`cli.runtime.start_venue`
does (tests and embedders may still attach a :class:`~venue.store.Store` in-process).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from venue import journal
from venue.factory import build_engine
from venue.sequencer import Processed
from venue.snapshot import latest_snapshot, load_engine
from venue.store.catchup import catch_up_to_snapshot, check_identity
from venue.store.models import StoreState
from venue.store.store import Store, StoreError, _short

log = logging.getLogger("venue.store.follower")

URL_ENV = "VENUE_STORE_URL"
STATUS_FILE = "store-follower.json"
IDLE_S = 0.005  # poll interval when the journal has nothing new
MAX_BATCH = 20_000
# The follower's CPU priority (os.nice increment). History may wait; an order's round trip
# may not: on a machine short of cores the follower's bursts of replay and SQL work stood
# in the run queue in front of the venue's threads. Measured with
# ``bench/order_path_trace.py --store --rate 3600``: p99 55, 17, 14 ms at 0 against 8.0,
# 8.6, 11.8 ms at 19 (three interleaved pairs). Idle CPU still goes to it, so it keeps up
# whenever the machine has any to give. VENUE_STORE_NICE overrides it (0: as the venue).
NICE_ENV = "VENUE_STORE_NICE"
DEFAULT_NICE = 19


# ================================================================== the follower process
class Follower:
    """Follows ``data_dir``'s journal into the store at ``url`` until told to stop."""

    def __init__(self, data_dir: str, url: str, parent: int = 0) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.journal_dir = os.path.join(self.data_dir, "journal")
        self.status_path = os.path.join(self.data_dir, STATUS_FILE)
        self.store = Store(url)
        self.parent = parent
        self.stopping = False
        self.failed = ""
        self._status: dict[str, Any] = {}

    def _write_status(self, **kw: Any) -> None:
        status = {"pid": os.getpid(), "failed": self.failed, "rows": self.store.rows_written, **kw}
        if status == self._status:
            return
        self._status = status
        tmp = self.status_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(status, f)
        os.replace(tmp, self.status_path)

    def _orphaned(self) -> bool:
        return bool(self.parent) and os.getppid() != self.parent

    def _watchdog(self, stuck_s: float = 2.0) -> None:
        """Once the venue is gone, a follower that makes no progress for ``stuck_s``
        (blocked in a database that holds a lock or does not answer) exits: its open
        transaction dies with it, and the next venue's follower goes on from the store's
        last_seq."""
        seen, since = self.store.last_seq, time.monotonic()
        while True:
            time.sleep(0.2)
            if not self._orphaned():
                continue
            if self.store.last_seq != seen:
                seen, since = self.store.last_seq, time.monotonic()
            elif time.monotonic() - since > stuck_s:
                log.error("store: the venue is gone and the store makes no progress; exiting")
                os._exit(3)

    def run(self) -> int:
        # One follower per data directory: one left over from a venue that was killed
        # drains to the durable end and exits; a new one waits for it here.
        lock = open(os.path.join(self.data_dir, "store-follower.lock"), "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return self._run()
        finally:
            lock.close()

    def _run(self) -> int:
        if self.parent:
            threading.Thread(target=self._watchdog, name="orphan-watchdog", daemon=True).start()
        store = self.store.open()
        check_identity(store, self.data_dir)
        catch_up_to_snapshot(store, self.data_dir)
        engine = build_engine()
        base = latest_snapshot(os.path.join(self.data_dir, "snapshots"), at_most=store.last_seq)
        if base is not None:
            load_engine(base[1], engine)
        tail = journal.Tail(self.journal_dir, after_seq=engine.seq)
        self._write_status(state="following", last_seq=store.last_seq)
        try:
            while True:
                done = self.stopping or self._orphaned()
                durable = journal.durable_seq(self.journal_dir)
                recs = tail.poll(min(durable, engine.seq + MAX_BATCH))
                if not recs:
                    if done:  # drained to the durable end
                        return 0
                    time.sleep(IDLE_S)
                    continue
                batch = []
                for r in recs:
                    events = engine.process(r.seq, r.ts, r.cmd)
                    if r.seq > store.last_seq:
                        batch.append(Processed(r.seq, r.ts, r.cmd, events, None))
                if batch:
                    self._write(batch)
                self._write_status(state="following", last_seq=store.last_seq)
        finally:
            tail.close()
            self._write_status(state="stopped", last_seq=store.last_seq)
            store.db.dispose()

    def _write(self, batch: list[Processed]) -> None:
        delay = 0.1
        while True:
            try:
                self.store.apply(batch)
                if self.failed:
                    self.failed = ""
                    log.warning("store: writing again")
                return
            except SQLAlchemyError as e:  # the database is down: retry; the journal stays the truth
                self.failed = _short(e)
                self._write_status(state="retrying", last_seq=self.store.last_seq)
                log.error("store: write of %d..%d failed (%s); retrying in %.1fs", batch[0].seq, batch[-1].seq,
                          self.failed, delay)
                if self._orphaned():
                    raise SystemExit(1) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Follow a venue's journal into its SQL store.")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    args = ap.parse_args(argv)
    url = os.environ.get(URL_ENV)
    if not url:
        print(f"error: {URL_ENV} is not set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s store-follower %(levelname)s %(message)s")
    try:
        nice = int(os.environ.get(NICE_ENV, DEFAULT_NICE))
    except ValueError:
        print(f"error: {NICE_ENV} must be a whole number", file=sys.stderr)
        return 2
    if nice > 0:
        os.nice(nice)
    f = Follower(args.data_dir, url, args.parent)

    def stop(_sig: int, _frame: Any) -> None:
        f.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the venue, which stops us in order
    try:
        return f.run()
    except StoreError as e:
        f.failed = str(e)
        f._write_status(state="failed", last_seq=f.store.last_seq)
        log.critical("store: %s", e)
        return 1


# ================================================================== the venue's side
class StoreFollower:
    """The venue's handle on its follower process, with the read API of a Store."""

    def __init__(self, data_dir: str, url: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        self.url = url
        self.reader = Store(url)  # reads only (reports, trade capture); migrated by open()
        self.db = self.reader.db
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._seen = (0.0, 0)

    @property
    def safe_url(self) -> str:
        return self.reader.safe_url

    def open(self) -> StoreFollower:
        """Migrate the schema and check the store belongs to this venue (before the
        venue starts; the follower then needs no schema work of its own)."""
        self.reader.open()
        check_identity(self.reader, self.data_dir)
        return self

    def start(self) -> None:
        env = {**os.environ, URL_ENV: self.url}
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log_path = os.path.join(self.data_dir, "store-follower.log")
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "venue.store.follower", "--data-dir", self.data_dir, "--parent", str(os.getpid())],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)

    def stop(self, timeout: float = 120.0) -> None:
        """After the venue stopped: let the follower drain to the durable end, then end."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("store follower did not drain in %ss; killed (it catches up on the next start)", timeout)
                p.kill()
                p.wait()
        self.proc = None
        self.db.dispose()

    # -- what the venue asks -----------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """The last command the store holds (read from the database, at most every 5 ms)."""
        now = time.monotonic()
        with self._lock:
            at, seq = self._seen
            if now - at < 0.005:
                return seq
        try:
            with self.db.connect() as c:
                seq = c.execute(select(StoreState.last_seq).where(StoreState.id == 1)).scalar() or 0
        except SQLAlchemyError:
            with self._lock:
                return self._seen[1]
        with self._lock:
            self._seen = (now, seq)
        return seq

    def status(self) -> dict[str, Any]:
        try:
            with open(os.path.join(self.data_dir, STATUS_FILE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    @property
    def rows_written(self) -> int:
        """Rows the follower has written since it started."""
        return int(self.status().get("rows", 0))

    @property
    def failed(self) -> str:
        p = self.proc
        if p is not None and p.poll() is not None:
            return f"the store follower exited with status {p.returncode} (see {self.data_dir}/store-follower.log)"
        return self.status().get("failed", "")

    def wait_for(self, seq: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.last_seq < seq:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


if __name__ == "__main__":
    sys.exit(main())
