"""The operator's commands against a running venue, through click's runner and the real
control socket: each action changes the venue through the sequencer, the engine's
answers change accordingly, and the audit log records who, what and why."""
from __future__ import annotations

import csv
import io
import json

from venue import commands as C
from venue.events import Execution, OrderRejected
from venue.types import BUY, LIMIT, SELL, CancelReason, Reject


def order(venue, account: str, clid: str, side: int = BUY, symbol: str = "BTC-USD", px: int = 4_000_000, qty: int = 100):
    p = venue.running.venue.execute(C.NewOrder(account, clid, symbol, side, LIMIT, qty, px))
    return p.events[0]


def as_json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def audit_rows(venue):
    return as_json(venue("audit", "--json", "--limit", "500"))


def test_halt_refuses_orders_and_resume_accepts_them(venue):
    assert isinstance(order(venue, "ALPHA-1", "a1"), Execution)
    res = venue("halt", "BTC-USD", "--reason", "bad feed")
    assert res.exit_code == 0 and "yes" in res.stdout
    ev = order(venue, "ALPHA-1", "a2")
    assert isinstance(ev, OrderRejected) and ev.code == Reject.INSTRUMENT_HALTED
    assert isinstance(order(venue, "ALPHA-1", "e1", symbol="ETH-USD", px=200_000), Execution)  # others trade on
    assert "BTC-USD" in as_json(venue("status", "--json"))["halted"]
    assert venue("resume", "BTC-USD").exit_code == 0
    assert isinstance(order(venue, "ALPHA-1", "a3"), Execution)
    log = audit_rows(venue)
    halt = next(r for r in log if r["action"] == "halt")
    assert (halt["operator"], halt["reason"], halt["outcome"]) == ("operator", "bad feed", "applied")
    assert json.loads(halt["args"])["symbol"] == "BTC-USD"


def test_halt_with_cancel_book_cancels_resting_orders(venue):
    order(venue, "ALPHA-1", "r1")
    order(venue, "BETA-1", "r2", side=SELL, px=6_000_000)
    assert as_json(venue("halt", "BTC-USD", "--cancel-book", "--json"))["halted"] is True
    assert as_json(venue("orders", "--json", "--symbol", "BTC-USD")) == []


def test_kill_switch_account_cancels_blocks_and_lifts(venue):
    for i in range(3):
        order(venue, "ALPHA-1", f"k{i}")
    order(venue, "BETA-1", "b0", side=SELL, px=6_000_000)
    out = as_json(venue("kill-switch", "--account", "ALPHA-1", "--reason", "runaway algo", "--json"))
    assert out["cancelled"] == 3
    left = as_json(venue("orders", "--json"))
    assert [o["account"] for o in left] == ["BETA-1"]
    ev = order(venue, "ALPHA-1", "k9")
    assert isinstance(ev, OrderRejected) and ev.code == Reject.KILL_SWITCH and "runaway algo" in ev.text
    acct = {a["account"]: a for a in as_json(venue("accounts", "list", "--json"))}["ALPHA-1"]
    assert "runaway algo" in acct["kill_switch"] and acct["enabled"] is True  # blocked, not disabled
    hist = as_json(venue("orders", "--history", "--account", "ALPHA-1", "--json"))
    assert sum(1 for o in hist if o["status"] == "cancelled") == 3
    assert as_json(venue("kill-switch", "--account", "ALPHA-1", "--lift", "--json"))["lifted"] is True
    assert isinstance(order(venue, "ALPHA-1", "k10"), Execution)
    kinds = [(r["action"], json.loads(r["args"]).get("lift")) for r in audit_rows(venue)]
    assert ("kill-switch", True) in kinds and ("kill-switch", False) in kinds


def test_kill_switch_firm_and_session(venue):
    from venue import access
    from tests.store.workload import PW_HASH

    r = venue.running.venue
    r.execute(access.CreateUser("bob", "BETA", PW_HASH))
    r.execute(access.CreateSession("BETA-X", "order_entry", "BETA", "bob", default_account="BETA-1"))
    r.execute(C.NewOrder("BETA-1", "s1", "BTC-USD", SELL, LIMIT, 10, 6_000_000, session="BETA-X"))
    order(venue, "BETA-1", "n1", side=SELL, px=6_100_000)
    out = as_json(venue("kill-switch", "--session", "BETA-X", "--json"))
    assert out["cancelled"] == 1
    sess = {s["comp_id"]: s for s in as_json(venue("sessions", "list", "--json"))}
    assert sess["BETA-X"]["kill_switch"] == "kill switch"
    refused = r.execute(C.NewOrder("BETA-1", "s2", "BTC-USD", SELL, LIMIT, 10, 6_000_000, session="BETA-X")).events
    assert isinstance(refused[0], OrderRejected) and refused[0].code == Reject.KILL_SWITCH
    assert [o["cl_ord_id"] for o in as_json(venue("orders", "--json"))] == ["n1"]
    out = as_json(venue("kill-switch", "--firm", "BETA", "--json"))
    assert out["cancelled"] == 1 and out["accounts"] == ["BETA-1"]
    assert isinstance(order(venue, "BETA-1", "n2", side=SELL), OrderRejected)
    venue("kill-switch", "--firm", "BETA", "--lift")
    assert isinstance(order(venue, "BETA-1", "n3", side=SELL, px=6_000_000), Execution)


def test_cancel_by_account_and_symbol(venue):
    order(venue, "ALPHA-1", "c1")
    order(venue, "ALPHA-1", "c2", symbol="ETH-USD", px=200_000)
    out = as_json(venue("cancel", "--account", "ALPHA-1", "--symbol", "BTC-USD", "--json"))
    assert out["cancelled"] == 1
    assert [o["cl_ord_id"] for o in as_json(venue("orders", "--json"))] == ["c2"]
    hist = as_json(venue("orders", "--history", "--json", "--account", "ALPHA-1"))
    assert {o["cl_ord_id"]: o["status"] for o in hist} == {"c1": "cancelled", "c2": "new"}
    ex = venue.running.store  # the cancel reason reached the store
    from sqlalchemy import select
    from venue.store.models import ExecutionRow
    with ex.db.connect() as c:
        reasons = [r for r, in c.execute(select(ExecutionRow.reason).where(ExecutionRow.cl_ord_id == "c1"))]
    assert int(CancelReason.OPERATOR) in reasons


def test_deposit_and_withdraw_are_idempotent_postings(venue):
    before = {b["asset"]: b for b in as_json(venue("balances", "--account", "ALPHA-1", "--json"))}
    args = ("--account", "ALPHA-1", "--asset", "USD", "--amount", "250.5", "--funding-id", "wire-1", "--json")
    assert as_json(venue("deposit", *args))["posted"] is True
    seq = venue.seq()
    again = as_json(venue("deposit", *args))
    assert again["posted"] is False and venue.seq() == seq  # a retry posts nothing and journals nothing
    res = venue("deposit", "--account", "ALPHA-1", "--asset", "USD", "--amount", "9", "--funding-id", "wire-1")
    assert res.exit_code == 1 and "already used" in res.stderr
    assert as_json(venue("withdraw", "--account", "ALPHA-1", "--asset", "USD", "--amount", "0.5",
                         "--funding-id", "out-1", "--json"))["posted"] is True
    after = {b["asset"]: b for b in as_json(venue("balances", "--account", "ALPHA-1", "--json"))}
    from decimal import Decimal
    assert Decimal(after["USD"]["total"]) - Decimal(before["USD"]["total"]) == Decimal("250")
    res = venue("withdraw", "--account", "ALPHA-1", "--asset", "USD", "--amount", "99999999", "--funding-id", "out-2")
    assert res.exit_code == 1 and "insufficient" in res.stderr


def test_limits_show_and_set(venue):
    rows = as_json(venue("limits", "show", "--json"))
    assert [r["symbol"] for r in rows] == ["BTC-USD", "ETH-BTC", "ETH-USD"]
    out = as_json(venue("limits", "set", "BTC-USD", "--max-qty", "0.5", "--min-notional", "10", "--reason", "risk",
                        "--json"))
    assert (out["max_qty"], out["min_notional"]) == ("0.50000", "10")
    ev = order(venue, "ALPHA-1", "big", qty=60_000)  # 0.6 BTC
    assert isinstance(ev, OrderRejected) and ev.code == Reject.QTY_ABOVE_MAX
    assert isinstance(order(venue, "ALPHA-1", "ok", qty=40_000), Execution)
    table = venue("limits", "show", "BTC-USD")
    assert table.exit_code == 0 and "MAX_QTY" in table.stdout and "0.50000" in table.stdout


def test_firms_and_accounts(venue):
    assert venue("firms", "create", "GAMMA", "--name", "Gamma Fund").exit_code == 0
    out = as_json(venue("accounts", "create", "GAMMA-1", "--firm", "GAMMA", "--taker-ppm", "400", "--maker-ppm", "-100",
                        "--json"))
    assert (out["firm"], out["taker_ppm"], out["maker_ppm"], out["enabled"]) == ("GAMMA", 400, -100, True)
    firms = {f["firm"]: f for f in as_json(venue("firms", "list", "--json"))}
    assert firms["GAMMA"]["accounts"] == 1
    assert as_json(venue("accounts", "disable", "GAMMA-1", "--json"))["enabled"] is False
    assert as_json(venue("firms", "enable", "GAMMA", "--json"))["enabled"] is True
    accts = {a["account"]: a for a in as_json(venue("accounts", "list", "--firm", "GAMMA", "--json"))}
    assert accts["GAMMA-1"]["enabled"] is True
    res = venue("accounts", "create", "GAMMA-1", "--firm", "GAMMA")
    assert res.exit_code == 1 and "exists" in res.stderr


def test_users_and_sessions_with_credential_rotation(venue):
    from cli.operators import check_secret

    reg = venue.running.venue.engine.extensions["access"]
    out = as_json(venue("users", "create", "carol", "--firm", "ALPHA", "--json"))
    first = out["password"]
    assert check_secret(first, reg.users["carol"].password_hash)
    rot = as_json(venue("users", "rotate", "carol", "--json"))
    assert check_secret(rot["password"], reg.users["carol"].password_hash)
    assert not check_secret(first, reg.users["carol"].password_hash)
    assert as_json(venue("users", "disable", "carol", "--json"))["enabled"] is False
    s = as_json(venue("sessions", "create", "CAROL-OE", "--role", "order_entry", "--firm", "ALPHA", "--user", "carol",
                      "--default-account", "ALPHA-1", "--json"))
    assert s["default_account"] == "ALPHA-1" and s["enabled"] is True
    key = "ab" * 32
    assert as_json(venue("sessions", "rotate-key", "CAROL-OE", "--ed25519-key", key, "--json"))["signed_logon"] is True
    assert as_json(venue("sessions", "disable", "CAROL-OE", "--json"))["enabled"] is False
    actions = [r["action"] for r in audit_rows(venue)]
    for a in ("users.create", "users.rotate", "users.disable", "sessions.create", "sessions.rotate-key", "sessions.disable"):
        assert a in actions
    log = json.dumps(audit_rows(venue))
    assert first not in log and rot["password"] not in log and "scrypt" not in log  # no secret, no hash


def test_book_trades_and_reports(venue):
    order(venue, "BETA-1", "s1", side=SELL, px=5_000_000, qty=300)
    order(venue, "ALPHA-1", "b1", side=BUY, px=5_000_000, qty=100)
    order(venue, "ALPHA-1", "b2", side=BUY, px=4_990_000, qty=50)
    book = as_json(venue("book", "BTC-USD", "--json"))
    assert book["asks"] == [{"price": "50000.00", "qty": "0.00200", "orders": 1}]
    assert book["bids"][0]["price"] == "49900.00" and book["last"] == "50000.00"
    assert "49900.00" in venue("book", "BTC-USD").stdout
    trades = as_json(venue("trades", "--json"))
    assert len(trades) == 1 and trades[0]["price"] == "50000" and trades[0]["qty"] == "0.001"
    res = venue("report", "trades", "--from", "2000-01-01", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert res.exit_code == 0 and len(rows) == 1 and rows[0]["taker_account"] == "ALPHA-1"
    assert venue("report", "trades", "--from", "2000-01-01", "--to", "2000-01-02").stdout.count("\n") == 1
    res = venue("report", "balances", "--format", "csv")
    bal = {(r["account"], r["asset"]): r for r in csv.DictReader(io.StringIO(res.stdout))}
    live = {(b["account"], b["asset"]): b["total"] for b in as_json(venue("balances", "--json"))}
    assert {k: r["closing"] for k, r in bal.items() if r["closing"] != "0"} == live
    # offline, straight from the store's database
    url = venue.running.store.url
    res = venue("report", "balances", "--db", url, "--format", "json")
    assert {(r["account"], r["asset"]): r["closing"] for r in json.loads(res.stdout) if r["closing"] != "0"} == live


def test_journal_verify_snapshot_and_replay(venue):
    order(venue, "BETA-1", "s1", side=SELL, px=5_000_000, qty=300)
    order(venue, "ALPHA-1", "b1", side=BUY, px=5_000_000, qty=100)
    venue("halt", "ETH-USD")
    out = as_json(venue("journal", "verify", "--json"))
    assert out["invariants"] == "ok" and out["last_seq"] == venue.seq()
    snap = as_json(venue("journal", "snapshot", "--json"))
    assert snap["seq"] == venue.seq() - 1  # the audit note of the snapshot follows it
    rep = as_json(venue("journal", "replay", "--compare", "--json"))
    assert rep["matches_live"] is True
    assert rep["hash.books"] == venue.hashes()["books"]
    rep2 = as_json(venue("journal", "replay", "--from-snapshot", "--json"))
    assert rep2["hash.ledger"] == venue.hashes()["ledger"]


def test_status(venue):
    assert venue.running.store.wait_for(venue.seq())
    s = as_json(venue("status", "--json"))
    assert s["engine_seq"] == s["journal_seq"] == s["store_seq"] == venue.seq()
    assert s["store_lag"] == 0 and s["store_error"] == ""
    assert s["store"].startswith("sqlite:///") and s["journal_lag"] == 0
    text = venue("status").stdout
    assert "engine_seq" in text and "store_lag" in text


def test_every_help():
    from click.testing import CliRunner

    from cli.main import cli

    def walk(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    for path in walk(cli, []):
        res = CliRunner().invoke(cli, path + ["--help"])
        assert res.exit_code == 0 and "Usage:" in res.output, path


def test_risk_limits_per_account_firm_and_instrument(venue):
    # an account's own limit on one symbol: the narrowest scope applies, in the operator's units
    out = as_json(venue("limits", "set", "BTC-USD", "--account", "ALPHA-1", "--max-qty", "0.001", "--json"))
    assert {r["limit"]: (r["value"], r["set_on"]) for r in out}["max_qty"] == ("0.001", "account ALPHA-1 BTC-USD")
    ev = order(venue, "ALPHA-1", "big", qty=101)  # 0.00101 BTC
    assert isinstance(ev, OrderRejected) and ev.code == Reject.QTY_ABOVE_MAX and "0.001" in ev.text
    assert isinstance(order(venue, "ALPHA-1", "ok", qty=100), Execution)
    # a firm's count limit for every instrument
    as_json(venue("limits", "set", "--firm", "BETA", "--max-open-orders", "1", "--reason", "new client", "--json"))
    assert isinstance(order(venue, "BETA-1", "b1", side=SELL, px=6_000_000), Execution)
    ev = order(venue, "BETA-1", "b2", side=SELL, px=6_000_000)
    assert isinstance(ev, OrderRejected) and ev.code == Reject.MAX_OPEN_ORDERS
    sets = as_json(venue("limits", "show", "--firm", "BETA", "--json"))
    assert [(s["symbol"], s["max_open_orders"]) for s in sets] == [("*", "1")]
    # the instrument's price band; 0 removes it
    row = as_json(venue("limits", "set", "BTC-USD", "--price-band-pct", "5", "--json"))
    assert row["price_band_pct"] == "5"
    assert as_json(venue("limits", "set", "BTC-USD", "--price-band-pct", "0", "--json"))["price_band_pct"] == ""
    as_json(venue("limits", "set", "--firm", "BETA", "--max-open-orders", "0", "--json"))
    assert isinstance(order(venue, "BETA-1", "b3", side=SELL, px=6_000_000), Execution)
    acts = [r["action"] for r in audit_rows(venue)]
    assert acts.count("limits.set") == 5


def test_limits_and_leverage_refusals_change_nothing(venue):
    seq = venue.seq()
    for args, message in ((["limits", "set", "--firm", "ALPHA", "--max-qty", "1"], "name a SYMBOL"),
                          (["limits", "set", "BTC-USD", "--firm", "ALPHA", "--account", "ALPHA-1", "--max-qty", "1"],
                           "not both"),
                          (["limits", "set", "BTC-USD", "--account", "ALPHA-1", "--market-band-pct", "1"], "instrument's"),
                          (["limits", "set", "--firm", "NOFIRM", "--max-open-orders", "1"], "unknown firm NOFIRM"),
                          (["accounts", "leverage", "ALPHA-1", "5"], "not a margin account")):
        res = venue(*args)
        assert res.exit_code != 0 and message in res.stderr and "\n" not in res.stderr.strip(), (args, res.output)
    assert venue.seq() == seq + 1  # only the refused leverage change reached the journal (audited as rejected)
    out = as_json(venue("accounts", "leverage", "ALPHA-M", "5", "--json"))
    assert (out["kind"], out["leverage"]) == ("margin", 5)
