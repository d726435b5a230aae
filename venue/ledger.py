"""Firms, accounts and balances: who owns what, in integer atoms.

Every balance is ``available + held``. An order holds what it can spend; a pending
withdrawal holds its amount (and :attr:`Ledger.withdrawing` indexes those amounts per
account, since money on its way out is no longer the account's collateral). Money enters and leaves only through funding postings
(deposits and withdrawals), each with a funding id that may be used once; everything
else moves money between accounts. So, per asset, the sum over all accounts equals
deposits minus withdrawals: :meth:`Ledger.conservation` checks it.

Margin accounts may borrow from the lending pool account: a loan moves money from the
pool to the borrower (so the sum over accounts is unchanged) and records the borrower's
liability in :attr:`Ledger.loans`; :meth:`Ledger.loan_conservation` checks that the
liabilities add up to what the pool lent. (When to borrow, repay and write off is
:mod:`venue.margin`'s business.)

Fees are parts per million of the notional, rounded toward zero to the quote atom (so a
rebate never exceeds the taker fee it is paid from, and a hold at the taker rate always
covers every fill).
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final, Iterator

from venue.instruments import Asset
from venue.types import AccountKind, STP

if TYPE_CHECKING:
    from venue.orders import Order

FEE_FIRM: Final = "VENUE"
FEE_ACCOUNT: Final = "VENUE-FEES"
PPM: Final = 1_000_000


def fee_of(notional: int, ppm: int) -> int:
    """Fee in quote atoms, rounded toward zero (negative for a rebate)."""
    if ppm >= 0:
        return notional * ppm // PPM
    return -(notional * -ppm // PPM)


class Balance:
    __slots__ = ("avail", "held")

    avail: int
    held: int

    def __init__(self, avail: int = 0, held: int = 0) -> None:
        self.avail = avail
        self.held = held

    @property
    def total(self) -> int:
        return self.avail + self.held

    def __repr__(self) -> str:
        return f"Balance(avail={self.avail}, held={self.held})"


class Firm:
    __slots__ = ("id", "name", "accounts")

    id: str
    name: str
    accounts: list[Account]

    def __init__(self, fid: str, name: str = "") -> None:
        self.id = fid
        self.name = name
        self.accounts = []


class Account:
    __slots__ = (
        "id", "firm", "kind", "maker_ppm", "taker_ppm", "stp", "leverage", "enabled",
        "bal", "orders", "clids",
    )

    id: str
    firm: Firm
    kind: int
    maker_ppm: int
    taker_ppm: int
    stp: int
    leverage: int
    enabled: bool
    bal: dict[str, Balance]
    orders: dict[int, Order]
    clids: dict[str, Order]

    def __init__(self, aid: str, firm: Firm, kind: int = int(AccountKind.CASH), maker_ppm: int = 0,
                 taker_ppm: int = 0, stp: int = int(STP.CANCEL_NEWEST), leverage: int = 1) -> None:
        self.id = aid
        self.firm = firm
        self.kind = kind
        self.maker_ppm = maker_ppm
        self.taker_ppm = taker_ppm
        self.stp = stp
        self.leverage = leverage
        self.enabled = True
        self.bal = {}
        self.orders = {}  # open orders by id
        # open orders by current ClOrdID, and recently closed ones (Engine.recent) by their
        # last: one map, so a duplicate check is one lookup and closing an order none
        self.clids = {}

    def balance(self, asset: str) -> Balance:
        b = self.bal.get(asset)
        if b is None:
            b = self.bal[asset] = Balance()
        return b

    def __repr__(self) -> str:
        return f"Account({self.id!r}, firm={self.firm.id!r})"


class Ledger:
    assets: dict[str, Asset]
    firms: dict[str, Firm]
    accounts: dict[str, Account]
    external: dict[str, int]
    withdrawal_held: dict[str, int]
    withdrawing: dict[str, dict[str, int]]
    loans: dict[str, dict[str, int]]
    lent: dict[str, int]
    written_off: dict[str, int]

    def __init__(self) -> None:
        self.assets = {}
        self.firms = {}
        self.accounts = {}
        # funding id -> [kind, account, asset, amount, state]; state: done | held | released | completed.
        # Setting it also (re)builds ``withdrawing``: account -> asset -> amount its pending
        # withdrawals hold (> 0), kept in step by the withdrawal postings below.
        self.funding = {}
        self.external = {}  # per asset: deposits - withdrawals
        self.withdrawal_held = {}  # per asset: amounts held by pending withdrawals
        self.loans = {}  # account -> asset -> atoms it owes the lending pool (> 0)
        self.lent = {}  # per asset: atoms the lending pool has lent and not got back
        self.written_off = {}  # per asset: loans the pool lost (neither repaid nor covered by insurance)

    @property
    def funding(self) -> dict[str, list[Any]]:
        return self._funding  # a property only so that replacing it (a snapshot load) rebuilds the index

    @funding.setter
    def funding(self, records: dict[str, list[Any]]) -> None:
        self._funding = records
        self.withdrawing = {}
        for kind, aid, asset, amount, state in records.values():
            if kind == "withdrawal" and state == "held":
                self._withdrawing(aid, asset, amount)

    def _withdrawing(self, account_id: str, asset: str, delta: int) -> None:
        d = self.withdrawing.setdefault(account_id, {})
        left = d.get(asset, 0) + delta
        if left:
            d[asset] = left
        else:
            del d[asset]
            if not d:
                del self.withdrawing[account_id]

    def pending_withdrawal(self, account_id: str, asset: str) -> int:
        """What ``account_id``'s pending withdrawals hold of ``asset``."""
        d = self.withdrawing.get(account_id)
        return d.get(asset, 0) if d else 0

    # -- structure -------------------------------------------------------------------
    def add_asset(self, asset: Asset) -> None:
        self.assets[asset.code] = asset
        self.external.setdefault(asset.code, 0)
        self.withdrawal_held.setdefault(asset.code, 0)

    def add_firm(self, fid: str, name: str = "") -> Firm:
        f = self.firms[fid] = Firm(fid, name)
        return f

    def add_account(self, aid: str, firm: Firm, kind: int = int(AccountKind.CASH), maker_ppm: int = 0,
                    taker_ppm: int = 0, stp: int = int(STP.CANCEL_NEWEST), leverage: int = 1) -> Account:
        a = self.accounts[aid] = Account(aid, firm, kind, maker_ppm, taker_ppm, stp, leverage)
        firm.accounts.append(a)
        return a

    # -- funding (the only way money enters or leaves) --------------------------------
    def deposit(self, funding_id: str, acct: Account, asset: str, amount: int) -> None:
        acct.balance(asset).avail += amount
        self.external[asset] += amount
        self.funding[funding_id] = ["deposit", acct.id, asset, amount, "done"]

    def withdraw(self, funding_id: str, acct: Account, asset: str, amount: int) -> None:
        acct.balance(asset).avail -= amount
        self.external[asset] -= amount
        self.funding[funding_id] = ["withdraw", acct.id, asset, amount, "done"]

    def hold_withdrawal(self, funding_id: str, acct: Account, asset: str, amount: int) -> None:
        b = acct.balance(asset)
        b.avail -= amount
        b.held += amount
        self.withdrawal_held[asset] += amount
        self._withdrawing(acct.id, asset, amount)
        self.funding[funding_id] = ["withdrawal", acct.id, asset, amount, "held"]

    def release_withdrawal(self, funding_id: str) -> list[Any]:
        rec = self.funding[funding_id]
        _, aid, asset, amount, _ = rec
        b = self.accounts[aid].balance(asset)
        b.held -= amount
        b.avail += amount
        self.withdrawal_held[asset] -= amount
        self._withdrawing(aid, asset, -amount)
        rec[4] = "released"
        return rec

    def complete_withdrawal(self, funding_id: str) -> list[Any]:
        rec = self.funding[funding_id]
        _, aid, asset, amount, _ = rec
        self.accounts[aid].balance(asset).held -= amount
        self.withdrawal_held[asset] -= amount
        self._withdrawing(aid, asset, -amount)
        self.external[asset] -= amount
        rec[4] = "completed"
        return rec

    # -- loans (margin accounts) -------------------------------------------------------
    def loan(self, account_id: str, asset: str) -> int:
        d = self.loans.get(account_id)
        return d.get(asset, 0) if d else 0

    def borrow(self, acct: Account, pool: Account, asset: str, amount: int) -> None:
        """``amount`` moves from the pool's available balance to the borrower's, owed back."""
        pool.balance(asset).avail -= amount
        acct.balance(asset).avail += amount
        d = self.loans.setdefault(acct.id, {})
        d[asset] = d.get(asset, 0) + amount
        self.lent[asset] = self.lent.get(asset, 0) + amount

    def _reduce_loan(self, acct: Account, asset: str, amount: int) -> None:
        d = self.loans[acct.id]
        left = d[asset] - amount
        if left:
            d[asset] = left
        else:
            del d[asset]
            if not d:
                del self.loans[acct.id]
        self.lent[asset] -= amount

    def repay(self, acct: Account, pool: Account, asset: str, amount: int) -> None:
        """``amount`` of the borrower's available balance goes back to the pool."""
        acct.balance(asset).avail -= amount
        pool.balance(asset).avail += amount
        self._reduce_loan(acct, asset, amount)

    def write_off(self, acct: Account, asset: str, amount: int) -> None:
        """The pool gives up ``amount`` of the loan: no money moves, the pool has lost it."""
        self._reduce_loan(acct, asset, amount)
        self.written_off[asset] = self.written_off.get(asset, 0) + amount

    def loan_conservation(self) -> dict[str, tuple[int, int]]:
        """Per asset: (sum of what accounts owe, what the pool lent). They must be equal."""
        owed: dict[str, int] = {}
        for d in self.loans.values():
            for asset, amount in d.items():
                owed[asset] = owed.get(asset, 0) + amount
        return {a: (owed.get(a, 0), self.lent.get(a, 0)) for a in set(owed) | set(self.lent)}

    # -- checks ----------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        out = {a: 0 for a in self.assets}
        for acct in self.accounts.values():
            for asset, b in acct.bal.items():
                out[asset] = out.get(asset, 0) + b.avail + b.held
        return out

    def conservation(self) -> dict[str, tuple[int, int]]:
        """Per asset: (sum over accounts, deposits - withdrawals). They must be equal."""
        t = self.totals()
        return {a: (t.get(a, 0), self.external.get(a, 0)) for a in set(t) | set(self.external)}

    def iter_balances(self) -> Iterator[tuple[str, str, Balance]]:
        for aid in sorted(self.accounts):
            acct = self.accounts[aid]
            for asset in sorted(acct.bal):
                yield aid, asset, acct.bal[asset]

    def state_hash(self) -> str:
        h = hashlib.sha256()
        for aid, asset, b in self.iter_balances():
            h.update(f"{aid}|{asset}|{b.avail}|{b.held}\n".encode())
        for fid in sorted(self.funding):
            h.update(f"F{fid}|{self.funding[fid]}\n".encode())
        for a in sorted(self.accounts):
            x = self.accounts[a]
            h.update(f"A{a}|{x.firm.id}|{x.kind}|{x.maker_ppm}|{x.taker_ppm}|{x.stp}|{x.leverage}|{x.enabled}\n".encode())
        h.update(repr(sorted(self.external.items())).encode())
        if self.withdrawing:
            h.update(repr(sorted((a, sorted(d.items())) for a, d in self.withdrawing.items())).encode())
        if self.loans or self.written_off:
            h.update(repr(sorted((a, sorted(d.items())) for a, d in self.loans.items())).encode())
            h.update(repr(sorted(self.written_off.items())).encode())
        return h.hexdigest()
