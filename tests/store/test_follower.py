"""The store as a follower process (what ``venue run`` and ``venue demo`` use): it holds
the very rows of a store fed in-process, costs the venue's process no store thread, and
after a kill -9 of the venue while it is behind (its database held locked), the
orphaned follower gives up, and the next start catches up exactly. On SQLite and on
the real PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from cli.runtime import start_venue
from tests.store.helpers import dump
from tests.store.test_crash import Held
from tests.store.workload import margin_crash_commands, setup_commands, trading_commands
from venue.core import Venue
from venue.store import Store
from venue.store.catchup import open_venue_with_store
from venue.store.follower import DEFAULT_NICE, NICE_ENV, URL_ENV, StoreFollower

CHILD = os.path.join(os.path.dirname(__file__), "follower_child.py")


def rebuilt(data_dir: str, url: str) -> Store:
    """A store fed in-process from the whole journal (the reference)."""
    store = Store(url).open()
    v = Venue(data_dir, fsync=False)
    open_venue_with_store(v, store)
    return store


def test_the_follower_writes_what_an_in_process_store_writes(tmp_path, db_urls):
    url, reference_url = db_urls
    data_dir = str(tmp_path / "venue")
    running = start_venue(data_dir, url, fsync=False)
    try:
        assert isinstance(running.store, StoreFollower)
        assert not [t for t in threading.enumerate() if t.name == "venue-store"]  # no store work in this process
        assert running.store.proc is not None
        assert _niced(running.store.proc.pid, min(19, os.nice(0) + DEFAULT_NICE))  # behind the venue for CPU
        v = running.venue
        cmds = setup_commands() + trading_commands(1500, seed=7) + margin_crash_commands()
        for c in cmds:
            v.submit(c)
        last = v.execute(cmds[-1]).seq
        assert running.store.wait_for(last, 60), running.store.failed
        assert running.store.failed == ""
    finally:
        running.stop()
    assert dump(Store(url).open()) == dump(rebuilt(data_dir, reference_url))


def _niced(pid: int, nice: int, timeout: float = 10.0) -> bool:
    """The process runs at ``nice`` (it lowers its priority as it starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if int(f.read().rsplit(")", 1)[1].split()[16]) == nice:
                return True
        time.sleep(0.02)
    return False


def test_a_bad_follower_priority_is_a_one_line_error(tmp_path):
    env = {**os.environ, URL_ENV: f"sqlite:///{tmp_path / 'store.db'}", NICE_ENV: "low"}
    p = subprocess.run([sys.executable, "-m", "venue.store.follower", "--data-dir", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == f"error: {NICE_ENV} must be a whole number"


def _gone(pid: int) -> bool:
    """Exited (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_kill_while_the_follower_is_behind(tmp_path, db_urls):
    url, reference_url = db_urls
    data_dir = str(tmp_path / "venue")
    child = subprocess.Popen([sys.executable, CHILD, data_dir, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    held = None
    try:
        line = child.stdout.readline()
        assert line.startswith("seeded "), line
        seeded, follower_pid = int(line.split()[1]), int(line.split()[2])
        held = Held(url)  # the follower stalls on its next write
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        assert line.startswith("durable "), line
        durable = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        end = time.monotonic() + 30
        while not _gone(follower_pid):  # orphaned while retrying its write: it gives up
            assert time.monotonic() < end, "the orphaned follower did not exit"
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if held is not None:
            held.release()
    assert Store(url).open().last_seq == seeded < durable - 3000  # the kill found the store behind
    running = start_venue(data_dir, url, fsync=False)
    try:
        assert running.report.last_seq == durable
        assert running.store.wait_for(durable, 60), running.store.failed
    finally:
        running.stop()
    assert dump(Store(url).open()) == dump(rebuilt(data_dir, reference_url))
