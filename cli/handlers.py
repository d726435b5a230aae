"""The venue's own control operations (registered in :mod:`cli.control`).

State changes build venue commands and go through ``ctx.execute`` (journaled, replayed,
audited with the operator and reason). Reads of live state run on the sequencer's thread
through ``ctx.query`` and copy plain values out; history comes from the SQL store.
Numbers arrive as decimal strings and are converted exactly (a price off the tick, an
amount with too many decimals, or anything that is not a number is refused, and nothing
is submitted).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

from cli.control import STATUS, ControlContext, ControlError, register
from venue import access
from venue import commands as C
from venue.events import FundingPosted, MassCancelReport
from venue.instruments import to_decimal
from venue.ledger import FEE_ACCOUNT
from venue.margin import SetLeverage
from venue.operator import SetInstrumentLimits
from venue.risk import LIMIT_FIELDS, KillSwitch, KillSwitchReport, SetRiskLimits
from venue.types import AccountKind, CancelReason, OrderStatus, Side

# -- argument helpers ------------------------------------------------------------------


def _req(args: dict, key: str) -> str:
    v = args.get(key)
    if v is None or str(v).strip() == "":
        raise ControlError(f"{key} is required")
    return str(v).strip()


def _opt(args: dict, key: str) -> str:
    v = args.get(key)
    return "" if v is None else str(v).strip()


def _int(args: dict, key: str, default: int) -> int:
    v = args.get(key)
    if v is None or v == "":
        return default
    try:
        return int(str(v))
    except ValueError:
        raise ControlError(f"{key} must be a whole number, not {v!r}") from None


def _market(e: Any, symbol: str) -> Any:
    m = e.markets.get(symbol)
    if m is None:
        raise ControlError(f"unknown symbol {symbol}")
    return m


def _account(e: Any, account: str) -> Any:
    a = e.ledger.accounts.get(account)
    if a is None:
        raise ControlError(f"unknown account {account}")
    return a


def _firm(e: Any, firm: str) -> Any:
    f = e.ledger.firms.get(firm)
    if f is None:
        raise ControlError(f"unknown firm {firm}")
    return f


def _access(e: Any) -> Any:
    reg = e.extensions.get("access")
    if reg is None:
        raise ControlError("this venue has no access registry")
    return reg


def _applied(ctx: ControlContext, action: str, args: dict, *cmds: Any) -> Any:
    p = ctx.execute(action, args, *cmds)
    ctx.check(p)
    return p


def _fmt_amount(e: Any, asset: str, atoms: int) -> str:
    return e.ledger.assets[asset].fmt(atoms) if asset in e.ledger.assets else str(atoms)


# -- status ----------------------------------------------------------------------------


@register("status", help="engine, journal and store positions, rates")
def status(ctx: ControlContext, args: dict) -> dict:
    v = ctx.venue
    seq = v.sequencer

    def read(e: Any) -> dict:
        return {"engine_seq": e.seq, "open_orders": len(e.orders),
                "halted": sorted(s for s, m in e.markets.items() if m.halted),
                "instruments": len(e.markets), "accounts": len(e.ledger.accounts)}

    out = ctx.query(read)
    durable = seq.durable_seq if seq else out["engine_seq"]
    out |= {
        "data_dir": v.data_dir, "journal_seq": durable, "journal_lag": out["engine_seq"] - durable,
        "queued": seq.pending() if seq else 0, "commands_per_s": round(ctx.server.rates.rate(), 1) if ctx.server else 0.0,
        "uptime_s": round(time.time() - ctx.server.started, 1) if ctx.server else 0.0,
        "pid": os.getpid(),
    }
    st = ctx.store
    if st is not None:
        out |= {"store": st.safe_url, "store_seq": st.last_seq, "store_lag": durable - st.last_seq,
                "store_error": st.failed}
    else:
        out |= {"store": "", "store_seq": None, "store_lag": None, "store_error": ""}
    for name, fn in STATUS.items():
        try:
            out[name] = fn(v)
        except Exception as e:  # a status section must not break status
            out[name] = {"error": str(e)}
    return out


@register("state.hashes", help="the engine's sequence number and component state hashes")
def state_hashes(ctx: ControlContext, args: dict) -> dict:
    return ctx.query(lambda e: {"seq": e.seq, "hashes": e.state_hashes()})


# -- instruments -----------------------------------------------------------------------


@register("halt", help="halt trading in a symbol")
def halt(ctx: ControlContext, args: dict) -> dict:
    symbol = _req(args, "symbol")
    ctx.query(lambda e: _market(e, symbol))
    _applied(ctx, "halt", args, C.Halt(symbol, bool(args.get("cancel_book")), ctx.reason))
    return {"symbol": symbol, "halted": True}


@register("resume", help="resume trading in a symbol")
def resume(ctx: ControlContext, args: dict) -> dict:
    symbol = _req(args, "symbol")
    ctx.query(lambda e: _market(e, symbol))
    _applied(ctx, "resume", args, C.Resume(symbol, ctx.reason))
    return {"symbol": symbol, "halted": False}


def _limits_of(m: Any, e: Any) -> dict:
    i = m.inst
    row = {"symbol": i.symbol, "base": i.base, "quote": i.quote, "tick_size": str(i.tick_size),
           "lot_size": str(i.lot_size), "min_qty": str(i.lots_to_qty(i.min_qty)),
           "max_qty": str(i.lots_to_qty(i.max_qty)), "min_notional": _fmt_amount(e, i.quote, i.min_notional),
           "max_notional": _fmt_amount(e, i.quote, i.max_notional),
           "market_band_pct": _pct(i.market_band_ppm), "halted": m.halted}
    own = _risk(e).sets.get(("instrument", i.symbol, ""), {})
    for name in RISK_ONLY:
        row[name if name != "price_band_ppm" else "price_band_pct"] = _risk_value(e, name, own[name], i.symbol) \
            if name in own else ""
    return row


# the limits only pre-trade risk knows (the instrument's own bounds are SetInstrumentLimits)
RISK_ONLY = ("price_band_ppm", "max_open_orders", "max_open_notional", "max_position")
# CLI option -> (risk limit, unit): qty = base quantity, notional = quote amount, pct, count
_RISK_OPTIONS = (("min_qty", "min_qty", "qty"), ("max_qty", "max_qty", "qty"),
                 ("min_notional", "min_notional", "notional"), ("max_notional", "max_notional", "notional"),
                 ("price_band_pct", "price_band_ppm", "pct"), ("max_open_orders", "max_open_orders", "count"),
                 ("max_open_notional", "max_open_notional", "notional"), ("max_position", "max_position", "qty"))


def _pct(ppm: int) -> str:
    return format((to_decimal(ppm) / 10_000).normalize(), "f")


def _risk(e: Any) -> Any:
    r = e.extensions.get("risk")
    if r is None:
        raise ControlError("this venue has no pre-trade risk extension")
    return r


def _risk_value(e: Any, name: str, value: int, symbol: str) -> str:
    """A risk limit in the operator's units (base quantity, quote amount, percent, count)."""
    unit = next(u for _, n, u in _RISK_OPTIONS if n == name)
    if unit == "pct":
        return _pct(value)
    if unit == "count" or not symbol:
        return str(value)
    inst = e.markets[symbol].inst
    return format(inst.lots_to_qty(value).normalize(), "f") if unit == "qty" else _fmt_amount(e, inst.quote, value)


def _risk_input(e: Any, key: str, unit: str, text: str, symbol: str) -> int:
    """An operator's value in risk units; "0" removes the limit."""
    if text == "0":
        return 0
    if unit == "pct":
        ppm = to_decimal(text, key) * 10_000
        if ppm != int(ppm) or not 0 < ppm < 1_000_000:
            what = key.removesuffix("_pct").replace("_", " ")
            raise ControlError(f"the {what} must be a percentage in (0, 100) with at most 4 decimals")
        return int(ppm)
    if unit == "count":
        n = _int({key: text}, key, 0)
        if n <= 0:
            raise ControlError(f"{key} must be positive (0 removes it)")
        return n
    if not symbol:
        raise ControlError(f"{key} is in an instrument's units: name a SYMBOL")
    m = _market(e, symbol)
    n = m.inst.qty_to_lots(text) if unit == "qty" else e.ledger.assets[m.inst.quote].to_atoms(text)
    if n <= 0:
        raise ControlError(f"{key} must be positive (0 removes it)")
    return n


def _limit_set_row(e: Any, d: dict) -> dict:
    row = {"scope": d["scope"], "target": d["target"], "symbol": d["symbol"] or "*"}
    for _, name, _ in _RISK_OPTIONS:
        out = name if name != "price_band_ppm" else "price_band_pct"
        row[out] = _risk_value(e, name, d[name], d["symbol"] or (d["target"] if d["scope"] == "instrument" else "")) \
            if name in d else ""
    return row


@register("limits.show", help="instrument limits, a firm's or an account's limit sets, or what applies to an account")
def limits_show(ctx: ControlContext, args: dict) -> list:
    symbol, firm, account = _opt(args, "symbol"), _opt(args, "firm"), _opt(args, "account")
    if firm and account:
        raise ControlError("give --firm or --account, not both")

    def read(e: Any) -> list:
        if symbol:
            _market(e, symbol)
        if account and symbol:  # what applies to this account on this symbol, where it was set, and its use
            _account(e, account)
            rows = []
            for r in _risk(e).applied(account, symbol):
                name = r["name"]
                unit_name = name if name in {n for _, n, _ in _RISK_OPTIONS} else ""
                value = _risk_value(e, name, r["value"], symbol) if unit_name else _pct(r["value"])
                used = "" if r["used"] is None else (_risk_value(e, name, r["used"], symbol) if unit_name else "")
                rows.append({"limit": name.replace("_ppm", "_pct"), "value": value, "used": used,
                             "set_on": r["scope"] + " " + r["target"] + (f" {r['symbol']}" if r["scope"] != "instrument"
                                                                         and r["symbol"] else "")})
            return rows
        if firm or account:
            scope, target = ("firm", firm) if firm else ("account", account)
            (_firm if firm else _account)(e, target)
            return [_limit_set_row(e, d) for d in _risk(e).limit_sets()
                    if d["scope"] == scope and d["target"] == target and (not symbol or d["symbol"] in ("", symbol))]
        if symbol:
            return [_limits_of(_market(e, symbol), e)]
        return [_limits_of(m, e) for _, m in sorted(e.markets.items())]

    return ctx.query(read)


@register("limits.set", help="set limits of an instrument, a firm or an account (0 removes a risk limit)")
def limits_set(ctx: ControlContext, args: dict) -> Any:
    symbol, firm, account = _opt(args, "symbol"), _opt(args, "firm"), _opt(args, "account")
    if firm and account:
        raise ControlError("give --firm or --account, not both")
    if not (symbol or firm or account):
        raise ControlError("name a SYMBOL, a --firm or an --account")
    if (firm or account) and _opt(args, "market_band_pct"):
        raise ControlError("the market-order band is the instrument's: set it without --firm/--account")

    def build(e: Any) -> list:
        if firm:
            _firm(e, firm)
        if account:
            _account(e, account)
        cmds: list = []
        if symbol and not (firm or account):  # the instrument: its hard bounds, then its risk limits
            m = _market(e, symbol)
            i, quote = m.inst, e.ledger.assets[m.inst.quote]
            vals: dict[str, int] = {}
            for key, conv in (("min_qty", i.qty_to_lots), ("max_qty", i.qty_to_lots),
                              ("min_notional", quote.to_atoms), ("max_notional", quote.to_atoms)):
                if _opt(args, key):
                    vals[key] = conv(_opt(args, key))
            if _opt(args, "market_band_pct"):
                vals["market_band_ppm"] = _risk_input(e, "market_band_pct", "pct", _opt(args, "market_band_pct"), symbol)
            for key, val in vals.items():
                if val <= 0:
                    raise ControlError(f"{key} must be positive")
            merged = {k: vals.get(k, getattr(i, k)) for k in ("min_qty", "max_qty", "min_notional", "max_notional")}
            if merged["min_qty"] > merged["max_qty"]:
                raise ControlError("the minimum quantity is above the maximum")
            if merged["min_notional"] > merged["max_notional"]:
                raise ControlError("the minimum notional is above the maximum")
            if vals:
                cmds.append(SetInstrumentLimits(symbol, **vals))
            risk = {n: _risk_input(e, k, u, _opt(args, k), symbol) for k, n, u in _RISK_OPTIONS
                    if n in RISK_ONLY and _opt(args, k)}
            if risk:
                cmds.append(SetRiskLimits("instrument", symbol, "", **{n: risk.get(n, -1) for n in LIMIT_FIELDS}))
        else:
            scope, target = ("firm", firm) if firm else ("account", account)
            risk = {n: _risk_input(e, k, u, _opt(args, k), symbol) for k, n, u in _RISK_OPTIONS if _opt(args, k)}
            if risk:
                cmds.append(SetRiskLimits(scope, target, symbol, **{n: risk.get(n, -1) for n in LIMIT_FIELDS}))
        if not cmds:
            raise ControlError("give at least one limit to set")
        return cmds

    _applied(ctx, "limits.set", args, *ctx.query(build))
    if firm or account:
        return limits_show(ctx, {"firm": firm, "account": account, "symbol": symbol})
    return limits_show(ctx, {"symbol": symbol})[0]


# -- firms and accounts ----------------------------------------------------------------


def _account_row(a: Any, e: Any = None) -> dict:
    risk = e.extensions.get("risk") if e is not None else None
    return {"account": a.id, "firm": a.firm.id, "kind": AccountKind(a.kind).name.lower(), "leverage": a.leverage,
            "enabled": a.enabled, "maker_ppm": a.maker_ppm, "taker_ppm": a.taker_ppm, "open_orders": len(a.orders),
            "kill_switch": risk.kill_state(a.id) if risk is not None else ""}


@register("firms.list", help="firms and their accounts")
def firms_list(ctx: ControlContext, args: dict) -> list:
    return ctx.query(lambda e: [
        {"firm": f.id, "name": f.name, "accounts": len(f.accounts),
         "enabled_accounts": sum(1 for a in f.accounts if a.enabled)}
        for _, f in sorted(e.ledger.firms.items())])


@register("firms.create", help="create a firm")
def firms_create(ctx: ControlContext, args: dict) -> dict:
    firm = _req(args, "firm")
    if ctx.query(lambda e: firm in e.ledger.firms):
        raise ControlError(f"firm {firm} exists")
    _applied(ctx, "firms.create", args, C.CreateFirm(firm, _opt(args, "name")))
    return {"firm": firm, "name": _opt(args, "name")}


def _set_firm_enabled(ctx: ControlContext, action: str, args: dict, enabled: bool) -> dict:
    firm = _req(args, "firm")
    accounts = ctx.query(lambda e: [a.id for a in _firm(e, firm).accounts])
    reason = ctx.reason or action
    _applied(ctx, action, args, *(C.SetAccountEnabled(a, enabled, reason) for a in accounts))
    return {"firm": firm, "accounts": accounts, "enabled": enabled}


@register("firms.disable", help="disable every account of a firm (new orders refused)")
def firms_disable(ctx: ControlContext, args: dict) -> dict:
    return _set_firm_enabled(ctx, "firms.disable", args, False)


@register("firms.enable", help="enable every account of a firm")
def firms_enable(ctx: ControlContext, args: dict) -> dict:
    return _set_firm_enabled(ctx, "firms.enable", args, True)


@register("accounts.list", help="accounts (of one firm)")
def accounts_list(ctx: ControlContext, args: dict) -> list:
    firm = _opt(args, "firm")

    def read(e: Any) -> list:
        accts = _firm(e, firm).accounts if firm else e.ledger.accounts.values()
        return [_account_row(a, e) for a in sorted(accts, key=lambda a: a.id)]

    return ctx.query(read)


@register("accounts.create", help="create an account of a firm")
def accounts_create(ctx: ControlContext, args: dict) -> dict:
    account, firm = _req(args, "account"), _req(args, "firm")
    kind = _opt(args, "kind") or "cash"
    if kind not in ("cash", "margin"):
        raise ControlError("kind must be cash or margin")
    def check(e: Any) -> None:
        _firm(e, firm)
        if account in e.ledger.accounts:
            raise ControlError(f"account {account} exists")

    ctx.query(check)
    cmd = C.CreateAccount(account, firm, int(AccountKind[kind.upper()]), _int(args, "maker_ppm", 0),
                          _int(args, "taker_ppm", 0), leverage=_int(args, "leverage", 1))
    _applied(ctx, "accounts.create", args, cmd)
    return ctx.query(lambda e: _account_row(_account(e, account), e))


def _set_account_enabled(ctx: ControlContext, action: str, args: dict, enabled: bool) -> dict:
    account = _req(args, "account")
    ctx.query(lambda e: _account(e, account))
    _applied(ctx, action, args, C.SetAccountEnabled(account, enabled, ctx.reason or action))
    return ctx.query(lambda e: _account_row(_account(e, account), e))


@register("accounts.disable", help="disable an account (new orders refused; open orders stay)")
def accounts_disable(ctx: ControlContext, args: dict) -> dict:
    return _set_account_enabled(ctx, "accounts.disable", args, False)


@register("accounts.enable", help="enable an account")
def accounts_enable(ctx: ControlContext, args: dict) -> dict:
    return _set_account_enabled(ctx, "accounts.enable", args, True)


@register("accounts.fees", help="set an account's maker/taker fees (ppm of notional)")
def accounts_fees(ctx: ControlContext, args: dict) -> dict:
    account = _req(args, "account")
    ctx.query(lambda e: _account(e, account))
    _applied(ctx, "accounts.fees", args, C.SetFees(account, _int(args, "maker_ppm", 0), _int(args, "taker_ppm", 0)))
    return ctx.query(lambda e: _account_row(_account(e, account), e))


@register("accounts.leverage", help="set a margin account's leverage (1..10)")
def accounts_leverage(ctx: ControlContext, args: dict) -> dict:
    account = _req(args, "account")
    leverage = _int(args, "leverage", 0)
    ctx.query(lambda e: _account(e, account))
    _applied(ctx, "accounts.leverage", args, SetLeverage(account, leverage))
    return ctx.query(lambda e: _account_row(_account(e, account), e))


# -- cancels and the kill switch -------------------------------------------------------


def _cancelled(p: Any) -> int:
    return sum(ev.cancelled for ev in p.events if isinstance(ev, MassCancelReport))


@register("cancel", help="cancel an account's open orders (optionally one symbol, one side)")
def cancel(ctx: ControlContext, args: dict) -> dict:
    account, symbol = _req(args, "account"), _opt(args, "symbol")
    side = _opt(args, "side").lower()
    if side and side not in ("buy", "sell"):
        raise ControlError("side must be buy or sell")

    def check(e: Any) -> None:
        _account(e, account)
        if symbol:
            _market(e, symbol)

    ctx.query(check)
    p = _applied(ctx, "cancel", args, C.MassCancel(f"op-{ctx.request_id[:12]}", account=account, symbol=symbol,
                                                   side=int(Side[side.upper()]) if side else 0,
                                                   reason=int(CancelReason.OPERATOR)))
    return {"account": account, "symbol": symbol, "cancelled": _cancelled(p)}


@register("kill-switch", help="cancel every order of an account, firm or session and refuse new ones (lift=true undoes)")
def kill_switch(ctx: ControlContext, args: dict) -> dict:
    account, firm, session = _opt(args, "account"), _opt(args, "firm"), _opt(args, "session")
    lift = bool(args.get("lift"))
    if sum(map(bool, (account, firm, session))) != 1:
        raise ControlError("give exactly one of account, firm or session")
    scope, target = ("account", account) if account else ("firm", firm) if firm else ("session", session)

    def check(e: Any) -> list[str]:
        if scope == "account":
            return [_account(e, target).id]
        if scope == "firm":
            return [a.id for a in _firm(e, target).accounts]
        if _access(e).sessions.get(target) is None:
            raise ControlError(f"unknown session {target}")
        return []

    accounts = ctx.query(check)
    p = _applied(ctx, "kill-switch", args, KillSwitch(scope, target, not lift, ctx.reason or "kill switch"))
    rep = next(ev for ev in p.events if isinstance(ev, KillSwitchReport))
    return {scope: target, "accounts": accounts, "lifted": lift, "cancelled": rep.cancelled, "text": rep.text}


# -- funding ---------------------------------------------------------------------------


def _funding(ctx: ControlContext, action: str, args: dict, kind: str) -> dict:
    fid, account, asset = _req(args, "funding_id"), _req(args, "account"), _req(args, "asset").upper()
    amount_s = _req(args, "amount")

    def build(e: Any) -> tuple[int, list | None]:
        _account(e, account)
        a = e.ledger.assets.get(asset)
        if a is None:
            raise ControlError(f"unknown asset {asset}")
        atoms = a.to_atoms(amount_s)
        if atoms <= 0:
            raise ControlError("amount must be positive")
        rec = e.ledger.funding.get(fid)
        return atoms, (list(rec) if rec is not None else None)

    atoms, existing = ctx.query(build)
    want = ["deposit" if kind == "deposit" else "withdraw", account, asset, atoms]
    if existing is None:
        cmd = C.Deposit(fid, account, asset, atoms) if kind == "deposit" else C.Withdraw(fid, account, asset, atoms)
        p = ctx.execute(action, args, cmd)
        if any(isinstance(ev, FundingPosted) for ev in p.events):
            return {"funding_id": fid, "account": account, "asset": asset, "amount": amount_s, "posted": True}
        existing = ctx.query(lambda e: list(e.ledger.funding[fid]) if fid in e.ledger.funding else None)
        if existing is None:
            ctx.check(p)
    if existing[:4] == want:  # a retry of the same posting: idempotent, nothing more happens
        return {"funding_id": fid, "account": account, "asset": asset, "amount": amount_s, "posted": False,
                "note": "already posted"}
    raise ControlError(f"funding id {fid} was already used for a different posting ({existing[0]} of {existing[3]} atoms {existing[2]} to {existing[1]})")


@register("deposit", help="credit an account (idempotent per funding id)")
def deposit(ctx: ControlContext, args: dict) -> dict:
    return _funding(ctx, "deposit", args, "deposit")


@register("withdraw", help="debit an account's available balance (idempotent per funding id)")
def withdraw(ctx: ControlContext, args: dict) -> dict:
    return _funding(ctx, "withdraw", args, "withdraw")


# -- live reads ------------------------------------------------------------------------


@register("book", help="live depth of a symbol")
def book(ctx: ControlContext, args: dict) -> dict:
    symbol, depth = _req(args, "symbol"), _int(args, "depth", 10)

    def read(e: Any) -> dict:
        m = _market(e, symbol)
        i = m.inst
        sides = {}
        for name, side in (("bids", m.book.bids), ("asks", m.book.asks)):
            levels = []
            for lvl in side.sorted_levels():
                if len(levels) >= depth:
                    break
                levels.append({"price": str(i.ticks_to_price(lvl.price)), "qty": str(i.lots_to_qty(lvl.qty)),
                               "orders": lvl.count})
            sides[name] = levels
        return {"symbol": symbol, "halted": m.halted, "last": str(i.ticks_to_price(m.last_px)), **sides}

    return ctx.query(read)


@register("balances", help="live balances (of one account)")
def balances(ctx: ControlContext, args: dict) -> list:
    account = _opt(args, "account")

    def read(e: Any) -> list:
        if account:
            _account(e, account)
        out = []
        for aid, asset, b in e.ledger.iter_balances():
            if (account and aid != account) or (not account and not (b.avail or b.held)):
                continue
            out.append({"account": aid, "asset": asset, "available": _fmt_amount(e, asset, b.avail),
                        "held": _fmt_amount(e, asset, b.held), "total": _fmt_amount(e, asset, b.avail + b.held)})
        return out

    return ctx.query(read)


@register("orders", help="live open orders (of one account, one symbol)")
def open_orders(ctx: ControlContext, args: dict) -> list:
    account, symbol = _opt(args, "account"), _opt(args, "symbol")

    def read(e: Any) -> list:
        if account:
            _account(e, account)
        if symbol:
            _market(e, symbol)
        out = []
        for oid in sorted(e.orders):
            o = e.orders[oid]
            i = o.mkt.inst
            if (account and o.acct.id != account) or (symbol and i.symbol != symbol):
                continue
            out.append({"order_id": oid, "account": o.acct.id, "symbol": i.symbol, "side": Side(o.side).name.lower(),
                        "price": str(i.ticks_to_price(o.price)), "qty": str(i.lots_to_qty(o.qty)),
                        "leaves_qty": str(i.lots_to_qty(o.leaves)), "status": OrderStatus(o.status).name.lower(),
                        "cl_ord_id": o.cl_ord_id, "session": o.info.session})
        return out

    return ctx.query(read)


# -- history (the store) ---------------------------------------------------------------


def _store(ctx: ControlContext) -> Any:
    if ctx.store is None:
        raise ControlError("this venue runs without a store")
    if ctx.store.failed:
        raise ControlError(f"the store is failing: {ctx.store.failed}")
    if ctx.venue.sequencer is not None:  # read what is durable now
        ctx.store.wait_for(ctx.venue.sequencer.durable_seq, timeout=30)
    return ctx.store


def _known(ctx: ControlContext, account: str = "", symbol: str = "") -> None:
    def check(e: Any) -> None:
        if account and account != FEE_ACCOUNT:
            _account(e, account)
        if symbol:
            _market(e, symbol)

    ctx.query(check)


@register("trades", help="trade history from the store")
def trades(ctx: ControlContext, args: dict) -> list:
    from venue.store import queries

    account, symbol = _opt(args, "account"), _opt(args, "symbol")
    _known(ctx, account, symbol)
    return list(queries.iter_trades(_store(ctx), symbol, account, _int(args, "ts_from", 0), _int(args, "ts_to", 0),
                                    limit=_int(args, "limit", 0), newest_first=bool(args.get("newest_first"))))


@register("orders.history", help="order history from the store")
def orders_history(ctx: ControlContext, args: dict) -> list:
    from venue.store import queries

    account, symbol = _opt(args, "account"), _opt(args, "symbol")
    _known(ctx, account, symbol)
    return queries.orders(_store(ctx), account, symbol, _int(args, "limit", 100))


@register("audit", help="the operator audit log from the store")
def audit_log(ctx: ControlContext, args: dict) -> list:
    from venue.store import queries

    return queries.audit(_store(ctx), _opt(args, "operator"), _int(args, "limit", 100))


@register("report.balances", help="balances with opening, credits, debits and closing over a period")
def report_balances(ctx: ControlContext, args: dict) -> list:
    from venue.store import queries

    account = _opt(args, "account")
    _known(ctx, account)
    return queries.balances(_store(ctx), _int(args, "ts_from", 0), _int(args, "ts_to", 0), account)


# -- journal ---------------------------------------------------------------------------


@register("journal.snapshot", help="write a snapshot of the engine now")
def journal_snapshot(ctx: ControlContext, args: dict) -> dict:
    seq = ctx.venue.sequencer
    if seq is None:
        raise ControlError("the venue is not running")
    done, box = threading.Event(), []
    seq.snapshot(lambda result: (box.append(result), done.set()))
    if not done.wait(120):
        raise ControlError("the snapshot did not finish in time")
    if not isinstance(box[0], str):
        raise ControlError(f"the snapshot failed: {box[0] or 'see the venue log'}")
    at = int(os.path.basename(box[0])[5:-8])
    ctx.audit("journal.snapshot", {"seq": at})
    return {"seq": at, "path": box[0]}


# -- FIX users and sessions (venue.access) ---------------------------------------------


def _user_row(u: Any) -> dict:
    return {"user": u.user, "firm": u.firm, "name": u.name, "enabled": u.enabled}


def _session_row(s: Any, e: Any = None) -> dict:
    risk = e.extensions.get("risk") if e is not None else None
    return {"comp_id": s.comp_id, "role": s.role, "firm": s.firm, "user": s.user, "enabled": s.enabled,
            "default_account": s.default_account, "accounts": ",".join(s.accounts),
            "entitled_firms": ",".join(s.entitled_firms), "signed_logon": bool(s.ed25519_key),
            "cancel_on_disconnect": s.cancel_on_disconnect, "msg_rate": s.msg_rate,
            "kill_switch": risk.killed["session"].get(s.comp_id, "") if risk is not None else ""}


@register("users.list", help="FIX users")
def users_list(ctx: ControlContext, args: dict) -> list:
    firm = _opt(args, "firm")
    return ctx.query(lambda e: [_user_row(u) for _, u in sorted(_access(e).users.items()) if not firm or u.firm == firm])


def _user(e: Any, user: str) -> Any:
    u = _access(e).users.get(user)
    if u is None:
        raise ControlError(f"unknown user {user}")
    return u


@register("users.create", help="create a FIX user (password_hash: scrypt, hashed by the caller)")
def users_create(ctx: ControlContext, args: dict) -> dict:
    user, firm, pw = _req(args, "user"), _req(args, "firm"), _req(args, "password_hash")
    def check(e: Any) -> None:
        _firm(e, firm)
        if user in _access(e).users:
            raise ControlError(f"user {user} exists")

    ctx.query(check)
    _applied(ctx, "users.create", {"user": user, "firm": firm, "name": _opt(args, "name")},
             access.CreateUser(user, firm, pw, _opt(args, "name")))
    return ctx.query(lambda e: _user_row(_user(e, user)))


@register("users.rotate", help="replace a FIX user's password hash")
def users_rotate(ctx: ControlContext, args: dict) -> dict:
    user, pw = _req(args, "user"), _req(args, "password_hash")
    ctx.query(lambda e: _user(e, user))
    _applied(ctx, "users.rotate", {"user": user}, access.SetUserPassword(user, pw))
    return {"user": user, "rotated": True}


def _set_user_enabled(ctx: ControlContext, args: dict, enabled: bool) -> dict:
    user = _req(args, "user")
    ctx.query(lambda e: _user(e, user))
    _applied(ctx, "users.enable" if enabled else "users.disable", args, access.SetUserEnabled(user, enabled))
    return ctx.query(lambda e: _user_row(_user(e, user)))


@register("users.disable", help="disable a FIX user")
def users_disable(ctx: ControlContext, args: dict) -> dict:
    return _set_user_enabled(ctx, args, False)


@register("users.enable", help="enable a FIX user")
def users_enable(ctx: ControlContext, args: dict) -> dict:
    return _set_user_enabled(ctx, args, True)


def _session(e: Any, comp_id: str) -> Any:
    s = _access(e).sessions.get(comp_id)
    if s is None:
        raise ControlError(f"unknown session {comp_id}")
    return s


@register("sessions.list", help="FIX sessions and their entitlements")
def sessions_list(ctx: ControlContext, args: dict) -> list:
    firm = _opt(args, "firm")
    return ctx.query(lambda e: [_session_row(s, e) for _, s in sorted(_access(e).sessions.items())
                                if not firm or s.firm == firm])


@register("sessions.create", help="create a FIX session")
def sessions_create(ctx: ControlContext, args: dict) -> dict:
    comp_id, role, firm, user = _req(args, "comp_id"), _req(args, "role"), _req(args, "firm"), _req(args, "user")
    if role not in access.ROLES:
        raise ControlError(f"role must be one of {', '.join(access.ROLES)}")
    def check(e: Any) -> None:
        _firm(e, firm)
        if comp_id in _access(e).sessions:
            raise ControlError(f"session {comp_id} exists")
        u = _access(e).users.get(user)
        if u is None or u.firm != firm:
            raise ControlError(f"user {user} is not a user of firm {firm}")

    ctx.query(check)
    cmd = access.CreateSession(comp_id, role, firm, user, default_account=_opt(args, "default_account"),
                               accounts=_opt(args, "accounts"), entitled_firms=_opt(args, "entitled_firms"),
                               cancel_on_disconnect=bool(args.get("cancel_on_disconnect")),
                               msg_rate=_int(args, "msg_rate", 500), ed25519_key=_opt(args, "ed25519_key"))
    _applied(ctx, "sessions.create", args, cmd)
    return ctx.query(lambda e: _session_row(_session(e, comp_id), e))


def _set_session_enabled(ctx: ControlContext, args: dict, enabled: bool) -> dict:
    comp_id = _req(args, "comp_id")
    ctx.query(lambda e: _session(e, comp_id))
    _applied(ctx, "sessions.enable" if enabled else "sessions.disable", args, access.SetSessionEnabled(comp_id, enabled))
    return ctx.query(lambda e: _session_row(_session(e, comp_id), e))


@register("sessions.disable", help="disable a FIX session (its logons are refused)")
def sessions_disable(ctx: ControlContext, args: dict) -> dict:
    return _set_session_enabled(ctx, args, False)


@register("sessions.enable", help="enable a FIX session")
def sessions_enable(ctx: ControlContext, args: dict) -> dict:
    return _set_session_enabled(ctx, args, True)


@register("sessions.rotate-key", help="set or remove a session's Ed25519 logon key")
def sessions_rotate_key(ctx: ControlContext, args: dict) -> dict:
    comp_id = _req(args, "comp_id")
    ctx.query(lambda e: _session(e, comp_id))
    _applied(ctx, "sessions.rotate-key", args, access.SetSessionKey(comp_id, _opt(args, "ed25519_key")))
    return ctx.query(lambda e: _session_row(_session(e, comp_id), e))
