"""A seeded stream of varied commands for the default instruments, for tests that run a
whole venue (replay, recovery). Orders are named by ClOrdID only, so the stream does not
need to know the sequence numbers the venue will give them."""
from __future__ import annotations

import random
from typing import Any, Callable, Iterator

from venue import commands as C
from venue.genesis import genesis_commands
from venue.types import BUY, DAY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT

ACCOUNTS = ("w0", "w1", "w2")
# symbol -> (mid price in ticks, typical quantity in lots): about 100 USD, 30 USD and 0.05 BTC a lot of each
MARKETS = {"BTC-USD": (3_000_000, 500), "ETH-USD": (200_000, 1_500), "ETH-BTC": (5_000, 100)}


def setup_commands() -> list[Any]:
    cmds: list[Any] = list(genesis_commands()) + [C.CreateFirm("WF")]
    for i, aid in enumerate(ACCOUNTS):
        cmds.append(C.CreateAccount(aid, "WF", 1, (-100, 100, 200)[i], 500, 1 + i))
        cmds.append(C.Deposit(f"seed-{aid}-usd", aid, "USD", 10**8 * 10**7))
        cmds.append(C.Deposit(f"seed-{aid}-btc", aid, "BTC", 10**8 * 10**3))
        cmds.append(C.Deposit(f"seed-{aid}-eth", aid, "ETH", 10**18 * 10**4))
    return cmds


def commands(seed: int, n: int, now_ns: Callable[[], int]) -> Iterator[Any]:
    """``n`` commands after ``setup_commands``; GTD orders expire within 5 s of ``now_ns()``."""
    rng = random.Random(seed)
    clids: list[tuple[str, str, str]] = []  # (account, clid, symbol)
    for i in range(n):
        r = rng.random()
        if clids and r < 0.2:
            acct, clid, sym = rng.choice(clids[-40:])
            yield C.CancelOrder(acct, f"x{seed}-{i}", orig_cl_ord_id=clid, symbol=sym)
            continue
        if clids and r < 0.3:
            acct, clid, sym = rng.choice(clids[-40:])
            mid, lot = MARKETS[sym]
            new = f"r{seed}-{i}"
            yield C.AmendOrder(acct, new, orig_cl_ord_id=clid, qty=rng.choice((0, lot, 2 * lot)),
                               price=rng.choice((0, mid + rng.randint(-20, 20))))
            clids.append((acct, new, sym))
            continue
        if r < 0.33:
            yield C.MassCancel(f"m{i}", account=rng.choice(("",) + ACCOUNTS), symbol=rng.choice(("", "BTC-USD")),
                               side=rng.choice((0, BUY, SELL)))
            continue
        if r < 0.35:
            sym = rng.choice(list(MARKETS))
            yield C.Halt(sym, cancel_book=rng.random() < 0.3)
            yield C.Resume(sym)
            continue
        if r < 0.38:
            acct = rng.choice(ACCOUNTS)
            fid = f"fund-{rng.randint(0, 30)}"
            kind = rng.choice((C.Deposit, C.Withdraw, C.HoldWithdrawal))
            yield kind(fid, acct, rng.choice(("USD", "BTC", "ETH")), rng.randint(1, 10**9))
            yield rng.choice((C.ReleaseWithdrawal, C.CompleteWithdrawal))(f"fund-{rng.randint(0, 30)}")
            continue
        if r < 0.40:
            yield C.Tick()
            continue
        acct = rng.choice(ACCOUNTS)
        sym = rng.choice(list(MARKETS))
        mid, lot = MARKETS[sym]
        side = rng.choice((BUY, SELL))
        sign = 1 if side == BUY else -1
        kind = rng.choices((LIMIT, MARKET, STOP, STOP_LIMIT), (80, 8, 6, 6))[0]
        tif = rng.choices((GTC, IOC, FOK, GTD, DAY), (60, 12, 8, 12, 8))[0]
        qty = lot * rng.randint(1, 6)
        price = mid + sign * rng.randint(-15, 5) if kind in (LIMIT, STOP_LIMIT) else 0
        stop = mid + sign * rng.randint(3, 15) if kind in (STOP, STOP_LIMIT) else 0
        clid = f"o{seed}-{i}"
        clids.append((acct, clid, sym))
        yield C.NewOrder(acct, clid, sym, side, kind, qty, price=price, stop_px=stop, tif=tif,
                         expire_ts=now_ns() + rng.randint(1, 50) * 10**8 if tif == GTD else 0,
                         post_only=kind == LIMIT and tif in (GTC, DAY) and rng.random() < 0.1,
                         display_qty=lot if kind == LIMIT and tif == GTC and qty > lot and rng.random() < 0.15 else 0,
                         stp=rng.choice((0, 0, 1, 2, 3, 4)))
