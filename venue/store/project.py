"""From durable commands and their events to SQL rows (pure: no database, no threads).

:class:`Projector` turns a run of ``Processed`` (seq, ts, command, events) into a
:class:`Changes`: rows to insert, rows to update (keyed, with the final values after the
run) and rows to delete. It keeps what it needs to know between runs (each instrument's
sizes and limits, to post fills and apply limit changes), loaded from the database when the
store opens.

Ledger postings are derived from the events exactly as ``Engine._settle`` and the ledger
move money: a fill moves quote and base between taker and maker and both fees to the fee
account; funding moves money between an account and :data:`~venue.store.models.EXTERNAL`.
Holds (orders, pending withdrawals) move nothing between accounts and post nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from venue import access
from venue import commands as C
from venue.events import (
    AdminApplied, CancelRejected, CommandRejected, Execution, FundingPosted, InstrumentStatus,
    MassCancelReport, OrderRejected, Trade,
)
from venue.ledger import FEE_ACCOUNT, FEE_FIRM
from venue.margin import INSURANCE_ACCOUNT, LENDING_ACCOUNT, Liquidation, MarginTransfer, SetLeverage
from venue.risk import KillSwitchReport
from venue.operator import OperatorCommand, SetInstrumentLimits, inner_commands
from venue.store.models import EXTERNAL
from venue.types import BUY, EXEC_NEW, STP, AccountKind

# The venue's own accounts exist before the first command (the engine and its margin
# extension open them); the store writes them with the first command so they have rows.
SYSTEM_ACCOUNTS = (FEE_ACCOUNT, LENDING_ACCOUNT, INSURANCE_ACCOUNT)
# a margin move: (sign of the amount into the account, kind of posting); write_off moves nothing
_MARGIN_MOVES = {"borrow": 1, "repay": -1, "cover": 1, "takeover": -1}

_LIMITS = ("min_qty", "max_qty", "min_notional", "max_notional", "market_band_ppm")


@dataclass
class Changes:
    """Rows for one transaction. ``upserts[table][key]`` is ``(is_new, values)``: a new
    row is inserted with all its values, an existing one updated with ``values``."""

    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    upserts: dict[str, dict[Any, tuple[bool, dict[str, Any]]]] = field(default_factory=dict)
    deletes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    first_seq: int = 0
    last_seq: int = 0
    genesis_ts: int = 0  # set when the run holds seq 1
    rows: int = 0

    def insert(self, table: str, row: dict[str, Any]) -> None:
        self.inserts.setdefault(table, []).append(row)
        self.rows += 1

    def upsert(self, table: str, key: Any, values: dict[str, Any], new: bool = False) -> None:
        t = self.upserts.setdefault(table, {})
        old = t.get(key)
        if old is None:
            t[key] = (new, dict(values))
            self.rows += 1
        else:
            old[1].update(values)

    def delete(self, table: str, where: dict[str, Any]) -> None:
        self.deletes.setdefault(table, []).append(where)


class Projector:
    def __init__(self, instruments: dict[str, dict[str, Any]] | None = None) -> None:
        # symbol -> {"base", "quote", "notional_mult", "base_per_lot", limits...}
        self.instruments: dict[str, dict[str, Any]] = dict(instruments or {})

    def project(self, batch: list[Any]) -> Changes:
        ch = Changes()
        if batch:
            ch.first_seq, ch.last_seq = batch[0].seq, batch[-1].seq
        for p in batch:
            if p.seq == 1:
                ch.genesis_ts = p.ts
                self._system_accounts(ch)
            self._one(ch, p)
        return ch

    # -- one command -------------------------------------------------------------------
    def _one(self, ch: Changes, p: Any) -> None:
        seq, ts, cmd, events = p.seq, p.ts, p.cmd, p.events
        n_post = 0
        for ev in events:
            t = type(ev)
            if t is Execution:
                self._execution(ch, ev)
            elif t is Trade:
                n_post = self._trade(ch, ev, n_post)
            elif t is OrderRejected:
                c = ev.cmd
                ch.insert("order_rejects", {"seq": seq, "exec_n": ev.exec_n, "ts": ts, "account": c.account,
                                            "cl_ord_id": c.cl_ord_id, "symbol": c.symbol, "code": ev.code,
                                            "text": ev.text})
            elif t is FundingPosted:
                n_post = self._funding(ch, ev, n_post)
            elif t is InstrumentStatus:
                ch.upsert("instruments", ev.symbol, {"halted": ev.halted, "status_reason": ev.reason, "updated_seq": seq})
            elif t is AdminApplied:
                self._admin(ch, seq, ev.cmd)
            elif t is MarginTransfer:
                n_post = self._margin_transfer(ch, ev, n_post)
            elif t is Liquidation:
                n_liq = sum(1 for r in ch.inserts.get("liquidations", ()) if r["seq"] == seq) + 1
                ch.insert("liquidations", {"seq": seq, "n": n_liq, "ts": ts, "account": ev.account, "stage": ev.stage,
                                           "equity": ev.equity, "maintenance": ev.maintenance,
                                           "covered": ev.covered, "written_off": ev.written_off, "text": ev.text})
        if type(cmd) is OperatorCommand:
            self._audit(ch, seq, ts, cmd, events)

    def _execution(self, ch: Changes, e: Execution) -> None:
        i = e.info
        ch.insert("executions", {
            "seq": e.seq, "exec_n": e.exec_n, "ts": e.ts, "order_id": i.order_id, "account": i.account,
            "symbol": i.symbol, "kind": e.kind, "status": e.status, "cl_ord_id": e.cl_ord_id,
            "orig_cl_ord_id": e.orig_cl_ord_id, "cum_qty": e.cum_qty, "leaves_qty": e.leaves_qty,
            "last_px": e.last_px, "last_qty": e.last_qty, "fee": e.fee, "liquidity": e.liquidity,
            "trade_n": e.trade_n, "reason": e.reason, "text": e.text,
        })
        state = {"price": i.price, "stop_px": i.stop_px, "qty": i.qty, "cl_ord_id": i.cl_ord_id, "status": e.status,
                 "cum_qty": e.cum_qty, "leaves_qty": e.leaves_qty, "cum_notional": e.cum_notional,
                 "cum_fee": e.cum_fee, "updated_seq": e.seq, "updated_ts": e.ts}
        if e.kind == EXEC_NEW:
            state |= {"order_id": i.order_id, "account": i.account, "firm": i.firm, "symbol": i.symbol,
                      "side": i.side, "ord_type": i.ord_type, "tif": i.tif, "display_qty": i.display_qty,
                      "session": i.session, "entered_ts": i.entered_ts}
            ch.upsert("orders", i.order_id, state, new=True)
        else:
            ch.upsert("orders", i.order_id, state)

    def _trade(self, ch: Changes, t: Trade, n: int) -> int:
        inst = self.instruments[t.symbol]
        seq, ts = t.seq, t.ts
        tid = f"{seq}-{t.trade_n}"
        ch.insert("trades", {
            "seq": seq, "trade_n": t.trade_n, "ts": ts, "symbol": t.symbol, "price": t.price, "qty": t.qty,
            "aggressor_side": t.aggressor_side, "maker_order_id": t.maker_order_id,
            "taker_order_id": t.taker_order_id, "maker_account": t.maker_account,
            "taker_account": t.taker_account, "maker_fee": t.maker_fee, "taker_fee": t.taker_fee,
        })
        notional = t.price * t.qty * inst["notional_mult"]
        base_amt = t.qty * inst["base_per_lot"]
        base, quote = inst["base"], inst["quote"]
        taker, maker, tf, mf = t.taker_account, t.maker_account, t.taker_fee, t.maker_fee
        if t.aggressor_side == BUY:
            moves = ((taker, quote, -(notional + tf), "trade"), (taker, base, base_amt, "trade"),
                     (maker, base, -base_amt, "trade"), (maker, quote, notional - mf, "trade"))
        else:
            moves = ((taker, base, -base_amt, "trade"), (taker, quote, notional - tf, "trade"),
                     (maker, quote, -(notional + mf), "trade"), (maker, base, base_amt, "trade"))
        for account, asset, amount, kind in moves + ((FEE_ACCOUNT, quote, tf + mf, "fee"),):
            n += 1
            ch.insert("postings", {"seq": seq, "n": n, "ts": ts, "account": account, "asset": asset,
                                   "amount": amount, "kind": kind, "ref": tid})
        return n

    def _funding(self, ch: Changes, f: FundingPosted, n: int) -> int:
        seq, ts, fid = f.seq, f.ts, f.funding_id
        if f.kind in ("deposit", "withdraw", "hold"):
            ch.upsert("fundings", fid, {
                "funding_id": fid, "kind": "deposit" if f.kind == "deposit" else "withdrawal", "account": f.account,
                "asset": f.asset, "amount": f.amount, "state": "held" if f.kind == "hold" else "done",
                "reference": "", "created_seq": seq, "created_ts": ts, "updated_seq": seq,
            }, new=True)
        else:
            values = {"state": "released" if f.kind == "release" else "completed", "updated_seq": seq}
            if f.kind == "complete":
                values["reference"] = getattr(f.cmd, "reference", "")
            ch.upsert("fundings", fid, values)
        if f.kind in ("deposit", "withdraw", "complete"):
            sign = 1 if f.kind == "deposit" else -1
            kind = "deposit" if f.kind == "deposit" else "withdraw"
            for account, amount in ((f.account, sign * f.amount), (EXTERNAL, -sign * f.amount)):
                n += 1
                ch.insert("postings", {"seq": seq, "n": n, "ts": ts, "account": account, "asset": f.asset,
                                       "amount": amount, "kind": kind, "ref": fid})
        return n

    @staticmethod
    def _margin_transfer(ch: Changes, m: MarginTransfer, n: int) -> int:
        """Borrow (pool -> account), repay (account -> pool), cover (insurance fund ->
        account), takeover (a bankrupt account's holdings -> insurance fund); a write-off
        moves no money (the pool's loss is already in its balance)."""
        sign = _MARGIN_MOVES.get(m.kind)
        if sign is None:
            return n
        for account, amount in ((m.account, sign * m.amount), (m.counterparty, -sign * m.amount)):
            n += 1
            ch.insert("postings", {"seq": m.seq, "n": n, "ts": m.ts, "account": account, "asset": m.asset,
                                   "amount": amount, "kind": m.kind, "ref": m.counterparty})
        return n

    @staticmethod
    def _system_accounts(ch: Changes) -> None:
        ch.upsert("firms", FEE_FIRM, {"firm": FEE_FIRM, "name": "the venue", "created_seq": 1}, new=True)
        for account in SYSTEM_ACCOUNTS:
            ch.upsert("accounts", account, {
                "account": account, "firm": FEE_FIRM, "kind": int(AccountKind.VENUE), "maker_ppm": 0, "taker_ppm": 0,
                "stp": int(STP.CANCEL_NEWEST), "leverage": 1, "enabled": True, "created_seq": 1, "updated_seq": 1},
                new=True)

    # -- administration ----------------------------------------------------------------
    def _admin(self, ch: Changes, seq: int, c: Any) -> None:
        t = type(c)
        if t is C.DefineAsset:
            ch.upsert("assets", c.code, {"code": c.code, "decimals": c.decimals, "defined_seq": seq}, new=True)
        elif t is C.DefineInstrument:
            r = dict(c.record)
            self.instruments[r["symbol"]] = {k: r[k] for k in ("base", "quote", "notional_mult", "base_per_lot") + _LIMITS}
            ch.upsert("instruments", r["symbol"], {
                **{k: r[k] for k in ("symbol", "base", "quote", "tick_size", "lot_size", "notional_mult",
                                     "base_per_lot") + _LIMITS},
                "halted": False, "status_reason": "", "defined_seq": seq, "updated_seq": seq}, new=True)
        elif t is SetInstrumentLimits:
            inst = self.instruments[c.symbol]
            for k in _LIMITS:
                inst[k] = getattr(c, k) or inst[k]
            ch.upsert("instruments", c.symbol, {**{k: inst[k] for k in _LIMITS}, "updated_seq": seq})
        elif t is C.CreateFirm:
            ch.upsert("firms", c.firm, {"firm": c.firm, "name": c.name, "created_seq": seq}, new=True)
        elif t is C.CreateAccount:
            ch.upsert("accounts", c.account, {
                "account": c.account, "firm": c.firm, "kind": c.kind, "maker_ppm": c.maker_ppm,
                "taker_ppm": c.taker_ppm, "stp": c.stp, "leverage": c.leverage, "enabled": True,
                "created_seq": seq, "updated_seq": seq}, new=True)
        elif t is C.SetFees:
            ch.upsert("accounts", c.account, {"maker_ppm": c.maker_ppm, "taker_ppm": c.taker_ppm, "updated_seq": seq})
        elif t is SetLeverage:
            ch.upsert("accounts", c.account, {"leverage": c.leverage, "updated_seq": seq})
        elif t is C.SetAccountEnabled:
            ch.upsert("accounts", c.account, {"enabled": bool(c.enabled), "updated_seq": seq})
        elif t is access.CreateUser:
            ch.upsert("users", c.user, {"user": c.user, "firm": c.firm, "name": c.name, "enabled": True,
                                        "created_seq": seq, "updated_seq": seq}, new=True)
            self._credential(ch, seq, c.user, "password", c.password_hash)
        elif t is access.SetUserPassword:
            self._credential(ch, seq, c.user, "password", c.password_hash)
            ch.upsert("users", c.user, {"updated_seq": seq})
        elif t is access.SetUserEnabled:
            ch.upsert("users", c.user, {"enabled": bool(c.enabled), "updated_seq": seq})
        elif t is access.CreateSession:
            ch.upsert("sessions", c.comp_id, {
                "comp_id": c.comp_id, "role": c.role, "firm": c.firm, "user": c.user,
                "target_comp_id": c.target_comp_id or "VENUE", "default_account": c.default_account,
                "cancel_on_disconnect": bool(c.cancel_on_disconnect), "msg_rate": c.msg_rate, "enabled": True,
                "created_seq": seq, "updated_seq": seq}, new=True)
            self._entitlements(ch, c.comp_id, c.accounts, c.entitled_firms, fresh=True)
            if c.ed25519_key:
                self._credential(ch, seq, c.comp_id, "ed25519", c.ed25519_key.lower())
        elif t is access.UpdateSession:
            ch.upsert("sessions", c.comp_id, {"default_account": c.default_account,
                                              "cancel_on_disconnect": bool(c.cancel_on_disconnect),
                                              "msg_rate": c.msg_rate, "updated_seq": seq})
            self._entitlements(ch, c.comp_id, c.accounts, c.entitled_firms, fresh=False)
        elif t is access.SetSessionEnabled:
            ch.upsert("sessions", c.comp_id, {"enabled": bool(c.enabled), "updated_seq": seq})
        elif t is access.SetSessionKey:
            self._credential(ch, seq, c.comp_id, "ed25519", c.ed25519_key.lower())
            ch.upsert("sessions", c.comp_id, {"updated_seq": seq})

    @staticmethod
    def _credential(ch: Changes, seq: int, subject: str, kind: str, value: str) -> None:
        n = sum(1 for r in ch.inserts.get("credentials", ()) if r["seq"] == seq) + 1
        ch.insert("credentials", {"seq": seq, "n": n, "subject": subject, "kind": kind, "value": value})

    @staticmethod
    def _entitlements(ch: Changes, comp_id: str, accounts: str, firms: str, fresh: bool) -> None:
        rows = [{"comp_id": comp_id, "kind": "account", "subject": a} for a in access._split(accounts)]
        rows += [{"comp_id": comp_id, "kind": "firm", "subject": f} for f in access._split(firms)]
        if not fresh:
            ch.delete("entitlements", {"comp_id": comp_id})
            ch.inserts["entitlements"] = [r for r in ch.inserts.get("entitlements", []) if r["comp_id"] != comp_id]
        for r in rows:
            ch.insert("entitlements", r)

    # -- audit -------------------------------------------------------------------------
    @staticmethod
    def _audit(ch: Changes, seq: int, ts: int, c: OperatorCommand, events: list[Any]) -> None:
        refusals = [ev.text for ev in events if isinstance(ev, (CommandRejected, CancelRejected))
                    or (isinstance(ev, (MassCancelReport, KillSwitchReport)) and ev.code)]
        cancelled = sum(ev.cancelled for ev in events if isinstance(ev, (MassCancelReport, KillSwitchReport)))
        if refusals:
            outcome, detail = "rejected", "; ".join(refusals)
        elif not c.commands:
            outcome, detail = "noted", ""
        else:
            outcome = "applied"
            names = ", ".join(type(x).__name__ for x in inner_commands(c))
            detail = names + (f"; {cancelled} orders cancelled" if cancelled else "")
        ch.insert("audit_log", {"seq": seq, "ts": ts, "operator": c.operator, "action": c.action,
                                "args": json.dumps(dict(c.args), sort_keys=True, default=str), "reason": c.reason,
                                "request_id": c.request_id, "outcome": outcome, "detail": detail})
