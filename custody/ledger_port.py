"""How custody touches the venue's ledger: funding commands through ``Venue.execute``.

Every posting goes through the venue's sequencer and journal like any other command, and
every funding id is used once, so a posting repeated after a crash is refused by the
ledger and recognised here as already done (:meth:`LedgerPort.post` compares the
existing funding record). Reads run on the sequencer thread through ``Venue.query``.

The venue's gas account (:data:`GAS_ACCOUNT`, firm ``VENUE``) pays network fees: custody
holds the worst-case fee there before it signs, and after the transaction confirms it
releases that hold and withdraws the fee actually paid. So for every asset, ledger
deposits minus withdrawals keep matching what the venue's addresses hold on-chain.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from venue import commands as C
from venue.core import Venue
from venue.events import CommandRejected, FundingPosted
from venue.ledger import FEE_FIRM
from venue.types import AccountKind, Reject

GAS_ACCOUNT = "VENUE-GAS"


class Posting(NamedTuple):
    ok: bool
    code: int  # 0, or the venue's Reject code
    text: str
    seq: int = 0
    already: bool = False  # the ledger had done it before (a repeat after a restart)


_KIND_STATE = {C.Deposit: ("deposit", "done"), C.Withdraw: ("withdraw", "done"),
               C.HoldWithdrawal: ("withdrawal", "held"), C.ReleaseWithdrawal: ("withdrawal", "released"),
               C.CompleteWithdrawal: ("withdrawal", "completed")}


class LedgerPort:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    def post(self, cmd: Any) -> Posting:
        """Execute a funding command and wait until it is durable."""
        p = self.venue.execute(cmd)
        for ev in p.events:
            if isinstance(ev, FundingPosted):
                return Posting(True, 0, "", p.seq)
            if isinstance(ev, CommandRejected):
                if self._already(cmd, ev.code):
                    return Posting(True, 0, ev.text, p.seq, already=True)
                return Posting(False, ev.code, ev.text, p.seq)
        return Posting(False, int(Reject.BAD_COMMAND), f"the venue answered {type(cmd).__name__} with no funding event", p.seq)

    def _already(self, cmd: Any, code: int) -> bool:
        if code not in (Reject.DUPLICATE_FUNDING_ID, Reject.FUNDING_STATE):
            return False
        rec = self.funding(cmd.funding_id)
        if rec is None:
            return False
        kind, state = _KIND_STATE[type(cmd)]
        if rec[0] != kind or rec[4] != state:
            return False
        if isinstance(cmd, (C.Deposit, C.Withdraw, C.HoldWithdrawal)):
            return bool(rec[1] == cmd.account and rec[2] == cmd.asset and rec[3] == cmd.amount)
        return True

    # -- reads -----------------------------------------------------------------------
    def funding(self, funding_id: str) -> list[Any] | None:
        """[kind, account, asset, amount, state] of a funding id, or None."""
        rec = self.venue.query(lambda e: e.ledger.funding.get(funding_id))
        return list(rec) if rec is not None else None

    def account_firm(self, account: str) -> str | None:
        return self.venue.query(lambda e: (a.firm.id if (a := e.ledger.accounts.get(account)) else None))

    def asset_decimals(self) -> dict[str, int]:
        return self.venue.query(lambda e: {a.code: a.decimals for a in e.ledger.assets.values()})

    def balance(self, account: str, asset: str) -> tuple[int, int]:
        """(available, held) in atoms."""
        def read(e: Any) -> tuple[int, int]:
            a = e.ledger.accounts.get(account)
            b = a.bal.get(asset) if a else None
            return (b.avail, b.held) if b else (0, 0)
        return self.venue.query(read)

    def external(self, asset: str) -> int:
        """Deposits minus withdrawals of ``asset``: what the venue owes plus owns."""
        return self.venue.query(lambda e: e.ledger.external.get(asset, 0))

    def client_balances(self, asset: str) -> dict[str, int]:
        """Every client account's total (available + held) of ``asset``: the venue's
        liabilities. The venue's own accounts (firm VENUE) are not liabilities."""
        def read(e: Any) -> dict[str, int]:
            out = {}
            for aid, acct in e.ledger.accounts.items():
                if acct.firm.id == FEE_FIRM:
                    continue
                b = acct.bal.get(asset)
                if b is not None and b.avail + b.held:
                    out[aid] = b.avail + b.held
            return out
        return self.venue.query(read)

    def held_funding(self, account: str, prefix: str) -> list[tuple[str, int]]:
        """Held withdrawals of ``account`` whose funding id starts with ``prefix``."""
        return self.venue.query(lambda e: [(fid, r[3]) for fid, r in e.ledger.funding.items()
                                           if r[1] == account and r[4] == "held" and fid.startswith(prefix)])

    def ensure_gas_account(self) -> None:
        """Create the venue's gas account (firm VENUE) if the venue has none yet."""
        exists = self.venue.query(lambda e: GAS_ACCOUNT in e.ledger.accounts)
        if not exists:
            self.venue.execute(C.CreateAccount(GAS_ACCOUNT, FEE_FIRM, int(AccountKind.CASH)))
