"""The venue process of the crash test: ``python crash_child.py DATA_DIR DB_URL``.

Seeds the venue and waits until its store holds everything ("seeded SEQ"), then waits
for "go" on stdin, runs the trading workload with a snapshot in the middle, and reports
when all of it is durable in the journal ("durable SEQ"). Then it waits to be killed.
"""
from __future__ import annotations

import sys
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from tests.store.workload import setup_commands, trading_commands  # noqa: E402
from venue.core import Venue  # noqa: E402
from venue.store import Store  # noqa: E402
from venue.store.catchup import open_venue_with_store  # noqa: E402


def main() -> None:
    data_dir, url = sys.argv[1], sys.argv[2]
    v = Venue(data_dir, fsync=True)
    st = Store(url).open()
    open_venue_with_store(v, st)
    v.start()
    st.start()
    seq = 0
    for c in setup_commands():
        seq = v.execute(c).seq
    st.wait_for(seq, 60)
    print(f"seeded {st.last_seq}", flush=True)
    assert sys.stdin.readline().strip() == "go"
    trading = trading_commands(4000, seed=11)
    for c in trading[:2000]:
        v.submit(c)
    v.execute(trading[1999])
    v.sequencer.snapshot()  # the store will be behind this snapshot when it comes back
    for c in trading[2000:]:
        v.submit(c)
    print(f"durable {v.execute(trading[-1]).seq}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
