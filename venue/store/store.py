"""The SQL store: history written behind the journal, in batches, on its own thread.

The venue hands it durable batches through ``Venue.subscribe(store.listener)``; the
listener only queues them (it runs inside the sequencer's step and must not block), and the
store's thread projects them to rows (:mod:`venue.store.project`) and writes each run in
one transaction that also records the last applied sequence number. So the store never
slows matching, holds either all of a run or none of it, and knows exactly where to go on
from: after a crash it catches up from the journal (:mod:`venue.store.catchup`) and ends
with the same rows as a store that never stopped.

A database that fails (PostgreSQL restarting) is retried with backoff while the queue
grows; the journal stays the truth. This module does not read the journal itself.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, delete, event, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from venue.errors import VenueError
from venue.store.models import Atoms, Base, InstrumentRow, StoreState
from venue.store.project import Changes, Projector

log = logging.getLogger("venue.store")

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")
_TABLES = Base.metadata.tables
_STOP = object()


class StoreError(VenueError):
    """The store cannot follow the journal (another venue's database, a gap, a store
    ahead of its journal, a database that refuses the schema)."""


def default_url(data_dir: str) -> str:
    return f"sqlite:///{os.path.join(os.path.abspath(data_dir), 'store.sqlite')}"


def make_engine(url: str) -> SqlEngine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")  # a lost tail is caught up from the journal
            cur.close()

        return eng
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str, *, max_batch: int = 20_000) -> None:
        self.url = url
        self.db = make_engine(url)
        self._pg = self.db.dialect.name == "postgresql"
        self.max_batch = max_batch
        self.last_seq = 0
        self.genesis_ts = 0
        self.rows_written = 0
        self.failed: str = ""  # the last write failure, "" when healthy
        self.projector = Projector()
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._queued_in = 0  # written by the publishing thread only (one at a time)
        self._queued_out = 0  # written by the store thread only
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._replay: list[Any] = []
        self.on_progress: Callable[[int], None] | None = None

    # -- schema and state ----------------------------------------------------------
    def migrate(self) -> list[str]:
        """Upgrade the schema to the newest migration; returns the revisions applied."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        script = ScriptDirectory.from_config(cfg)
        try:
            with self.db.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                todo = [r.revision for r in script.iterate_revisions("heads", current)]
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as e:
            raise StoreError(f"cannot migrate the store at {self.safe_url}: {_short(e)}") from None
        return list(reversed(todo))

    def open(self) -> Store:
        """Migrate, then load where the store stands."""
        self.migrate()
        with self.db.begin() as conn:
            row = conn.execute(select(StoreState.last_seq, StoreState.genesis_ts).where(StoreState.id == 1)).first()
            if row is None:
                conn.execute(insert(StoreState).values(id=1, last_seq=0, genesis_ts=0))
                self.last_seq, self.genesis_ts = 0, 0
            else:
                self.last_seq, self.genesis_ts = row
            insts = conn.execute(select(InstrumentRow)).mappings().all()
        self.projector = Projector({r["symbol"]: dict(r) for r in insts})
        return self

    @property
    def safe_url(self) -> str:
        return self.db.url.render_as_string(hide_password=True)

    # -- writing ---------------------------------------------------------------------
    def apply(self, batch: list[Any]) -> int:
        """Project and write ``batch`` (Processed, in order) now, on the calling thread;
        what the store already holds is skipped. Returns the rows written."""
        batch = [p for p in batch if p.seq > self.last_seq]
        if not batch:
            return 0
        if batch[0].seq != self.last_seq + 1:
            raise StoreError(f"the store is at {self.last_seq} but was given {batch[0].seq}: it must catch up first")
        ch = self.projector.project(batch)
        self._write(ch)
        return ch.rows

    def _write(self, ch: Changes) -> None:
        with self.db.begin() as conn:
            for name, wheres in ch.deletes.items():
                t = _TABLES[name]
                for w in wheres:
                    conn.execute(delete(t).where(*(t.c[k] == v for k, v in w.items())))
            for name, rows in ch.inserts.items():
                if rows:
                    self._insert(conn, _TABLES[name], rows)
            for name, ups in ch.upserts.items():
                t = _TABLES[name]
                new = [v for is_new, v in ups.values() if is_new]
                if new:
                    self._insert(conn, t, new)
                groups: dict[tuple[str, ...], list[tuple[Any, dict[str, Any]]]] = {}
                for key, (is_new, v) in ups.items():
                    if not is_new:
                        groups.setdefault(tuple(sorted(v)), []).append((key, v))
                for cols, items in groups.items():
                    self._update(conn, t, cols, items)
            values: dict[str, Any] = {"last_seq": ch.last_seq}
            if ch.genesis_ts:
                values["genesis_ts"] = ch.genesis_ts
            conn.execute(update(StoreState).where(StoreState.id == 1).values(**values))
        with self._cond:
            self.last_seq = ch.last_seq
            if ch.genesis_ts:
                self.genesis_ts = ch.genesis_ts
            self.rows_written += ch.rows
            self._cond.notify_all()

    # Rows go to the driver directly (SQLAlchemy's per-row parameter processing cost more
    # than the database's work): COPY on PostgreSQL, executemany on SQLite.
    def _values(self, t: Any, cols: list[str], rows: list[dict[str, Any]]) -> list[tuple]:
        atoms = [isinstance(t.c[c].type, Atoms) for c in cols]
        if self._pg or not any(atoms):
            return [tuple(r[c] for c in cols) for r in rows]
        return [tuple(str(r[c]) if a else r[c] for c, a in zip(cols, atoms)) for r in rows]

    def _insert(self, conn: Any, t: Any, rows: list[dict[str, Any]]) -> None:
        cols = [c.name for c in t.columns if c.name in rows[0]]
        values = self._values(t, cols, rows)
        names = ", ".join(f'"{c}"' for c in cols)
        if self._pg:
            cur = conn.connection.driver_connection.cursor()
            with cur.copy(f'COPY "{t.name}" ({names}) FROM STDIN') as cp:
                for v in values:
                    cp.write_row(v)
        else:
            conn.exec_driver_sql(f'INSERT INTO "{t.name}" ({names}) VALUES ({", ".join("?" * len(cols))})', values)

    def _update(self, conn: Any, t: Any, cols: tuple[str, ...], items: list[tuple[Any, dict[str, Any]]]) -> None:
        pk = t.primary_key.columns.values()[0].name
        mark = "%s" if self._pg else "?"
        sets = ", ".join(f'"{c}" = {mark}' for c in cols)
        values = [v + (key,) for v, (key, _) in zip(self._values(t, list(cols), [r for _, r in items]), items)]
        conn.exec_driver_sql(f'UPDATE "{t.name}" SET {sets} WHERE "{pk}" = {mark}', values)

    # -- replay (recovery) -------------------------------------------------------------
    def on_replay(self, p: Any) -> None:
        """``Venue.open(on_replay=...)``: collect replayed commands, write them in runs."""
        if p.seq <= self.last_seq:
            return
        self._replay.append(p)
        if len(self._replay) >= self.max_batch:
            self.flush_replay()

    def flush_replay(self) -> None:
        batch, self._replay = self._replay, []
        if batch:
            self.apply(batch)
            if self.on_progress is not None:
                self.on_progress(len(batch))

    # -- live (behind the journal) ---------------------------------------------------
    def listener(self, batch: list[Any]) -> None:
        """``Venue.subscribe(store.listener)``: queue only; never blocks the publishing thread."""
        self._queued_in += len(batch)
        self._q.put(batch)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="venue-store", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._q.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self.db.dispose()

    def backlog(self) -> int:
        """Commands queued and not yet written."""
        return self._queued_in - self._queued_out

    def wait_for(self, seq: int, timeout: float = 30.0) -> bool:
        """Block until the store has applied ``seq`` (tests, reports that must be current)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.last_seq < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        get = self._q.get
        stop = False
        while not stop:
            first = get()
            if first is _STOP:
                return
            batch: list[Any] = list(first)
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.extend(nxt)
            self._write_with_retry(batch)
            self._queued_out += len(batch)

    def _write_with_retry(self, batch: list[Any]) -> None:
        batch = [p for p in batch if p.seq > self.last_seq]
        if not batch:
            return
        if batch[0].seq != self.last_seq + 1:
            self.failed = f"gap: store at {self.last_seq}, next batch starts at {batch[0].seq}"
            log.critical("store: %s; it stops writing until a restart catches it up", self.failed)
            return
        ch = self.projector.project(batch)
        delay = 0.1
        while True:
            try:
                self._write(ch)
                self.failed = ""
                return
            except SQLAlchemyError as e:
                self.failed = _short(e)
                log.error("store: write of %d..%d failed (%s); retrying in %.1fs", ch.first_seq, ch.last_seq,
                          self.failed, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


def _short(e: BaseException) -> str:
    return " ".join(str(getattr(e, "orig", None) or e).split())[:300]
