"""``venue custody ...`` through a running venue's real control socket, with custody on
the embedded chain inside that venue (as ``venue demo`` runs it)."""
from __future__ import annotations

import json
import shutil
import tempfile
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

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


def _venue(d: str, *args: str) -> Any:
    env = {"VENUE_OPERATOR": None, "VENUE_OPERATOR_SECRET": None, "VENUE_DATA_DIR": None}
    return CliRunner().invoke(cli, [*args, "--data-dir", d], env=env, catch_exceptions=False)


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
