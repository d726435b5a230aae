"""Where an order's round trip goes: per-stage latency of the venue's FIX order path.

    python bench/order_path_trace.py [--rate 2700] [--orders 5000] [--store]

Runs the venue as bench/fix_order_entry.py does (a fresh server process) and its client
paced open loop at ``--rate`` orders/s in all (two sessions), with timestamps taken at
each hand-off of every NewOrderSingle on its way (CLOCK_MONOTONIC, shared by both
processes):

  client send  -> inbox       QuickFIX reads, parses, validates, queues; the inbox thread takes it
  inbox        -> submit      the inbox decodes it and checks it (entitlements, throttle)
  submit       -> apply       waiting for the sequencer thread (its hand-off)
  apply        -> journal     the engine and framing of the rest of the step's batch
  journal      -> durable     append and fsync
  durable      -> send        the outbox builds the ExecutionReport and hands it to QuickFIX
  send         -> client recv QuickFIX sends; the client's receiver thread reads it

and prints each stage's p50/p90/p99 in ms (and the whole round trip's), the server's
garbage collections (count and longest pause per generation), each server thread's CPU
time and time spent waiting for a CPU (/proc schedstat: a machine short of cores shows
there, not in the interpreter lock), then one JSON line. The timestamps cost the server a few microseconds per order: a diagnostic, not the
benchmark (bench/fix_order_entry.py is).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import fix_order_entry as F  # noqa: E402

STAGES = ("inbox", "submit", "apply", "journal", "durable", "send")
now = time.perf_counter_ns


def _clid(raw: str) -> str | None:
    i = raw.find("\x0111=")
    if i < 0:
        return None
    j = raw.find("\x01", i + 4)
    return raw[i + 4:j]


def _sched() -> dict[str, tuple[float, float]]:
    """CPU seconds and seconds spent waiting for a CPU (the run queue) of each thread of
    this process so far, by name (QuickFIX's native threads together)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, tuple[float, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu, delay, _n = f.read().split()
        except OSError:
            continue
        name = names.get(int(tid), "quickfix/native")
        c, d = out.get(name, (0.0, 0.0))
        out[name] = (c + int(cpu) / 1e9, d + int(delay) / 1e9)
    return out


def serve(data_dir: str, out: str, store: bool) -> None:
    """The venue server of bench/fix_order_entry.py, with a timestamp at each stage."""
    from sessions.application import VenueApplication
    from venue.sequencer import Sequencer

    marks: dict[str, list[int]] = {}

    def mark(clid: str | None, stage: int, t: int) -> None:
        if clid is not None:
            row = marks.setdefault(clid, [0] * len(STAGES))
            if not row[stage]:
                row[stage] = t

    run_queued, submit, apply_, write, publish, send_many = (
        VenueApplication.run_queued, Sequencer.submit, Sequencer._apply, Sequencer._write, Sequencer._publish,
        VenueApplication.send_many)

    def t_run_queued(self, items):
        t = now()
        for kind, _msg, _sid, raw in items:
            if kind == 0:
                mark(_clid(raw), 0, t)
        return run_queued(self, items)

    def t_submit(self, cmd, origin=None):
        mark(getattr(cmd, "cl_ord_id", None), 1, now())
        return submit(self, cmd, origin)

    def t_apply(self, cmd, origin, records, items):
        mark(getattr(cmd, "cl_ord_id", None), 2, now())
        return apply_(self, cmd, origin, records, items)

    def t_write(self, data, last_seq, items):
        t = now()
        for p in items:
            if hasattr(p, "cmd"):
                mark(getattr(p.cmd, "cl_ord_id", None), 3, t)
        return write(self, data, last_seq, items)

    def t_publish(self, processed):
        t = now()
        for p in processed:
            mark(getattr(p.cmd, "cl_ord_id", None), 4, t)
        return publish(self, processed)

    def t_send_many(self, items):
        t = now()
        for it in items:
            msg = it[0]
            mark(_clid(msg if isinstance(msg, str) else msg.toString()), 5, t)
        return send_many(self, items)

    gc_runs: list[tuple[int, int, int]] = []  # (generation, ns, start) of every collection while serving
    gc_start = [0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = now()
        else:
            gc_runs.append((info["generation"], now() - gc_start[0], gc_start[0]))

    gc.callbacks.append(on_gc)
    sched: dict[str, Any] = {}  # per thread name: [CPU s, run-queue wait s], first and latest sample

    def sample_sched() -> None:
        while True:
            time.sleep(0.1)
            if marks:  # orders are running
                sched.setdefault("first", _sched())
                sched["last"] = _sched()

    threading.Thread(target=sample_sched, name="trace-sched", daemon=True).start()
    VenueApplication.run_queued = t_run_queued
    Sequencer.submit = t_submit
    Sequencer._apply = t_apply
    Sequencer._write = t_write
    Sequencer._publish = t_publish
    VenueApplication.send_many = t_send_many
    try:
        F.serve_venue(data_dir, store)
    finally:
        with open(out, "w") as f:
            first, last = sched.get("first", {}), sched.get("last", {})
            threads = {k: [round(v[0] - first.get(k, (0, 0))[0], 3), round(v[1] - first.get(k, (0, 0))[1], 3)]
                       for k, v in last.items()}
            json.dump({"marks": marks, "gc": gc_runs, "threads": threads}, f)


class _Sent(dict):
    """A session's sent_at that remembers every send and first acknowledgement."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[bytes, int] = {}
        self.acked: dict[bytes, int] = {}

    def __setitem__(self, k, v) -> None:
        self.sent[k] = v
        dict.__setitem__(self, k, v)

    def pop(self, k, d=None):
        v = dict.pop(self, k, d)
        if v is not None:
            self.acked[k] = now()
        return v


def pct(xs: list[int], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] / 1e6 if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2700.0, help="orders/s in all, open loop")
    ap.add_argument("--orders", type=int, default=5000, help="orders per session")
    ap.add_argument("--store", action="store_true", help="with the SQL store, as `venue demo` runs it")
    ap.add_argument("--serve", metavar="DATA_DIR")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.out, args.store)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "marks.json")
        data = os.path.join(d, "data")
        os.makedirs(data)
        srv, port = F.start_server([sys.executable, __file__, "--serve", data, "--out", out] + ["--store"] * args.store,
                                   "the venue")
        try:
            sessions = [F.ClientSession(port, comp, user, pw, side, args.orders, 50, seed=k, price_ticks=5_000_000,
                                        rate=args.rate / len(F.SESSIONS))
                        for k, (comp, user, pw, _, side) in enumerate(F.SESSIONS)]
            for s in sessions:
                s.sent_at = _Sent()
            threads = [threading.Thread(target=f) for s in sessions for f in (s.receiver, s.sender)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(60)
        with open(out) as f:
            traced = json.load(f)
        marks, gc_runs, server_threads = traced["marks"], traced["gc"], traced["threads"]
    spans: dict[str, list[int]] = {k: [] for k in ("client->" + STAGES[0], *[f"{a}->{b}" for a, b in
                                                                           zip(STAGES, STAGES[1:])],
                                                   STAGES[-1] + "->client", "round trip")}
    for s in sessions:
        for clid, t_sent in s.sent_at.sent.items():
            t_ack = s.sent_at.acked.get(clid)
            row = marks.get(clid.decode())
            if t_ack is None or row is None or not all(row):
                continue
            chain = [t_sent, *row, t_ack]
            for name, a, b in zip(spans, chain, chain[1:]):
                spans[name].append(b - a)
            spans["round trip"].append(t_ack - t_sent)
    n = len(spans["round trip"])
    print(f"{n} orders traced at {args.rate:,.0f}/s")
    result = {}
    for name, xs in spans.items():
        result[name] = {"p50_ms": round(pct(xs, 0.5), 3), "p90_ms": round(pct(xs, 0.9), 3),
                        "p99_ms": round(pct(xs, 0.99), 3), "mean_ms": round(statistics.fmean(xs) / 1e6, 3) if xs else None}
        r = result[name]
        print(f"{name:18s} p50 {r['p50_ms']:7.3f}  p90 {r['p90_ms']:7.3f}  p99 {r['p99_ms']:7.3f}  "
              f"mean {r['mean_ms']:7.3f} ms")
    t_first = min(t for s in sessions for t in s.sent_at.sent.values())
    t_last = max(t for s in sessions for t in s.sent_at.acked.values())
    gcs = {g: [ns for gen, ns, at in gc_runs if gen == g and t_first <= at <= t_last] for g in (0, 1, 2)}
    gc_summary = {f"gen{g}": {"runs": len(v), "max_ms": round(max(v) / 1e6, 3) if v else 0.0} for g, v in gcs.items()}
    print("garbage collections in the server while orders ran: " + ", ".join(f"{k} {v['runs']} (longest {v['max_ms']} ms)"
                                                            for k, v in gc_summary.items()))
    busy = {k: v for k, v in sorted(server_threads.items(), key=lambda kv: -kv[1][0]) if v[0] >= 0.01 or v[1] >= 0.01}
    print("server threads while orders ran, [CPU s, waiting for a CPU s]: " + json.dumps(busy))
    print(json.dumps({"rate": args.rate, "orders": n, "stages": result, "gc": gc_summary, "threads": busy}))


if __name__ == "__main__":
    main()
