"""Starting custody inside a running venue: ``venue demo`` always, ``venue run`` when
the data directory holds a ``custody.toml`` (see :func:`custody.config.load_custody_config`).

:func:`start_custody` opens custody (the embedded in-process EVM unless an
``ethereum_url`` is configured; a SoftHSM2 token under the data directory unless a
PKCS#11 module is named), mines a block every ``dev_block_seconds`` on the embedded chain
so confirmations advance, and starts the watcher loop. The caller ``stop()``s it (the
venue's ``running.stop()`` does, custody being one of its front ends).

:func:`start_demo_custody` is what the demo calls once its venue runs. It also funds the
venue's gas account from the faucet the first time (so withdrawals and sweeps can pay
their fees). A newcomer then deposits from the command line::

    venue custody address ALPHA-1 ETH           # the account's deposit address
    venue custody faucet ETH ALPHA-1 2.5        # the faucet sends 2.5 ETH there
    venue custody deposits --account ALPHA-1    # seen ... credited after 3 blocks

The embedded chain lives in the demo process's memory: a restarted demo starts a fresh
chain. Custody notices (:meth:`custody.watcher.Watcher.check_chain`) and resets its
records of the old chain: the ledger keeps what was credited, deposits seen but not yet
credited are abandoned, payments in flight fail and release their holds, and the new
chain is watched from its start. The venue's coins on the old chain are gone with it,
so the demo's faucet gives the new chain's hot wallet gas money again (to the hot
wallet directly: the ledger already counts the gas account's first funding).
"""
from __future__ import annotations

from custody.config import CustodyConfig
from custody.ledger_port import GAS_ACCOUNT
from custody.service import CustodyService
from venue.core import Venue

DEMO_GAS = "50"


def start_custody(venue: Venue, config: CustodyConfig, *, block_seconds: float | None = None,
                  demo: bool = False) -> CustodyService:
    """Open custody in ``venue`` and start its loop; the caller ``stop()``s it."""
    svc = CustodyService(venue, config).open()
    try:
        if svc.dev is not None:
            if demo:
                _fund_demo(svc)
            seconds = config.dev_block_seconds if block_seconds is None else block_seconds
            if seconds > 0:
                svc.dev.start_block_timer(seconds)
        svc.start()
    except BaseException:
        svc.stop()
        raise
    return svc


def start_demo_custody(venue: Venue, block_seconds: float = 1.0, config: CustodyConfig | None = None) -> CustodyService:
    """Open and start custody inside a running demo venue; the caller ``stop()``s it."""
    return start_custody(venue, config or CustodyConfig(confirmations=3, poll_seconds=0.5),
                         block_seconds=block_seconds, demo=True)


def _fund_demo(svc: CustodyService) -> None:
    assert svc.dev is not None and svc.eth is not None
    eth = svc.assets["ETH"]
    if sum(svc.ledger.balance(GAS_ACCOUNT, "ETH")) == 0 and not svc.deposits(GAS_ACCOUNT):
        got = svc.faucet("ETH", GAS_ACCOUNT, DEMO_GAS)  # a deposit: credited to the gas account
        if not got.ok:
            raise RuntimeError(f"the demo faucet could not fund the gas account: {got.reason}")
        svc.demo_note = f"the faucet deposited {DEMO_GAS} ETH for the venue's network fees"
        return
    hot = svc.hot_addresses()["ethereum"]
    if svc.replaced and svc.eth.balance(hot, eth) == 0:
        svc.dev.fund(eth, hot, eth.parse(DEMO_GAS))
        r = svc.replaced[0]
        svc.demo_note = (f"the embedded chain is new (the last run's chain ended with its process): custody reset its "
                         f"records of it ({r['deposits_abandoned']} uncredited deposits abandoned, "
                         f"{r['transactions_dropped']} payments in flight failed and released their holds; the "
                         f"ledger keeps what was credited) and the faucet gave the hot wallet {DEMO_GAS} ETH for fees")
