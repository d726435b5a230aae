"""How fast the SQL store writes behind a running venue, and whether it keeps up.

    python bench/store.py [--rounds 3] [--ops 50000] [--rate 5000] [--seconds 10]
                          [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

The engine benchmark's workload (bench/workload.py: 60% passive limits, 25% cancels, 15%
aggressive limits, over 100 accounts) runs through the whole durable venue (sequencer,
journal with fsync group commit) on a fresh data directory, for each backend and each
way of running the store:

  follower   the store in its own process following the journal (venue.store.follower:
             what `venue run` and `venue demo` do)
  thread     the store on a thread of the venue's process, fed the durable batches

  flat out   every command submitted at once. Reference: the same venue without a
             store, in the same round (store_vs_none = durable commands/s with the store
             / without: the store must not slow matching). The store's figure is rows/s
             and commands/s from the first command until it has written the last.
  paced      ``--rate`` commands/s for ``--seconds`` (an order-entry rate from FIX): the
             store's lag (durable seq - store seq), sampled every 10 ms; bounded lag =
             it keeps up.

Medians over the rounds; the last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.engine import N_ACCOUNTS, _bench_instrument, _engine_commands  # noqa: E402
from bench.workload import generate  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def setup_commands() -> list:
    from venue import commands as C
    from venue.genesis import genesis_commands

    cmds = genesis_commands() + [C.DefineInstrument(_bench_instrument().to_record()), C.CreateFirm("F")]
    for i in range(N_ACCOUNTS):
        cmds.append(C.CreateAccount(f"A{i}", "F", 1, 100, 500))
        cmds.append(C.Deposit(f"u{i}", f"A{i}", "USD", 10**22))
        cmds.append(C.Deposit(f"b{i}", f"A{i}", "BTC", 10**17))
    return cmds


class Backend:
    """A fresh empty database per run: a SQLite file, or a PostgreSQL schema."""

    def __init__(self, kind: str, pg: str) -> None:
        self.kind, self.pg = kind, pg
        self.schema = ""

    def url(self, tmp: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{tmp}/store.sqlite"
        from sqlalchemy import create_engine, text

        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        e = create_engine(self.pg, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        e.dispose()
        return f"{self.pg}?options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        if self.schema:
            from sqlalchemy import create_engine, text

            e = create_engine(self.pg, isolation_level="AUTOCOMMIT")
            with e.connect() as c:
                c.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            e.dispose()
            self.schema = ""


class LagSampler:
    def __init__(self, venue: Any, store: Any, every: float = 0.01) -> None:
        self.venue, self.store, self.every = venue, store, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(self.venue.sequencer.durable_seq - self.store.last_seq)

    def __enter__(self) -> LagSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def start(tmp: str, url: str | None, mode: str = "follower") -> tuple[Any, Any]:
    from venue.core import Venue
    from venue.store import Store
    from venue.store.catchup import open_venue_with_store
    from venue.store.follower import StoreFollower

    v = Venue(tmp, fsync=True, snapshot_every=0)
    st: Any = None
    if url and mode == "follower":
        st = StoreFollower(tmp, url).open()
        v.open()
    elif url:
        st = Store(url).open()
        open_venue_with_store(v, st)
    else:
        v.open()
    v.start()
    if st is not None:
        st.start()
    for c in setup_commands():
        v.submit(c)
    last = v.execute(setup_commands()[0]).seq  # a refused duplicate marks the end of the setup
    if st is not None:
        st.wait_for(last, 120)
    return v, st


def flat_out(backend: Backend | None, ops: list, mode: str = "follower") -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="bstore")
    try:
        v, st = start(tmp, backend.url(tmp) if backend else None, mode)
        rows0 = st.rows_written if st else 0
        t0 = time.perf_counter()
        for c in ops[:-1]:
            v.submit(c)
        end = v.execute(ops[-1]).seq
        t_engine = time.perf_counter() - t0
        out = {"durable_commands_per_s": len(ops) / t_engine}
        if st is not None:
            st.wait_for(end, 600)
            t_store = time.perf_counter() - t0
            while hasattr(st, "status") and st.status().get("last_seq", 0) < end:  # the follower's count follows
                time.sleep(0.001)
            rows = st.rows_written - rows0
            out |= {"store_commands_per_s": len(ops) / t_store, "store_rows_per_s": rows / t_store,
                    "rows_per_command": rows / len(ops), "drain_s": t_store - t_engine}
        v.stop(snapshot=False)
        if st is not None:
            st.stop()
        return out
    finally:
        if backend:
            backend.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def paced(backend: Backend, ops: list, rate: int, seconds: float) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="bstore")
    try:
        v, st = start(tmp, backend.url(tmp))
        n = min(len(ops), int(rate * seconds))
        step = 0.005  # submit in 5 ms slices
        per = max(1, int(rate * step))
        with LagSampler(v, st) as lag:
            t0 = time.perf_counter()
            i = 0
            while i < n:
                for c in ops[i:i + per]:
                    v.submit(c)
                i += per
                ahead = t0 + (i / rate) - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            end = v.execute(ops[n]).seq
            st.wait_for(end, 600)
        s = sorted(lag.samples) or [0]
        v.stop(snapshot=False)
        st.stop()
        return {"max_lag": s[-1], "p99_lag": s[int(len(s) * 0.99) - 1 if len(s) > 1 else 0],
                "median_lag": statistics.median(s), "achieved_rate": n / (time.perf_counter() - t0)}
    finally:
        backend.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", type=int, default=50_000)
    ap.add_argument("--rate", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pg", default=PG_DEFAULT)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    w = generate(args.ops, 10_000, 7, N_ACCOUNTS)
    warm, ops = _engine_commands(w, len(setup_commands()) + 2)
    ops = warm + ops
    backends = [Backend(k, args.pg) for k in args.backends.split(",")]
    # "sqlite" = the follower (as the venue runs it), "sqlite_thread" = in-process
    runs = [(None, "follower", "none")] + [(b, m, b.kind + ("" if m == "follower" else "_thread"))
                                            for b in backends for m in ("follower", "thread")]
    res: dict[str, list[dict[str, float]]] = {name: [] for _, _, name in runs}
    for r in range(args.rounds):
        for b, mode, name in runs:
            out = flat_out(b, ops, mode)
            res[name].append(out)
            print(f"round {r + 1} {name:17s} " + "  ".join(f"{k} {v:,.1f}" for k, v in out.items()), flush=True)
    summary: dict[str, Any] = {"rounds": args.rounds, "commands": len(ops), "rate": args.rate,
                               "seconds": args.seconds}
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in res.items()}
    summary["none_durable_commands_per_s"] = round(med["none"]["durable_commands_per_s"])
    for _, _, name in runs[1:]:
        m = med[name]
        for k, v in m.items():
            summary[f"{name}_{k}"] = round(v, 2)
        summary[f"{name}_store_vs_none"] = round(m["durable_commands_per_s"] / med["none"]["durable_commands_per_s"], 2)
    for b in backends:
        p = paced(b, ops, args.rate, args.seconds)
        print(f"paced {b.kind:10s} " + "  ".join(f"{k} {v:,.1f}" for k, v in p.items()), flush=True)
        for k, v in p.items():
            summary[f"{b.kind}_paced_{k}"] = round(v, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
