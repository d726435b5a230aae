"""The store agrees with the engine, with itself however it was fed, and refuses
another venue's database. Each test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

from collections import defaultdict

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from tests.store.helpers import dump
from tests.store.workload import margin_crash_commands, setup_commands, trading_commands
from venue.core import Venue
from venue.operator import OperatorCommand
from venue.store import Store, StoreError
from venue.store.catchup import open_venue_with_store
from venue.store.models import (
    EXTERNAL, AccountRow, AuditRow, Base, CredentialRow, EntitlementRow, FundingRow, InstrumentRow, LiquidationRow,
    OrderRow, PostingRow, SessionRow, UserRow,
)
from venue.margin import INSURANCE_ACCOUNT, LENDING_ACCOUNT
from venue.types import WAITING_TRIGGER, NEW, PARTIALLY_FILLED


def run_live(data_dir, url, cmds, snapshot_every=200_000):
    """Run ``cmds`` through a live venue with a store; returns (venue, store), both running."""
    v = Venue(str(data_dir), fsync=False, snapshot_every=snapshot_every)
    st = Store(url).open()
    open_venue_with_store(v, st)
    v.start()
    st.start()
    for c in cmds:
        v.submit(c)
    last = v.execute(cmds[-1]).seq  # a duplicate of the last: refused or applied, it marks the end
    assert st.wait_for(last, 60)
    return v, st


def test_store_agrees_with_the_engine(tmp_path, db_urls):
    cmds = setup_commands() + trading_commands(2500, seed=3) + margin_crash_commands()
    v, st = run_live(tmp_path / "v", db_urls[0], cmds)
    try:
        e = v.engine
        reg = e.extensions["access"]
        with st.db.connect() as c:
            postings = c.execute(select(PostingRow.seq, PostingRow.account, PostingRow.asset, PostingRow.amount)).all()
            kinds = {r.kind for r in c.execute(select(PostingRow.kind))}
            liquidations = c.execute(select(LiquidationRow).order_by(LiquidationRow.seq, LiquidationRow.n)).all()
            orders = c.execute(select(OrderRow)).all()
            fundings = {r.funding_id: r for r in c.execute(select(FundingRow))}
            accounts = {r.account: r for r in c.execute(select(AccountRow))}
            insts = {r.symbol: r for r in c.execute(select(InstrumentRow))}
            users = {r.user: r for r in c.execute(select(UserRow))}
            sessions = {r.comp_id: r for r in c.execute(select(SessionRow))}
            ents = c.execute(select(EntitlementRow)).all()
            creds = c.execute(select(CredentialRow).order_by(CredentialRow.seq)).all()
            audit = c.execute(select(AuditRow).order_by(AuditRow.seq)).all()
        # double entry: each command's postings sum to zero per asset
        per_seq = defaultdict(int)
        totals = defaultdict(int)
        for seq, acct, asset, amount in postings:
            per_seq[(seq, asset)] += amount
            if acct != EXTERNAL:
                totals[(acct, asset)] += amount
        assert not {k: v_ for k, v_ in per_seq.items() if v_}
        engine_totals = {(a, s): b.avail + b.held for a, s, b in e.ledger.iter_balances() if b.avail + b.held}
        assert {k: v_ for k, v_ in totals.items() if v_} == engine_totals
        assert any(amount > 2**63 for *_, amount in postings), "the workload must exercise amounts beyond 64 bits"
        # the margin account borrowed and repaid, and was liquidated by the crash
        assert {"borrow", "repay"} <= kinds
        assert any(acct == LENDING_ACCOUNT for _, acct, *_ in postings)
        assert [r.stage for r in liquidations if r.account == "ALPHA-M"][:1] == ["started"]
        assert any(r.stage in ("restored", "closed", "bankrupt") for r in liquidations)
        # open orders and their state
        open_rows = {o.order_id: o for o in orders if o.status in (WAITING_TRIGGER, NEW, PARTIALLY_FILLED)}
        assert set(open_rows) == set(e.orders)
        for oid, o in e.orders.items():
            r = open_rows[oid]
            assert (r.leaves_qty, r.cum_qty, r.qty, r.price, r.cl_ord_id) == (o.leaves, o.cum, o.qty, o.price, o.cl_ord_id)
        # funding, accounts, instruments, access
        assert {k: (r.kind, r.account, r.asset, r.amount, r.state) for k, r in fundings.items()} == {
            k: ("deposit" if f[0] == "deposit" else "withdrawal", f[1], f[2], f[3], f[4]) for k, f in e.ledger.funding.items()}
        assert set(accounts) == set(e.ledger.accounts) >= {"VENUE-FEES", LENDING_ACCOUNT, INSURANCE_ACCOUNT, "ALPHA-M"}
        for aid, a in e.ledger.accounts.items():
            r = accounts[aid]
            assert (r.firm, r.enabled, r.maker_ppm, r.taker_ppm, r.kind, r.leverage) == (
                a.firm.id, a.enabled, a.maker_ppm, a.taker_ppm, a.kind, a.leverage)
        for sym, m in e.markets.items():
            r = insts[sym]
            assert (r.halted, r.max_qty, r.min_qty, r.max_notional) == (m.halted, m.inst.max_qty, m.inst.min_qty,
                                                                        m.inst.max_notional)
        assert {u: (r.firm, r.enabled) for u, r in users.items()} == {u: (x.firm, x.enabled) for u, x in reg.users.items()}
        assert {s: (r.role, r.default_account, r.msg_rate) for s, r in sessions.items()} == {
            s: (x.role, x.default_account, x.msg_rate) for s, x in reg.sessions.items()}
        assert sorted((r.comp_id, r.kind, r.subject) for r in ents) == sorted(
            [(s, "account", a) for s, x in reg.sessions.items() for a in x.accounts]
            + [(s, "firm", f) for s, x in reg.sessions.items() for f in x.entitled_firms])
        latest_pw = [r.value for r in creds if r.subject == "alice" and r.kind == "password"][-1]
        assert latest_pw == reg.users["alice"].password_hash
        # one audit row per operator command, with who and why and the outcome
        ops = [c for c in cmds if isinstance(c, OperatorCommand)]
        assert len(audit) == len(ops) > 0
        for row, c in zip(audit, ops):
            assert (row.operator, row.action, row.reason) == (c.operator, c.action, c.reason)
            assert row.outcome == ("rejected" if c.args.get("symbol") == "NOPE" else "applied")
    finally:
        v.stop()
        st.stop()


def test_rows_do_not_depend_on_how_the_store_was_fed(tmp_path, db_urls):
    """Live in batches vs. rebuilt in one go from the journal: the very same rows."""
    v, live = run_live(tmp_path / "v", db_urls[0], setup_commands() + trading_commands(1500, seed=5))
    v.stop()
    live.stop()
    rebuilt = Store(db_urls[1]).open()
    v2 = Venue(str(tmp_path / "v"), fsync=False)
    open_venue_with_store(v2, rebuilt)
    assert dump(rebuilt) == dump(Store(db_urls[0]).open())
    assert rebuilt.last_seq == v2.engine.seq


def test_catch_up_from_behind_the_newest_snapshot(tmp_path, db_urls):
    d = tmp_path / "v"
    trading = trading_commands(3000, seed=9)
    v, st = run_live(d, db_urls[0], setup_commands() + trading[:800], snapshot_every=300)
    v.stop()
    st.stop()
    behind = Store(db_urls[0]).open().last_seq
    # the venue runs on without its store, taking snapshots the store never saw
    v = Venue(str(d), fsync=False, snapshot_every=300)
    v.open()
    v.start()
    for c in trading[800:]:
        v.submit(c)
    end = v.execute(trading[-1]).seq
    v.stop()
    from venue.snapshot import list_snapshots
    snaps = [s for s, _ in list_snapshots(str(d / "snapshots"))]
    assert any(s <= behind for s in snaps) and max(snaps) > behind + 1000
    # back with its store: it catches up through a scratch engine, then the replay
    v = Venue(str(d), fsync=False)
    st = Store(db_urls[0]).open()
    open_venue_with_store(v, st)
    assert st.last_seq == end == v.engine.seq
    reference = Store(db_urls[1]).open()
    open_venue_with_store(Venue(str(d), fsync=False), reference)
    assert dump(st) == dump(reference)


def test_refuses_another_venues_database(tmp_path, db_urls):
    v, st = run_live(tmp_path / "one", db_urls[0], setup_commands())
    v.stop()
    st.stop()
    other, st2 = run_live(tmp_path / "two", db_urls[1], setup_commands())
    other.stop()
    st2.stop()
    before = dump(Store(db_urls[0]).open())
    with pytest.raises(StoreError, match="another venue"):
        open_venue_with_store(Venue(str(tmp_path / "two"), fsync=False), Store(db_urls[0]).open())
    assert dump(Store(db_urls[0]).open()) == before


def test_migrations_create_exactly_the_models(tmp_path, db_urls):
    st = Store(db_urls[0]).open()
    with st.db.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == []
    assert Store(db_urls[0]).migrate() == []  # already at the head: nothing to do
