"""What market-data fan-out costs the engine, and how long a trade takes to reach a subscriber.

    python bench/market_data.py [--rounds 5] [--ops 100000] [--warm 10000]
                                [--subscriber bench.market_data:inproc_subscriber]

Contenders, each in a fresh process, interleaved round by round (shared, noisy machines:
the figures are medians), all on the durable pipeline of bench/engine.py (commands
submitted to the sequencer, processed, journaled with fsync group commit, published):

  none     no market data at all (the reference: the durable venue alone)
  md0      the market-data hub attached (books, tape, bars kept), no subscriber
  md10     10 subscribers
  md100    100 subscribers

Subscribers cycle through four shapes of the first instrument (L2 depth 1, L2 depth 10,
L2 full depth, L3), all with trades. The default subscriber is in-process and pushed by
the hub's dispatcher thread: it counts entries and records latencies, nothing more; a
FIX market-data session is substituted with ``--subscriber module:function``, a
function ``(md, spec, recorder) -> handle with close()`` that feeds what it delivers to
``recorder.delivered(messages)``.

Latency: a venue listener registered before the hub stamps each durable batch
(``perf_counter_ns``) when the journal thread publishes it; a subscriber stamps each
increment carrying trades when it is handed the increment. The delay is the difference,
for every subscriber and every such increment (p50/p99). It is measured twice: under
the saturating flow above (batches of thousands of commands, the queueing of a venue at
full speed included), and in paced runs at ``--rate`` commands per second.

The saturating flow makes batches large, so whatever the fan-out does once per batch
is spread over thousands of commands. The paced runs (none, md0, md100 at ``--rate``)
make batches small and show the fan-out's own cost: CPU time of the whole process per
command (every thread, the submitter included).

Target: 100 subscribers cost the engine at most 25% of its throughput with market data
(md100 / md0 >= 0.75). The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.engine import N_ACCOUNTS, _bench_instrument, _engine_commands  # noqa: E402
from bench.workload import Workload, generate  # noqa: E402

KINDS = ("none", "md0", "md10", "md100")
PACED = ("none", "md0", "md100")
SUBSCRIBERS = {"none": 0, "md0": 0, "md10": 10, "md100": 100}


class Recorder:
    """Collects delivery delays of increments that carry trades (a deliberately minimal
    subscriber: what is measured is the fan-out, not a session's encoding)."""

    def __init__(self, durable_at: dict[int, int]) -> None:
        from marketdata import Increment

        self.increment = Increment
        self.durable_at = durable_at
        self.delays_ns: list[int] = []
        self.messages = 0
        self.last_seq = 0

    def delivered(self, msgs: list[Any]) -> None:
        now = time.perf_counter_ns()
        self.messages += len(msgs)
        self.last_seq = msgs[-1].seq
        inc, at = self.increment, self.durable_at
        for m in msgs:
            if type(m) is inc and m.trades:
                t0 = at.get(m.seq)
                if t0 is not None:
                    self.delays_ns.append(now - t0)


def inproc_subscriber(md: Any, spec: Any, recorder: Recorder) -> Any:
    """The default subscriber: pushed by the hub's dispatcher, records and counts."""
    return md.subscribe(spec, recorder.delivered)


def _specs(symbol: str, n: int) -> list[Any]:
    from marketdata import Book, FeedSpec

    shapes = [FeedSpec(symbol, Book.L2, 1), FeedSpec(symbol, Book.L2, 10), FeedSpec(symbol, Book.L2, 0),
              FeedSpec(symbol, Book.L3)]
    return [shapes[i % len(shapes)] for i in range(n)]


def _load_factory(path: str) -> Callable[..., Any]:
    mod, _, fn = path.partition(":")
    return getattr(importlib.import_module(mod), fn)


def child(kind: str, path: str, factory_path: str, rate: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        w: Workload = pickle.load(f)
    from marketdata import MarketData
    from venue import commands as C
    from venue.core import Venue
    from venue.genesis import genesis_commands

    n_subs = SUBSCRIBERS[kind]
    factory = _load_factory(factory_path)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        v = Venue(d, snapshot_every=0)
        v.open()
        durable_at: dict[int, int] = {}
        batches = [0]

        def stamp(batch: list[Any]) -> None:
            durable_at[batch[-1].seq] = time.perf_counter_ns()
            batches[0] += 1

        v.subscribe(stamp)
        md = None
        if kind != "none":
            md = MarketData()
            md.attach(v)
        v.start()
        setup = genesis_commands() + [C.DefineInstrument(_bench_instrument().to_record()), C.CreateFirm("F")]
        for i in range(N_ACCOUNTS):
            setup += [C.CreateAccount(f"A{i}", "F", 1, 100, 500), C.Deposit(f"u{i}", f"A{i}", "USD", 10**22),
                      C.Deposit(f"b{i}", f"A{i}", "BTC", 10**17)]
        for c in setup:
            v.submit(c)
        seq0 = v.query(lambda e: e.seq)
        warm, ops = _engine_commands(w, seq0 + 1)
        for c in warm:
            v.submit(c)
        v.query(lambda e: e.seq)
        recorders: list[Recorder] = []
        handles = []
        if md is not None:
            for spec in _specs("BENCH-USD", n_subs):
                r = Recorder(durable_at)
                recorders.append(r)
                handles.append(factory(md, spec, r))
            end = time.perf_counter() + 60
            while any(not r.messages for r in recorders) and time.perf_counter() < end:
                time.sleep(0.001)  # every subscriber has its first snapshot before the clock starts
        last = seq0 + len(warm) + len(ops)
        finished = threading.Event()
        v.subscribe(lambda batch: finished.set() if batch[-1].seq >= last else None)
        batches[0] = 0
        submit = v.submit
        cpu0 = time.process_time()
        t = time.perf_counter()
        if rate:
            gap = 1.0 / rate
            for i, c in enumerate(ops):
                due = t + i * gap
                ahead = due - time.perf_counter()
                if ahead > 0.0005:
                    time.sleep(ahead)
                submit(c)
        else:
            for c in ops:
                submit(c)
        finished.wait(600)
        dt = time.perf_counter() - t
        cpu = time.process_time() - cpu0
        n_batches = batches[0]
        # how long until every subscriber has been handed the last increment
        drain_end = time.perf_counter() + 30
        while recorders and time.perf_counter() < drain_end:
            if all(r.messages and r.last_seq >= max(durable_at) - 0 for r in recorders):
                break
            time.sleep(0.001)
        drain = time.perf_counter() - t - dt
        resnapshots = sum(getattr(h, "resnapshots", 0) for h in handles)
        for h in handles:
            h.close()
        v.stop(snapshot=False)
        if md is not None:
            md.close()
    delays = sorted(x for r in recorders for x in r.delays_ns)
    return {
        "ops_per_s": len(ops) / dt,
        "cpu_us_per_cmd": cpu / len(ops) * 1e6,  # every thread of the process, submitter included
        "batches": n_batches,
        "delays_us": [round(x / 1000, 1) for x in delays[:: max(1, len(delays) // 20000)]],  # a sample
        "n_delays": len(delays),
        "messages": sum(r.messages for r in recorders),
        "resnapshots": resnapshots,
        "drain_ms": round(drain * 1000, 1),
    }


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--warm", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=int, default=5_000, help="commands/s of the paced latency run (0 = skip it)")
    ap.add_argument("--paced-ops", type=int, default=15_000)
    ap.add_argument("--only", default=",".join(KINDS), help="comma-separated contenders")
    ap.add_argument("--subscriber", default="bench.market_data:inproc_subscriber",
                    help="module:function making one subscriber (see the module docstring)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--child-rate", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workload, args.subscriber, args.child_rate)))
        return
    kinds = [k for k in args.only.split(",") if k]
    w = generate(n=args.ops, warm=args.warm, seed=args.seed)
    wp = generate(n=args.paced_ops, warm=args.warm, seed=args.seed + 1) if args.rate else None
    print(f"workload: {len(w.warm)} warm orders, {len(w.ops)} commands, seed {args.seed}; subscriber "
          f"{args.subscriber}")
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    paced: dict[str, list[dict[str, Any]]] = {k: [] for k in PACED}
    paths = []
    try:
        for wl in (w, wp):
            with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
                pickle.dump(wl, f)
                paths.append(f.name)

        def run(kind: str, path: str, rate: int = 0) -> dict[str, Any]:
            p = subprocess.run([sys.executable, __file__, "--child", kind, "--workload", path, "--subscriber",
                                args.subscriber, "--child-rate", str(rate)], capture_output=True, text=True)
            if p.returncode:
                sys.stderr.write(p.stderr)
                raise SystemExit(f"contender {kind} failed")
            return json.loads(p.stdout.strip().splitlines()[-1])

        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for k in order:
                res = run(k, paths[0])
                results[k].append(res)
                lat = (f"delay p50 {_pct(res['delays_us'], 0.5):8.0f} us  p99 {_pct(res['delays_us'], 0.99):8.0f} us"
                       if res["n_delays"] else "")
                print(f"round {r + 1} {k:6s} {res['ops_per_s']:10,.0f} ops/s  {res['cpu_us_per_cmd']:5.1f} CPU us/cmd  "
                      f"{res['batches']:5d} batches  "
                      f"{res['messages']:8d} msgs  {lat}  resnapshots {res['resnapshots']}  "
                      f"drain {res['drain_ms']} ms", flush=True)
            if wp is not None:
                for k in PACED:
                    res = run(k, paths[1], args.rate)
                    paced[k].append(res)
                    lat = (f", delay p50 {_pct(res['delays_us'], 0.5):.0f} us p99 {_pct(res['delays_us'], 0.99):.0f} us"
                           if res["n_delays"] else "")
                    print(f"round {r + 1} {k:6s} paced at {args.rate}/s: {res['ops_per_s']:,.0f} ops/s, "
                          f"{res['cpu_us_per_cmd']:.1f} CPU us/command, {res['batches']} batches{lat}", flush=True)
    finally:
        for p in paths:
            os.unlink(p)
    med = {k: statistics.median(x["ops_per_s"] for x in v) for k, v in results.items()}
    print()
    for k in kinds:
        runs = ", ".join(f"{x['ops_per_s']:,.0f}" for x in results[k])
        print(f"{k:6s} median {med[k]:10,.0f} ops/s   runs: {runs}")
    summary: dict[str, Any] = {"rounds": args.rounds, "ops": args.ops, "warm": args.warm, "seed": args.seed,
                               "subscriber": args.subscriber}
    cpu_med = {k: statistics.median(x["cpu_us_per_cmd"] for x in v) for k, v in results.items()}
    for k in kinds:
        summary[f"{k}_ops_per_s"] = round(med[k])
        summary[f"{k}_cpu_us_per_cmd"] = round(cpu_med[k], 2)
    print("CPU per command (every thread of the process; steadier than throughput on a shared machine): "
          + ", ".join(f"{k} {cpu_med[k]:.1f} us" for k in kinds))
    if "md0" in med:
        for k in ("md10", "md100"):
            if k in med:
                ratio = med[k] / med["md0"]
                summary[f"{k}_vs_md0"] = round(ratio, 3)
                print(f"{k} / md0  = {ratio:.3f}  (cost {100 * (1 - ratio):.1f}% of the engine's throughput"
                      f"{'; target <= 25%' if k == 'md100' else ''})")
        if "none" in med:
            summary["md0_vs_none"] = round(med["md0"] / med["none"], 3)
            print(f"md0 / none = {med['md0'] / med['none']:.3f}  (what keeping the books costs)")
            if "md100" in med:
                summary["md100_vs_none"] = round(med["md100"] / med["none"], 3)
                print(f"md100 / none = {med['md100'] / med['none']:.3f}")
    for k in ("md10", "md100"):
        if k in results:
            delays = [d for x in results[k] for d in x["delays_us"]]
            summary[f"{k}_delay_p50_us"] = round(_pct(delays, 0.5))
            summary[f"{k}_delay_p99_us"] = round(_pct(delays, 0.99))
            print(f"{k}: trade durable -> increment at the subscriber, saturated: p50 "
                  f"{summary[f'{k}_delay_p50_us']} us, p99 {summary[f'{k}_delay_p99_us']} us")
    if wp is not None:
        summary["paced_rate"] = args.rate
        cpu = {k: statistics.median(x["cpu_us_per_cmd"] for x in v) for k, v in paced.items()}
        for k in PACED:
            summary[f"paced_{k}_cpu_us_per_cmd"] = round(cpu[k], 2)
        print(f"at {args.rate} commands/s, CPU per command: " + ", ".join(f"{k} {cpu[k]:.1f} us" for k in PACED))
        summary["paced_md100_cpu_vs_md0"] = round(cpu["md100"] / cpu["md0"], 3)
        print(f"  md100 / md0 CPU = {cpu['md100'] / cpu['md0']:.3f} (small batches: the fan-out's own cost shows)")
        delays = [d for x in paced["md100"] for d in x["delays_us"]]
        summary["paced_md100_delay_p50_us"] = round(_pct(delays, 0.5))
        summary["paced_md100_delay_p99_us"] = round(_pct(delays, 0.99))
        print(f"md100 at {args.rate} commands/s, trade durable -> increment at the subscriber: p50 "
              f"{summary['paced_md100_delay_p50_us']} us, p99 {summary['paced_md100_delay_p99_us']} us")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
