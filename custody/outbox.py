"""Every transaction custody sends, from the fee hold to the fee posting.

One path for withdrawals, sweeps, gas top-ups and hot-to-cold transfers:

1. plan the transfer and hold its worst-case network fee on the venue's gas account
   (a ledger ``HoldWithdrawal``; refused -> nothing is signed);
2. sign it in the token and **persist the signed bytes** (state ``signed``) in the same
   SQLite transaction as the caller's own step (e.g. the withdrawal becoming ``signed``);
3. broadcast (``broadcast``); a failure leaves it ``signed`` and it is re-sent with the
   very same bytes on the next pass, so a restart never signs a second payment;
4. track it: once ``confirmations`` deep it is ``confirmed`` (or ``reverted``); a
   transaction the node positively does not know, whose nonce another transaction took
   at least ``confirmations`` deep, on :data:`DROP_PASSES` passes in a row, is
   ``dropped``. A node that fails to answer skips that transaction for the pass: a
   failed lookup is never taken for "not found" (that would release the hold of a
   payment that was made, and pay it twice);
5. post the fee: release the hold and ``Withdraw`` the fee actually paid from the gas
   account (funding id ``gas:<txid>``), then tell the caller (``on_final``).

Transactions signed elsewhere (the cold wallet's, signed offline) join at step 3 through
:meth:`adopt`. Broadcasting can be paused by an operator (signing goes on).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, NamedTuple

from custody.assets import ChainAsset
from custody.errors import ChainError, CustodyError
from custody.ledger_port import GAS_ACCOUNT, LedgerPort
from custody.rails import Rail
from custody.store import Store
from venue import commands as C
from venue.clock import Clock

log = logging.getLogger("custody.outbox")

FINAL = ("confirmed", "reverted", "dropped")
DROP_PASSES = 3  # passes in a row a transaction must be "gone" before it is declared dropped


class Sent(NamedTuple):
    ok: bool
    txid: str = ""
    code: str = ""
    reason: str = ""


OnFinal = Callable[[Any, bool], None]  # (chain_txs row, succeeded)


class Outbox:
    def __init__(self, store: Store, ledger: LedgerPort, rails: dict[str, Rail], clock: Clock,
                 confirmations: int) -> None:
        self.store = store
        self.ledger = ledger
        self.rails = rails
        self.clock = clock
        self.confirmations = confirmations
        self.handlers: dict[str, OnFinal] = {}
        self.broadcast_paused = False
        self._gone: dict[str, int] = {}  # txid -> passes in a row the rail said "gone" (a restart starts again)
        self.last_error = ""

    # -- step 1-2: hold, sign, persist ---------------------------------------------------
    def send(self, kind: str, ref: str, asset: ChainAsset, label: str, sender: str, to: str, amount: int | None,
             on_signed: Callable[[str], None] | None = None) -> Sent:
        rail = self.rails.get(asset.chain)
        if rail is None:
            return Sent(False, code="no_rail", reason=f"no {asset.chain} connection is configured")
        try:
            plan = rail.plan(asset, sender, to, amount)
        except (ChainError, CustodyError) as e:
            return Sent(False, code="chain", reason=str(e))
        if plan is None:
            what = f"{asset.fmt(amount)} {asset.symbol}" if amount is not None else f"a sweep of {asset.symbol}"
            return Sent(False, code="liquidity", reason=f"{sender} cannot cover {what} and the network fee")
        amount = plan.amount
        fee_asset = rail.fee_asset
        now = self.clock.now_ns()
        hold_id = f"gashold:{kind}:{ref}:{now}"
        hold_atoms = fee_asset.to_ledger(plan.max_fee)
        held = self.ledger.post(C.HoldWithdrawal(hold_id, GAS_ACCOUNT, fee_asset.ledger_asset, hold_atoms))
        if not held.ok:
            return Sent(False, code="gas_account",
                        reason=f"the venue's gas account cannot cover the network fee of up to "
                               f"{fee_asset.fmt(plan.max_fee)} {fee_asset.symbol}: {held.text}")
        try:
            signed = rail.sign(label, plan)
        except Exception as e:
            self.ledger.post(C.ReleaseWithdrawal(hold_id, "signing failed"))
            return Sent(False, code="signing", reason=f"signing failed: {e}")
        with self.store.tx():
            self.store.run(
                "INSERT INTO chain_txs(txid, chain, kind, ref, symbol, from_addr, to_addr, amount_chain, nonce, raw, state,"
                " gas_hold_id, gas_hold_ledger, created_ns, updated_ns) VALUES(?,?,?,?,?,?,?,?,?,?,'signed',?,?,?,?)",
                (signed.txid, asset.chain, kind, ref, asset.symbol, sender, to, str(amount), signed.nonce, signed.raw,
                 hold_id, str(hold_atoms), now, now))
            self.store.audit(now, "custody", "tx_signed", ref, kind=kind, txid=signed.txid, chain=asset.chain,
                             symbol=asset.symbol, to=to, amount=str(amount), max_fee=str(plan.max_fee), nonce=signed.nonce)
            if on_signed is not None:
                on_signed(signed.txid)
        return Sent(True, signed.txid)

    def adopt(self, kind: str, ref: str, asset: ChainAsset, sender: str, to: str, amount: int, txid: str,
              raw: str, nonce: int | None, max_fee: int) -> Sent:
        """A transaction signed outside (offline cold key): hold its fee, persist, send."""
        rail = self.rails[asset.chain]
        now = self.clock.now_ns()
        hold_id = f"gashold:{kind}:{ref}:{now}"
        hold_atoms = rail.fee_asset.to_ledger(max_fee)
        held = self.ledger.post(C.HoldWithdrawal(hold_id, GAS_ACCOUNT, rail.fee_asset.ledger_asset, hold_atoms))
        if not held.ok:
            return Sent(False, code="gas_account", reason=f"the venue's gas account cannot cover the fee: {held.text}")
        with self.store.tx():
            self.store.run(
                "INSERT INTO chain_txs(txid, chain, kind, ref, symbol, from_addr, to_addr, amount_chain, nonce, raw, state,"
                " gas_hold_id, gas_hold_ledger, created_ns, updated_ns) VALUES(?,?,?,?,?,?,?,?,?,?,'signed',?,?,?,?)",
                (txid, asset.chain, kind, ref, asset.symbol, sender, to, str(amount), nonce, raw, hold_id,
                 str(hold_atoms), now, now))
            self.store.audit(now, "custody", "tx_adopted", ref, kind=kind, txid=txid, to=to, amount=str(amount))
        return Sent(True, txid)

    # -- steps 3-5 ---------------------------------------------------------------------
    def pump(self) -> int:
        """Broadcast, track and settle whatever is in flight. Returns how many settled."""
        settled = 0
        for row in self.store.all("SELECT * FROM chain_txs WHERE state IN ('signed', 'broadcast') ORDER BY created_ns, nonce"):
            rail = self.rails.get(row["chain"])
            if rail is None:
                continue
            try:
                st = rail.status(row["txid"], row["from_addr"], row["nonce"])
            except ChainError as e:  # the node did not answer: nothing is concluded this pass
                self.last_error = str(e)
                log.warning("status of %s unknown this pass: %s", row["txid"], e)
                continue
            if st.state != "gone":
                self._gone.pop(row["txid"], None)
            if st.state == "pending":
                self._send(rail, row)
                continue
            if st.state == "mined":
                if row["state"] == "signed":
                    self._set(row, "broadcast")
                if st.confirmations < self.confirmations:
                    continue
                self._finish(row, "confirmed" if st.ok else "reverted", st.fee, st.height, st.block_hash)
            else:
                n = self._gone[row["txid"]] = self._gone.get(row["txid"], 0) + 1
                if n < DROP_PASSES:
                    continue
                del self._gone[row["txid"]]
                self._finish(row, "dropped", 0, 0, "")
            settled += 1
        for row in self.store.all("SELECT * FROM chain_txs WHERE state IN ('confirmed', 'reverted', 'dropped') AND fee_posted=0"):
            self._post_fee(row)  # a restart between finishing and posting
        return settled

    def _send(self, rail: Rail, row: Any) -> None:
        if self.broadcast_paused:
            return
        try:
            rail.broadcast(row["raw"])
        except ChainError as e:
            if row["state"] == "signed":
                last = self.store.one("SELECT detail FROM audit WHERE subject=? AND action='broadcast_failed' "
                                      "ORDER BY id DESC LIMIT 1", (row["ref"],))
                if last is None or str(e)[:200] not in last["detail"]:
                    self.store.audit(self.clock.now_ns(), "custody", "broadcast_failed", row["ref"], txid=row["txid"],
                                     error=str(e)[:200])
            return
        if row["state"] == "signed":
            self._set(row, "broadcast")
            self.store.audit(self.clock.now_ns(), "custody", "tx_broadcast", row["ref"], txid=row["txid"])

    def _set(self, row: Any, state: str) -> None:
        self.store.run("UPDATE chain_txs SET state=?, updated_ns=? WHERE txid=?", (state, self.clock.now_ns(), row["txid"]))

    def _finish(self, row: Any, state: str, fee: int, height: int, block_hash: str) -> None:
        now = self.clock.now_ns()
        with self.store.tx():
            self.store.run("UPDATE chain_txs SET state=?, fee_chain=?, height=?, block_hash=?, updated_ns=? WHERE txid=?",
                           (state, str(fee), height, block_hash, now, row["txid"]))
            self.rails[row["chain"]].settled(row["txid"], state, height)  # e.g. Bitcoin coin records
            self.store.audit(now, "custody", f"tx_{state}", row["ref"], txid=row["txid"], fee=str(fee), height=height)
        self._post_fee(self.store.one("SELECT * FROM chain_txs WHERE txid=?", (row["txid"],)))

    def _post_fee(self, row: Any) -> None:
        """Release the fee hold, withdraw the fee paid, tell the owner (``on_final``) and
        mark the row done. The ledger postings are idempotent (funding ids), and the
        owner's step and ``fee_posted=1`` commit together: a crash anywhere in here
        leaves ``fee_posted=0`` and the whole step runs again on the next pass, so a
        final transaction can never leave its withdrawal (and its hold) behind."""
        rail = self.rails[row["chain"]]
        fee_asset = rail.fee_asset
        rel = self.ledger.post(C.ReleaseWithdrawal(row["gas_hold_id"], f"fee of {row['txid']} settled"))
        if not rel.ok:
            raise CustodyError(f"cannot release the gas hold {row['gas_hold_id']}: {rel.text}")
        fee = int(row["fee_chain"] or 0)
        if fee:
            w = self.ledger.post(C.Withdraw(f"gas:{row['txid']}", GAS_ACCOUNT, fee_asset.ledger_asset,
                                            fee_asset.to_ledger(fee)))
            if not w.ok:
                raise CustodyError(f"cannot post the network fee of {row['txid']}: {w.text}")
        with self.store.tx():
            handler = self.handlers.get(row["kind"])
            if handler is not None:
                handler(row, row["state"] == "confirmed")
            self.store.run("UPDATE chain_txs SET fee_posted=1 WHERE txid=?", (row["txid"],))

    # -- recovery ----------------------------------------------------------------------
    def resettle(self) -> None:
        """Tell the rails again about every final transaction (idempotent): records of an
        earlier version that never did leave Bitcoin coins reserved and change pending."""
        for row in self.store.all("SELECT txid, chain, state, height FROM chain_txs WHERE state IN "
                                  "('confirmed', 'reverted', 'dropped')"):
            rail = self.rails.get(row["chain"])
            if rail is not None:
                with self.store.tx():
                    rail.settled(row["txid"], row["state"], int(row["height"] or 0))

    def release_orphan_holds(self) -> list[str]:
        """Gas holds whose transaction was never persisted (a crash between holding and
        signing): release them. Run once at start, before anything new is sent."""
        known = {r["gas_hold_id"] for r in self.store.all("SELECT gas_hold_id FROM chain_txs")}
        out = []
        for fid, _amount in self.ledger.held_funding(GAS_ACCOUNT, "gashold:"):
            if fid not in known:
                self.ledger.post(C.ReleaseWithdrawal(fid, "no transaction was signed for this fee hold"))
                self.store.audit(self.clock.now_ns(), "custody", "gas_hold_released", fid, reason="orphaned by a restart")
                out.append(fid)
        return out

    def abandon(self, chain: str, reason: str) -> list[str]:
        """The development chain these transactions were sent to is gone (replaced by a
        fresh one): none of them can ever be mined there. Each becomes ``dropped``, so its
        fee hold is released and its owner told (a withdrawal fails and releases its
        hold). Never used for a real node: custody refuses to run on a replaced chain."""
        out = []
        for row in self.store.all("SELECT * FROM chain_txs WHERE chain=? AND state IN ('signed', 'broadcast')", (chain,)):
            self.store.audit(self.clock.now_ns(), "custody", "tx_abandoned", row["ref"], txid=row["txid"], reason=reason)
            self._finish(row, "dropped", 0, 0, "")
            self._gone.pop(row["txid"], None)
            out.append(row["txid"])
        return out

    def in_flight(self, sender: str | None = None, to: str | None = None) -> list[Any]:
        q = "SELECT * FROM chain_txs WHERE state IN ('signed', 'broadcast')"
        args: list[Any] = []
        if sender:
            q += " AND from_addr=?"
            args.append(sender)
        if to:
            q += " AND to_addr=?"
            args.append(to)
        return self.store.all(q, tuple(args))
