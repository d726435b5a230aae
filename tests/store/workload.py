"""A seeded stream of venue commands touching every table of the store: orders that rest,
cross, cancel and amend, funding (deposits, withdrawals, held withdrawals released and
completed), operator actions (halt/resume, limits, fees, account disable) and FIX access
records."""
from __future__ import annotations

import random

from cli.demo import demo_commands
from venue import access
from venue import commands as C
from venue.margin import SetLeverage
from venue.operator import SetInstrumentLimits, operator_command
from venue.types import BUY, GTC, IOC, LIMIT, SELL

ACCOUNTS = ("ALPHA-1", "BETA-1")
PW_HASH = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="  # a well-formed hash; nobody logs on in these tests


def setup_commands() -> list:
    cmds = list(demo_commands())
    cmds += [
        access.CreateUser("alice", "ALPHA", PW_HASH, "Alice"),
        access.CreateSession("ALPHA-OE", "order_entry", "ALPHA", "alice", default_account="ALPHA-1"),
        access.CreateSession("ALPHA-DC", "drop_copy", "ALPHA", "alice", entitled_firms="ALPHA,BETA"),
        access.SetUserPassword("alice", PW_HASH.replace("aGFzaA==", "aGFzaDI=")),
        access.UpdateSession("ALPHA-DC", "", "", "ALPHA", False, 100),
    ]
    return cmds


def trading_commands(n: int, seed: int = 1) -> list:
    rng = random.Random(seed)
    cmds: list = []
    open_ids: list[tuple[str, str]] = []
    for i in range(n):
        acct = rng.choice(ACCOUNTS)
        r = rng.random()
        if r < 0.55:
            side = rng.choice((BUY, SELL))
            px = 5_000_000 + rng.randint(-20, 20)  # BTC-USD around 50,000.00
            clid = f"c{i}"
            tif = IOC if rng.random() < 0.1 else GTC
            cmds.append(C.NewOrder(acct, clid, "BTC-USD", side, LIMIT, rng.randint(1, 200), px, tif=tif))
            open_ids.append((acct, clid))
        elif r < 0.75 and open_ids:
            acct, clid = open_ids.pop(rng.randrange(len(open_ids)))
            cmds.append(C.CancelOrder(acct, f"x{i}", orig_cl_ord_id=clid))
        elif r < 0.82 and open_ids:
            acct, clid = rng.choice(open_ids)
            cmds.append(C.AmendOrder(acct, f"a{i}", orig_cl_ord_id=clid, qty=rng.randint(1, 300)))
            open_ids = [(a, c) if c != clid else (a, f"a{i}") for a, c in open_ids]
        elif r < 0.86:
            cmds.append(C.Deposit(f"dep-{i}", acct, "USD", rng.randint(1, 10**12)))
        elif r < 0.88:
            cmds.append(C.Withdraw(f"wd-{i}", acct, "USD", rng.randint(1, 10**9)))
        elif r < 0.90:
            cmds.append(C.HoldWithdrawal(f"hw-{i}", acct, "BTC", rng.randint(1, 10**6)))
            if rng.random() < 0.5:
                cmds.append(C.CompleteWithdrawal(f"hw-{i}", reference=f"tx{i}"))
            else:
                cmds.append(C.ReleaseWithdrawal(f"hw-{i}", "rejected"))
        elif r < 0.91:
            cmds.append(operator_command("ops", "test halt", "halt", {"symbol": "ETH-USD"}, [C.Halt("ETH-USD", reason="t")]))
            cmds.append(operator_command("ops", "", "resume", {"symbol": "ETH-USD"}, [C.Resume("ETH-USD")]))
        elif r < 0.92:
            cmds.append(operator_command("ops", "tighten", "limits.set", {"symbol": "ETH-BTC"},
                                         [SetInstrumentLimits("ETH-BTC", max_qty=rng.randint(1000, 10_000_000))]))
        elif r < 0.93:
            cmds.append(operator_command("ops", "", "halt", {"symbol": "NOPE"}, [C.Halt("NOPE")]))
        elif r < 0.94:
            cmds.append(C.SetFees(acct, rng.randint(0, 100), rng.randint(100, 500)))
        elif r < 0.96:  # the demo's 10x margin account borrows USD to buy and BTC to sell
            side = rng.choice((BUY, SELL))
            cmds.append(C.NewOrder("ALPHA-M", f"m{i}", "BTC-USD", side, LIMIT, rng.randint(1_000, 20_000),
                                   5_000_000 + rng.randint(-20, 20), tif=rng.choice((IOC, GTC))))
        elif r < 0.961:
            cmds.append(SetLeverage("ALPHA-M", rng.randint(5, 10)))
        else:
            cmds.append(C.Deposit(f"dep-e{i}", acct, "ETH", rng.randint(1, 10**21)))  # beyond 64 bits
    return cmds


def margin_crash_commands() -> list:
    """ALPHA-M goes about 8x long BTC at 50,000, then the market falls 10% on other
    accounts' trades: ALPHA-M is liquidated into BETA's bid (loans, repayments and the
    liquidation all reach the store)."""
    return [
        C.MassCancel("crash-clear", symbol="BTC-USD"),
        SetLeverage("ALPHA-M", 10),
        C.NewOrder("BETA-1", "crash-ask", "BTC-USD", SELL, LIMIT, 200_000, 5_000_000),
        C.NewOrder("ALPHA-M", "crash-long", "BTC-USD", BUY, LIMIT, 160_000, 5_000_000, tif=IOC),
        C.MassCancel("crash-clear-2", symbol="BTC-USD"),
        C.NewOrder("BETA-1", "crash-bid", "BTC-USD", BUY, LIMIT, 500_000, 4_500_000),
        C.NewOrder("BETA-1", "crash-offer", "BTC-USD", SELL, LIMIT, 1_000, 4_501_000),
        C.NewOrder("ALPHA-1", "crash-print", "BTC-USD", SELL, LIMIT, 1_000, 4_500_000, tif=IOC),
    ]
