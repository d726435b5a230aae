"""The policy engine's rules, on their own (pure functions)."""
from __future__ import annotations

from custody import policy
from custody.policy import BookEntry, Limits

FMT = str
APPROVED = BookEntry("0xabc", "approved", "ops-alice", "ops-bob")
LIMITS = Limits(per_tx=100, daily=250)


def test_the_address_must_be_in_the_book_and_approved() -> None:
    assert policy.check_withdrawal(10, LIMITS, 0, None, FMT).code == "address_not_in_book"
    assert policy.check_withdrawal(10, LIMITS, 0, BookEntry("0xabc", "removed", "a", "b"), FMT).code == "address_not_in_book"
    assert policy.check_withdrawal(10, LIMITS, 0, BookEntry("0xabc", "pending", "a", None), FMT).code == "address_unapproved"
    assert policy.check_withdrawal(10, LIMITS, 0, APPROVED, FMT) is None


def test_per_transaction_and_rolling_daily_limits() -> None:
    assert policy.check_withdrawal(100, LIMITS, 0, APPROVED, FMT) is None
    assert policy.check_withdrawal(101, LIMITS, 0, APPROVED, FMT).code == "velocity_per_tx"
    assert policy.check_withdrawal(100, LIMITS, 150, APPROVED, FMT) is None  # exactly the daily limit
    assert policy.check_withdrawal(100, LIMITS, 151, APPROVED, FMT).code == "velocity_daily"


def test_approvals_need_someone_else_who_is_an_approver_once() -> None:
    approvers = frozenset({"a", "b", "c"})
    assert policy.check_approval("a", "a", approvers, set()).code == "self_approval"
    assert policy.check_approval("x", "a", approvers, set()).code == "not_an_approver"
    assert policy.check_approval("b", "a", approvers, {"b"}).code == "duplicate_approval"
    assert policy.check_approval("b", "a", approvers, set()) is None


def test_an_address_is_approved_by_a_second_person() -> None:
    approvers = frozenset({"a", "b"})
    pending = BookEntry("0xabc", "pending", "a", None)
    assert policy.check_address_approval("a", pending, approvers).code == "self_approval"
    assert policy.check_address_approval("z", pending, approvers).code == "not_an_approver"
    assert policy.check_address_approval("b", APPROVED, approvers).code == "already_approved"
    assert policy.check_address_approval("b", None, approvers).code == "address_not_in_book"
    assert policy.check_address_approval("b", pending, approvers) is None
