"""Custody throughput: signatures per second through the signer worker, and deposits
credited per second by the chain watcher.

Signatures: a SoftHSM2 token under a temporary data directory; each round signs ``--sigs``
32-byte digests through :class:`custody.signer.SignerWorker` (queue hop, low-s, a verify,
and the Ethereum recovery id), against a reference measured in the same run: the same
token called directly on one thread, raw ``r || s`` only.

Deposits: ``--deposits`` transfers to distinct deposit addresses on the embedded EVM
(faucet time not counted), then the watcher's poll that scans their blocks and credits
them all through the venue's journal; against a reference: the same number of
``Deposit`` commands executed straight into the venue (the ledger posting floor).

Medians over ``--rounds``; the last line is one JSON object. Nothing here asserts speed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from custody.config import CustodyConfig  # noqa: E402
from custody.pkcs11_signer import Pkcs11Signer, find_softhsm_module, softhsm_token  # noqa: E402
from custody.service import CustodyService  # noqa: E402
from custody.signer import SignerWorker  # noqa: E402
from venue import commands as C  # noqa: E402
from venue.core import Venue  # noqa: E402
from venue.genesis import genesis_commands  # noqa: E402


def bench_signatures(root: str, n: int) -> tuple[float, float]:
    module = find_softhsm_module()
    if module is None:
        raise SystemExit("SoftHSM2 is not installed (run ./.ci/services)")
    hsm = os.path.join(root, "hsm")
    w = SignerWorker(lambda: Pkcs11Signer(softhsm_token(hsm, module)))
    try:
        w.ensure_key("bench")
        digests = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
        t0 = time.perf_counter()
        for d in digests:
            w.sign_recoverable("bench", d)
        worker_rate = n / (time.perf_counter() - t0)
        signer = w.signer
        t0 = time.perf_counter()
        direct = w._call(lambda s: [s.sign_digest("bench", d) for d in digests], timeout=600)
        ref_rate = n / (time.perf_counter() - t0)
        assert len(direct) == n
    finally:
        w.close()
    del signer
    return worker_rate, ref_rate


def bench_deposits(root: str, n: int) -> tuple[float, float]:
    v = Venue(os.path.join(root, "venue"))
    v.open()
    v.start()
    svc = None
    try:
        for c in genesis_commands():
            v.execute(c)
        v.execute(C.CreateFirm("F"))
        accounts = [f"F-{i}" for i in range(n)]
        for a in accounts:
            v.execute(C.CreateAccount(a, "F"))
        svc = CustodyService(v, CustodyConfig(confirmations=1, auto_sweep=False, auto_rebalance=False,
                                              scan_batch=100_000)).open()
        assert svc.dev is not None
        eth = svc.assets["ETH"]
        for a in accounts:
            svc.dev.fund(eth, svc.deposit_address(a, "ETH").data["address"], 10 ** 16)  # type: ignore[index]
        t0 = time.perf_counter()
        rep = svc.tick()
        dt = time.perf_counter() - t0
        credited = rep["ethereum"]["credited"]
        if credited != n:
            raise SystemExit(f"the watcher credited {credited} of {n} deposits")
        t0 = time.perf_counter()
        for i, a in enumerate(accounts):
            v.execute(C.Deposit(f"ref-{i}", a, "ETH", 10 ** 16))
        ref_dt = time.perf_counter() - t0
        return n / dt, n / ref_dt
    finally:
        if svc is not None:
            svc.stop()
        v.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sigs", type=int, default=2000)
    ap.add_argument("--deposits", type=int, default=200)
    args = ap.parse_args()
    sig, sig_ref, dep, dep_ref = [], [], [], []
    for r in range(args.rounds):
        root = tempfile.mkdtemp(prefix="bench-custody-")
        try:
            w, ref = bench_signatures(root, args.sigs)
            sig.append(w)
            sig_ref.append(ref)
            d, dref = bench_deposits(root, args.deposits)
            dep.append(d)
            dep_ref.append(dref)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"round {r + 1}: worker {w:,.0f} sig/s (direct raw {ref:,.0f}/s); "
              f"watcher {d:,.0f} deposits/s (direct Deposit commands {dref:,.0f}/s)", flush=True)
    med = {k: statistics.median(v) for k, v in
           (("sig", sig), ("sig_ref", sig_ref), ("dep", dep), ("dep_ref", dep_ref))}
    print(f"signatures through the worker: median {med['sig']:,.0f}/s = {med['sig'] / med['sig_ref']:.2f}x the direct raw rate")
    print(f"deposits credited by the watcher: median {med['dep']:,.0f}/s = {med['dep'] / med['dep_ref']:.2f}x the bare posting rate")
    print(json.dumps({"rounds": args.rounds, "sigs": args.sigs, "deposits": args.deposits,
                      "worker_signatures_per_s": round(med["sig"]), "direct_raw_signatures_per_s": round(med["sig_ref"]),
                      "worker_vs_direct": round(med["sig"] / med["sig_ref"], 2),
                      "deposits_credited_per_s": round(med["dep"]), "direct_deposit_postings_per_s": round(med["dep_ref"]),
                      "watcher_vs_postings": round(med["dep"] / med["dep_ref"], 2)}))


if __name__ == "__main__":
    main()
