"""Custody for ``venue demo``: the embedded chain, mining a block a second, with a faucet.

:func:`start_demo_custody` is what the demo calls once its venue runs. It opens custody
on the in-process EVM (a SoftHSM2 token under the data directory), funds the venue's gas
account from the faucet the first time (so withdrawals and sweeps can pay their fees),
and starts the watcher loop. A newcomer then deposits from the command line::

    venue custody address ALPHA-1 ETH           # the account's deposit address
    venue custody faucet ETH ALPHA-1 2.5        # the faucet sends 2.5 ETH there
    venue custody deposits --account ALPHA-1    # seen ... credited after 3 blocks

The embedded chain lives in the demo process's memory: a restarted demo starts a fresh
chain (the ledger keeps what was credited; on-chain balances start again from zero).
"""
from __future__ import annotations

from custody.config import CustodyConfig
from custody.ledger_port import GAS_ACCOUNT
from custody.service import CustodyService
from venue.core import Venue

DEMO_GAS = "50"


def start_demo_custody(venue: Venue, block_seconds: float = 1.0, config: CustodyConfig | None = None) -> CustodyService:
    """Open and start custody inside a running demo venue; the caller ``stop()``s it."""
    svc = CustodyService(venue, config or CustodyConfig(confirmations=3, poll_seconds=0.5)).open()
    assert svc.dev is not None
    if sum(svc.ledger.balance(GAS_ACCOUNT, "ETH")) == 0 and not svc.deposits(GAS_ACCOUNT):
        svc.faucet("ETH", GAS_ACCOUNT, DEMO_GAS)
    svc.dev.start_block_timer(block_seconds)
    svc.start()
    return svc
