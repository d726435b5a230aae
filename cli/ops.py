"""The operator's commands: ``venue init|run|status|halt|...``.

Each command that touches a running venue goes through its control endpoint
(:class:`cli.control.ControlClient`), found from ``--data-dir`` / VENUE_DATA_DIR; nothing
here edits a venue's files behind its back. The exceptions are read-only journal work
(``venue journal verify|replay``), offline reports from a database (``--db``) and
``venue init``, which runs before any venue does.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, Callable

import click

from cli.control import ControlClient
from cli.output import Failure, emit, failing_cleanly, json_option, write_csv

# -- shared options ----------------------------------------------------------------------


def _data_dir_option(f: Callable) -> Callable:
    from cli.main import DEFAULT_DATA_DIR

    return click.option("--data-dir", envvar="VENUE_DATA_DIR", default=DEFAULT_DATA_DIR, show_default=True,
                        type=click.Path(file_okay=False),
                        help="The venue's data directory (or VENUE_DATA_DIR).")(f)


def _reason_option(f: Callable) -> Callable:
    return click.option("--reason", default="", help="Why (recorded in the audit log).")(f)


def _call(data_dir: str, op: str, args: dict | None = None, reason: str = "") -> Any:
    return ControlClient(data_dir).call(op, {k: v for k, v in (args or {}).items() if v is not None}, reason)


def _simple(group: click.Group, name: str, op: str, help: str, *params: Callable, columns: list[str] | None = None,
            mutates: bool = False) -> None:
    """Add ``group name [params]`` that sends its parameters to control op ``op``."""

    def run(data_dir: str, as_json: bool, reason: str = "", **args: Any) -> None:
        emit(_call(data_dir, op, args, reason), as_json, columns)

    cmd: Callable = failing_cleanly(run)
    for p in reversed(params):
        cmd = p(cmd)
    if mutates:
        cmd = _reason_option(cmd)
    cmd = json_option(_data_dir_option(cmd))
    group.command(name, help=help)(cmd)


def add_commands(cli: click.Group) -> None:
    for c in (init, run, status, halt, resume, kill_switch, cancel, deposit, withdraw, book, trades, orders, balances,
              audit, firms, accounts, users, sessions, limits, journal, report, operators):
        cli.add_command(c)


# -- init and run --------------------------------------------------------------------------


@click.command()
@_data_dir_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Configuration file (TOML).")
@click.option("--db", help="Store URL (default: SQLite under the data directory).")
@json_option
@failing_cleanly
def init(data_dir: str, config_path: str | None, db: str | None, as_json: bool) -> None:
    """Create a venue: data directory, store schema, operator credential, assets and instruments."""
    from cli.config import VenueConfig, load_config
    from cli.runtime import define_missing, start_venue

    cfg = load_config(config_path) if config_path else VenueConfig()
    data_dir = cfg.data_dir if (cfg.data_dir and not _given("data_dir")) else data_dir
    running = start_venue(data_dir, db or cfg.db or None, fsync=cfg.fsync)
    try:
        defined = define_missing(running, cfg)
        seq = running.venue.engine.seq if running.venue.engine else 0
    finally:
        running.stop()
    emit({"data_dir": os.path.abspath(data_dir), "store": running.store.safe_url if running.store else "",
          "operator": running.credential.name, "credential_file": os.path.join(os.path.abspath(data_dir), "operator.secret"),
          "defined": defined, "seq": seq}, as_json)


def _given(param: str) -> bool:
    ctx = click.get_current_context()
    src = ctx.get_parameter_source(param)
    return src is not None and src.name in ("COMMANDLINE", "ENVIRONMENT")


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Configuration file (TOML): data dir, db URL, instruments, FIX ports.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Overrides the configuration's data_dir.")
@click.option("--db", help="Overrides the configuration's store URL.")
@click.option("--no-fix", is_flag=True, help="Do not start the FIX acceptor.")
@failing_cleanly
def run(config_path: str, data_dir: str | None, db: str | None, no_fix: bool) -> None:
    """Run a venue: core, store, control endpoint and the FIX acceptor."""
    from cli.config import load_config
    from cli.main import DEFAULT_DATA_DIR, _wait_for_signal
    from cli.runtime import define_missing, start_venue

    cfg = load_config(config_path)
    data_dir = data_dir or cfg.data_dir or os.environ.get("VENUE_DATA_DIR") or DEFAULT_DATA_DIR
    running = _start_with_progress(data_dir, db or cfg.db or None, cfg.fsync, cfg.snapshot_every)
    try:
        defined = define_missing(running, cfg)
        if defined:
            click.echo(f"defined {', '.join(defined)}")
        if not no_fix:
            _register_fix_acceptor()
            running.start_front_ends(cfg)
        if cfg.redis:
            from cli.runtime import start_redis_publisher

            start_redis_publisher(running, cfg.redis)
            click.echo("market data published to Redis (prefix md)")
        click.echo(f"venue running in {running.venue.data_dir} at sequence {running.venue.engine.seq}; "
                   f"store {running.store.safe_url if running.store else '(none)'}; Ctrl-C stops")
        _wait_for_signal()
    finally:
        running.stop()


def _register_fix_acceptor() -> None:
    """Start the FIX acceptor of ``sessions/`` (when it is installed) from ``venue run``."""
    from cli.runtime import register_acceptor

    try:
        from sessions.server import FixConfig, FixServer
    except ImportError:
        return

    def start(running: Any, cfg: Any) -> Any:
        fix = cfg.fix
        server = FixServer(running.venue, FixConfig(data_dir=running.venue.data_dir, host=fix.host,
                                                    ports={"order_entry": fix.order_entry_port,
                                                           "drop_copy": fix.drop_copy_port,
                                                           "market_data": fix.market_data_port}),
                           store=running.store, market_data=running.market_data)
        server.start()
        from cli.control import register_status

        register_status("fix", lambda _v: server.status())
        click.echo(f"FIX on {fix.host}: {server.ports()}")
        return server

    register_acceptor(start)


def _start_with_progress(data_dir: str, db: str | None, fsync: bool = True, snapshot_every: int = 200_000) -> Any:
    """start_venue with a progress bar while the store catches up from the journal."""
    from cli.runtime import start_venue
    from venue import journal
    from venue.store import Store, default_url

    behind = 0
    jdir = os.path.join(data_dir, "journal")
    if os.path.isdir(jdir):
        segs = journal.scan(jdir)
        last = segs[-1].last_seq if segs and segs[-1].records else (segs[-1].first_seq - 1 if segs else 0)
        try:
            st = Store(db or default_url(data_dir)).open()
            behind = max(0, last - st.last_seq)
            st.db.dispose()
        except Exception:
            behind = 0
    if behind < 10_000:
        return start_venue(data_dir, db, fsync=fsync, snapshot_every=snapshot_every, with_market_data=True)
    with click.progressbar(length=behind, label="store catching up from the journal", file=click.get_text_stream("stderr")) as bar:
        return start_venue(data_dir, db, fsync=fsync, snapshot_every=snapshot_every, progress=bar.update,
                           with_market_data=True)


# -- status --------------------------------------------------------------------------------


@click.command()
@_data_dir_option
@json_option
@failing_cleanly
def status(data_dir: str, as_json: bool) -> None:
    """Engine sequence, journal and store lag, message rates, FIX sessions."""
    emit(_call(data_dir, "status"), as_json)


# -- instruments ---------------------------------------------------------------------------


@click.command()
@click.argument("symbol")
@click.option("--cancel-book", is_flag=True, help="Also cancel every open order of the symbol.")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def halt(symbol: str, cancel_book: bool, reason: str, data_dir: str, as_json: bool) -> None:
    """Halt trading in SYMBOL: new orders and amendments are refused."""
    emit(_call(data_dir, "halt", {"symbol": symbol, "cancel_book": cancel_book}, reason), as_json)


@click.command()
@click.argument("symbol")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def resume(symbol: str, reason: str, data_dir: str, as_json: bool) -> None:
    """Resume trading in SYMBOL."""
    emit(_call(data_dir, "resume", {"symbol": symbol}, reason), as_json)


@click.group()
def limits() -> None:
    """Limits: an instrument's bounds and pre-trade risk limits per instrument, firm or account."""


_LIMIT_HELP = """The narrowest scope that sets a limit applies: account+symbol, account, firm+symbol,
firm, instrument. Quantities are in the base asset, notionals in the quote asset, bands in
percent of the reference price (last trade, or mid); 0 removes a risk limit."""

_simple(limits, "show", "limits.show",
        "Show every instrument's limits (or SYMBOL's); with --firm/--account their limit sets; "
        "with --account and SYMBOL the limits that apply to that account there, and their use.",
        click.argument("symbol", required=False), click.option("--firm"), click.option("--account"))
_simple(limits, "set", "limits.set",
        "Set limits of SYMBOL (the instrument), or of a --firm or --account (for SYMBOL, or every instrument). "
        + _LIMIT_HELP,
        click.argument("symbol", required=False), click.option("--firm"), click.option("--account"),
        click.option("--min-qty"), click.option("--max-qty"), click.option("--min-notional"),
        click.option("--max-notional"),
        click.option("--market-band-pct", help="Instrument only: market orders trade at most this far from the touch."),
        click.option("--price-band-pct", help="Limit orders further than this from the reference are refused."),
        click.option("--max-open-orders"), click.option("--max-open-notional", help="Gross open notional (credit)."),
        click.option("--max-position", help="Net position in the base asset, long or short, open orders included."),
        mutates=True)


# -- orders, kill switch, funding ----------------------------------------------------------


@click.command("kill-switch")
@click.option("--account", help="Block ACCOUNT and cancel its orders.")
@click.option("--firm", help="Block every account of FIRM and cancel their orders.")
@click.option("--session", help="Disable FIX session SESSION and cancel the orders it sent.")
@click.option("--lift", is_flag=True, help="Lift the kill switch (enable again; cancelled orders stay cancelled).")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def kill_switch(account: str | None, firm: str | None, session: str | None, lift: bool, reason: str, data_dir: str,
                as_json: bool) -> None:
    """Stop an account, a firm or a FIX session at once (or --lift it)."""
    if sum(map(bool, (account, firm, session))) != 1:
        raise Failure("give exactly one of --account, --firm or --session")
    emit(_call(data_dir, "kill-switch", {"account": account, "firm": firm, "session": session, "lift": lift}, reason),
         as_json)


@click.command()
@click.option("--account", required=True, help="Whose orders.")
@click.option("--symbol", help="Only this symbol.")
@click.option("--side", type=click.Choice(["buy", "sell"]), help="Only this side.")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def cancel(account: str, symbol: str | None, side: str | None, reason: str, data_dir: str, as_json: bool) -> None:
    """Cancel an account's open orders."""
    emit(_call(data_dir, "cancel", {"account": account, "symbol": symbol, "side": side}, reason), as_json)


def _funding_command(name: str, help: str) -> click.Command:
    @click.command(name, help=help)
    @click.option("--account", required=True)
    @click.option("--asset", required=True, help="e.g. USD, BTC.")
    @click.option("--amount", required=True, help="Decimal amount in the asset's units.")
    @click.option("--funding-id", required=True, help="Unique id; repeating the same posting is harmless.")
    @_reason_option
    @_data_dir_option
    @json_option
    @failing_cleanly
    def cmd(account: str, asset: str, amount: str, funding_id: str, reason: str, data_dir: str, as_json: bool) -> None:
        emit(_call(data_dir, name, {"account": account, "asset": asset, "amount": amount, "funding_id": funding_id},
                   reason), as_json)

    return cmd


deposit = _funding_command("deposit", "Credit an account (a ledger posting with an idempotent funding id).")
withdraw = _funding_command("withdraw", "Debit an account's available balance (idempotent funding id).")


# -- reads -------------------------------------------------------------------------------


@click.command()
@click.argument("symbol")
@click.option("--depth", default=10, show_default=True, type=click.IntRange(1, 1000))
@_data_dir_option
@json_option
@failing_cleanly
def book(symbol: str, depth: int, data_dir: str, as_json: bool) -> None:
    """Live depth of SYMBOL."""
    b = _call(data_dir, "book", {"symbol": symbol, "depth": depth})
    if as_json:
        emit(b, True)
        return
    click.echo(f"{b['symbol']}  last {b['last']}{'  HALTED' if b['halted'] else ''}")
    rows = []
    for i in range(max(len(b["bids"]), len(b["asks"]))):
        bid = b["bids"][i] if i < len(b["bids"]) else {}
        ask = b["asks"][i] if i < len(b["asks"]) else {}
        rows.append({"bid_orders": bid.get("orders"), "bid_qty": bid.get("qty"), "bid": bid.get("price"),
                     "ask": ask.get("price"), "ask_qty": ask.get("qty"), "ask_orders": ask.get("orders")})
    emit(rows, False, empty="(empty book)")


@click.command()
@click.option("--symbol")
@click.option("--account")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@_data_dir_option
@json_option
@failing_cleanly
def trades(symbol: str | None, account: str | None, limit: int, data_dir: str, as_json: bool) -> None:
    """Recent trades, newest first (from the store)."""
    rows = _call(data_dir, "trades", {"symbol": symbol, "account": account, "limit": limit, "newest_first": True})
    emit(rows, as_json, ["trade_id", "symbol", "price", "qty", "aggressor", "maker_account", "taker_account"])


@click.command()
@click.option("--account")
@click.option("--symbol")
@click.option("--history", is_flag=True, help="Every order from the store, newest first (default: open orders, live).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@_data_dir_option
@json_option
@failing_cleanly
def orders(account: str | None, symbol: str | None, history: bool, limit: int, data_dir: str, as_json: bool) -> None:
    """Open orders (live) or order history (--history)."""
    if history:
        rows = _call(data_dir, "orders.history", {"account": account, "symbol": symbol, "limit": limit})
    else:
        rows = _call(data_dir, "orders", {"account": account, "symbol": symbol})
    emit(rows, as_json, ["order_id", "account", "symbol", "side", "price", "qty", "leaves_qty", "status", "cl_ord_id"])


@click.command()
@click.option("--account")
@_data_dir_option
@json_option
@failing_cleanly
def balances(account: str | None, data_dir: str, as_json: bool) -> None:
    """Live balances: available, held, total."""
    emit(_call(data_dir, "balances", {"account": account}), as_json)


@click.command()
@click.option("--operator")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@_data_dir_option
@json_option
@failing_cleanly
def audit(operator: str | None, limit: int, data_dir: str, as_json: bool) -> None:
    """The operator audit log, newest first: who, when, what, why, outcome."""
    rows = _call(data_dir, "audit", {"operator": operator, "limit": limit})
    for r in rows:
        r["when"] = _iso(r["ts"])
    emit(rows, as_json, ["seq", "when", "operator", "action", "args", "reason", "outcome", "detail"])


# -- firms, accounts, users, sessions --------------------------------------------------------


@click.group()
def firms() -> None:
    """Firms."""


_simple(firms, "list", "firms.list", "List firms.")
_simple(firms, "create", "firms.create", "Create FIRM.", click.argument("firm"), click.option("--name", default=""),
        mutates=True)
_simple(firms, "disable", "firms.disable", "Disable every account of FIRM.", click.argument("firm"), mutates=True)
_simple(firms, "enable", "firms.enable", "Enable every account of FIRM.", click.argument("firm"), mutates=True)


@click.group()
def accounts() -> None:
    """Trading accounts."""


_simple(accounts, "list", "accounts.list", "List accounts.", click.option("--firm"))
_simple(accounts, "create", "accounts.create", "Create ACCOUNT for FIRM.", click.argument("account"),
        click.option("--firm", required=True), click.option("--kind", type=click.Choice(["cash", "margin"]), default="cash"),
        click.option("--maker-ppm", default="0", help="Maker fee, parts per million of notional (negative = rebate)."),
        click.option("--taker-ppm", default="0", help="Taker fee, parts per million of notional."),
        click.option("--leverage", type=click.IntRange(1, 10), default=1, show_default=True,
                     help="Margin accounts: the leverage (initial margin = 1/leverage)."),
        mutates=True)
_simple(accounts, "leverage", "accounts.leverage", "Set margin ACCOUNT's leverage (1..10).", click.argument("account"),
        click.argument("leverage", type=click.IntRange(1, 10)), mutates=True)
_simple(accounts, "disable", "accounts.disable", "Disable ACCOUNT (new orders refused).", click.argument("account"),
        mutates=True)
_simple(accounts, "enable", "accounts.enable", "Enable ACCOUNT.", click.argument("account"), mutates=True)
_simple(accounts, "fees", "accounts.fees", "Set ACCOUNT's fees.", click.argument("account"),
        click.option("--maker-ppm", required=True), click.option("--taker-ppm", required=True), mutates=True)


@click.group()
def users() -> None:
    """FIX users (logon credentials)."""


_simple(users, "list", "users.list", "List FIX users.", click.option("--firm"))
_simple(users, "disable", "users.disable", "Disable USER.", click.argument("user"), mutates=True)
_simple(users, "enable", "users.enable", "Enable USER.", click.argument("user"), mutates=True)


def _new_password(given: str | None) -> tuple[str, str, bool]:
    """(password, its scrypt hash, generated?). The venue only ever sees the hash."""
    import secrets

    from cli.operators import hash_secret

    pw = given or secrets.token_urlsafe(18)
    return pw, hash_secret(pw), not given


@users.command("create")
@click.argument("user")
@click.option("--firm", required=True)
@click.option("--name", default="")
@click.option("--password", help="Default: a random one, printed once.")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def users_create(user: str, firm: str, name: str, password: str | None, reason: str, data_dir: str, as_json: bool) -> None:
    """Create a FIX USER of FIRM."""
    pw, pw_hash, generated = _new_password(password)
    out = _call(data_dir, "users.create", {"user": user, "firm": firm, "name": name, "password_hash": pw_hash}, reason)
    if generated:
        out["password"] = pw
    emit(out, as_json)


@users.command("rotate")
@click.argument("user")
@click.option("--password", help="Default: a random one, printed once.")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def users_rotate(user: str, password: str | None, reason: str, data_dir: str, as_json: bool) -> None:
    """Rotate USER's password (the old one stops working at once)."""
    pw, pw_hash, generated = _new_password(password)
    out = _call(data_dir, "users.rotate", {"user": user, "password_hash": pw_hash}, reason)
    if generated:
        out["password"] = pw
    emit(out, as_json)


@click.group()
def sessions() -> None:
    """FIX sessions and their entitlements."""


_simple(sessions, "list", "sessions.list", "List FIX sessions.", click.option("--firm"),
        columns=["comp_id", "role", "firm", "user", "enabled", "default_account", "accounts", "entitled_firms",
                 "signed_logon"])
_simple(sessions, "create", "sessions.create", "Create FIX session COMP_ID (the client's SenderCompID).",
        click.argument("comp_id"), click.option("--role", required=True, type=click.Choice(
            ["order_entry", "drop_copy", "market_data", "risk"])),
        click.option("--firm", required=True), click.option("--user", required=True),
        click.option("--default-account"), click.option("--accounts", help="Comma list (default: all of the firm's)."),
        click.option("--entitled-firms", help="Drop copy/risk: comma list of firms it may see."),
        click.option("--cancel-on-disconnect", is_flag=True), click.option("--msg-rate", default="500"),
        click.option("--ed25519-key", help="Hex public key: signed logons required."), mutates=True)
_simple(sessions, "disable", "sessions.disable", "Disable COMP_ID (logons refused).", click.argument("comp_id"),
        mutates=True)
_simple(sessions, "enable", "sessions.enable", "Enable COMP_ID.", click.argument("comp_id"), mutates=True)
_simple(sessions, "rotate-key", "sessions.rotate-key", "Set (or with no key, remove) COMP_ID's Ed25519 logon key.",
        click.argument("comp_id"), click.option("--ed25519-key", default=""), mutates=True)


# -- operators (local credentials of the control endpoint) ----------------------------------


@click.group()
def operators() -> None:
    """Operator credentials of the control endpoint (local files, hashes only)."""


@operators.command("list")
@_data_dir_option
@json_option
@failing_cleanly
def operators_list(data_dir: str, as_json: bool) -> None:
    """List operators."""
    from cli.operators import OperatorFile

    emit([{"operator": n} for n in OperatorFile(data_dir).names()], as_json)


@operators.command("set")
@click.argument("name")
@_data_dir_option
@json_option
@failing_cleanly
def operators_set(name: str, data_dir: str, as_json: bool) -> None:
    """Create operator NAME or rotate its secret; prints the secret once."""
    from cli.operators import OperatorFile

    if not os.path.isdir(data_dir):
        raise Failure(f"no venue data directory {data_dir} (run 'venue init')")
    emit({"operator": name, "secret": OperatorFile(data_dir).set(name),
          "use": "VENUE_OPERATOR=<name> VENUE_OPERATOR_SECRET=<secret>"}, as_json)


@operators.command("remove")
@click.argument("name")
@_data_dir_option
@failing_cleanly
def operators_remove(name: str, data_dir: str) -> None:
    """Remove operator NAME."""
    from cli.operators import OperatorFile

    OperatorFile(data_dir).remove(name)
    click.echo(f"removed operator {name}")


# -- journal -------------------------------------------------------------------------------


@click.group()
def journal() -> None:
    """The journal: verify it, snapshot the running venue, replay it."""


def _replay(data_dir: str, upto: int = 0, from_start: bool = True, check: bool = False) -> Any:
    """Rebuild an engine from the journal (read-only) with a progress bar."""
    from venue import journal as J
    from venue.errors import JournalError
    from venue.factory import build_engine
    from venue.snapshot import latest_snapshot, load_engine

    jdir = os.path.join(data_dir, "journal")
    if not os.path.isdir(jdir):
        raise Failure(f"no journal in {data_dir}")
    segs = J.scan(jdir)
    last = max((s.last_seq for s in segs if s.records), default=0)
    engine = build_engine()
    if not from_start:
        snap = latest_snapshot(os.path.join(data_dir, "snapshots"), at_most=upto or last)
        if snap is not None:
            load_engine(snap[1], engine)
    target = min(upto, last) if upto else last
    if engine.seq == 0 and segs and segs[0].first_seq != 1:
        raise JournalError(f"the journal starts at {segs[0].first_seq}: replay from a snapshot instead")
    with click.progressbar(length=max(0, target - engine.seq), label=f"replaying {engine.seq + 1}..{target}",
                           file=click.get_text_stream("stderr")) as bar:
        n = 0
        for r in J.read(jdir, after_seq=engine.seq):
            if r.seq > target:
                break
            engine.process(r.seq, r.ts, r.cmd)
            n += 1
            if n % 1000 == 0:
                bar.update(1000)
        bar.update(n % 1000)
    if check:
        engine.check_invariants()
    return engine, segs


@journal.command("verify")
@_data_dir_option
@json_option
@failing_cleanly
def journal_verify(data_dir: str, as_json: bool) -> None:
    """Check every record (framing, checksums, sequence), replay it all and check the
    engine's invariants (money conserved, holds match orders, books uncrossed)."""
    engine, segs = _replay(data_dir, check=True)
    torn = [s.path for s in segs if s.torn]
    emit({"segments": len(segs), "records": sum(s.records for s in segs), "last_seq": engine.seq,
          "torn_tail": torn[0] if torn else "", "invariants": "ok"}, as_json)


@journal.command("replay")
@click.option("--to", "upto", type=int, default=0, help="Stop at this sequence number.")
@click.option("--from-snapshot", is_flag=True, help="Start from the newest snapshot, not from the first record.")
@click.option("--compare", is_flag=True, help="Compare with the running venue's hashes.")
@_data_dir_option
@json_option
@failing_cleanly
def journal_replay(upto: int, from_snapshot: bool, compare: bool, data_dir: str, as_json: bool) -> None:
    """Rebuild the venue's state from the journal and print its state hashes."""
    live = _call(data_dir, "state.hashes") if compare else None
    engine, _ = _replay(data_dir, upto=live["seq"] if live else upto, from_start=not from_snapshot)
    out: dict[str, Any] = {"seq": engine.seq, **{f"hash.{k}": v for k, v in sorted(engine.state_hashes().items())}}
    if live is not None:
        if live["seq"] != engine.seq:
            raise Failure(f"the journal ends at {engine.seq} but the venue is at {live['seq']}")
        diff = sorted(k for k, v in engine.state_hashes().items() if live["hashes"].get(k) != v)
        out["matches_live"] = not diff
        if diff:
            emit(out, as_json)
            raise Failure(f"replay differs from the running venue in: {', '.join(diff)}")
    emit(out, as_json)


@journal.command("snapshot")
@_reason_option
@_data_dir_option
@json_option
@failing_cleanly
def journal_snapshot(reason: str, data_dir: str, as_json: bool) -> None:
    """Make the running venue write a snapshot now."""
    emit(_call(data_dir, "journal.snapshot", {}, reason), as_json)


# -- reports -------------------------------------------------------------------------------


def _ns(text: str | None, what: str) -> int:
    """``2026-01-31`` or ``2026-01-31T12:00:00`` (UTC unless an offset is given) -> ns."""
    if not text:
        return 0
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise Failure(f"{what} {text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TRADE_COLUMNS = ["trade_id", "time", "symbol", "price", "qty", "aggressor", "maker_account", "taker_account",
                 "maker_order_id", "taker_order_id", "maker_fee", "taker_fee", "fee_asset"]
BALANCE_COLUMNS = ["account", "asset", "opening", "credits", "debits", "closing"]


@click.group()
def report() -> None:
    """End-of-day and compliance reports from the store."""


def _report_options(f: Callable) -> Callable:
    for opt in reversed([
        click.option("--from", "ts_from", help="Start (inclusive), UTC date or datetime."),
        click.option("--to", "ts_to", help="End (exclusive), UTC date or datetime."),
        click.option("--account"),
        click.option("--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="csv", show_default=True),
        click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file (default: stdout)."),
        click.option("--db", help="Read this store directly (the venue need not run)."),
        _data_dir_option,
    ]):
        f = opt(f)
    return f


def _write_report(rows: list[dict[str, Any]], columns: list[str], fmt: str, output: str | None) -> None:
    if fmt == "table":
        emit(rows, False, columns)
        return
    out = open(output, "w", newline="") if output else click.get_text_stream("stdout")
    try:
        if fmt == "json":
            out.write(json.dumps(rows, indent=1) + "\n")
        elif output and len(rows) > 10_000:
            import csv

            w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            with click.progressbar(rows, label=f"writing {output}", file=click.get_text_stream("stderr")) as bar:
                for r in bar:
                    w.writerow(r)
        else:
            write_csv(rows, columns, out)
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"wrote {len(rows)} rows to {output}", err=True)


def _offline_store(db: str) -> Any:
    from venue.store import Store

    st = Store(db)
    st.open()
    return st


@report.command("trades")
@click.option("--symbol")
@_report_options
@failing_cleanly
def report_trades(symbol: str | None, ts_from: str | None, ts_to: str | None, account: str | None, fmt: str,
                  output: str | None, db: str | None, data_dir: str) -> None:
    """Trades between --from and --to."""
    a, b = _ns(ts_from, "--from"), _ns(ts_to, "--to")
    if a and b and b <= a:
        raise Failure("--to must be after --from")
    if db:
        from venue.store import queries

        st = _offline_store(db)
        try:
            rows = list(queries.iter_trades(st, symbol or "", account or "", a, b))
        finally:
            st.db.dispose()
    else:
        rows = _call(data_dir, "trades", {"symbol": symbol, "account": account, "ts_from": a, "ts_to": b})
    for r in rows:
        r["time"] = _iso(r["ts"])
    _write_report(rows, TRADE_COLUMNS, fmt, output)


@report.command("balances")
@_report_options
@failing_cleanly
def report_balances(ts_from: str | None, ts_to: str | None, account: str | None, fmt: str, output: str | None,
                    db: str | None, data_dir: str) -> None:
    """Per account and asset: opening at --from, credits, debits, closing at --to."""
    a, b = _ns(ts_from, "--from"), _ns(ts_to, "--to")
    if a and b and b <= a:
        raise Failure("--to must be after --from")
    if db:
        from venue.store import queries

        st = _offline_store(db)
        try:
            rows = queries.balances(st, a, b, account or "")
        finally:
            st.db.dispose()
    else:
        rows = _call(data_dir, "report.balances", {"account": account, "ts_from": a, "ts_to": b})
    _write_report(rows, BALANCE_COLUMNS, fmt, output)
