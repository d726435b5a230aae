"""``venue custody ...`` through a running venue's real control socket, with custody on
the embedded chain inside that venue (as ``venue demo`` runs it)."""
from __future__ import annotations

import json
import shutil
import tempfile
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from eth_account import Account

from cli.demo import demo_commands
from cli.main import cli
from cli.runtime import RunningVenue, start_venue
from custody.config import CustodyConfig
from custody.demo import start_demo_custody
from custody.service import CustodyService


@pytest.fixture
def running() -> Iterator[tuple[RunningVenue, CustodyService, str]]:
    d = tempfile.mkdtemp(prefix="vcus")  # short: a Unix socket path has at most 107 bytes
    r = start_venue(d, fsync=False)
    for c in demo_commands():
        r.venue.execute(c)
    svc = start_demo_custody(r.venue, block_seconds=0.05, config=CustodyConfig(confirmations=3, poll_seconds=0.05))
    yield r, svc, d
    svc.stop()
    r.stop()
    shutil.rmtree(d, ignore_errors=True)


def _venue(d: str, *args: str, as_operator: tuple[str, str] | None = None) -> Any:
    env = {"VENUE_OPERATOR": None, "VENUE_OPERATOR_SECRET": None, "VENUE_DATA_DIR": None}
    if as_operator:
        env |= {"VENUE_OPERATOR": as_operator[0], "VENUE_OPERATOR_SECRET": as_operator[1]}
    return CliRunner().invoke(cli, [*args, "--data-dir", d], env=env, catch_exceptions=False)


def _operator(d: str, name: str) -> tuple[str, str]:
    from cli.operators import OperatorFile

    return name, OperatorFile(d).set(name)


def _quiet(r: RunningVenue, svc: CustodyService) -> None:
    """Custody has nothing in flight and nothing left to credit or sweep: the ledger and
    custody's records stand still unless someone acts."""
    from custody.service import wait_until

    def still() -> bool:
        n = svc.store.one("SELECT (SELECT COUNT(*) FROM chain_txs WHERE state IN ('signed', 'broadcast')) + "
                          "(SELECT COUNT(*) FROM chain_txs WHERE fee_posted=0) + "
                          "(SELECT COUNT(*) FROM deposits WHERE state IN ('seen', 'credited')) AS n")["n"]
        return n == 0 and sum(svc.ledger.balance("VENUE-GAS", "ETH")) > 0  # the demo's gas deposit is in
    assert wait_until(still, timeout=30)


def _snapshot(r: RunningVenue, svc: CustodyService) -> tuple[Any, ...]:
    return (r.venue.query(lambda e: e.seq), r.venue.query(lambda e: e.state_hashes()),
            [tuple(x) for x in svc.store.all("SELECT * FROM withdrawals")],
            [tuple(x) for x in svc.store.all("SELECT * FROM limits")],
            [tuple(x) for x in svc.store.all("SELECT * FROM cold_requests")],
            svc.store.one("SELECT COUNT(*) AS n FROM reserves")["n"])


def test_a_newcomer_deposits_from_the_command_line_and_sees_it_credited(running) -> None:
    r, svc, d = running
    first = _venue(d, "custody", "address", "ALPHA-1", "ETH", "--json")
    assert first.exit_code == 0, first.output
    addr = json.loads(first.output)["address"]
    again = _venue(d, "custody", "address", "ALPHA-1", "ETH", "--json")
    assert json.loads(again.output)["address"] == addr
    before = r.venue.query(lambda e: e.ledger.accounts["ALPHA-1"].balance("ETH").avail)
    sent = _venue(d, "custody", "faucet", "ETH", "ALPHA-1", "2.5", "--json")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["to"] == addr
    from custody.service import wait_until
    assert wait_until(lambda: r.venue.query(lambda e: e.ledger.accounts["ALPHA-1"].balance("ETH").avail)
                      == before + 25 * 10 ** 17, timeout=30)
    deps = json.loads(_venue(d, "custody", "deposits", "--account", "ALPHA-1", "--json").output)
    assert len(deps) == 1 and deps[0]["state"] in ("credited", "swept") and deps[0]["confirmations"] >= 3


def test_refusals_are_one_line_and_change_nothing(running) -> None:
    r, svc, d = running
    before = r.venue.query(lambda e: e.ledger.accounts["ALPHA-1"].balance("ETH").avail)
    out = _venue(d, "custody", "withdraw", "ALPHA-1", "ETH", "1", "0x" + "11" * 20)
    assert out.exit_code == 1
    assert "address_not_in_book" in out.output and len(out.output.strip().splitlines()) == 1
    out = _venue(d, "custody", "address", "NOBODY", "ETH")
    assert out.exit_code == 1 and "unknown_account" in out.output
    out = _venue(d, "custody", "approve", "wd:nope")
    assert out.exit_code == 1 and "unknown_withdrawal" in out.output
    assert r.venue.query(lambda e: e.ledger.accounts["ALPHA-1"].balance("ETH").avail) == before


def test_address_book_withdrawal_and_reserves_over_the_socket(running) -> None:
    r, svc, d = running
    dest = "0x" + "22" * 20
    add = _venue(d, "custody", "addresses", "add", "ALPHA-1", "ETH", dest, "--label", "cold storage", "--json")
    assert add.exit_code == 0, add.output
    book = json.loads(_venue(d, "custody", "addresses", "--json").output)
    assert book[0]["state"] == "pending" and book[0]["added_by"]
    # the local operator added it, so the same operator may not approve it
    own = _venue(d, "custody", "addresses", "approve", "ALPHA-1", "ETH", dest)
    assert own.exit_code == 1 and "self_approval" in own.output
    rep = _venue(d, "custody", "reserves", "--json")
    assert rep.exit_code == 0, rep.output
    from custody.reserves import verify_attestation
    att = json.loads(rep.output)
    assert verify_attestation(att)
    assert "ETH" in att["statement"]["assets"]
    proof = json.loads(_venue(d, "custody", "reserves", "--proof", "ALPHA-1", "--asset", "ETH", "--json").output)
    from custody.reserves import verify_proof
    assert verify_proof(proof["root"], int(proof["total"]), proof["proof"])


DEST = "0x" + "33" * 20
BAD = [
    (("custody", "withdrawals", "--state", "nope"), "no withdrawal state 'nope'"),
    (("custody", "sweep", "DOGE"), "unknown_asset"),
    (("custody", "sweep", "BTC"), "unsupported"),
    (("custody", "faucet", "ETH", "ALPHA-1", "99999999999"), "faucet_dry"),
    (("custody", "faucet", "ETH", "ALPHA-1", "-5"), "must be positive"),
    (("custody", "faucet", "DOGE", "ALPHA-1", "1"), "unknown_asset"),
    (("custody", "withdraw", "ALPHA-1", "ETH", "-1", DEST), "must be positive"),
    (("custody", "withdraw", "ALPHA-1", "ETH", "1e", DEST), "amount"),
    (("custody", "reserves", "--proof", "ALPHA-1", "--asset", "ETH"), "no_reserves"),
    (("custody", "limits", "set", "ALPHA-1", "ETH", "1", "2"), "not_an_approver"),
    (("custody", "limits", "set", "ALPHA-1", "ETH", "-1", "2"), "not_an_approver"),
    (("custody", "cold-unsigned", "ETH", "1"), "no_cold_address"),
    (("custody", "cold-submit", "cold:ETH:1", "00"), "unknown_request"),
    (("custody", "audit", "--limit", "abc"), "limit must be a whole number"),
]


def test_bad_arguments_get_one_line_a_nonzero_exit_and_change_nothing(running) -> None:
    r, svc, d = running
    _quiet(r, svc)
    before = _snapshot(r, svc)
    for args, message in BAD:
        out = _venue(d, *args)
        assert out.exit_code != 0, (args, out.stdout)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, out.stderr)
        assert "internal error" not in out.stderr
    assert _snapshot(r, svc) == before


def test_a_proof_of_reserves_can_be_fetched_after_custody_restarts(running) -> None:
    r, svc, d = running
    pub = _venue(d, "custody", "reserves", "--json")
    assert pub.exit_code == 0, pub.stderr
    epoch = json.loads(pub.stdout)["statement"]["epoch"]
    svc.stop()
    again = start_demo_custody(r.venue, block_seconds=0.05, config=CustodyConfig(confirmations=3, poll_seconds=0.05))
    try:
        out = _venue(d, "custody", "reserves", "--proof", "ALPHA-1", "--asset", "ETH", "--json")
        assert out.exit_code == 0, out.stderr
        proof = json.loads(out.stdout)
        from custody.reserves import verify_proof
        assert proof["epoch"] == epoch and verify_proof(proof["root"], int(proof["total"]), proof["proof"])
        assert int(proof["proof"]["balance"]) == 1000 * 10**18  # the demo's seeded ETH
        listed = json.loads(_venue(d, "custody", "reserves", "--list", "--json").stdout)
        assert listed[0]["epoch"] == epoch
    finally:
        again.stop()


COLD = Account.from_key(b"\x56" * 32)


@pytest.fixture
def with_cold() -> Iterator[tuple[RunningVenue, CustodyService, str]]:
    d = tempfile.mkdtemp(prefix="vcus")
    r = start_venue(d, fsync=False)
    for c in demo_commands():
        r.venue.execute(c)
    cfg = CustodyConfig(confirmations=3, poll_seconds=0.05, hot_ceiling={"ETH": "60"},
                        cold_address={"ethereum": COLD.address}, auto_rebalance=False)
    svc = start_demo_custody(r.venue, block_seconds=0.05, config=cfg)
    yield r, svc, d
    svc.stop()
    r.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_operators_reach_rebalance_the_cold_round_trip_limits_and_the_audit_trail(with_cold) -> None:
    from custody.service import wait_until

    r, svc, d = with_cold
    eth = svc.eth
    hot = svc.hot_addresses()["ethereum"]
    assert _venue(d, "custody", "faucet", "ETH", "ALPHA-1", "20").exit_code == 0
    assert wait_until(lambda: eth.w3.eth.get_balance(hot) > 65 * 10**18, timeout=30)  # gas 50 + 20 swept in
    _quiet(r, svc)
    out = _venue(d, "custody", "rebalance", "--json")
    assert out.exit_code == 0, out.stderr
    sent = json.loads(out.stdout)["sent"]
    assert len(sent) == 1 and sent[0]["to"] == COLD.address and sent[0]["ok"]
    assert wait_until(lambda: eth.w3.eth.get_balance(COLD.address) > 9 * 10**18, timeout=30)
    # cold -> hot: the venue builds it, the offline key signs it, the venue checks and sends it
    out = _venue(d, "custody", "cold-unsigned", "ETH", "2.5", "--json")
    assert out.exit_code == 0, out.stderr
    req = json.loads(out.stdout)
    assert req["signer"] == COLD.address and req["digest"].startswith("0x")
    signed = COLD.sign_transaction(req["tx"])
    bad = Account.from_key(b"\x57" * 32).sign_transaction(req["tx"])
    out = _venue(d, "custody", "cold-submit", req["id"], bytes(bad.raw_transaction).hex())
    assert out.exit_code == 1 and "wrong_signer" in out.stderr
    before = eth.w3.eth.get_balance(hot)
    out = _venue(d, "custody", "cold-submit", req["id"], bytes(signed.raw_transaction).hex(), "--json")
    assert out.exit_code == 0, out.stderr
    assert wait_until(lambda: eth.w3.eth.get_balance(hot) == before + 25 * 10**17, timeout=30)
    # limits: an approver sets them; anyone reads them
    alice = _operator(d, "ops-alice")
    out = _venue(d, "custody", "limits", "set", "ALPHA-1", "ETH", "1.5", "3", "--json", as_operator=alice)
    assert out.exit_code == 0, out.stderr
    shown = {x["asset"]: x for x in json.loads(_venue(d, "custody", "limits", "--account", "ALPHA-1", "--json").stdout)}
    assert shown["ETH"]["per_tx"] == "1.5" and shown["ETH"]["daily"] == "3" and shown["ETH"]["set_by"] == "ops-alice"
    assert shown["USDC"]["set_by"] == "config"
    # the audit trail: every step, by whom; and its hash chain holds
    trail = json.loads(_venue(d, "custody", "audit", "--subject", req["id"], "--json").stdout)
    assert [t["action"] for t in trail] == ["cold_unsigned", "tx_adopted", "cold_signed_accepted", "tx_broadcast",
                                           "tx_confirmed"][:len(trail)] and len(trail) >= 3
    assert trail[0]["actor"] == "operator"
    assert any(t["action"] == "limits_set" and t["actor"] == "ops-alice"
               for t in json.loads(_venue(d, "custody", "audit", "--subject", "ALPHA-1", "--json").stdout))
    check = json.loads(_venue(d, "custody", "audit", "--verify", "--json").stdout)
    assert check["intact"] is True and check["records"] > 10
    # broadcasting can be paused and resumed from the command line
    assert json.loads(_venue(d, "custody", "pause-broadcast", "--json").stdout)["paused"] is True
    assert json.loads(_venue(d, "custody", "resume-broadcast", "--json").stdout)["paused"] is False
