"""Throughput of the order book, the whole engine, and the journal, against a naive
reference book measured in the same run.

    python bench/engine.py [--rounds 5] [--ops 200000] [--warm 10000]

Contenders, each in a fresh process, interleaved round by round (these machines are
shared and noisy; the figures are medians):

  book       the venue's OrderBook alone: matching and resting with the venue's Order
             objects, no risk, no ledger, no events
  engine     the whole engine as the venue builds it (venue.factory.build_engine):
             validation, pre-trade risk and margin checks, reservation, matching, ledger
             settlement, events (no journal I/O); the accounts are cash accounts with no
             risk limits set, so risk and margin each run their checks and find nothing
  reference  bench/reference_book.py: SortedDict + deque, cancel by deque.remove
  journal    commands encoded, framed, appended and fdatasync'ed by a writer thread in
             group commits while a producer thread keeps appending
  durable    the whole venue: commands submitted to the sequencer, processed by the
             engine, journaled with fsync group commit, published once durable

All contenders run with the venue's production GC setting (venue.core.tune_gc), and the
venue's contenders with the engine as installed: compiled by mypyc when ``pip install``
could compile it (setup.py), else pure Python; the summary says which. The workload
(bench/workload.py): a 10k-order warm book, then 60% passive limits within 10 ticks of the
touch, 25% cancels of random resting orders, 15% aggressive limits 0-2 ticks through the
touch. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.workload import CANCEL, LIMIT, Workload, generate  # noqa: E402

N_ACCOUNTS = 100


# ---------------------------------------------------------------------------- children
def _bench_instrument():
    from venue.instruments import DEFAULT_ASSETS, Instrument

    a = {x.code: x for x in DEFAULT_ASSETS}
    # BTC-USD sizes without the 1 USD minimum notional, so that every workload order is valid
    return Instrument.create("BENCH-USD", a["BTC"], a["USD"], "0.01", "0.00001", "0.00001", "100000",
                             "0.00000001", "1000000000")


def _engine_setup():
    from venue import commands as C
    from venue.factory import build_engine
    from venue.genesis import genesis_commands

    cmds = genesis_commands() + [C.DefineInstrument(_bench_instrument().to_record()), C.CreateFirm("F")]
    for i in range(N_ACCOUNTS):
        cmds.append(C.CreateAccount(f"A{i}", "F", 1, 100, 500))
        cmds.append(C.Deposit(f"u{i}", f"A{i}", "USD", 10**22))
        cmds.append(C.Deposit(f"b{i}", f"A{i}", "BTC", 10**17))
    e = build_engine()
    for seq, c in enumerate(cmds, 1):
        e.process(seq, seq, c)
    return e


def _engine_commands(w: Workload, first_seq: int) -> tuple[list, list]:
    """The workload as engine commands. An order's id is the seq of its NewOrder, known
    in advance because every command takes exactly one seq."""
    from venue import commands as C
    from venue.types import BUY, LIMIT as VLIMIT, SELL

    ids: dict[int, tuple[int, str]] = {}
    out_warm, out_ops = [], []
    seq = first_seq
    for lst, out in ((w.warm, out_warm), (w.ops, out_ops)):
        for op in lst:
            if op.kind == LIMIT:
                acct = f"A{op.account}"
                ids[op.oid] = (seq, acct)
                out.append(C.NewOrder(acct, f"c{op.oid}", "BENCH-USD", BUY if op.side == 0 else SELL, VLIMIT,
                                      op.qty, op.price))
            else:
                oid, acct = ids[op.oid]
                out.append(C.CancelOrder(acct, f"x{op.oid}", order_id=oid))
            seq += 1
    return out_warm, out_ops


def child(kind: str, path: str) -> float:
    with open(path, "rb") as f:
        w: Workload = pickle.load(f)
    from venue.core import tune_gc

    if kind == "reference":
        from bench.reference_book import ReferenceBook

        b = ReferenceBook()
        for op in w.warm:
            b.limit(op.oid, op.side, op.price, op.qty)
        lim, can = b.limit, b.cancel
        ops = w.ops
        tune_gc()
        t = time.perf_counter()
        for op in ops:
            if op.kind == LIMIT:
                lim(op.oid, op.side, op.price, op.qty)
            else:
                can(op.oid)
        return len(ops) / (time.perf_counter() - t)

    if kind == "book":
        from venue.book import OrderBook
        from venue.events import OrderInfo
        from venue.ledger import Ledger
        from venue.orders import Order
        from venue.types import BUY, SELL, STP_CN

        led = Ledger()
        firm = led.add_firm("F")
        accts = [led.add_account(f"A{i}", firm) for i in range(N_ACCOUNTS)]
        info = OrderInfo(0, "", "", "X", 1, 2, 1, 0, 0, 0, 0, "", 0, 1, False, "", 0)
        book = OrderBook("X")
        resting: dict[int, Order] = {}
        out: list = []

        def limit(op) -> None:
            o = Order(op.oid, accts[op.account], info, BUY if op.side == 0 else SELL, 2, 1, op.price, 0, op.qty,
                      0, 1, STP_CN, 0, 0)
            book.match(o, op.price, out)
            for rec in out:
                if rec[0] == 2:  # M_FILL_DONE
                    del resting[rec[1].id]
            out.clear()
            if o.leaves:
                o.visible = o.leaves
                book.rest(o)
                resting[o.id] = o

        for op in w.warm:
            limit(op)
        remove = book.remove
        tune_gc()
        t = time.perf_counter()
        for op in w.ops:
            if op.kind == LIMIT:
                limit(op)
            else:
                remove(resting.pop(op.oid))
        return len(w.ops) / (time.perf_counter() - t)

    if kind == "engine":
        e = _engine_setup()
        warm, ops = _engine_commands(w, e.seq + 1)
        seq = e.seq
        for c in warm:
            seq += 1
            e.process(seq, seq, c)
        process = e.process
        tune_gc()
        t = time.perf_counter()
        for c in ops:
            seq += 1
            process(seq, seq, c)
        dt = time.perf_counter() - t
        e.check_invariants()
        return len(ops) / dt

    if kind == "journal":
        from venue import commands as C
        from venue.codec import encode
        from venue.journal import JournalWriter, frame

        _, ops = _engine_commands(w, 1)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            jw = JournalWriter(d, fsync=True)
            jw.open()
            pending: list[bytes] = []
            lock = threading.Condition()
            done = [False, 0, 0]  # producer finished, durable count, groups

            def writer() -> None:
                while True:
                    with lock:
                        while not pending and not done[0]:
                            lock.wait()
                        if not pending and done[0]:
                            return
                        group = pending[:]
                        pending.clear()
                    jw.append(b"".join(group), done[1] + len(group))
                    jw.sync()
                    done[1] += len(group)
                    done[2] += 1

            th = threading.Thread(target=writer)
            tune_gc()
            t = time.perf_counter()
            th.start()
            ts = 1
            for i, c in enumerate(ops, 1):
                rec = frame(encode(i, ts, c))
                with lock:
                    pending.append(rec)
                    lock.notify()
            with lock:
                done[0] = True
                lock.notify()
            th.join()
            dt = time.perf_counter() - t
            jw.close()
            assert done[1] == len(ops)
            print(json.dumps({"groups": done[2], "avg_group": round(done[1] / done[2], 1)}), file=sys.stderr)
            return len(ops) / dt

    if kind == "durable":
        from venue import commands as C
        from venue.core import Venue
        from venue.genesis import genesis_commands

        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            v = Venue(d, snapshot_every=0)
            v.open()
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
            last = seq0 + len(warm) + len(ops)
            finished = threading.Event()
            v.subscribe(lambda batch: finished.set() if batch[-1].seq >= last else None)
            t = time.perf_counter()
            submit = v.submit
            for c in ops:
                submit(c)
            finished.wait(600)
            dt = time.perf_counter() - t
            v.stop(snapshot=False)
            return len(ops) / dt
    raise SystemExit(f"unknown contender {kind}")


# ---------------------------------------------------------------------------- parent
KINDS = ("reference", "book", "engine", "journal", "durable")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", type=int, default=200_000)
    ap.add_argument("--warm", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default=",".join(KINDS), help="comma-separated contenders")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps({"ops_per_s": child(args.child, args.workload)}))
        return
    kinds = [k for k in args.only.split(",") if k]
    import venue.engine

    compiled = not venue.engine.__file__.endswith(".py")
    print(f"engine: {'compiled (mypyc)' if compiled else 'pure Python (not compiled, see setup.py)'}")
    t = time.perf_counter()
    w = generate(n=args.ops, warm=args.warm, seed=args.seed)
    print(f"workload: {len(w.warm)} warm orders, {len(w.ops)} commands, seed {args.seed} "
          f"({time.perf_counter() - t:.1f}s to generate)")
    results: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(w, f)
        path = f.name
    try:
        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]  # rotate who goes first
            for k in order:
                p = subprocess.run([sys.executable, __file__, "--child", k, "--workload", path],
                                   capture_output=True, text=True, check=True)
                v = json.loads(p.stdout.strip().splitlines()[-1])["ops_per_s"]
                results[k].append(v)
                extra = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
                print(f"round {r + 1} {k:9s} {v:12,.0f} ops/s {extra}", flush=True)
    finally:
        os.unlink(path)
    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    for k in kinds:
        vals = ", ".join(f"{x:,.0f}" for x in results[k])
        print(f"{k:9s} median {med[k]:12,.0f} ops/s   runs: {vals}")
    ref = med.get("reference")
    summary: dict[str, object] = {"rounds": args.rounds, "ops": args.ops, "warm": args.warm, "seed": args.seed,
                                  "engine_compiled": compiled}
    names = {"book": "book_ops_per_s", "engine": "engine_ops_per_s", "reference": "reference_ops_per_s",
             "journal": "journal_commands_per_s", "durable": "durable_engine_commands_per_s"}
    for k in kinds:
        summary[names[k]] = round(med[k])
    if ref:
        if "book" in med:
            summary["book_vs_reference"] = round(med["book"] / ref, 2)
            print(f"book   / reference = {med['book'] / ref:.2f}x (target >= 3x)")
        if "engine" in med:
            summary["engine_vs_reference"] = round(med["engine"] / ref, 2)
            print(f"engine / reference = {med['engine'] / ref:.2f}x (target >= 1.5x)")
    if "journal" in med:
        print(f"journal: {med['journal']:,.0f} durable commands/s (target >= 50,000)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
