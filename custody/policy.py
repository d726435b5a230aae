"""The withdrawal policy engine: pure decisions, no I/O.

Given the facts (the address-book entry, the limits, what the account withdrew in the
last 24 hours, who requested and who approved), it says yes, or no with a code and a
reason. The service gathers the facts and acts on the answer; the rules stay here where
they can be read and tested in one sitting:

- a destination must be in the account's address book *and* approved there by a second
  person (not the one who added it);
- a withdrawal may not exceed the per-transaction limit, and the account's withdrawals of
  the asset over the rolling 24 hours, this one included, may not exceed the daily limit
  (rejected and failed withdrawals do not count);
- M distinct approvers out of the configured N must approve; the requester may not
  approve their own withdrawal, and nobody approves twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

DAY_NS = 86_400 * 1_000_000_000


class Refusal(NamedTuple):
    code: str
    reason: str


@dataclass(frozen=True)
class Limits:
    per_tx: int  # ledger atoms
    daily: int  # ledger atoms, rolling 24 hours


@dataclass(frozen=True)
class BookEntry:
    address: str
    state: str  # pending | approved | removed
    added_by: str
    approved_by: str | None


def check_withdrawal(amount: int, limits: Limits, withdrawn_24h: int, entry: BookEntry | None,
                     fmt: Callable[[int], str]) -> Refusal | None:
    """Whether a withdrawal of ``amount`` atoms may proceed to approvals."""
    if entry is None or entry.state == "removed":
        return Refusal("address_not_in_book", "the destination is not in the account's address book")
    if entry.state != "approved":
        return Refusal("address_unapproved",
                       f"the destination was added by {entry.added_by} and awaits a second person's approval")
    if amount > limits.per_tx:
        return Refusal("velocity_per_tx", f"{fmt(amount)} exceeds the per-transaction limit of {fmt(limits.per_tx)}")
    if withdrawn_24h + amount > limits.daily:
        return Refusal("velocity_daily", f"{fmt(amount)} on top of {fmt(withdrawn_24h)} withdrawn in the last 24 hours "
                                         f"exceeds the daily limit of {fmt(limits.daily)}")
    return None


def check_approval(approver: str, requester: str, approvers: frozenset[str], already: set[str]) -> Refusal | None:
    """Whether ``approver`` may add an approval to a withdrawal ``requester`` asked for."""
    if approver == requester:
        return Refusal("self_approval", f"{approver} requested this withdrawal and cannot approve it")
    if approver not in approvers:
        return Refusal("not_an_approver", f"{approver} is not one of the withdrawal approvers")
    if approver in already:
        return Refusal("duplicate_approval", f"{approver} has approved this withdrawal already")
    return None


def check_address_approval(approver: str, entry: BookEntry | None, approvers: frozenset[str]) -> Refusal | None:
    """Whether ``approver`` may approve an address-book entry (the second person)."""
    if entry is None or entry.state == "removed":
        return Refusal("address_not_in_book", "no such address in the account's address book")
    if entry.state == "approved":
        return Refusal("already_approved", f"the address was approved by {entry.approved_by} already")
    if approver == entry.added_by:
        return Refusal("self_approval", f"{approver} added this address and cannot approve it")
    if approver not in approvers:
        return Refusal("not_an_approver", f"{approver} is not one of the approvers")
    return None
