"""Withdrawals: request, hold, policy, approvals, signing, settlement; every step audited.

The life of a withdrawal (``state``)::

    requested --hold--> pending_approval --M approvals--> approved --sign--> signed
        |                    |                               |             |
        +--> rejected <------+------- reject ----------------+        (broadcast, N confirmations)
                                                                           |
                                                       completed <--- ok --+-- reverted/dropped --> failed

The amount is held in the ledger at once (``HoldWithdrawal``, funding id = the
withdrawal id); the policy engine (:mod:`custody.policy`) then decides. A refusal,
rejection or chain failure releases the hold (``ReleaseWithdrawal``); a transaction
confirmed ``confirmations`` deep completes it (``CompleteWithdrawal``), and its network
fee is paid by the venue's gas account (:mod:`custody.outbox`).

Crash safety: every state change is committed before the next step starts, the signed
transaction is stored before it is broadcast, and the ledger side is reconciled against
the journal on every pass (column ``ledger``: what custody knows it has posted), so a
restart at any point neither pays twice nor loses the hold.
"""
from __future__ import annotations

import secrets
from typing import Any

from custody import policy
from custody.addresses import Addresses
from custody.assets import ChainAsset
from custody.config import CustodyConfig
from custody.errors import InvalidInput
from custody.ledger_port import LedgerPort
from custody.outbox import Outbox
from custody.outcome import Outcome
from custody.store import Store
from venue import commands as C
from venue.clock import Clock
from venue.types import Reject

OPEN = ("requested", "pending_approval", "approved", "signed", "broadcast")
STATES = OPEN + ("completed", "rejected", "failed")
COUNTS_FOR_VELOCITY = OPEN + ("completed",)
_LEDGER_CODES = {int(Reject.INSUFFICIENT_FUNDS): "insufficient_funds", int(Reject.DUPLICATE_FUNDING_ID): "duplicate_funding_id",
                 int(Reject.UNKNOWN_ACCOUNT): "unknown_account", int(Reject.UNKNOWN_ASSET): "unknown_asset"}


class Withdrawals:
    def __init__(self, store: Store, ledger: LedgerPort, outbox: Outbox, addresses: Addresses,
                 assets: dict[str, ChainAsset], clock: Clock, config: CustodyConfig,
                 hot: dict[str, tuple[str, str]]) -> None:
        self.store = store
        self.ledger = ledger
        self.outbox = outbox
        self.addresses = addresses
        self.assets = assets
        self.clock = clock
        self.config = config
        self.approvers = frozenset(config.approvers)
        self.hot = hot  # chain -> (key label, address)
        self.default_limits: dict[str, policy.Limits] = {}
        for sym, a in assets.items():
            per_tx = config.per_tx_limit.get(sym)
            daily = config.daily_limit.get(sym)
            self.default_limits[sym] = policy.Limits(
                a.to_ledger(a.parse(per_tx)) if per_tx else 0, a.to_ledger(a.parse(daily)) if daily else 0)
        outbox.handlers["withdrawal"] = self._on_tx_final

    # -- reads -------------------------------------------------------------------------
    def get(self, wid: str) -> dict[str, Any] | None:
        r = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        return self._view(r) if r else None

    def list(self, account: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM withdrawals WHERE 1=1", []
        if account:
            q += " AND account=?"
            args.append(account)
        if state:
            q += " AND state=?"
            args.append(state)
        return [self._view(r) for r in self.store.all(q + " ORDER BY created_ns", tuple(args))]

    def _view(self, r: Any) -> dict[str, Any]:
        a = self.assets.get(r["symbol"])
        d = dict(r)
        d["amount"] = a.fmt(int(r["amount_chain"])) if a else r["amount_chain"]
        d["approvals"] = [x["approver"] for x in self.store.all(
            "SELECT approver FROM approvals WHERE withdrawal_id=? ORDER BY ns", (r["id"],))]
        tx = self.store.one("SELECT state, fee_chain FROM chain_txs WHERE txid=?", (r["txid"],)) if r["txid"] else None
        d["tx_state"] = tx["state"] if tx else ""
        return d

    def limits(self, account: str, symbol: str) -> policy.Limits:
        r = self.store.one("SELECT per_tx, daily FROM limits WHERE account=? AND symbol=?", (account, symbol))
        if r is not None:
            return policy.Limits(int(r["per_tx"]), int(r["daily"]))
        return self.default_limits[symbol]

    def set_limits(self, actor: str, account: str, symbol: str, per_tx: str, daily: str) -> Outcome:
        if actor not in self.approvers:
            return Outcome.refused("not_an_approver", f"{actor} may not change limits")
        a = self.assets.get(symbol)
        if a is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol}")
        try:
            lim = policy.Limits(a.to_ledger(a.parse(per_tx)), a.to_ledger(a.parse(daily)))
        except InvalidInput as e:
            return Outcome.refused(e.code, e.text)
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("INSERT OR REPLACE INTO limits(account, symbol, per_tx, daily, set_by) VALUES(?,?,?,?,?)",
                           (account, symbol, str(lim.per_tx), str(lim.daily), actor))
            self.store.audit(now, actor, "limits_set", account, symbol=symbol, per_tx=per_tx, daily=daily)
        return Outcome.done(account=account, symbol=symbol, per_tx=per_tx, daily=daily)

    def withdrawn_24h(self, account: str, symbol: str, exclude: str = "") -> int:
        since = self.clock.now_ns() - policy.DAY_NS
        rows = self.store.all("SELECT amount_ledger FROM withdrawals WHERE account=? AND symbol=? AND created_ns>? AND id<>? "
                              f"AND state IN ({','.join('?' * len(COUNTS_FOR_VELOCITY))})",
                              (account, symbol, since, exclude, *COUNTS_FOR_VELOCITY))
        return sum(int(r["amount_ledger"]) for r in rows)

    # -- request -----------------------------------------------------------------------
    def request(self, actor: str, account: str, symbol: str, amount: str, destination: str,
                firm: str = "", request_id: str = "") -> Outcome:
        """``firm``: set when the requester is a user of a firm (not an operator): it may
        then only withdraw from its own firm's accounts."""
        asset = self.assets.get(symbol)
        if asset is None:
            return Outcome.refused("unknown_asset", f"custody holds no {symbol!r}; it holds {', '.join(sorted(self.assets))}")
        try:
            units = asset.parse(amount)
            atoms = asset.to_ledger(units)
            dest = self.addresses.normalise(asset.chain, destination)
        except InvalidInput as e:
            return Outcome.refused(e.code, e.text)
        acct_firm = self.ledger.account_firm(account)
        if acct_firm is None:
            return Outcome.refused("unknown_account", f"unknown account {account}")
        if firm and firm != acct_firm:
            return Outcome.refused("not_entitled", f"{actor} of {firm} may not withdraw from {account}")
        if request_id and not all(c.isalnum() or c in "-_." for c in request_id):
            return Outcome.refused("bad_request_id", "a request id is letters, digits, '-', '_' and '.'")
        wid = f"wd:{account}:{request_id or secrets.token_hex(6)}"
        if self.store.one("SELECT 1 FROM withdrawals WHERE id=?", (wid,)) or self.ledger.funding(wid) is not None:
            self.store.audit(self.clock.now_ns(), actor, "withdrawal_refused", wid, code="duplicate_request")
            return Outcome.refused("duplicate_request", f"the withdrawal id {wid} was used already; nothing was held again",
                                   id=wid)
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run(
                "INSERT INTO withdrawals(id, account, symbol, asset, amount_ledger, amount_chain, destination, requested_by,"
                " firm, state, approvals_required, created_ns, updated_ns) VALUES(?,?,?,?,?,?,?,?,?, 'requested', ?,?,?)",
                (wid, account, symbol, asset.ledger_asset, str(atoms), str(units), dest, actor, firm,
                 self.config.approvals_required, now, now))
            self.store.audit(now, actor, "withdrawal_requested", wid, account=account, symbol=symbol,
                             amount=asset.fmt(units), destination=dest, firm=firm)
        return self._hold_and_decide(wid)

    def _hold_and_decide(self, wid: str) -> Outcome:
        w = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        assert w is not None
        p = self.ledger.post(C.HoldWithdrawal(wid, w["account"], w["asset"], int(w["amount_ledger"])))
        if not p.ok:
            code = _LEDGER_CODES.get(p.code, "ledger_refused")
            self._set(wid, "rejected", f"the ledger refused the hold: {p.text}", ledger="none", actor="venue",
                      action="withdrawal_refused", code=code)
            return Outcome.refused(code, p.text, id=wid)
        self.store.run("UPDATE withdrawals SET ledger='held' WHERE id=?", (wid,))
        return self._decide(wid)

    def _decide(self, wid: str) -> Outcome:
        """The hold is in place: ask the policy engine."""
        w = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        assert w is not None
        asset = self.assets[w["symbol"]]
        refusal = policy.check_withdrawal(
            int(w["amount_ledger"]), self.limits(w["account"], w["symbol"]),
            self.withdrawn_24h(w["account"], w["symbol"], exclude=wid),
            self.addresses.entry(w["account"], asset.chain, w["destination"]),
            lambda atoms: f"{asset.fmt(asset.to_chain(atoms))} {asset.symbol}")
        if refusal is not None:
            self._set(wid, "rejected", refusal.reason, actor="policy", action="withdrawal_refused", code=refusal.code)
            self._sync_ledger(wid)
            return Outcome.refused(refusal.code, refusal.reason, id=wid)
        state = "approved" if w["approvals_required"] <= 0 else "pending_approval"
        self._set(wid, state, "", actor="policy", action="withdrawal_held")
        return Outcome.done(**(self.get(wid) or {}))

    # -- approvals ---------------------------------------------------------------------
    def approve(self, actor: str, wid: str) -> Outcome:
        w = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        if w is None:
            return Outcome.refused("unknown_withdrawal", f"no withdrawal {wid}")
        now = self.clock.now_ns()
        if w["state"] != "pending_approval":
            return Outcome.refused("not_pending", f"withdrawal {wid} is {w['state']}, not awaiting approval")
        already = {r["approver"] for r in self.store.all("SELECT approver FROM approvals WHERE withdrawal_id=?", (wid,))}
        refusal = policy.check_approval(actor, w["requested_by"], self.approvers, already)
        if refusal is not None:
            self.store.audit(now, actor, "approval_refused", wid, code=refusal.code, reason=refusal.reason)
            return Outcome.refused(refusal.code, refusal.reason, id=wid)
        with self.store.tx():
            self.store.run("INSERT INTO approvals(withdrawal_id, approver, ns) VALUES(?,?,?)", (wid, actor, now))
            self.store.audit(now, actor, "withdrawal_approved", wid, approvals=len(already) + 1, required=w["approvals_required"])
            if len(already) + 1 >= w["approvals_required"]:
                self._set(wid, "approved", "", actor="policy", action="withdrawal_fully_approved")
        return Outcome.done(**(self.get(wid) or {}))

    def reject(self, actor: str, wid: str, reason: str = "") -> Outcome:
        w = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        if w is None:
            return Outcome.refused("unknown_withdrawal", f"no withdrawal {wid}")
        if actor not in self.approvers and actor != w["requested_by"]:
            return Outcome.refused("not_entitled", f"{actor} may not reject {wid}")
        if w["state"] not in ("requested", "pending_approval", "approved"):
            return Outcome.refused("too_late", f"withdrawal {wid} is {w['state']}: it can no longer be rejected")
        self._set(wid, "rejected", reason or f"rejected by {actor}", actor=actor, action="withdrawal_rejected")
        self._sync_ledger(wid)
        return Outcome.done(**(self.get(wid) or {}))

    # -- the pass that moves things on ----------------------------------------------------
    def advance(self) -> None:
        for w in self.store.all("SELECT id FROM withdrawals WHERE state='requested' ORDER BY created_ns"):
            self._resume_requested(w["id"])
        for w in self.store.all("SELECT id FROM withdrawals WHERE (state IN ('rejected', 'failed') AND ledger='held') "
                                "OR (state='completed' AND ledger<>'completed')"):
            self._sync_ledger(w["id"])
        for w in self.store.all("SELECT * FROM withdrawals WHERE state='approved' ORDER BY created_ns"):
            self._pay(w)
        for w in self.store.all("SELECT w.id FROM withdrawals w JOIN chain_txs t ON t.txid=w.txid "
                                "WHERE w.state='signed' AND t.state='broadcast'"):
            self._set(w["id"], "broadcast", "", actor="custody", action="withdrawal_broadcast")
        # A transaction final and settled on the outbox's side while its withdrawal is not
        # (left so by an earlier version that committed fee_posted=1 before telling us):
        # finish the withdrawal from the transaction's outcome.
        for t in self.store.all("SELECT t.* FROM withdrawals w JOIN chain_txs t ON t.txid=w.txid "
                                "WHERE w.state IN ('signed', 'broadcast') AND t.kind='withdrawal' "
                                "AND t.state IN ('confirmed', 'reverted', 'dropped') AND t.fee_posted=1"):
            self.store.audit(self.clock.now_ns(), "custody", "withdrawal_reconciled", t["ref"], txid=t["txid"],
                             tx_state=t["state"])
            self._on_tx_final(t, t["state"] == "confirmed")

    def _resume_requested(self, wid: str) -> None:
        """A restart after the row was written: find out whether the hold was posted."""
        rec = self.ledger.funding(wid)
        if rec is None:
            self._hold_and_decide(wid)
        elif rec[4] == "held":
            self.store.run("UPDATE withdrawals SET ledger='held' WHERE id=?", (wid,))
            self._decide(wid)
        else:
            self._set(wid, "rejected", f"the ledger shows {rec[0]} {rec[4]}", ledger="none", actor="custody",
                      action="withdrawal_refused", code="ledger_state")

    def _pay(self, w: Any) -> None:
        asset = self.assets[w["symbol"]]
        entry = self.addresses.entry(w["account"], asset.chain, w["destination"])
        if entry is None or entry.state != "approved":
            self._set(w["id"], "rejected", "the destination left the approved address book before payment",
                      actor="policy", action="withdrawal_refused", code="address_unapproved")
            self._sync_ledger(w["id"])
            return
        hot = self.hot.get(asset.chain)
        if hot is None:
            self._note(w, "no_rail", f"no {asset.chain} hot wallet is configured")
            return
        label, hot_addr = hot
        wid = w["id"]

        def on_signed(txid: str) -> None:
            self.store.run("UPDATE withdrawals SET state='signed', txid=?, reason='', updated_ns=? WHERE id=?",
                           (txid, self.clock.now_ns(), wid))

        sent = self.outbox.send("withdrawal", wid, asset, label, hot_addr, w["destination"], int(w["amount_chain"]),
                                on_signed=on_signed)
        if not sent.ok:
            self._note(w, sent.code, sent.reason)

    def _note(self, w: Any, code: str, reason: str) -> None:
        """An approved withdrawal that cannot be paid yet (liquidity, gas, node): say why, once."""
        if w["reason"] != reason:
            now = self.clock.now_ns()
            self.store.run("UPDATE withdrawals SET reason=?, updated_ns=? WHERE id=?", (reason, now, w["id"]))
            self.store.audit(now, "custody", "withdrawal_waiting", w["id"], code=code, reason=reason)

    def _on_tx_final(self, tx: Any, ok: bool) -> None:
        """The withdrawal's transaction is final: complete or fail it (idempotent)."""
        wid = tx["ref"]
        cur = self.store.one("SELECT state FROM withdrawals WHERE id=?", (wid,))
        if cur is None:
            return
        if cur["state"] in ("completed", "failed"):
            pass
        elif ok:
            self._set(wid, "completed", "", actor="chain", action="withdrawal_confirmed", txid=tx["txid"])
        else:
            self._set(wid, "failed", f"transaction {tx['txid']} {tx['state']}", actor="chain", action="withdrawal_failed",
                      txid=tx["txid"])
        self._sync_ledger(wid)

    def _sync_ledger(self, wid: str) -> None:
        """Post what the ledger still lacks for this withdrawal's state."""
        w = self.store.one("SELECT * FROM withdrawals WHERE id=?", (wid,))
        assert w is not None
        if w["ledger"] != "held":
            return
        if w["state"] in ("rejected", "failed"):
            p = self.ledger.post(C.ReleaseWithdrawal(wid, w["reason"][:200]))
            target = "released"
        elif w["state"] == "completed":
            p = self.ledger.post(C.CompleteWithdrawal(wid, w["txid"] or ""))
            target = "completed"
        else:
            return
        now = self.clock.now_ns()
        if not p.ok:
            self.store.audit(now, "venue", "ledger_posting_failed", wid, target=target, code=p.code, reason=p.text)
            return
        with self.store.tx():
            self.store.run("UPDATE withdrawals SET ledger=?, updated_ns=? WHERE id=?", (target, now, wid))
            self.store.audit(now, "venue", f"ledger_{target}", wid, seq=p.seq, repeat=p.already)

    def _set(self, wid: str, state: str, reason: str, *, actor: str, action: str, ledger: str | None = None,
             **detail: Any) -> None:
        now = self.clock.now_ns()
        with self.store.tx():
            if ledger is None:
                self.store.run("UPDATE withdrawals SET state=?, reason=?, updated_ns=? WHERE id=?", (state, reason, now, wid))
            else:
                self.store.run("UPDATE withdrawals SET state=?, reason=?, ledger=?, updated_ns=? WHERE id=?",
                               (state, reason, ledger, now, wid))
            self.store.audit(now, actor, action, wid, state=state, reason=reason, **detail)
