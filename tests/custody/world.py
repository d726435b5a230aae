"""A venue with custody on a real EVM and a real SoftHSM2 token, for the custody tests.

:class:`World` owns one chain for the whole test (the embedded in-process EVM, or a
JSON-RPC node such as anvil) and can stop and reopen the venue and custody over the same
data directory and the same chain, as a restart does. It drives custody only through
``CustodyService``'s public methods and ``tick()``, and reads the ledger through the
venue's query API.
"""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from custody.config import CustodyConfig
from custody.ethereum import DevChain, EthereumChain, embedded
from custody.service import CustodyService
from venue import commands as C
from venue.clock import TestClock
from venue.core import Venue
from venue.genesis import genesis_commands

APPROVERS = ("ops-alice", "ops-bob", "ops-carol")


def config(**kw: Any) -> CustodyConfig:
    base: dict[str, Any] = dict(confirmations=3, approvers=APPROVERS, approvals_required=2, auto_rebalance=False,
                                poll_seconds=0.05)
    base.update(kw)
    return CustodyConfig(**base)


class World:
    def __init__(self, root: str, cfg: CustodyConfig | None = None, chain: tuple[EthereumChain, DevChain] | None = None,
                 seed: bool = True) -> None:
        """A new venue seeded in ``root`` (or, ``seed=False``, the one already there)."""
        self.dir = os.path.join(str(root), "venue")
        self.cfg = cfg or config()
        self.clock = TestClock()
        self.eth, self.dev = chain or embedded()
        self.venue: Venue | None = None
        self.svc: CustodyService | None = None
        self.open(seed=seed)

    # -- life cycle ------------------------------------------------------------------
    def open(self, seed: bool = False) -> None:
        v = Venue(self.dir, clock=self.clock, fsync=False)
        v.open()
        v.start()
        if seed:
            for c in genesis_commands():
                v.execute(c)
            for firm in ("ALPHA", "BETA"):
                v.execute(C.CreateFirm(firm))
                v.execute(C.CreateAccount(f"{firm}-1", firm))
        self.venue = v
        self.svc = CustodyService(v, self.cfg, ethereum=self.eth, dev=self.dev).open()

    def restart(self) -> None:
        """Stop custody and the venue (no snapshot: recovery replays the journal) and
        open both again from the data directory, on the same chain."""
        assert self.svc is not None and self.venue is not None
        self.svc.dev = None  # the chain outlives the process being restarted
        self.svc.stop()
        self.venue.stop(snapshot=False)
        self.open()

    def close(self) -> None:
        if self.svc is not None:
            self.svc.dev = None
            self.svc.stop()
        if self.venue is not None:
            self.venue.stop()
        self.dev.stop()

    # -- reading -----------------------------------------------------------------------
    def balance(self, account: str, asset: str) -> tuple[int, int]:
        assert self.svc is not None
        return self.svc.ledger.balance(account, asset)

    def conserved(self) -> bool:
        assert self.venue is not None
        return all(t == x for t, x in self.venue.query(lambda e: e.ledger.conservation()).values())

    def external(self, asset: str) -> int:
        assert self.svc is not None
        return self.svc.ledger.external(asset)

    def onchain(self, ledger_asset: str) -> int:
        assert self.svc is not None
        return int(self.svc.onchain_balances()[ledger_asset]["total"])

    def atoms(self, symbol: str, amount: str) -> int:
        assert self.svc is not None
        a = self.svc.assets[symbol]
        return a.to_ledger(a.parse(amount))

    def units(self, symbol: str, amount: str) -> int:
        assert self.svc is not None
        return self.svc.assets[symbol].parse(amount)

    # -- driving -----------------------------------------------------------------------
    def tick(self, mine: int = 0) -> dict[str, Any]:
        assert self.svc is not None
        if mine:
            self.dev.mine(mine)
        return self.svc.tick()

    def settle(self, rounds: int = 30) -> None:
        """Mine and tick until nothing is in flight and every deposit is credited."""
        assert self.svc is not None
        for _ in range(rounds):
            self.tick(mine=1)
            busy = self.svc.store.one("SELECT COUNT(*) AS n FROM chain_txs WHERE state IN ('signed', 'broadcast')")["n"]
            seen = self.svc.store.one("SELECT COUNT(*) AS n FROM deposits WHERE state='seen'")["n"]
            pending = self.svc.store.one("SELECT COUNT(*) AS n FROM withdrawals WHERE state IN "
                                         "('approved', 'signed', 'broadcast', 'requested')")["n"]
            if not busy and not seen and not pending:
                self.tick()  # the sweeps this state allows, and their settlement next round
                busy = self.svc.store.one("SELECT COUNT(*) AS n FROM chain_txs WHERE state IN ('signed', 'broadcast')")["n"]
                if not busy:
                    return
        raise AssertionError("custody did not settle")

    def deposit(self, account: str, symbol: str, amount: str) -> str:
        """Faucet coins to the account's deposit address; the txid."""
        assert self.svc is not None
        addr = self.svc.deposit_address(account, symbol).data["address"]  # type: ignore[index]
        asset = self.svc.assets[symbol]
        return self.dev.fund(asset, addr, asset.parse(amount))

    def fund_gas(self, amount: str = "10") -> None:
        self.deposit("VENUE-GAS", "ETH", amount)
        self.settle()

    def book(self, account: str, symbol: str, address: str) -> None:
        """An address added by one approver and approved by another."""
        assert self.svc is not None
        assert self.svc.add_address("ops-alice", account, symbol, address, "test").ok
        assert self.svc.approve_address("ops-bob", account, symbol, address).ok


def dec(x: int, decimals: int) -> Decimal:
    return Decimal(x).scaleb(-decimals)
