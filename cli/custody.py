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
    venue custody reserves [--proof ACCOUNT --asset USD]
    venue custody faucet ASSET TO AMOUNT          demo chain only: test coins to an address or account
"""
from __future__ import annotations

from typing import Any, Callable

import click

from cli.control import ControlClient, ControlContext, ControlError, register, register_status
from cli.output import emit, failing_cleanly, json_option

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


def _rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    return [{k: r.get(k) for k in keys} for r in rows]


@register("custody.address", help="an account's deposit address for an asset")
def _address(ctx: ControlContext, args: dict) -> Any:
    account, asset = _need(args, "account", "asset")
    return _answer(_svc(ctx).deposit_address(account, asset))


@register("custody.deposits", help="deposits seen and credited")
def _deposits(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).deposits(args.get("account") or None)
    return _rows(rows, ("account", "symbol", "amount", "confirmations", "state", "txid", "funding_id"))


@register("custody.withdraw", help="request a withdrawal (held at once, then policy and approvals)")
def _withdraw(ctx: ControlContext, args: dict) -> Any:
    account, asset, amount, dest = _need(args, "account", "asset", "amount", "destination")
    ctx.audit("custody.withdraw", args)
    return _answer(_svc(ctx).request_withdrawal(ctx.operator, account, asset, amount, dest,
                                                request_id=str(args.get("request_id") or "")))


@register("custody.approve", help="approve a pending withdrawal")
def _approve(ctx: ControlContext, args: dict) -> Any:
    (wid,) = _need(args, "withdrawal_id")
    ctx.audit("custody.approve", args)
    return _answer(_svc(ctx).approve(ctx.operator, wid))


@register("custody.reject", help="reject a withdrawal and release its hold")
def _reject(ctx: ControlContext, args: dict) -> Any:
    (wid,) = _need(args, "withdrawal_id")
    ctx.audit("custody.reject", args)
    return _answer(_svc(ctx).reject(ctx.operator, wid, ctx.reason or str(args.get("reason") or "")))


@register("custody.withdrawals", help="withdrawals and their state")
def _withdrawals(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).list_withdrawals(args.get("account") or None, args.get("state") or None)
    return _rows(rows, ("id", "account", "symbol", "amount", "destination", "state", "approvals", "requested_by",
                        "txid", "reason"))


@register("custody.addresses", help="the withdrawal address book")
def _addresses(ctx: ControlContext, args: dict) -> Any:
    rows = _svc(ctx).address_book(args.get("account") or None)
    return _rows(rows, ("account", "chain", "address", "label", "state", "added_by", "approved_by"))


@register("custody.address_add", help="add an address to an account's book (a second person approves it)")
def _address_add(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    ctx.audit("custody.address_add", args)
    return _answer(_svc(ctx).add_address(ctx.operator, account, asset, address, str(args.get("label") or "")))


@register("custody.address_approve", help="approve an address another person added")
def _address_approve(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    ctx.audit("custody.address_approve", args)
    return _answer(_svc(ctx).approve_address(ctx.operator, account, asset, address))


@register("custody.address_remove", help="remove an address from an account's book")
def _address_remove(ctx: ControlContext, args: dict) -> Any:
    account, asset, address = _need(args, "account", "asset", "address")
    ctx.audit("custody.address_remove", args)
    return _answer(_svc(ctx).remove_address(ctx.operator, account, asset, address))


@register("custody.sweep", help="sweep credited deposits to the hot wallet now")
def _sweep(ctx: ControlContext, args: dict) -> Any:
    ctx.audit("custody.sweep", args)
    return _answer(_svc(ctx).sweep(ctx.operator, args.get("asset") or None))


@register("custody.reserves", help="publish proof of reserves (or one client's proof)")
def _reserves(ctx: ControlContext, args: dict) -> Any:
    svc = _svc(ctx)
    if args.get("proof"):
        (asset,) = _need(args, "asset")
        return _answer(svc.liability_proof(str(args["proof"]), asset))
    return _answer(svc.reserves(ctx.operator))


@register("custody.faucet", help="demo chain: send test coins to an address or an account's deposit address")
def _faucet(ctx: ControlContext, args: dict) -> Any:
    asset, to, amount = _need(args, "asset", "to", "amount")
    return _answer(_svc(ctx).faucet(asset, to, amount))


def _status(venue: Any) -> dict:
    from custody.service import service_for

    svc = service_for(venue)
    return svc.status() if svc is not None else {"running": False}


register_status("custody", _status)

# ===================================================================== the command line


def _data_dir(f: Callable) -> Callable:
    from cli.main import DEFAULT_DATA_DIR

    return click.option("--data-dir", envvar="VENUE_DATA_DIR", default=DEFAULT_DATA_DIR, show_default=True,
                        type=click.Path(file_okay=False), help="The venue's data directory (or VENUE_DATA_DIR).")(f)


def _call(data_dir: str, op: str, args: dict, reason: str = "") -> Any:
    return ControlClient(data_dir).call(op, {k: v for k, v in args.items() if v is not None}, reason)


def _command(group: click.Group, name: str, op: str, help: str, *params: Callable,
             columns: list[str] | None = None, reason: bool = False) -> None:
    def run(data_dir: str, as_json: bool, **args: Any) -> None:
        why = args.pop("reason", "") or ""
        emit(_call(data_dir, op, args, why), as_json, columns)

    cmd: Callable = failing_cleanly(run)
    for p in reversed(params):
        cmd = p(cmd)
    if reason:
        cmd = click.option("--reason", default="", help="Why (recorded in the audit trail).")(cmd)
    group.command(name, help=help)(json_option(_data_dir(cmd)))


@click.group("custody")
def custody() -> None:
    """Deposits, withdrawals, address books, sweeps and proof of reserves."""


_command(custody, "address", "custody.address", "Print ACCOUNT's deposit address for ASSET (the same every time).",
         click.argument("account"), click.argument("asset"))
_command(custody, "deposits", "custody.deposits", "Deposits seen on-chain, their confirmations and whether credited.",
         click.option("--account", default=None))
_command(custody, "withdraw", "custody.withdraw",
         "Request a withdrawal of AMOUNT ASSET from ACCOUNT to DESTINATION (held at once; policy and approvals follow).",
         click.argument("account"), click.argument("asset"), click.argument("amount"), click.argument("destination"),
         click.option("--request-id", default=None, help="Your idempotency key: a repeat is refused, not paid twice."))
_command(custody, "approve", "custody.approve", "Approve a pending withdrawal (not your own).",
         click.argument("withdrawal_id"))
_command(custody, "reject", "custody.reject", "Reject a withdrawal before it is signed; its hold is released.",
         click.argument("withdrawal_id"), reason=True)
_command(custody, "withdrawals", "custody.withdrawals", "Withdrawals and their state.",
         click.option("--account", default=None), click.option("--state", default=None),
         columns=["id", "account", "symbol", "amount", "state", "approvals", "requested_by", "reason"])
_command(custody, "sweep", "custody.sweep", "Sweep credited deposits (of ASSET, or all) to the hot wallet now.",
         click.argument("asset", required=False))
_command(custody, "reserves", "custody.reserves",
         "Publish proof of reserves: Merkle-sum roots of client balances beside on-chain balances, signed.",
         click.option("--proof", default=None, metavar="ACCOUNT", help="Print this account's leaf and path instead."),
         click.option("--asset", default=None, help="The ledger asset of --proof (e.g. ETH, USD)."))
_command(custody, "faucet", "custody.faucet", "Demo chain only: send AMOUNT ASSET to TO (an address or an account).",
         click.argument("asset"), click.argument("to"), click.argument("amount"))


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
