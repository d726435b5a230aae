"""Kill -9 the venue while its store is behind; on restart the store catches up exactly.

The store is held behind deterministically by locking its database from outside (as a
database that stalls would), so the kill always finds journaled commands the store has
not written. The restarted store must hold the very rows of a store rebuilt from the
whole journal (a store that never stopped).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from sqlalchemy import create_engine, text

from tests.store.helpers import dump
from venue.core import Venue
from venue.store import Store
from venue.store.catchup import open_venue_with_store

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")


class Held:
    """Holds the store's database locked against writers."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.conn = sqlite3.connect(url.split("///", 1)[1], timeout=30, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")  # WAL: writers wait, readers go on
        else:
            self.engine = create_engine(url)
            self.conn = self.engine.connect()
            self.tx = self.conn.begin()
            self.conn.execute(text("LOCK TABLE store_state IN EXCLUSIVE MODE"))

    def release(self) -> None:
        if self.url.startswith("sqlite"):
            self.conn.execute("ROLLBACK")
            self.conn.close()
        else:
            self.tx.rollback()
            self.conn.close()
            self.engine.dispose()


def test_kill_while_the_store_is_behind(tmp_path, db_urls):
    url, reference_url = db_urls
    data_dir = str(tmp_path / "venue")
    child = subprocess.Popen([sys.executable, CHILD, data_dir, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    held = None
    try:
        line = child.stdout.readline()
        assert line.startswith("seeded "), line
        seeded = int(line.split()[1])
        held = Held(url)
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        assert line.startswith("durable "), line
        durable = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if held is not None:
            held.release()
    behind = Store(url).open()
    assert behind.last_seq == seeded < durable - 3000  # the kill found the store behind
    # restart: the store catches up from the journal, past a snapshot it never saw
    v = Venue(data_dir)
    store = Store(url).open()
    open_venue_with_store(v, store)
    assert store.last_seq == v.engine.seq == durable
    reference = Store(reference_url).open()
    open_venue_with_store(Venue(data_dir), reference)
    assert dump(store) == dump(reference)
