"""Bad input: a one-line error on stderr, exit status 1, and nothing changes (the
engine's sequence number and state hashes stay as they were)."""
from __future__ import annotations

import json
import os
import stat

import pytest

from cli.main import cli

BAD = [
    (["halt", "NOPE"], "unknown symbol NOPE"),
    (["resume", "NOPE"], "unknown symbol NOPE"),
    (["book", "NOPE"], "unknown symbol NOPE"),
    (["limits", "show", "NOPE"], "unknown symbol NOPE"),
    (["limits", "set", "BTC-USD", "--max-qty", "abc"], "not a number"),
    (["limits", "set", "BTC-USD", "--max-qty", "0.000001"], "not a multiple of the lot size"),
    (["limits", "set", "BTC-USD", "--min-qty", "-1"], "must be positive"),
    (["limits", "set", "BTC-USD", "--min-qty", "2000"], "minimum quantity is above the maximum"),
    (["limits", "set", "BTC-USD"], "at least one limit"),
    (["limits", "set", "BTC-USD", "--market-band-pct", "150"], "market band"),
    (["cancel", "--account", "NOBODY"], "unknown account NOBODY"),
    (["cancel", "--account", "ALPHA-1", "--symbol", "NOPE"], "unknown symbol NOPE"),
    (["kill-switch", "--account", "NOBODY"], "unknown account NOBODY"),
    (["kill-switch", "--firm", "NOFIRM"], "unknown firm NOFIRM"),
    (["kill-switch", "--session", "NOSESSION"], "unknown session NOSESSION"),
    (["kill-switch", "--account", "ALPHA-1", "--firm", "ALPHA"], "exactly one"),
    (["kill-switch"], "exactly one"),
    (["deposit", "--account", "NOBODY", "--asset", "USD", "--amount", "1", "--funding-id", "x"], "unknown account"),
    (["deposit", "--account", "ALPHA-1", "--asset", "XYZ", "--amount", "1", "--funding-id", "x"], "unknown asset XYZ"),
    (["deposit", "--account", "ALPHA-1", "--asset", "USD", "--amount", "1e", "--funding-id", "x"], "not a number"),
    (["deposit", "--account", "ALPHA-1", "--asset", "USD", "--amount", "-5", "--funding-id", "x"], "positive"),
    (["deposit", "--account", "ALPHA-1", "--asset", "USD", "--amount", "0.000000001", "--funding-id", "x"], "decimals"),
    (["deposit", "--account", "ALPHA-1", "--asset", "USD", "--amount", "NaN", "--funding-id", "x"], "finite"),
    (["balances", "--account", "NOBODY"], "unknown account NOBODY"),
    (["orders", "--account", "NOBODY"], "unknown account NOBODY"),
    (["orders", "--history", "--symbol", "NOPE"], "unknown symbol NOPE"),
    (["trades", "--account", "NOBODY"], "unknown account NOBODY"),
    (["accounts", "create", "Z-1", "--firm", "NOFIRM"], "unknown firm NOFIRM"),
    (["accounts", "create", "Z-1", "--firm", "ALPHA", "--taker-ppm", "1.5"], "whole number"),
    (["accounts", "disable", "NOBODY"], "unknown account NOBODY"),
    (["firms", "disable", "NOFIRM"], "unknown firm NOFIRM"),
    (["firms", "create", "ALPHA"], "exists"),
    (["users", "rotate", "nobody"], "unknown user nobody"),
    (["users", "create", "u1", "--firm", "NOFIRM"], "unknown firm NOFIRM"),
    (["sessions", "disable", "NOSESSION"], "unknown session NOSESSION"),
    (["sessions", "create", "X-OE", "--role", "order_entry", "--firm", "ALPHA", "--user", "nobody"], "nobody"),
    (["report", "trades", "--from", "yesterday"], "not a date"),
    (["report", "balances", "--from", "2026-02-01", "--to", "2026-01-01"], "after --from"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_refused_with_one_line_and_nothing_changes(venue, args, message):
    venue.running.store.wait_for(venue.seq())
    seq, hashes = venue.seq(), venue.hashes()
    res = venue(*args)
    assert res.exit_code != 0
    err = res.stderr.strip()
    assert message in err and "\n" not in err and "Traceback" not in res.output, res.output
    assert venue.seq() == seq and venue.hashes() == hashes


ENGINE_REFUSED = [
    (["withdraw", "--account", "ALPHA-1", "--asset", "BTC", "--amount", "1000000", "--funding-id", "y"],
     "insufficient BTC", "withdraw"),
    (["sessions", "rotate-key", "ALPHA-OE", "--ed25519-key", "zz"], "Ed25519", "sessions.rotate-key"),
]


@pytest.mark.parametrize("args,message,action", ENGINE_REFUSED, ids=[a[0] for a, _, _ in ENGINE_REFUSED])
def test_a_refusal_by_the_engine_changes_nothing_but_is_audited(venue, args, message, action):
    """What only the engine can judge is journaled as an audited attempt; the venue's
    state (balances, orders, books, access) stays as it was."""
    hashes = venue.hashes()
    res = venue(*args, "--reason", "try")
    assert res.exit_code == 1 and message in res.stderr
    now = venue.hashes()
    assert {k: v for k, v in now.items() if k != "engine"} == {k: v for k, v in hashes.items() if k != "engine"}
    last = json.loads(venue("audit", "--json", "--limit", "1").stdout)[0]
    assert (last["action"], last["outcome"], last["reason"]) == (action, "rejected", "try")
    assert message in last["detail"]


def test_refused_credentials_change_nothing(venue):
    seq = venue.seq()
    res = venue("halt", "BTC-USD", env={"VENUE_OPERATOR": "operator", "VENUE_OPERATOR_SECRET": "wrong"})
    assert res.exit_code == 1 and "refused the operator's credentials" in res.stderr
    res = venue("halt", "BTC-USD", env={"VENUE_OPERATOR": "mallory", "VENUE_OPERATOR_SECRET": "x"})
    assert res.exit_code == 1 and "refused" in res.stderr
    assert venue.seq() == seq
    assert venue.running.venue.query(lambda e: e.markets["BTC-USD"].halted) is False


def test_a_venue_that_is_not_running(data_dir):
    from click.testing import CliRunner

    from cli.operators import ensure_local_operator

    ensure_local_operator(data_dir)
    res = CliRunner().invoke(cli, ["halt", "BTC-USD", "--data-dir", data_dir], env={"VENUE_DATA_DIR": None})
    assert res.exit_code == 1 and "no venue is running" in res.stderr
    open(os.path.join(data_dir, "control.sock"), "w").close()  # a stale file, nobody listening
    res = CliRunner().invoke(cli, ["status", "--data-dir", data_dir])
    assert res.exit_code == 1 and "no venue is running" in res.stderr
    res = CliRunner().invoke(cli, ["status", "--data-dir", os.path.join(data_dir, "nothing-here")])
    assert res.exit_code == 1 and "no operator credential" in res.stderr


def test_the_endpoint_and_credentials_are_private(running, data_dir):
    for name in ("control.sock", "operators.json", "operator.secret"):
        mode = stat.S_IMODE(os.stat(os.path.join(data_dir, name)).st_mode)
        assert mode == 0o600, (name, oct(mode))
    with open(os.path.join(data_dir, "operators.json")) as f:
        stored = f.read()
    with open(os.path.join(data_dir, "operator.secret")) as f:
        secret = json.load(f)["secret"]
    assert secret not in stored and "scrypt$" in stored


def test_a_second_venue_on_the_same_directory_is_refused(running, data_dir):
    from cli.control import ControlServer
    from cli.errors import ControlError

    with pytest.raises(ControlError, match="already running"):
        ControlServer(running.venue, data_dir).start()
