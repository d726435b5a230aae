"""What market-data sessions cost the engine, and how long a trade takes to reach them.

    python bench/market_data.py [--rounds 5] [--ops 100000] [--warm 10000] [--rate 5000]
                                [--paced-ops 15000] [--subscribers fix|inproc] [--conflate S]
                                [--only none,md0,md10,md100] [--md-in-process]

Contenders, each in a fresh process, interleaved round by round (shared, noisy machines:
the figures are medians), all on the durable pipeline of bench/engine.py (commands
submitted to the sequencer, processed, journaled with fsync group commit, published):

  none     no market data at all (the durable venue alone)
  md0      the market-data hub attached and the FIX server running (logon gateways,
           QuickFIX acceptors without file logs, 100 market-data sessions defined and
           served, as in ``venue demo``, by the market-data process, which follows the
           hub), no session logged on
  md10     10 FIX market-data sessions logged on and subscribed
  md100    100 of them

The sessions are venue data, as in ``venue demo``: a firm, a user and 100 sessions
(role market_data) created by journaled commands. A separate client process logs each
on through the market-data gateway (a raw FIX socket per session, all read with
``selectors``) and subscribes it with snapshot + updates (263=1) to BENCH-USD in one of
four shapes in turn: L2 depth 1, L2 depth 10, L2 full depth, L3 (order by order), all
with trades. The clock starts once every session has its first W. The client reads
everything as it comes (answering TestRequests) and, on every 5th session (all four
shapes, all places in the dispatch order), stamps when it received the first X carrying
each trade (TradeID 1003): every trade in the paced runs, one in ten (by seq) in the
saturated ones. It shares the 2-core machine with the venue, so it reads cheaply (large
reads, no parsing; the other sessions only count bytes, so X messages and resnapshots
are counted on every 5th session and scaled); its CPU is reported.

Delay: a venue listener registered before the hub stamps each durable batch
(``time.monotonic_ns``, one clock for both processes) when the venue publishes
it; the delay of a trade is the client's receive stamp minus the stamp of the batch
that holds it: hub, FIX encoding, QuickFIX, the gateway, TCP and the client's read.

Two measurements:

- Saturated: every command submitted at once. Two figures: *durable*, commands per
  second until the last one is durable (the engine alone: market data runs behind it,
  on other threads, and the clock does not wait for it), and *delivered*, commands per
  second until every session has received its last X (the engine and the fan-out). The
  venue commits in huge batches here (thousands of commands each), so what market data
  does once per batch (an increment per feed, an X per session) is spread over
  thousands of commands, while the bytes of the book and the tape are not.
- Paced at ``--rate`` commands/s (none, md0, md100): batches of a few commands, so every
  few commands each session gets an X. This shows the per-event cost the saturated run
  hides: CPU time of the venue process per command (every thread: sequencer, journal,
  hub, outbox, QuickFIX, gateway; the client process excluded, its CPU reported apart),
  and the delay percentiles at a realistic load.

Target: 100 subscribed FIX sessions cost the engine at most 25% of its throughput. It is
checked against the *delivered* ratio, saturated md100 delivered / md0 (medians of the
per-round ratios, both measured in the same rounds; ``target_met`` in the JSON), because
throughput is only defined at saturation, and because the durable ratio alone would
pass however far behind the engine the market data fell: a venue that keeps its pace
while its feed lags by seconds has not kept its throughput for its subscribers. The
durable ratio is printed too, and the paced CPU per command beside it (what the same
sessions cost when batches are small; at the paced rate the venue is not at its limit,
so that is a cost, not a throughput).

The venue is its two processes: the CPU per command counts the market-data process too
(also reported alone, ``md_process_cpu_s``). ``--md-in-process`` serves the sessions in
the venue's process instead (``FixConfig.market_data_process=False``), for comparison.

Each run also reports the CPU of each thread of the venue process (``threads_cpu_s``,
QuickFIX's own threads as "quickfix/native") and the time each waited for a CPU
(``threads_runq_s``), the bytes the client received per shape,
resnapshots and stalls. ``--subscribers inproc`` replaces the FIX sessions by in-process
hub subscribers (the fan-out without FIX), for comparison; ``--conflate`` sets
MarketDataSessions.conflate. With ``BENCH_PROFILE=file`` each contender's venue process
records a py-spy profile (raw format; ``BENCH_PROFILE_ARGS="--native --idle"`` for more)
from the start of the timed flow until its fan-out is done: use ``--only md100
--rounds 1``. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import pickle
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.engine import N_ACCOUNTS, _bench_instrument, _engine_commands  # noqa: E402
from bench.workload import Workload, generate  # noqa: E402

KINDS = ("none", "md0", "md10", "md100")
PACED = ("none", "md0", "md100")
SUBSCRIBERS = {"none": 0, "md0": 0, "md10": 10, "md100": 100}
N_SESSIONS = 100  # defined in every contender with market data
SYMBOL = "BENCH-USD"
PASSWORD = "md-bench"
# (MarketDepth, AggregatedBook): L2 depth 1, L2 depth 10, L2 full depth, L3
SHAPES = ((1, "Y"), (10, "Y"), (0, "Y"), (0, "N"))
RECORDED = 5  # every 5th session stamps trades (all four shapes, all places in the dispatch order)


def comp_id(i: int) -> str:
    return f"MDB-{i:03d}"


# ================================================================== the client process
class _Conn:
    __slots__ = ("i", "sock", "seq", "carry", "state", "seen", "bytes", "xs", "ws")

    def __init__(self, i: int, sock: socket.socket) -> None:
        self.i = i
        self.sock = sock
        self.seq = 1
        self.carry = b""
        self.state = "logon"  # logon -> subscribed -> live
        self.seen: set[int] = set()
        self.bytes = 0
        self.xs = 0
        self.ws = 0


def _fix(msg_type: str, sender: str, seq: int, fields: list[tuple[int, Any]]) -> bytes:
    now = datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    body = f"35={msg_type}\x0149={sender}\x0156=VENUE\x0134={seq}\x0152={now}\x01" + "".join(
        f"{t}={v}\x01" for t, v in fields)
    head = f"8=FIX.4.4\x019={len(body)}\x01"
    raw = (head + body).encode()
    return raw + f"10={sum(raw) % 256:03d}\x01".encode()


def _trade_pattern(sample: int) -> re.Pattern[bytes]:
    """TradeID(1003) entries of trades whose seq is a multiple of ``sample`` (a power of ten)."""
    zeros = b"0" * (len(str(sample)) - 1)
    return re.compile(rb"\x011003=(\d*" + zeros + rb")-\d+\x01" if zeros else rb"\x011003=(\d+)-\d+\x01")


_TEST_REQ = re.compile(rb"\x0135=1\x01.*?\x01112=([^\x01]*)\x01", re.S)


def client(port: int, n: int, sample: int) -> None:
    """Log ``n`` sessions on, subscribe each, print "ready" once every one has its W,
    then read until told "stop" on stdin (and the sockets are quiet); print the result.
    It shares the machine with the venue, so it reads cheaply: large reads, no parsing,
    C-level counting and a regex that only matches the sampled trades."""
    trade = _trade_pattern(sample)
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Conn(i, s)
        s.sendall(_fix("A", comp_id(i), 1, [(98, 0), (108, 300), (141, "Y"), (553, "mdbench"), (554, PASSWORD)]))
        c.seq = 2
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, c)
        conns.append(c)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    records: list[tuple[int, int]] = []  # (trade seq, receive ns), first X of each sampled trade per session
    cpu_ready = 0.0
    ready = 0
    stop_at = 0.0
    last_data = time.monotonic()
    last_ns = 0
    while True:
        timeout = 0.05 if stop_at else 1.0
        events = sel.select(timeout)
        now_m = time.monotonic()
        for key, _ in events:
            c = key.data
            if c is None:
                line = sys.stdin.readline()
                if not line or line.startswith("stop"):
                    stop_at = now_m
                    sel.unregister(sys.stdin)
                continue
            try:
                data = c.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            t = time.monotonic_ns()
            if not data:
                sel.unregister(c.sock)
                continue
            last_data, last_ns = now_m, t
            c.bytes += len(data)
            if c.state == "live" and c.i % RECORDED:
                continue  # after its W, a session that stamps nothing only reads (and counts bytes)
            buf = c.carry + data if c.carry else data  # no copy of what is scanned, but the carry
            end = buf.rfind(b"\x01") + 1  # whole fields only; the rest waits for the next read
            c.carry = buf[end:]
            xs = buf.count(b"\x0135=X\x01", 0, end)
            ws = buf.count(b"\x0135=W\x01", 0, end)
            c.xs += xs
            c.ws += ws
            if c.state == "logon" and buf.find(b"\x0135=A\x01", 0, end) >= 0:
                depth, agg = SHAPES[c.i % len(SHAPES)]
                c.sock.sendall(_fix("V", comp_id(c.i), c.seq, [
                    (262, f"b{c.i}"), (263, 1), (264, depth), (265, 1), (266, agg), (267, 3), (269, 0), (269, 1),
                    (269, 2), (146, 1), (55, SYMBOL)]))
                c.seq += 1
                c.state = "subscribed"
            if c.state == "subscribed" and ws:
                c.state = "live"
                c.ws -= 1  # the first W is the subscription's, not a resnapshot
                ready += 1
                if ready == n:
                    print("ready", flush=True)
                    cpu_ready = time.process_time()
            if xs and c.i % RECORDED == 0:
                seen = c.seen
                for m in trade.finditer(buf, 0, end):  # the regex picks the sample: no Python work for the rest
                    seq = int(m.group(1))
                    if seq not in seen:
                        seen.add(seq)
                        records.append((seq, t))
            if buf.find(b"\x0135=1\x01", 0, end) >= 0:
                for m in _TEST_REQ.finditer(buf, 0, end):
                    c.sock.sendall(_fix("0", comp_id(c.i), c.seq, [(112, m.group(1).decode())]))
                    c.seq += 1
        if stop_at and now_m - last_data > 0.5:
            break
    by_shape = [sum(c.bytes for c in conns if c.i % len(SHAPES) == k) for k in range(len(SHAPES))]
    recorded = [c for c in conns if c.i % RECORDED == 0]  # X and resnapshots: counted on these, scaled
    out = {"records": records, "bytes": sum(c.bytes for c in conns),
           "x": round(sum(c.xs for c in recorded) * n / len(recorded)),
           "resnapshots": round(sum(c.ws for c in recorded) * n / len(recorded)), "last_ns": last_ns, "bytes_by_shape": by_shape,
           "client_cpu_s": round(time.process_time() - cpu_ready, 3)}
    for c in conns:
        c.sock.close()
    print(json.dumps(out), flush=True)


# ================================================================== the venue process
def _thread_cpu(which: str = "cpu", pid: int | None = None) -> dict[str, float]:
    """Seconds of each thread of this process (or of process ``pid``) so far, by thread
    name (QuickFIX's own threads, which Python does not know, and every thread of another
    process, together as "quickfix/native"): ``cpu`` on a CPU, or ``wait`` runnable but
    waiting for one (the run queue, /proc schedstat)."""
    names = {t.native_id: t.name for t in threading.enumerate()} if pid is None else {}
    task = f"/proc/{pid or 'self'}/task"
    out: dict[str, float] = {}
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/schedstat") as f:
                on_cpu, waited = f.read().split()[:2]
        except OSError:
            continue
        name = names.get(int(tid), "quickfix/native")
        name = name.split("_")[0] if name.startswith("gw-") else name  # the gateways' worker pools
        out[name] = out.get(name, 0.0) + int(on_cpu if which == "cpu" else waited) / 1e9
    return out


class _InprocRecorder:
    """``--subscribers inproc``: a hub subscriber pushed by the dispatcher thread."""

    def __init__(self, sample: int) -> None:
        from marketdata import Increment

        self.increment = Increment
        self.sample = sample
        self.records: list[tuple[int, int]] = []
        self.messages = 0
        self.last_ns = 0

    def delivered(self, msgs: list[Any]) -> None:
        t = self.last_ns = time.monotonic_ns()
        self.messages += len(msgs)
        for m in msgs:
            if type(m) is self.increment:
                for tr in m.trades:
                    if tr.seq % self.sample == 0 and tr.trade_n == 1:
                        self.records.append((tr.seq, t))


def _setup_commands(with_sessions: bool) -> list[Any]:
    from sessions.auth import hash_password
    from venue import access as A
    from venue import commands as C
    from venue.genesis import genesis_commands

    cmds = genesis_commands() + [C.DefineInstrument(_bench_instrument().to_record()), C.CreateFirm("F")]
    for i in range(N_ACCOUNTS):
        cmds += [C.CreateAccount(f"A{i}", "F", 1, 100, 500), C.Deposit(f"u{i}", f"A{i}", "USD", 10**22),
                 C.Deposit(f"b{i}", f"A{i}", "BTC", 10**17)]
    if with_sessions:
        cmds += [C.CreateFirm("MDBENCH", "Market data bench"),
                 A.CreateUser("mdbench", "MDBENCH", hash_password(PASSWORD))]
        cmds += [A.CreateSession(comp_id(i), "market_data", "MDBENCH", "mdbench", "VENUE", "", "", "", False, 0)
                 for i in range(N_SESSIONS)]
    return cmds


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds of every thread of process ``pid`` so far (0 without one)."""
    return sum(_thread_cpu(pid=pid).values()) if pid is not None else 0.0


def child(kind: str, path: str, rate: int, mode: str, sample: int, conflate: float | None,
          md_process: bool = True) -> dict[str, Any]:
    with open(path, "rb") as f:
        w: Workload = pickle.load(f)
    from marketdata import Book, FeedSpec, MarketData
    from sessions.server import FixConfig, FixServer
    from venue.core import Venue

    n_subs = SUBSCRIBERS[kind]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        v = Venue(d, snapshot_every=0)
        v.open()
        stamps: list[tuple[int, int]] = []  # (last seq of a durable batch, monotonic ns when published)
        v.subscribe(lambda batch: stamps.append((batch[-1].seq, time.monotonic_ns())))  # before the hub
        md = None
        if kind != "none":
            md = MarketData()
            md.attach(v)
        v.start()
        for c in _setup_commands(kind != "none"):
            v.submit(c)
        seq0 = v.query(lambda e: e.seq)
        warm, ops = _engine_commands(w, seq0 + 1)
        for c in warm:
            v.submit(c)
        v.query(lambda e: e.seq)
        server = None
        proc = None
        recorders: list[_InprocRecorder] = []
        handles = []
        if md is not None:
            cfg = FixConfig(data_dir=d, file_log=False, ports={"order_entry": 0, "drop_copy": 0, "market_data": 0},
                            market_data_process=md_process,
                            market_data_options={} if conflate is None else {"conflate": conflate})
            server = FixServer(v, cfg, market_data=md)
            server.start()
            if n_subs and mode == "fix":
                proc = subprocess.Popen([sys.executable, __file__, "--client", str(server.ports()["market_data"]),
                                         "--n", str(n_subs), "--sample", str(sample)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                assert proc.stdout is not None and proc.stdin is not None
                line = proc.stdout.readline()
                if line.strip() != "ready":
                    raise SystemExit(f"the FIX client did not get ready: {line!r}")
            elif n_subs:
                for i in range(n_subs):
                    depth, agg = SHAPES[i % len(SHAPES)]
                    r = _InprocRecorder(sample)
                    recorders.append(r)
                    handles.append(md.subscribe(FeedSpec(SYMBOL, int(Book.L3 if agg == "N" else Book.L2), depth),
                                                r.delivered, interval=conflate or 0.0))
                end = time.monotonic() + 60
                while any(not r.messages for r in recorders) and time.monotonic() < end:
                    time.sleep(0.001)
        last = seq0 + len(warm) + len(ops)
        finished = threading.Event()
        v.subscribe(lambda batch: finished.set() if batch[-1].seq >= last else None)
        n_stamps = len(stamps)
        profiler = None
        if os.environ.get("BENCH_PROFILE"):
            spy = ["py-spy", "record", "--pid", str(os.getpid()), "-r", "200", "--format", "raw", "-o",
                   os.environ["BENCH_PROFILE"]] + os.environ.get("BENCH_PROFILE_ARGS", "").split()
            profiler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        submit = v.submit
        threads0, waits0 = _thread_cpu(), _thread_cpu("wait")
        md_pid = server.md_process.proc.pid if server is not None and server.md_process is not None \
            and server.md_process.proc is not None else None
        md_cpu0 = _proc_cpu(md_pid)
        cpu0 = time.process_time()
        t0_ns = time.monotonic_ns()
        t = time.perf_counter()
        if rate:
            gap = 1.0 / rate
            for i, c in enumerate(ops):
                ahead = t + i * gap - time.perf_counter()
                if ahead > 0.0005:
                    time.sleep(ahead)
                submit(c)
        else:
            for c in ops:
                submit(c)
        finished.wait(600)
        dt = time.perf_counter() - t
        cpu = time.process_time() - cpu0 + _proc_cpu(md_pid) - md_cpu0
        n_batches = len(stamps) - n_stamps
        result: dict[str, Any] = {}
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            result = json.loads(proc.stdout.readline())
            proc.wait(60)
        elif recorders:
            while time.monotonic_ns() - max(r.last_ns for r in recorders) < 500_000_000:
                time.sleep(0.05)
            result = {"records": [x for r in recorders for x in r.records], "x": sum(r.messages for r in recorders),
                      "bytes": 0, "resnapshots": sum(h.resnapshots for h in handles),
                      "last_ns": max(r.last_ns for r in recorders)}
            for h in handles:
                h.close()
        md_cpu = _proc_cpu(md_pid) - md_cpu0
        cpu_all = time.process_time() - cpu0 + md_cpu  # until every subscriber had everything (and 0.5 s of quiet)
        threads = {k: round(x - threads0.get(k, 0.0), 2) for k, x in _thread_cpu().items()}
        waits = {k: round(x - waits0.get(k, 0.0), 2) for k, x in _thread_cpu("wait").items()}
        if profiler is not None:
            import signal
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        md_status = server.status()["market_data"] if server is not None else {}
        if server is not None:
            server.stop()
        v.stop(snapshot=False)
        if md is not None:
            md.close()
    ends = [s for s, _ in stamps]
    delays = []
    for seq, at in result.get("records", []):
        k = bisect.bisect_left(ends, seq)
        if k < len(stamps):
            delays.append(at - stamps[k][1])
    delays.sort()
    delivered = max(dt, (result.get("last_ns", 0) - t0_ns) / 1e9)
    return {
        "ops_per_s": len(ops) / dt,
        "delivered_ops_per_s": len(ops) / delivered,  # until every session had its last X
        "cpu_us_per_cmd": cpu / len(ops) * 1e6,  # the venue's processes, every thread, until the last command is durable
        "cpu_all_us_per_cmd": cpu_all / len(ops) * 1e6,  # ... and until the fan-out is done
        "batches": n_batches,
        "delays_us": [round(x / 1000, 1) for x in delays[:: max(1, len(delays) // 20000)]],  # a sample
        "n_delays": len(delays),
        "messages": result.get("x", 0),
        "bytes": result.get("bytes", 0),
        "bytes_by_shape": result.get("bytes_by_shape", []),  # L2 depth 1, L2 depth 10, L2 full, L3
        "client_cpu_s": result.get("client_cpu_s", 0.0),  # the FIX client process, from ready to the end
        "resnapshots": result.get("resnapshots", 0),
        "stalls": md_status.get("stalls", 0),
        "fanout_lag_ms": round((delivered - dt) * 1000, 1),  # the last X after the last command was durable
        "md_process_cpu_s": round(md_cpu, 3),  # the market-data process (counted in the CPU per command)
        "threads_cpu_s": {k: x for k, x in sorted(threads.items(), key=lambda kv: -kv[1]) if x >= 0.01},
        "threads_runq_s": {k: x for k, x in sorted(waits.items(), key=lambda kv: -kv[1]) if x >= 0.01},
        "seconds": dt,
    }


# ================================================================== the orchestrator
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
    ap.add_argument("--rate", type=int, default=5_000, help="commands/s of the paced runs (0 = skip them)")
    ap.add_argument("--paced-ops", type=int, default=15_000)
    ap.add_argument("--only", default=",".join(KINDS), help="comma-separated contenders")
    ap.add_argument("--subscribers", choices=("fix", "inproc"), default="fix")
    ap.add_argument("--conflate", type=float, default=None,
                    help="seconds between two deliveries to one subscription (default: MarketDataSessions')")
    ap.add_argument("--md-in-process", action="store_true",
                    help="serve the market-data sessions in the venue's process (default: a process of their own)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--child-rate", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--client", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--sample", type=int, default=1, help=argparse.SUPPRESS)  # a power of ten
    args = ap.parse_args()
    if args.client:
        client(args.client, args.n, args.sample)
        return
    if args.child:
        print(json.dumps(child(args.child, args.workload, args.child_rate, args.subscribers, args.sample,
                               args.conflate, not args.md_in_process)))
        return
    kinds = [k for k in args.only.split(",") if k]
    paced_kinds = [k for k in PACED if k in kinds] if args.rate else []
    w = generate(n=args.ops, warm=args.warm, seed=args.seed)
    wp = generate(n=args.paced_ops, warm=args.warm, seed=args.seed + 1) if paced_kinds else None
    from sessions.marketdata_session import CONFLATE

    conflate_s = CONFLATE if args.conflate is None else args.conflate
    print(f"workload: {len(w.warm)} warm orders, {len(w.ops)} commands, seed {args.seed}; "
          f"subscribers: {args.subscribers}, conflate {conflate_s} s, market-data sessions "
          f"{'in the venue process' if args.md_in_process else 'in a process of their own'}")
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    paced: dict[str, list[dict[str, Any]]] = {k: [] for k in paced_kinds}
    paths = []
    try:
        for wl in (w, wp):
            with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
                pickle.dump(wl, f)
                paths.append(f.name)

        def run(kind: str, path: str, rate: int, sample: int) -> dict[str, Any]:
            p = subprocess.run([sys.executable, __file__, "--child", kind, "--workload", path, "--subscribers",
                                args.subscribers, "--child-rate", str(rate), "--sample", str(sample),
                                ] + ([] if args.conflate is None else ["--conflate", str(args.conflate)])
                               + (["--md-in-process"] if args.md_in_process else []),
                               capture_output=True, text=True)
            if p.returncode:
                sys.stderr.write(p.stderr)
                raise SystemExit(f"contender {kind} failed")
            return json.loads(p.stdout.strip().splitlines()[-1])

        def line(res: dict[str, Any]) -> str:
            lat = (f"delay p50 {_pct(res['delays_us'], 0.5):7.0f} us p99 {_pct(res['delays_us'], 0.99):7.0f} us"
                   if res["n_delays"] else "")
            return (f"{res['ops_per_s']:9,.0f} ops/s durable, {res['delivered_ops_per_s']:9,.0f} delivered "
                    f"(fan-out lag {res['fanout_lag_ms']:7.0f} ms) {res['cpu_all_us_per_cmd']:6.1f} CPU us/cmd "
                    f"{res['batches']:5d} batches {res['messages']:6d} X {res['bytes'] / 1e6:6.1f} MB  {lat}  "
                    f"resnapshots {res['resnapshots']} stalls {res['stalls']}")

        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for k in order:
                res = run(k, paths[0], 0, 10)
                results[k].append(res)
                print(f"round {r + 1} {k:6s} saturated     {line(res)}", flush=True)
            if wp is not None:
                for k in paced_kinds[r % len(paced_kinds):] + paced_kinds[:r % len(paced_kinds)]:
                    res = run(k, paths[1], args.rate, 1)
                    paced[k].append(res)
                    print(f"round {r + 1} {k:6s} paced {args.rate}/s {line(res)}", flush=True)
    finally:
        for p in paths:
            os.unlink(p)

    def median(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in rows)

    med = {k: median(v, "ops_per_s") for k, v in results.items()}
    dlv = {k: median(v, "delivered_ops_per_s") for k, v in results.items()}
    cpu_med = {k: median(v, "cpu_all_us_per_cmd") for k, v in results.items()}
    print()
    for k in kinds:
        runs = ", ".join(f"{x['ops_per_s']:,.0f}/{x['delivered_ops_per_s']:,.0f}" for x in results[k])
        print(f"{k:6s} saturated median {med[k]:9,.0f} ops/s durable, {dlv[k]:9,.0f} delivered, "
              f"{cpu_med[k]:5.1f} CPU us/cmd   runs (durable/delivered): {runs}")
    summary: dict[str, Any] = {"rounds": args.rounds, "ops": args.ops, "warm": args.warm, "seed": args.seed,
                               "subscribers": args.subscribers, "conflate": conflate_s}
    for k in kinds:
        summary[f"{k}_ops_per_s"] = round(med[k])
        summary[f"{k}_delivered_ops_per_s"] = round(dlv[k])
        summary[f"{k}_cpu_us_per_cmd"] = round(cpu_med[k], 2)
    if "md0" in med:
        for k in ("md10", "md100"):
            if k in med:
                # medians of the per-round ratios: each round runs every contender back to back
                durable = statistics.median(a["ops_per_s"] / b["ops_per_s"] for a, b in zip(results[k], results["md0"]))
                delivered = statistics.median(a["delivered_ops_per_s"] / b["ops_per_s"]
                                              for a, b in zip(results[k], results["md0"]))
                summary[f"{k}_vs_md0"] = round(durable, 3)
                summary[f"{k}_delivered_vs_md0"] = round(delivered, 3)
                print(f"{k} / md0: durable {durable:.3f}, delivered {delivered:.3f} (cost "
                      f"{100 * (1 - delivered):.1f}% of the engine's throughput"
                      f"{'; target <= 25%' if k == 'md100' else ''})")
        if "md100" in med:
            summary["target_met"] = summary["md100_delivered_vs_md0"] >= 0.75
        if "none" in med:
            summary["md0_vs_none"] = round(med["md0"] / med["none"], 3)
            print(f"md0 / none = {med['md0'] / med['none']:.3f} (the hub, and a FIX server with 100 idle sessions)")
    def threads(rows: list[dict[str, Any]], key: str = "threads_cpu_s") -> dict[str, float]:
        names = {n for x in rows for n in x[key]}
        out = {n: statistics.median(x[key].get(n, 0.0) for x in rows) for n in names}
        return {n: round(v, 2) for n, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.01}

    for k in ("md0", "md100"):
        if k in results:
            summary[f"{k}_threads_cpu_s"] = threads(results[k])
            summary[f"{k}_client_cpu_s"] = median(results[k], "client_cpu_s")
            summary[f"{k}_md_process_cpu_s"] = median(results[k], "md_process_cpu_s")
            summary[f"{k}_threads_runq_s"] = threads(results[k], "threads_runq_s")
            summary[f"{k}_seconds"] = round(median(results[k], "seconds"), 2)
            print(f"{k} saturated, CPU seconds per thread (medians): {summary[f'{k}_threads_cpu_s']}"
                  + f"; market-data process {summary[f'{k}_md_process_cpu_s']}"
                  + (f"; FIX client process {summary[f'{k}_client_cpu_s']}" if k != "md0" else ""))
            print(f"{k} saturated, seconds waiting for a CPU per thread (medians): {summary[f'{k}_threads_runq_s']}"
                  f"; {summary[f'{k}_seconds']} s until the last command was durable")
    for k in ("md10", "md100"):
        if k in results:
            delays = [d for x in results[k] for d in x["delays_us"]]
            summary[f"{k}_delay_p50_us"] = round(_pct(delays, 0.5))
            summary[f"{k}_delay_p99_us"] = round(_pct(delays, 0.99))
            print(f"{k} saturated, trade durable -> its X at the client: p50 {summary[f'{k}_delay_p50_us']} us, "
                  f"p99 {summary[f'{k}_delay_p99_us']} us (batches of thousands of commands)")
    if paced_kinds:
        summary["paced_rate"] = args.rate
        cpu = {k: median(v, "cpu_all_us_per_cmd") for k, v in paced.items()}
        for k in paced_kinds:
            summary[f"paced_{k}_cpu_us_per_cmd"] = round(cpu[k], 2)
            summary[f"paced_{k}_batches"] = round(median(paced[k], "batches"))
        print(f"paced at {args.rate} commands/s, venue CPU per command: "
              + ", ".join(f"{k} {cpu[k]:.1f} us" for k in paced_kinds))
        if "md0" in cpu and "md100" in cpu:
            summary["paced_md100_cpu_vs_md0"] = round(cpu["md100"] / cpu["md0"], 3)
            summary["paced_md100_extra_cpu_us_per_cmd"] = round(cpu["md100"] - cpu["md0"], 2)
            print(f"  md100 / md0 CPU = {cpu['md100'] / cpu['md0']:.3f} (+{cpu['md100'] - cpu['md0']:.1f} us per "
                  f"command for 100 sessions when batches hold a few commands)")
        if "md100" in paced:
            summary["paced_md100_threads_cpu_s"] = threads(paced["md100"])
            print(f"md100 paced, CPU seconds per thread (medians): {summary['paced_md100_threads_cpu_s']}")
            delays = [d for x in paced["md100"] for d in x["delays_us"]]
            summary["paced_md100_delay_p50_us"] = round(_pct(delays, 0.5))
            summary["paced_md100_delay_p99_us"] = round(_pct(delays, 0.99))
            summary["paced_md100_fanout_lag_ms"] = round(median(paced["md100"], "fanout_lag_ms"))
            summary["paced_md100_resnapshots"] = sum(x["resnapshots"] for x in paced["md100"])
            print(f"md100 paced, trade durable -> its X at the client: p50 {summary['paced_md100_delay_p50_us']} us, "
                  f"p99 {summary['paced_md100_delay_p99_us']} us")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
