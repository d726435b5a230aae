"""Bringing a store that fell behind (a crash, a new database) back level with the journal.

``Venue.open`` replays only the journal after its newest snapshot, handing each replayed
command and its events to ``on_replay``. A store at or past that snapshot catches up
from there. A store further behind is first brought up to the snapshot by a scratch
engine: it loads the newest snapshot at or before the store's position (or starts empty
at the start of the journal) and replays the journal to the snapshot, feeding the store
what it lacks. :func:`open_venue_with_store` does both, in that order, and then
subscribes the store to the live venue.

The store must belong to this journal: its recorded stamp of sequence 1 must be the
journal's (otherwise it is another venue's database and nothing is written).
"""
from __future__ import annotations

import os
from typing import Any, Callable

from venue import journal
from venue.core import RecoveryReport, Venue
from venue.factory import build_engine
from venue.sequencer import Processed
from venue.snapshot import latest_snapshot, load_engine
from venue.store.store import Store, StoreError

Progress = Callable[[int], None]


def journal_genesis_ts(journal_dir: str) -> int | None:
    """The stamp of sequence 1, or None if the journal is empty or does not start at 1."""
    for rec in journal.read(journal_dir):
        return rec.ts if rec.seq == 1 else None
    return None


def check_identity(store: Store, data_dir: str) -> None:
    if not store.genesis_ts:
        return
    ts = journal_genesis_ts(os.path.join(data_dir, "journal"))
    if ts is None:
        if store.last_seq:
            raise StoreError(f"the store at {store.safe_url} holds {store.last_seq} commands but the journal of {data_dir} is empty")
        return
    if ts != store.genesis_ts:
        raise StoreError(f"the store at {store.safe_url} holds another venue's history (not the journal of {data_dir})")


def catch_up_to_snapshot(store: Store, data_dir: str, engine_factory: Callable[[], Any] = build_engine,
                         progress: Progress | None = None) -> int:
    """Feed the store from a scratch engine up to the newest snapshot, if it is behind it.
    Returns the commands fed."""
    snap_dir = os.path.join(data_dir, "snapshots")
    newest = latest_snapshot(snap_dir)
    if newest is None or store.last_seq >= newest[0]:
        return 0
    target = newest[0]
    engine = engine_factory()
    base = latest_snapshot(snap_dir, at_most=store.last_seq)
    if base is not None:
        load_engine(base[1], engine)
    fed = 0
    saved = store.on_progress
    store.on_progress = progress
    try:
        for r in journal.read(os.path.join(data_dir, "journal"), after_seq=engine.seq):
            if r.seq > target:
                break
            events = engine.process(r.seq, r.ts, r.cmd)
            if r.seq > store.last_seq:
                store.on_replay(Processed(r.seq, r.ts, r.cmd, events, None))
                fed += 1
        store.flush_replay()
    finally:
        store.on_progress = saved
    if store.last_seq < target:
        raise StoreError(f"the journal ends before the snapshot at {target}; the store stays at {store.last_seq}")
    return fed


def open_venue_with_store(venue: Venue, store: Store, progress: Progress | None = None,
                          on_replay: Callable[[Processed], None] | None = None) -> RecoveryReport:
    """Recover ``venue`` and bring ``store`` level with it, then subscribe the store
    (call ``venue.start()`` and ``store.start()`` next). ``on_replay`` also sees every
    replayed command (e.g. market data's tape and bars)."""
    check_identity(store, venue.data_dir)
    catch_up_to_snapshot(store, venue.data_dir, progress=progress)
    store.on_progress = progress
    try:
        if on_replay is None:
            report = venue.open(on_replay=store.on_replay)
        else:
            report = venue.open(on_replay=lambda p: (store.on_replay(p), on_replay(p)))
        store.flush_replay()
    finally:
        store.on_progress = None
    assert venue.engine is not None
    if store.last_seq > venue.engine.seq:
        raise StoreError(f"the store at {store.safe_url} is at {store.last_seq}, ahead of the journal at {venue.engine.seq}")
    if store.last_seq < venue.engine.seq:
        raise StoreError(f"the store stopped at {store.last_seq} and the journal no longer holds what follows")
    venue.subscribe(store.listener)
    return report
