"""``venue custody ...``: custody through a running venue's control endpoint.

Two halves. The control handlers (``custody.*`` ops, registered with
:func:`cli.control.register` when this module is imported) run inside the venue process
and call its :class:`custody.service.CustodyService`; the operator who authenticated on
the socket is the actor custody records, and each state-changing step is also journaled
as an operator note (``ctx.audit``). The click group sends those ops from the command
line. A refusal comes back as one line: ``<code>: <reason>``.

    venue custody address ACCOUNT ASSET           the account's deposit address (same each time)
    venue custody deposits [--account A]          deposits seen, their confirmations, credited
    venue custody withdraw ACCOUNT ASSET AMOUNT DESTINATION [--request-id ID]
    venue custody approve WITHDRAWAL_ID           a second (third, ...) person approves
    venue custody reject WITHDRAWAL_ID --reason   releases the hold
    venue custody withdrawals [--account] [--state]
    venue custody addresses [--account A]         the address book; add / approve / remove
    venue custody sweep [ASSET]                   deposits to the hot wallet now
    venue custody rebalance                       hot wallet's excess over its ceiling to cold now
    venue custody cold-unsigned ASSET AMOUNT      cold -> hot: the unsigned transaction for the offline signer
    venue custody cold-submit REQUEST_ID SIGNED   ... and the signed one back (checked, then sent)
    venue custody limits [--account A]            velocity limits; 'limits set ACCOUNT ASSET PER_TX DAILY'
    venue custody pause-broadcast|resume-broadcast
    venue custody audit [--subject S] [--verify]  custody's hash-chained audit trail
    venue custody reserves [--proof ACCOUNT --asset USD [--epoch E]] [--list]
    venue custody chain-balance ADDRESS [ASSET]   what an address holds on-chain
    venue custody faucet ASSET TO AMOUNT          demo chain only: test coins to an address or account
"""
from __future__ import annotations

from typing import Any, Callable

import click

from cli.control import ControlClient, ControlContext, ControlError, register, register_status
from cli.runtime import register_acceptor
from cli.output import Failure, emit, failing_cleanly, json_option, one_line

# ===================================================================== in the venue


def _svc(ctx: ControlContext) -> Any:
    from custody.service import service_for

    svc = service_for(ctx.venue)
    if svc is None:
        raise ControlError("custody is not running in this venue")
    return svc


def _need(args: dict, *names: str) -> list[str]:
    out = []
    for n in names:
        v = args.get(n)
        if v is None or str(v).strip() == "":
            raise ControlError(f"{n} is required")
        out.append(str(v).strip())
    return out


def _answer(outcome: Any) -> Any:
    if not outcome.ok:
        raise ControlError(f"{outcome.code}: {outcome.reason}")
    return outcome.data or {}


WITHDRAWAL = ("id", "account", "symbol", "amount", "destination", "state", "approvals", "approvals_required",
              "requested_by", "txid", "reason")


def _withdrawal(data: dict) -> dict:
    return {k: data.get(k) for k in WITHDRAWAL} if "approvals_required" in data else data


def _acted(ctx: ControlContext, name: str, args: dict, outcome: Any) -> Any:
    """The answer to a state-changing request; journaled as an operator note only if
    custody did it (a refusal changes nothing, custody's own trail records business
    refusals such as a velocity breach)."""
    data = _answer(outcome)
    ctx.audit(name, args)
    return data


def _rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    return [{k: r.get(k) for k in keys} for r in rows]


def op(name: str, help: str) -> Callable[[Callable], Callable]:
    """Register a ``custody.*`` handler; custody's own errors (bad input, a node that
    failed) become one-line refusals instead of "internal error"."""
    def wrap(fn: Callable) -> Callable:
        def handler(ctx: ControlContext, args: dict) -> Any:
            from custody.errors import CustodyError, InvalidInput

            try:
                return fn(ctx, args)
            except InvalidInput as e:
                raise ControlError(f"{e.code}: {e.text}") from None
            except CustodyError as e:
                raise ControlError(f"{type(e).__name__}: {e}") from None
        register(name, handler, help=help)
        return fn
    return wrap


@op("custody.address", help="an account's deposit address for an asset")
def _address(ctx: ControlContext, args: dict) -> Any:
    account, asset = _need(args, "account", "asset")
    return _answer(_svc(ctx).deposit_address(account, asset))


@op("custody.deposits", help="deposits seen and credited")
def _deposits(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).deposits(args.get("account") or None)
    return _rows(rows, ("account", "symbol", "amount", "confirmations", "state", "txid", "funding_id"))


@op("custody.withdraw", help="request a withdrawal (held at once, then policy and approvals)")
def _withdraw(ctx: ControlContext, args: dict) -> Any:
    account, asset, amount, dest = _need(args, "account", "asset", "amount", "destination")
    return _withdrawal(_acted(ctx, "custody.withdraw", args,
                              _svc(ctx).request_withdrawal(ctx.operator, account, asset, amount, dest,
                                                           request_id=str(args.get("request_id") or ""))))


@op("custody.approve", help="approve a pending withdrawal")
def _approve(ctx: ControlContext, args: dict) -> Any:
    (wid,) = _need(args, "withdrawal_id")
    return _withdrawal(_acted(ctx, "custody.approve", args, _svc(ctx).approve(ctx.operator, wid)))


@op("custody.reject", help="reject a withdrawal and release its hold")
def _reject(ctx: ControlContext, args: dict) -> Any:
    (wid,) = _need(args, "withdrawal_id")
    why = ctx.reason or str(args.get("reason") or "")
    return _withdrawal(_acted(ctx, "custody.reject", args, _svc(ctx).reject(ctx.operator, wid, why)))


@op("custody.withdrawals", help="withdrawals and their state")
def _withdrawals(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).list_withdrawals(args.get("account") or None, args.get("state") or None)
    return _rows(rows, ("id", "account", "symbol", "amount", "destination", "state", "approvals", "requested_by",
                        "txid", "reason"))


@op("custody.addresses", help="the withdrawal address book")
def _addresses(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).address_book(args.get("account") or None)
    return _rows(rows, ("account", "chain", "address", "label", "state", "added_by", "approved_by"))


@op("custody.address_add", help="add an address to an account's book (a second person approves it)")
def _address_add(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    label = str(args.get("label") or "")
    return _acted(ctx, "custody.address_add", args, _svc(ctx).add_address(ctx.operator, account, asset, address, label))


@op("custody.address_approve", help="approve an address another person added")
def _address_approve(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    return _acted(ctx, "custody.address_approve", args,
                  _svc(ctx).approve_address(ctx.operator, account, asset, address))


@op("custody.address_remove", help="remove an address from an account's book")
def _address_remove(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    return _acted(ctx, "custody.address_remove", args,
                  _svc(ctx).remove_address(ctx.operator, account, asset, address))


@op("custody.sweep", help="sweep credited deposits to the hot wallet now")
def _sweep(ctx: ControlContext, args: dict) -> Any:
    return _acted(ctx, "custody.sweep", args, _svc(ctx).sweep(ctx.operator, args.get("asset") or None))


@op("custody.rebalance", help="send the hot wallet's excess over its ceiling to the cold address now")
def _rebalance(ctx: ControlContext, args: dict) -> Any:
    return _acted(ctx, "custody.rebalance", args, _svc(ctx).rebalance(ctx.operator))


@op("custody.cold_unsigned", help="build an unsigned cold-to-hot transfer for the offline signer")
def _cold_unsigned(ctx: ControlContext, args: dict) -> Any:
    asset, amount = _need(args, "asset", "amount")
    return _acted(ctx, "custody.cold_unsigned", args, _svc(ctx).cold_unsigned(ctx.operator, asset, amount))


@op("custody.cold_submit", help="accept the offline-signed cold-to-hot transfer and send it")
def _cold_submit(ctx: ControlContext, args: dict) -> Any:
    rid, raw = _need(args, "request_id", "signed")
    return _acted(ctx, "custody.cold_submit", {"request_id": rid}, _svc(ctx).cold_submit(ctx.operator, rid, raw))


@op("custody.limits", help="withdrawal limits: the defaults, or one account's")
def _limits(ctx: ControlContext, args: dict) -> Any:
    return _svc(ctx).limits(args.get("account") or None)


@op("custody.limits_set", help="set an account's per-transaction and 24-hour withdrawal limits for an asset")
def _limits_set(ctx: ControlContext, args: dict) -> Any:
    account, asset, per_tx, daily = _need(args, "account", "asset", "per_tx", "daily")
    return _acted(ctx, "custody.limits_set", args,
                  _svc(ctx).set_limits(ctx.operator, account, asset, per_tx, daily))


@op("custody.broadcast", help="pause or resume broadcasting signed transactions")
def _broadcast(ctx: ControlContext, args: dict) -> Any:
    return _acted(ctx, "custody.broadcast", args,
                  _svc(ctx).pause_broadcast(ctx.operator, bool(args.get("paused"))))


@op("custody.audit", help="custody's hash-chained audit trail")
def _audit(ctx: ControlContext, args: dict) -> Any:
    svc = _svc(ctx)
    if args.get("verify"):
        broken = svc.store.verify_audit()
        n = svc.store.one("SELECT COUNT(*) AS n FROM audit")["n"]
        return {"records": n, "intact": broken is None, "first_broken": broken}
    try:
        limit = int(args.get("limit") or 50)
    except (TypeError, ValueError):
        raise ControlError("limit must be a whole number") from None
    if limit <= 0:
        raise ControlError("limit must be positive")
    rows = svc.audit_trail(args.get("subject") or None)[-limit:]
    return [{"id": r["id"], "ns": r["ns"], "actor": r["actor"], "action": r["action"], "subject": r["subject"],
             "detail": r["detail"]} for r in rows]


@op("custody.reserves", help="publish proof of reserves (or one client's proof)")
def _reserves(ctx: ControlContext, args: dict) -> Any:
    svc = _svc(ctx)
    if args.get("proof"):
        (asset,) = _need(args, "asset")
        return _answer(svc.liability_proof(str(args["proof"]), asset, str(args.get("epoch") or "")))
    if args.get("list"):
        return svc.publications()
    return _acted(ctx, "custody.reserves", args, svc.reserves(ctx.operator))


@op("custody.chain_balance", help="what an address holds on-chain, per asset")
def _chain_balance(ctx: ControlContext, args: dict) -> Any:
    (address,) = _need(args, "address")
    return _answer(_svc(ctx).chain_balance(address, str(args.get("asset") or "")))


@op("custody.faucet", help="demo chain: send test coins to an address or an account's deposit address")
def _faucet(ctx: ControlContext, args: dict) -> Any:
    asset, to, amount = _need(args, "asset", "to", "amount")
    return _answer(_svc(ctx).faucet(asset, to, amount))


def _status(venue: Any) -> dict:
    from custody.service import service_for

    svc = service_for(venue)
    return svc.status() if svc is not None else {"running": False}


register_status("custody", _status)

# ===================================================================== starting it


CUSTODY_CONFIG_ENV = "VENUE_CUSTODY_CONFIG"
DEMO_HELP = """\
  deposit:   venue custody address ALPHA-1 ETH; venue custody faucet ETH ALPHA-1 2.5; venue custody deposits
  withdraw:  venue custody addresses add ALPHA-1 ETH 0x...; venue custody withdraw ALPHA-1 ETH 1 0x...;
             two approvers (ops-alice, ops-bob, ops-carol: 'venue operators set ops-alice') approve both"""


def custody_config_path(data_dir: str) -> str | None:
    """The custody configuration ``venue run`` uses: VENUE_CUSTODY_CONFIG, else
    ``<data_dir>/custody.toml``; None if there is none (custody is not started)."""
    import os

    path = os.environ.get(CUSTODY_CONFIG_ENV) or os.path.join(data_dir, "custody.toml")
    return path if os.path.exists(path) or os.environ.get(CUSTODY_CONFIG_ENV) else None


def describe(svc: Any) -> str:
    """What the operator should know about a custody that just started (a few lines)."""
    st = svc.status()
    chain = (f"embedded Ethereum chain (in this process, chain id {st['chain_id']})" if svc.dev is not None
             and svc.eth.name == "embedded" else f"Ethereum node {svc.eth.name} (chain id {st['chain_id']})")
    signer = {"pkcs11": "keys in a PKCS#11 token", "software": "KEYS IN THE SOFTWARE KEYSTORE"}.get(st["signer"],
                                                                                                   st["signer"])
    lines = [f"Custody: {chain}, {st['confirmations']} confirmations, {signer}; assets {', '.join(st['assets'])}"]
    if st.get("signer_warning"):
        lines.append(f"  WARNING: {st['signer_warning']}")
    if getattr(svc, "demo_note", ""):
        lines.append(f"  {svc.demo_note}")
    return "\n".join(lines)


def _start_for_run(running: Any, cfg: Any) -> Any:
    """``venue run``'s front-end hook: start custody when a custody configuration exists."""
    path = custody_config_path(running.venue.data_dir)
    if path is None:
        return None
    from custody.config import load_custody_config
    from custody.demo import start_custody
    from custody.errors import CustodyError

    try:
        svc = start_custody(running.venue, load_custody_config(path))
    except CustodyError as e:
        raise Failure(f"custody could not start ({path}): {one_line(e)}") from None
    click.echo(describe(svc))
    return svc


register_acceptor(_start_for_run)

# ===================================================================== the command line


def _data_dir(f: Callable) -> Callable:
    from cli.main import DEFAULT_DATA_DIR

    return click.option("--data-dir", envvar="VENUE_DATA_DIR", default=DEFAULT_DATA_DIR, show_default=True,
                        type=click.Path(file_okay=False), help="The venue's data directory (or VENUE_DATA_DIR).")(f)


def _call(data_dir: str, op: str, args: dict, reason: str = "") -> Any:
    if "list_" in args:
        args["list"] = args.pop("list_")
    return ControlClient(data_dir).call(op, {k: v for k, v in args.items() if v is not None and v is not False}, reason)


def _command(group: click.Group, name: str, op: str, help: str, *params: Callable,
             columns: list[str] | None = None, reason: bool = False, amounts: bool = False,
             fixed: dict[str, Any] | None = None) -> None:
    """A command that sends ``op`` with its arguments. ``amounts``: arguments may start
    with '-' (a negative amount reaches custody, which refuses it with a reason, instead
    of click reading it as an unknown option)."""
    def run(data_dir: str, as_json: bool, **args: Any) -> None:
        why = args.pop("reason", "") or ""
        emit(_call(data_dir, op, {**args, **(fixed or {})}, why), as_json, columns)

    cmd: Callable = failing_cleanly(run)
    for p in reversed(params):
        cmd = p(cmd)
    if reason:
        cmd = click.option("--reason", default="", help="Why (recorded in the audit trail).")(cmd)
    settings = {"ignore_unknown_options": True} if amounts else {}
    group.command(name, help=help, context_settings=settings)(json_option(_data_dir(cmd)))


@click.group("custody")
def custody() -> None:
    """Deposits, withdrawals, address books, sweeps, hot and cold, limits and proof of reserves."""


_command(custody, "address", "custody.address", "Print ACCOUNT's deposit address for ASSET (the same every time).",
         click.argument("account"), click.argument("asset"))
_command(custody, "deposits", "custody.deposits", "Deposits seen on-chain, their confirmations and whether credited.",
         click.option("--account", default=None))
_command(custody, "withdraw", "custody.withdraw",
         "Request a withdrawal of AMOUNT ASSET from ACCOUNT to DESTINATION (held at once; policy and approvals follow).",
         click.argument("account"), click.argument("asset"), click.argument("amount"), click.argument("destination"),
         click.option("--request-id", default=None, help="Your idempotency key: a repeat is refused, not paid twice."),
         amounts=True)
_command(custody, "approve", "custody.approve", "Approve a pending withdrawal (not your own).",
         click.argument("withdrawal_id"))
_command(custody, "reject", "custody.reject", "Reject a withdrawal before it is signed; its hold is released.",
         click.argument("withdrawal_id"), reason=True)
_command(custody, "withdrawals", "custody.withdrawals", "Withdrawals and their state.",
         click.option("--account", default=None),
         click.option("--state", default=None, help="requested, pending_approval, approved, signed, broadcast, "
                                                     "completed, rejected or failed."),
         columns=["id", "account", "symbol", "amount", "state", "approvals", "requested_by", "reason"])
_command(custody, "sweep", "custody.sweep", "Sweep credited deposits (of ASSET, or all) to the hot wallet now.",
         click.argument("asset", required=False))
_command(custody, "rebalance", "custody.rebalance",
         "Send each asset's hot-wallet balance above its ceiling to the cold address now.")
_command(custody, "cold-unsigned", "custody.cold_unsigned",
         "Build the unsigned transfer of AMOUNT ASSET from the cold address to the hot wallet, for the offline "
         "signer (prints its id, the transaction and the digest to sign).",
         click.argument("asset"), click.argument("amount"), amounts=True)
_command(custody, "cold-submit", "custody.cold_submit",
         "Hand back the offline-signed transfer of REQUEST_ID (hex); it is sent only if it is exactly the "
         "transaction built, signed by the cold key.",
         click.argument("request_id"), click.argument("signed"))
_command(custody, "pause-broadcast", "custody.broadcast",
         "Stop sending signed transactions to the network (signing goes on; 'resume-broadcast' sends them).",
         fixed={"paused": True})
_command(custody, "resume-broadcast", "custody.broadcast", "Send signed transactions to the network again.",
         fixed={"paused": False})
_command(custody, "audit", "custody.audit", "Custody's audit trail (hash-chained): every step, who, what.",
         click.option("--subject", default=None, help="Only this subject (a withdrawal id, an account, ...)."),
         click.option("--limit", default="50", show_default=True, help="The most recent N records."),
         click.option("--verify", is_flag=True, help="Check the hash chain instead of listing."),
         columns=["id", "actor", "action", "subject", "detail"])
_command(custody, "reserves", "custody.reserves",
         "Publish proof of reserves: Merkle-sum roots of client balances beside on-chain balances, signed.",
         click.option("--proof", default=None, metavar="ACCOUNT", help="Print this account's leaf and path instead."),
         click.option("--asset", default=None, help="The ledger asset of --proof (e.g. ETH, USD)."),
         click.option("--epoch", default=None, help="The publication of --proof (default: the latest)."),
         click.option("--list", "list_", is_flag=True, help="List the publications instead."))
_command(custody, "chain-balance", "custody.chain_balance",
         "What ADDRESS holds on-chain (read from the node; of ASSET, or every asset on its chain).",
         click.argument("address"), click.argument("asset", required=False))
_command(custody, "faucet", "custody.faucet", "Demo chain only: send AMOUNT ASSET to TO (an address or an account).",
         click.argument("asset"), click.argument("to"), click.argument("amount"), amounts=True)


@custody.group("limits", invoke_without_command=True)
@click.option("--account", default=None, help="One account's limits (default: the configured defaults and every override).")
@json_option
@_data_dir
@click.pass_context
def limits(ctx: click.Context, account: str | None, as_json: bool, data_dir: str) -> None:
    """Withdrawal velocity limits per account and asset (show; set)."""
    if ctx.invoked_subcommand is None:
        failing_cleanly(lambda: emit(_call(data_dir, "custody.limits", {"account": account}), as_json))()


_command(limits, "set", "custody.limits_set",
         "Set ACCOUNT's limits for ASSET: at most PER_TX in one withdrawal and DAILY over any 24 hours (an approver only).",
         click.argument("account"), click.argument("asset"), click.argument("per_tx"), click.argument("daily"),
         amounts=True)


@custody.group("addresses", invoke_without_command=True)
@click.option("--account", default=None)
@json_option
@_data_dir
@click.pass_context
def addresses(ctx: click.Context, account: str | None, as_json: bool, data_dir: str) -> None:
    """The withdrawal address book (add, approve, remove)."""
    if ctx.invoked_subcommand is None:
        failing_cleanly(lambda: emit(_call(data_dir, "custody.addresses", {"account": account}), as_json))()


_command(addresses, "add", "custody.address_add", "Add ADDRESS to ACCOUNT's book for ASSET's chain (pending approval).",
         click.argument("account"), click.argument("asset"), click.argument("address"), click.option("--label", default=""))
_command(addresses, "approve", "custody.address_approve", "Approve an address someone else added.",
         click.argument("account"), click.argument("asset"), click.argument("address"))
_command(addresses, "remove", "custody.address_remove", "Remove an address from the book.",
         click.argument("account"), click.argument("asset"), click.argument("address"))


def add_commands(cli: click.Group) -> None:
    cli.add_command(custody)
