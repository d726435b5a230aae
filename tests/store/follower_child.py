"""The venue process of the follower crash test: ``python follower_child.py DATA_DIR DB_URL``.

Runs the venue as ``venue run`` does (cli.runtime.start_venue: the store follows the
journal in its own process), seeds it and waits until the store holds everything
("seeded SEQ"), then waits for "go" on stdin, runs the trading workload with a snapshot
in the middle and reports when all of it is durable ("durable SEQ"). Then it waits to
be killed.
"""
from __future__ import annotations

import sys
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from cli.runtime import start_venue  # noqa: E402
from tests.store.workload import margin_crash_commands, setup_commands, trading_commands  # noqa: E402


def main() -> None:
    data_dir, url = sys.argv[1], sys.argv[2]
    running = start_venue(data_dir, url)
    v, st = running.venue, running.store
    seq = 0
    for c in setup_commands():
        seq = v.execute(c).seq
    assert st.wait_for(seq, 60)
    print(f"seeded {st.last_seq} {st.status()['pid']}", flush=True)
    assert sys.stdin.readline().strip() == "go"
    trading = trading_commands(4000, seed=11) + margin_crash_commands()
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
