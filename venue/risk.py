"""Pre-trade risk: limits per instrument, firm and account, and the kill switch.

Everything here runs inside the engine's deterministic path. Limits and kill switches
change only through journaled commands (:class:`SetRiskLimits`, tag 102;
:class:`KillSwitch`, tag 103), live in the engine's snapshot as the ``risk`` extension and
are covered by its state hash. :class:`RiskGate` is the engine's ``risk`` hook: the engine
asks it about every new order, amendment and withdrawal after its own validation and
before it reserves funds.

Limits (every one optional; 0 = none):

==================  ==========================================  ===================
limit               refused when                                reject code
==================  ==========================================  ===================
min_qty, max_qty    the order quantity (lots) is outside        QTY_BELOW_MIN/ABOVE
min/max_notional    price x quantity (quote atoms) is outside   NOTIONAL_BELOW/ABOVE
price_band_ppm      a limit price is further than this from     PRICE_BAND
                    the reference: the last trade, or the mid
                    when there was no trade (no reference: no
                    check); limit and stop-limit orders
max_open_orders     the open orders at the scope would exceed   MAX_OPEN_ORDERS
max_open_notional   gross open notional (buys and sells, at     CREDIT_LIMIT
                    their limit prices) at the scope would
                    exceed it (the credit limit)
max_position        the net base position at the scope, with    MAX_POSITION
                    every open order filled, would exceed it
                    (long or short), in lots
==================  ==========================================  ===================

A limit set belongs to a scope: an instrument (applies to every account trading it,
measured per account), a firm (measured over all of the firm's accounts) or an account,
each optionally for one symbol (firm and account scopes; ``symbol=""`` = every
instrument, which only the count and band limits allow, since quantities and notionals
are in the instrument's own units). For each limit the *narrowest* scope that sets it
applies: account+symbol, account, firm+symbol, firm, instrument. The instrument's own
quantity and notional bounds (:class:`venue.operator.SetInstrumentLimits`) and its market
protection band stay the venue's hard outer bounds, checked by the core first.

The kill switch blocks a FIX session, an account or a firm: its open orders are cancelled
at once and every new order (and amendment) is refused with KILL_SWITCH until it is
lifted. Operators send it through the control endpoint; a firm's own ``risk`` FIX
session may send it for its firm (``requester`` names that session and the engine checks
the firm). Cancels are never blocked. Liquidations (venue.margin) are not blocked either.

A plain cash account with no limits and no kill switch pays three attribute tests and a
call per order. This module does not do margin (venue.margin does, called from here).
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from venue import commands as C
from venue.events import AdminApplied, CommandRejected
from venue.ledger import PPM
from venue.types import BUY, LIMIT, MARKET, STOP, STOP_LIMIT, AccountKind, CancelReason, Reject

if TYPE_CHECKING:
    from venue.engine import Engine, Market
    from venue.ledger import Account
    from venue.margin import MarginBook
    from venue.orders import Order

RISK_LIMITS_TAG: Final = 102
KILL_SWITCH_TAG: Final = 103

SCOPES: Final = ("instrument", "firm", "account")
KILL_SCOPES: Final = ("session", "account", "firm")
LIMIT_FIELDS: Final = ("min_qty", "max_qty", "min_notional", "max_notional", "price_band_ppm", "max_open_orders",
                       "max_open_notional", "max_position")
ANY_SYMBOL_FIELDS: Final = ("price_band_ppm", "max_open_orders")  # may be set for every instrument at once
_MARGIN: Final = int(AccountKind.MARGIN)


class SetRiskLimits(NamedTuple):
    """Set (> 0), remove (0) or keep (-1) each limit of one scope."""

    scope: str  # "instrument", "firm" or "account"
    target: str  # the symbol, the firm or the account
    symbol: str = ""  # firm/account scope: one instrument, "" = every instrument
    min_qty: int = -1  # lots
    max_qty: int = -1  # lots
    min_notional: int = -1  # quote atoms
    max_notional: int = -1  # quote atoms
    price_band_ppm: int = -1  # of the reference price
    max_open_orders: int = -1
    max_open_notional: int = -1  # quote atoms (gross: buys and sells)
    max_position: int = -1  # lots of the base asset, long or short


class KillSwitch(NamedTuple):
    scope: str  # "session", "account" or "firm"
    target: str
    active: bool = True  # False lifts it
    reason: str = ""
    requester: str = ""  # a FIX risk session acting for its own firm; "" = an operator
    request_id: str = ""  # the requester's request id, echoed in the report


class KillSwitchReport(NamedTuple):
    """The outcome of a KillSwitch command (code 0 = done)."""

    seq: int
    ts: int
    cmd: Any
    code: int
    text: str
    cancelled: int = 0


C.register(RISK_LIMITS_TAG, SetRiskLimits)
C.register(KILL_SWITCH_TAG, KillSwitch)


class Applied(NamedTuple):
    """One limit that applies to an (account, symbol), and where it was set."""

    name: str
    value: int
    scope: str
    target: str
    symbol: str  # "" = set for every instrument


Rules = dict[str, Applied]
Key = tuple[str, str, str]  # (scope, target, symbol)


class RiskBook:
    """The engine extension ``risk``: limit sets and kill switches (state), and the checks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sets: dict[Key, dict[str, int]] = {}
        self.killed: dict[str, dict[str, str]] = {s: {} for s in KILL_SCOPES}  # scope -> target -> reason
        self.any_kill = False
        self._cache: dict[str, dict[str, Rules | None]] = {}  # account -> symbol -> resolved rules
        self.margin: MarginBook | None = None  # set by venue.margin.install
        engine.register_handler(SetRiskLimits, self._set_limits)
        engine.register_handler(KillSwitch, self._kill_switch)

    # ================================================================ the engine's hooks
    def check_new(self, e: Engine, c: C.NewOrder, acct: Account, mkt: Market, price: int) -> tuple[int, str] | None:
        if self.any_kill:
            refusal = self._killed(acct, c.session)
            if refusal is not None:
                return refusal
        if self.sets:
            rules = self.rules(acct, mkt.symbol)
            if rules is not None:
                refusal = self._check_limits(e, acct, mkt, rules, c.side, c.ord_type, c.qty, price, c.stop_px)
                if refusal is not None:
                    return refusal
        margin = self.margin
        if margin is not None and (c.reduce_only or acct.kind == _MARGIN):
            return margin.check_new(e, c, acct, mkt, price)
        if c.reduce_only:
            return int(Reject.REDUCE_ONLY), "reduce-only orders need the venue's margin module"
        return None

    def check_amend(self, e: Engine, c: C.AmendOrder, o: Order, price: int, leaves: int) -> tuple[int, str] | None:
        acct = o.acct
        if self.any_kill:
            refusal = self._killed(acct, c.session)  # the session asking (the order's own was cancelled)
            if refusal is not None:
                return refusal
        mkt = o.mkt
        if self.sets:
            rules = self.rules(acct, mkt.symbol)
            if rules is not None:
                refusal = self._check_limits(e, acct, mkt, rules, o.side, o.ord_type, o.cum + leaves, price,
                                             c.stop_px or o.stop_px, replacing=o, new_leaves=leaves)
                if refusal is not None:
                    return refusal
        margin = self.margin
        if margin is not None and (o.reduce_only or acct.kind == _MARGIN):
            return margin.check_amend(e, o, price, leaves)
        return None

    def check_withdraw(self, e: Engine, acct: Account, asset: str, amount: int) -> tuple[int, str] | None:
        margin = self.margin
        if margin is not None and acct.kind == _MARGIN:
            return margin.check_withdraw(e, acct, asset, amount)
        return None

    # ================================================================ kill switch
    def _killed(self, acct: Account, session: str) -> tuple[int, str] | None:
        k = self.killed
        for scope, target in (("account", acct.id), ("firm", acct.firm.id), ("session", session)):
            reason = k[scope].get(target) if target else None
            if reason is not None:
                return int(Reject.KILL_SWITCH), f"kill switch active for {scope} {target}: {reason}"
        return None

    def _kill_switch(self, c: KillSwitch) -> None:
        e = self.engine
        led = e.ledger
        scope, target = c.scope, c.target
        firm: str | None = None
        if scope == "account":
            acct = led.accounts.get(target)
            firm = acct.firm.id if acct is not None and acct is not e.fee_acct else None
        elif scope == "firm":
            firm = target if target in led.firms else None
        elif scope == "session":
            access = e.extensions.get("access")
            rec = access.sessions.get(target) if access is not None else None
            firm = rec.firm if rec is not None else None
        else:
            return self._report(c, Reject.BAD_COMMAND, f"kill switch scope must be one of {', '.join(KILL_SCOPES)}")
        if firm is None:
            return self._report(c, Reject.UNKNOWN_ACCOUNT if scope == "account" else
                                Reject.UNKNOWN_FIRM if scope == "firm" else Reject.BAD_COMMAND,
                                f"unknown {scope} {target}")
        if c.requester:
            access = e.extensions.get("access")
            rec = access.sessions.get(c.requester) if access is not None else None
            if rec is None or rec.role != "risk" or not rec.enabled:
                return self._report(c, Reject.NOT_ENTITLED, f"{c.requester} is not a risk session")
            if firm != rec.firm and firm not in rec.entitled_firms:
                return self._report(c, Reject.NOT_ENTITLED, f"{c.requester} may not act for firm {firm}")
        table = self.killed[scope]
        if not c.active:
            was = table.pop(target, None)
            self.any_kill = any(self.killed.values())
            return self._report(c, 0, f"kill switch lifted for {scope} {target}" if was is not None
                                else f"no kill switch was active for {scope} {target}")
        reason = c.reason or "kill switch"
        table[target] = reason
        self.any_kill = True
        if scope == "session":
            victims = [o for o in e.orders.values() if o.info.session == target]
        elif scope == "account":
            victims = list(led.accounts[target].orders.values())
        else:
            victims = [o for a in led.firms[target].accounts for o in a.orders.values()]
        victims.sort(key=lambda o: o.id)
        text = f"kill switch on {scope} {target}: {reason}"
        for o in victims:
            e._cancel(o, CancelReason.KILL_SWITCH, text=text)
        self._report(c, 0, f"kill switch active for {scope} {target}", len(victims))

    def _report(self, c: KillSwitch, code: int, text: str, cancelled: int = 0) -> None:
        e = self.engine
        e._ev.append(KillSwitchReport(e.seq, e.ts, c, int(code), text, cancelled))

    def kills(self) -> list[dict[str, str]]:
        """Every active kill switch (for the control endpoint and FIX reports)."""
        return [{"scope": s, "target": t, "reason": r} for s in KILL_SCOPES for t, r in sorted(self.killed[s].items())]

    def kill_state(self, account: str, session: str = "") -> str:
        """Why ``account`` (through ``session``) is blocked, or "" if it is not."""
        acct = self.engine.ledger.accounts.get(account)
        if acct is None:
            return ""
        refusal = self._killed(acct, session)
        return refusal[1] if refusal else ""

    # ================================================================ limits
    def _set_limits(self, c: SetRiskLimits) -> None:
        e = self.engine
        if c.scope not in SCOPES:
            return self._no(c, Reject.BAD_COMMAND, f"limit scope must be one of {', '.join(SCOPES)}")
        if c.scope == "instrument":
            if c.target not in e.markets:
                return self._no(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {c.target}")
            if c.symbol not in ("", c.target):
                return self._no(c, Reject.BAD_COMMAND, "an instrument's limits name no other symbol")
            key: Key = ("instrument", c.target, "")
        else:
            if c.scope == "firm" and c.target not in e.ledger.firms:
                return self._no(c, Reject.UNKNOWN_FIRM, f"unknown firm {c.target}")
            if c.scope == "account" and c.target not in e.ledger.accounts:
                return self._no(c, Reject.UNKNOWN_ACCOUNT, f"unknown account {c.target}")
            if c.symbol and c.symbol not in e.markets:
                return self._no(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
            key = (c.scope, c.target, c.symbol)
        values = dict(zip(LIMIT_FIELDS, c[3:]))
        for name, v in values.items():
            if type(v) is not int or v < -1:
                return self._no(c, Reject.BAD_COMMAND, f"{name} must be -1 (keep), 0 (remove) or positive")
            if v > 0 and not key[2] and key[0] != "instrument" and name not in ANY_SYMBOL_FIELDS:
                return self._no(c, Reject.BAD_COMMAND, f"{name} is in the instrument's units: name a symbol")
        if values["price_band_ppm"] >= PPM:
            return self._no(c, Reject.BAD_COMMAND, "the price band must be below 100%")
        new = dict(self.sets.get(key, {}))
        for name, v in values.items():
            if v > 0:
                new[name] = v
            elif v == 0:
                new.pop(name, None)
        for lo, hi in (("min_qty", "max_qty"), ("min_notional", "max_notional")):
            if lo in new and hi in new and new[lo] > new[hi]:
                return self._no(c, Reject.BAD_COMMAND, f"{lo} is above {hi}")
        if new:
            self.sets[key] = new
        else:
            self.sets.pop(key, None)
        self._cache.clear()
        e._ev.append(AdminApplied(e.seq, e.ts, c))

    def _no(self, c: Any, code: Reject, text: str) -> None:
        e = self.engine
        e._ev.append(CommandRejected(e.seq, e.ts, c, int(code), text))

    def rules(self, acct: Account, symbol: str) -> Rules | None:
        """The limits that apply to ``acct`` trading ``symbol`` (None: no limit at all)."""
        per = self._cache.get(acct.id)
        if per is None:
            per = self._cache[acct.id] = {}
        elif symbol in per:
            return per[symbol]
        sets = self.sets
        out: Rules = {}
        for key in (("account", acct.id, symbol), ("account", acct.id, ""), ("firm", acct.firm.id, symbol),
                    ("firm", acct.firm.id, ""), ("instrument", symbol, "")):
            s = sets.get(key)
            if s:
                for name, v in s.items():
                    if name not in out:
                        out[name] = Applied(name, v, key[0], key[1], symbol if key[0] == "instrument" else key[2])
        result = out or None
        per[symbol] = result
        return result

    def _check_limits(self, e: Engine, acct: Account, mkt: Market, rules: Rules, side: int, ot: int, qty: int,
                      price: int, stop_px: int, replacing: Order | None = None,
                      new_leaves: int = 0) -> tuple[int, str] | None:
        """``qty`` is the order's total quantity; for an amend, ``replacing`` is the order
        and ``new_leaves`` what would remain open."""
        inst = mkt.inst
        sym = mkt.symbol
        q = inst.lots_to_qty
        r = rules.get("min_qty")
        if r is not None and qty < r.value:
            return int(Reject.QTY_BELOW_MIN), f"quantity {q(qty)} is below the {_where(r)} minimum quantity {q(r.value)}"
        r = rules.get("max_qty")
        if r is not None and qty > r.value:
            return int(Reject.QTY_ABOVE_MAX), f"quantity {q(qty)} is above the {_where(r)} maximum quantity {q(r.value)}"
        if ot == MARKET:
            touch = mkt.book.best_ask() if side == BUY else mkt.book.best_bid()
            ref = touch or price
        elif ot == STOP:
            ref = stop_px
        else:
            ref = price
        notional = ref * qty * mkt.mult
        fmt = e._fmt
        r = rules.get("min_notional")
        if r is not None and notional < r.value:
            return (int(Reject.NOTIONAL_BELOW_MIN), f"notional {fmt(mkt.quote, notional)} {mkt.quote} is below the "
                    f"{_where(r)} minimum notional {fmt(mkt.quote, r.value)}")
        r = rules.get("max_notional")
        if r is not None and notional > r.value:
            return (int(Reject.NOTIONAL_ABOVE_MAX), f"notional {fmt(mkt.quote, notional)} {mkt.quote} is above the "
                    f"{_where(r)} maximum notional {fmt(mkt.quote, r.value)}")
        r = rules.get("price_band_ppm")
        if r is not None and (ot == LIMIT or ot == STOP_LIMIT) and (replacing is None or price != replacing.price):
            ref_px, what = reference_price(mkt)
            if ref_px:
                lo = -(-ref_px * (PPM - r.value) // PPM)
                hi = ref_px * (PPM + r.value) // PPM
                if not lo <= price <= hi:
                    p = inst.ticks_to_price
                    return (int(Reject.PRICE_BAND), f"price {p(price)} is outside the {_where(r)} price band of "
                            f"{_pct(r.value)}% around the {what} {p(ref_px)} ({p(lo)} to {p(hi)})")
        r = rules.get("max_open_orders")
        if r is not None and replacing is None:
            n = sum(1 for o in self._scope_orders(e, acct, r, sym))
            if n + 1 > r.value:
                return (int(Reject.MAX_OPEN_ORDERS), f"{n} open orders: the {_where(r)} maximum of open orders is "
                        f"{r.value}")
        r = rules.get("max_open_notional")
        if r is not None:
            open_n = sum(o.price * o.leaves * o.mkt.mult for o in self._scope_orders(e, acct, r, sym)
                         if o is not replacing)
            leaves = new_leaves if replacing is not None else qty
            mine = (price or ref) * leaves * mkt.mult
            if open_n + mine > r.value:
                return (int(Reject.CREDIT_LIMIT), f"gross open notional would be {fmt(mkt.quote, open_n + mine)} "
                        f"{mkt.quote}: the {_where(r)} credit limit is {fmt(mkt.quote, r.value)}")
        r = rules.get("max_position")
        if r is not None:
            bpl = mkt.bpl
            accts = self._scope_accounts(e, acct, r)
            led = e.ledger
            net = sum(a.bal[mkt.base].avail + a.bal[mkt.base].held if mkt.base in a.bal else 0 for a in accts)
            net -= sum(led.loan(a.id, mkt.base) + led.pending_withdrawal(a.id, mkt.base) for a in accts)
            buys = sells = 0
            for o in self._scope_orders(e, acct, r, sym):
                if o is not replacing:
                    if o.side == BUY:
                        buys += o.leaves
                    else:
                        sells += o.leaves
            leaves = new_leaves if replacing is not None else qty
            if side == BUY:
                worst = net + (buys + leaves) * bpl
            else:
                worst = net - (sells + leaves) * bpl
            if abs(worst) > r.value * bpl:
                what = "long" if worst > 0 else "short"
                return (int(Reject.MAX_POSITION), f"the {what} position could reach {_base_qty(inst, abs(worst))} "
                        f"{mkt.base}: the {_where(r)} maximum position is {q(r.value)}")
        return None

    @staticmethod
    def _scope_accounts(e: Engine, acct: Account, r: Applied) -> list[Account]:
        return list(acct.firm.accounts) if r.scope == "firm" else [acct]

    def _scope_orders(self, e: Engine, acct: Account, r: Applied, symbol: str) -> list[Order]:
        """The open orders a limit counts: the account's or the firm's, of one symbol or all."""
        per_symbol = r.symbol != ""
        out: list[Order] = []
        for a in self._scope_accounts(e, acct, r):
            if per_symbol:
                out.extend(o for o in a.orders.values() if o.info.symbol == symbol)
            else:
                out.extend(a.orders.values())
        return out

    # ================================================================ reads (sequencer thread)
    def applied(self, account: str, symbol: str) -> list[dict[str, Any]]:
        """The limits that apply to ``account`` trading ``symbol``, with their use now."""
        e = self.engine
        acct = e.ledger.accounts.get(account)
        mkt = e.markets.get(symbol)
        if acct is None or mkt is None:
            return []
        inst = mkt.inst
        rules = self.rules(acct, symbol) or {}
        out: list[dict[str, Any]] = []
        core = {"min_qty": inst.min_qty, "max_qty": inst.max_qty, "min_notional": inst.min_notional,
                "max_notional": inst.max_notional}
        for name in LIMIT_FIELDS:
            r = rules.get(name)
            if r is None and name in core:
                r = Applied(name, core[name], "instrument", symbol, symbol)
            if r is None:
                continue
            out.append({"name": name, "value": r.value, "scope": r.scope, "target": r.target,
                        "symbol": r.symbol or symbol, "used": self._used(e, acct, mkt, r)})
        out.append({"name": "market_band_ppm", "value": inst.market_band_ppm, "scope": "instrument", "target": symbol,
                    "symbol": symbol, "used": None})
        return out

    def _used(self, e: Engine, acct: Account, mkt: Market, r: Applied) -> int | None:
        if r.name == "max_open_orders":
            return len(self._scope_orders(e, acct, r, mkt.symbol))
        if r.name == "max_open_notional":
            return sum(o.price * o.leaves * o.mkt.mult for o in self._scope_orders(e, acct, r, mkt.symbol))
        if r.name == "max_position":
            led = e.ledger
            net = 0
            for a in self._scope_accounts(e, acct, r):
                b = a.bal.get(mkt.base)
                net += (b.avail + b.held if b else 0) - led.loan(a.id, mkt.base) - led.pending_withdrawal(a.id, mkt.base)
            return abs(net) // mkt.bpl
        return None

    def limit_sets(self) -> list[dict[str, Any]]:
        """Every limit set, as configured."""
        return [{"scope": k[0], "target": k[1], "symbol": k[2], **v} for k, v in sorted(self.sets.items())]

    # ================================================================ extension protocol
    def dump_state(self) -> dict[str, Any]:
        return {"sets": [[list(k), dict(v)] for k, v in sorted(self.sets.items())],
                "killed": {s: dict(t) for s, t in self.killed.items()}}

    def load_state(self, d: dict[str, Any]) -> None:
        self.sets = {(k[0], k[1], k[2]): dict(v) for k, v in d.get("sets", [])}
        killed = d.get("killed", {})
        self.killed = {s: dict(killed.get(s, {})) for s in KILL_SCOPES}
        self.any_kill = any(self.killed.values())
        self._cache.clear()

    def state_hash(self) -> str:
        h = hashlib.sha256()
        for k, v in sorted(self.sets.items()):
            h.update(repr((k, sorted(v.items()))).encode())
        for s in KILL_SCOPES:
            h.update(repr((s, sorted(self.killed[s].items()))).encode())
        return h.hexdigest()

    def check_invariants(self) -> None:
        from venue.errors import EngineBug

        if self.any_kill != any(self.killed.values()):
            raise EngineBug("risk: kill switch flag out of step with the table")


def reference_price(mkt: Market) -> tuple[int, str]:
    """The price band's reference: the last trade, else the mid of the book (0 = none)."""
    if mkt.last_px:
        return mkt.last_px, "last trade"
    bid, ask = mkt.book.best_bid(), mkt.book.best_ask()
    if bid is not None and ask is not None:
        return (bid + ask) // 2, "mid"
    return 0, ""


def _where(r: Applied) -> str:
    if r.scope == "instrument":
        return f"{r.target}"
    return f"{r.scope} {r.target}" + (f" {r.symbol}" if r.symbol else "")


def _pct(ppm: int) -> str:
    whole, frac = divmod(ppm, 10_000)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".")


def _base_qty(inst: Any, atoms: int) -> str:
    return str(inst.lots_to_qty(atoms // inst.base_per_lot)) if atoms % inst.base_per_lot == 0 else f"{atoms} atoms"


def install(engine: Engine) -> RiskBook:
    book = RiskBook(engine)
    engine.extensions["risk"] = book
    engine.risk = book
    return book


__all__ = ["SetRiskLimits", "KillSwitch", "KillSwitchReport", "RiskBook", "install", "reference_price",
           "LIMIT_FIELDS"]
