"""The ledger: fees round toward zero, money is conserved, funding ids are used once."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from venue import commands as C
from venue.events import CommandRejected, FundingPosted
from venue.instruments import Asset
from venue.ledger import FEE_ACCOUNT, Ledger, fee_of
from venue.types import Reject

from tests.venue.harness import Harness, only


@pytest.mark.parametrize("notional, ppm, fee", [
    (1_000_000, 1000, 1000), (999, 1000, 0), (1999, 1000, 1), (1999, -1000, -1), (999, -1000, 0),
    (0, 500, 0), (10**30, 250, 25 * 10**25), (123_456_789, -333, -41_111), (123_456_789, 333, 41_111),
])
def test_fee_rounds_toward_zero(notional: int, ppm: int, fee: int) -> None:
    assert fee_of(notional, ppm) == fee


@given(st.integers(0, 10**30), st.integers(-999_999, 999_999))
def test_fee_never_exceeds_the_exact_amount(notional: int, ppm: int) -> None:
    f = fee_of(notional, ppm)
    assert abs(f) * 1_000_000 <= abs(notional * ppm) < (abs(f) + 1) * 1_000_000
    assert fee_of(notional, -ppm) == -f  # a rebate mirrors the fee


def test_ledger_postings_conserve() -> None:
    led = Ledger()
    led.add_asset(Asset("USD", 8))
    f = led.add_firm("F")
    a = led.add_account("A", f)
    b = led.add_account("B", f)
    assert f.accounts == [a, b]
    led.deposit("d1", a, "USD", 500)
    led.deposit("d2", b, "USD", 300)
    led.withdraw("w1", a, "USD", 100)
    led.hold_withdrawal("h1", b, "USD", 50)
    assert (b.balance("USD").avail, b.balance("USD").held) == (250, 50)
    assert led.withdrawal_held["USD"] == 50
    assert led.conservation() == {"USD": (700, 700)}
    led.complete_withdrawal("h1")
    assert led.conservation() == {"USD": (650, 650)} and led.withdrawal_held["USD"] == 0
    led.hold_withdrawal("h2", a, "USD", 10)
    led.release_withdrawal("h2")
    assert (a.balance("USD").avail, a.balance("USD").held) == (400, 0)
    assert led.funding["h1"][4] == "completed" and led.funding["h2"][4] == "released"
    assert [x[:2] for x in led.iter_balances()] == [("A", "USD"), ("B", "USD")]
    h = led.state_hash()
    a.balance("USD").avail += 1
    assert led.state_hash() != h


class TestFundingThroughTheEngine:
    def setup_method(self) -> None:
        self.h = Harness()
        self.h.ok(C.CreateAccount("A", "F1"))

    def test_deposit_and_repeated_id(self) -> None:
        h = self.h
        ev = only(h.do(C.Deposit("f-1", "A", "USD", 1000)), FundingPosted)
        assert (ev.kind, ev.funding_id, ev.account, ev.asset, ev.amount) == ("deposit", "f-1", "A", "USD", 1000)
        for again in (C.Deposit("f-1", "A", "USD", 1000), C.Deposit("f-1", "A", "BTC", 5),
                      C.Withdraw("f-1", "A", "USD", 1), C.HoldWithdrawal("f-1", "A", "USD", 1)):
            r = only(h.do(again), CommandRejected)
            assert r.code == Reject.DUPLICATE_FUNDING_ID and r.text == "funding id f-1 was already used"
        assert h.bal("A", "USD") == (1000, 0)
        assert h.engine.ledger.conservation()["USD"] == (1000, 1000)

    def test_refused_funding_leaves_the_id_unused(self) -> None:
        h = self.h
        r = only(h.do(C.Deposit("f-2", "nobody", "USD", 10)), CommandRejected)
        assert (r.code, r.text) == (Reject.UNKNOWN_ACCOUNT, "unknown account nobody")
        h.ok(C.Deposit("f-2", "A", "USD", 10))  # the id was not consumed by the refusal

    @pytest.mark.parametrize("cmd, code, text", [
        (C.Deposit("", "A", "USD", 1), Reject.BAD_COMMAND, "a funding id is required"),
        (C.Deposit("x", "A", "XYZ", 1), Reject.UNKNOWN_ASSET, "unknown asset XYZ"),
        (C.Deposit("x", "A", "USD", 0), Reject.INVALID_AMOUNT, "amount must be positive"),
        (C.Deposit("x", "A", "USD", -5), Reject.INVALID_AMOUNT, "amount must be positive"),
        (C.Withdraw("x", "A", "USD", 101), Reject.INSUFFICIENT_FUNDS, "insufficient USD: available 0.000001"),
        (C.HoldWithdrawal("x", "A", "USD", 101), Reject.INSUFFICIENT_FUNDS, "insufficient USD: available 0.000001"),
        (C.ReleaseWithdrawal("nope"), Reject.UNKNOWN_FUNDING_ID, "unknown funding id nope"),
        (C.CompleteWithdrawal("nope"), Reject.UNKNOWN_FUNDING_ID, "unknown funding id nope"),
        (C.ReleaseWithdrawal("d"), Reject.FUNDING_STATE, "funding d is not a held withdrawal (it is deposit, done)"),
    ])
    def test_funding_refusals(self, cmd: object, code: int, text: str) -> None:
        h = self.h
        h.ok(C.Deposit("d", "A", "USD", 100))
        before = h.engine.state_hashes()
        r = only(h.do(cmd), CommandRejected)
        assert (r.code, r.text) == (code, text)
        after = h.engine.state_hashes()
        assert {k: v for k, v in after.items() if k != "engine"} == {k: v for k, v in before.items() if k != "engine"}

    def test_withdrawal_life_cycle(self) -> None:
        h = self.h
        h.ok(C.Deposit("d", "A", "BTC", 1000))
        h.ok(C.Withdraw("w", "A", "BTC", 100))
        assert h.bal("A", "BTC") == (900, 0)
        ev = only(h.ok(C.HoldWithdrawal("h", "A", "BTC", 300)), FundingPosted)
        assert ev.kind == "hold" and h.bal("A", "BTC") == (600, 300)
        h.engine.check_invariants()  # a held withdrawal is part of what "held" must equal
        # the held amount cannot be withdrawn or spent twice
        assert only(h.do(C.Withdraw("w2", "A", "BTC", 601)), CommandRejected).code == Reject.INSUFFICIENT_FUNDS
        ev = only(h.ok(C.CompleteWithdrawal("h", "tx-1")), FundingPosted)
        assert (ev.kind, ev.amount) == ("complete", 300) and h.bal("A", "BTC") == (600, 0)
        for again in (C.CompleteWithdrawal("h"), C.ReleaseWithdrawal("h")):
            r = only(h.do(again), CommandRejected)
            assert r.code == Reject.FUNDING_STATE and "(it is withdrawal, completed)" in r.text
        h.ok(C.HoldWithdrawal("h2", "A", "BTC", 50))
        ev = only(h.ok(C.ReleaseWithdrawal("h2", "rejected by policy")), FundingPosted)
        assert ev.kind == "release" and h.bal("A", "BTC") == (600, 0)
        assert only(h.do(C.CompleteWithdrawal("h2")), CommandRejected).code == Reject.FUNDING_STATE
        assert h.engine.ledger.conservation()["BTC"] == (600, 600)
        h.engine.check_invariants()

    def test_fee_account(self) -> None:
        assert FEE_ACCOUNT in self.h.engine.ledger.accounts
        r = only(self.h.do(C.SetAccountEnabled(FEE_ACCOUNT, False)), CommandRejected)
        assert r.code == Reject.UNKNOWN_ACCOUNT
