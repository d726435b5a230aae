"""The whole path of a client's money, end to end, with every part real: deposits on a
real EVM credited at N confirmations, a trade over FIX on real sockets (the venue's
QuickFIX acceptor, clients from tests/sessions/fixclients.py), withdrawals with
approvals signed in a real SoftHSM2 token and paid on-chain. At the end the
destinations hold what was withdrawn, for every asset the ledger's deposits minus
withdrawals equal what the venue's addresses hold on-chain, and money is conserved."""
from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any, Callable, Iterator

import pytest
from eth_account import Account

from cli.demo import demo_access_commands
from cli.runtime import RunningVenue, start_venue
from custody.config import CustodyConfig
from custody.demo import start_custody
from custody.ledger_port import GAS_ACCOUNT
from custody.service import CustodyService
from sessions.server import FixConfig, FixServer
from venue import commands as C
from venue.genesis import genesis_commands
from venue.types import AccountKind, STP

from tests.sessions.fixclients import logged_on, order

BETA_WALLET = Account.from_key(b"\x81" * 32).address
ALPHA_WALLET = Account.from_key(b"\x82" * 32).address
ETH, USD = 10**18, 10**8  # ledger atoms of one ETH, one USD


def wait(cond: Callable[[], Any], timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def venue() -> Iterator[tuple[RunningVenue, FixServer, CustodyService]]:
    d = tempfile.mkdtemp(prefix="vff")
    running = start_venue(d, fsync=False)
    # firms and accounts with nothing in them: every coin they get comes from the chain
    cmds: list = list(genesis_commands())
    for firm, account in (("ALPHA", "ALPHA-1"), ("BETA", "BETA-1")):
        cmds += [C.CreateFirm(firm, firm.title()),
                 C.CreateAccount(account, firm, int(AccountKind.CASH), 200, 500, int(STP.CANCEL_NEWEST))]
    for c in cmds + demo_access_commands():
        running.venue.execute(c)
    fix = FixServer(running.venue, FixConfig(data_dir=d, file_log=False,
                                             ports={"order_entry": 0, "drop_copy": 0, "market_data": 0}),
                    store=running.store)
    fix.start()
    svc = start_custody(running.venue, CustodyConfig(confirmations=3, poll_seconds=0.05, dev_block_seconds=0.05,
                                                     approvers=("ops-alice", "ops-bob", "ops-carol")))
    yield running, fix, svc
    svc.stop()
    fix.stop()
    running.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_deposit_trade_over_fix_withdraw_and_the_chain_agrees(venue) -> None:
    running, fix, svc = venue
    v = running.venue
    assets = svc.assets

    def bal(account: str, asset: str) -> tuple[int, int]:
        return svc.ledger.balance(account, asset)

    # 1. deposits on-chain: ALPHA sends 5 ETH, BETA 20,000 USDC; the venue's gas account 2 ETH
    assert svc.dev is not None
    for account, symbol, amount in (("ALPHA-1", "ETH", "5"), ("BETA-1", "USDC", "20000"), (GAS_ACCOUNT, "ETH", "2")):
        addr = svc.deposit_address(account, symbol).data["address"]
        svc.dev.fund(assets[symbol], addr, assets[symbol].parse(amount))
    wait(lambda: bal("ALPHA-1", "ETH") == (5 * ETH, 0) and bal("BETA-1", "USD") == (20_000 * USD, 0)
         and bal(GAS_ACCOUNT, "ETH")[0] > 0, what="the deposits to be credited")
    assert all(d["confirmations"] >= 3 for d in svc.deposits())

    # 2. a trade over FIX: ALPHA sells 2 ETH at 3,000 USD, BETA buys them
    alpha = logged_on(fix.ports()["order_entry"], "ALPHA-OE", "alpha", "alpha-demo")
    beta = logged_on(fix.ports()["order_entry"], "BETA-OE", "beta", "beta-demo")
    try:
        alpha.send("D", order("sell-1", "ETH-USD", "2", "2", "3000"))
        alpha.expect("8", t11="sell-1", t39="0")
        beta.send("D", order("buy-1", "ETH-USD", "1", "2", "3000"))
        beta.expect("8", t11="buy-1", t39="2")
        alpha.expect("8", t11="sell-1", t39="2")
    finally:
        alpha.close()
        beta.close()
    notional = 6000 * USD
    # ALPHA was the maker (0.02%), BETA the taker (0.05%); both fees are charged in USD
    alpha_usd = notional - notional * 200 // 1_000_000
    wait(lambda: bal("ALPHA-1", "USD") == (alpha_usd, 0), what="the trade to settle")
    assert bal("ALPHA-1", "ETH") == (3 * ETH, 0)
    beta_eth = 2 * ETH
    assert bal("BETA-1", "ETH") == (beta_eth, 0)
    assert bal("BETA-1", "USD") == (20_000 * USD - notional - notional * 500 // 1_000_000, 0)

    # 3. withdrawals, each to an address a second person approved, each approved by two
    #    approvers who are not its requester
    for account, symbol, wallet in (("BETA-1", "ETH", BETA_WALLET), ("ALPHA-1", "USDC", ALPHA_WALLET)):
        assert svc.add_address("ops-alice", account, symbol, wallet, "own wallet").ok
        assert svc.approve_address("ops-bob", account, symbol, wallet).ok
    wids = []
    for account, symbol, amount, wallet in (("BETA-1", "ETH", "1.5", BETA_WALLET),
                                            ("ALPHA-1", "USDC", "5000", ALPHA_WALLET)):
        r = svc.request_withdrawal("ops-carol", account, symbol, amount, wallet)
        assert r.ok and r.data["state"] == "pending_approval", r
        assert not svc.approve("ops-carol", r.data["id"]).ok  # not one's own
        assert svc.approve("ops-alice", r.data["id"]).ok and svc.approve("ops-bob", r.data["id"]).ok
        wids.append(r.data["id"])
    wait(lambda: all(svc.withdrawal(w)["state"] == "completed" for w in wids), what="the withdrawals to complete")
    wait(lambda: not svc.store.one("SELECT 1 FROM chain_txs WHERE fee_posted=0 OR state IN ('signed', 'broadcast')"),
         what="custody to settle its own transactions")

    # 4. the destinations hold what was withdrawn; ledger and chain agree; money is conserved
    assert svc.eth.balance(BETA_WALLET, assets["ETH"]) == assets["ETH"].parse("1.5")
    assert svc.eth.balance(ALPHA_WALLET, assets["USDC"]) == assets["USDC"].parse("5000")
    assert bal("BETA-1", "ETH") == (beta_eth - 15 * ETH // 10, 0)
    assert bal("ALPHA-1", "USD") == (alpha_usd - 5000 * USD, 0)
    onchain = svc.onchain_balances()
    for asset in ("ETH", "USD"):
        assert int(onchain[asset]["total"]) == svc.ledger.external(asset), asset
    assert all(t == x for t, x in v.query(lambda e: e.ledger.conservation()).values())
    assert svc.store.verify_audit() is None
