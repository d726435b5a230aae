"""Journal encoding of commands: exact round trips (integers of any size included),
old records decode with new defaults, and ``normalize`` gives plain field types."""
from __future__ import annotations

from decimal import Decimal

import msgpack
import pytest
from hypothesis import given, strategies as st

from venue import codec, commands as C
from venue.errors import CorruptJournal, InvalidValue
from venue.instruments import default_instruments
from venue.types import STP, OrdType, Reject, Side, TimeInForce

ALL = [
    C.NewOrder("A", "c1", "BTC-USD", 1, 2, 5, price=100, stop_px=0, tif=6, expire_ts=2**62, post_only=True,
               display_qty=2, stp=4, session="S1", reduce_only=False),
    C.CancelOrder("A", "c2", order_id=7, orig_cl_ord_id="c1", symbol="BTC-USD", session="S", reason=8),
    C.AmendOrder("A", "c3", 0, "c1", "BTC-USD", 10, 101, 0, "S"),
    C.MassCancel("m", "A", "F", "BTC-USD", 2, "S", 4),
    C.Halt("BTC-USD", True, "circuit"), C.Resume("BTC-USD", "ok"),
    C.DefineAsset("ETH", 18), C.DefineInstrument(default_instruments()[1].to_record()),
    C.CreateFirm("F", "Firm ünïcode"), C.CreateAccount("A", "F", 2, -100, 200, 3, 5),
    C.SetFees("A", 1, 2), C.SetAccountEnabled("A", False, "why"),
    C.Deposit("f1", "A", "ETH", 10**30), C.Withdraw("f2", "A", "ETH", 2**64),
    C.HoldWithdrawal("f3", "A", "ETH", 2**64 - 1), C.ReleaseWithdrawal("f3", "no"),
    C.CompleteWithdrawal("f3", "0xabc"), C.Tick(),
]


def test_every_core_command_has_a_tag() -> None:
    assert all(C.TAG_OF[cls] == t for t, cls in C.TAGS.items())
    assert {C.TAGS[t] for t in range(1, 19)} == {type(c) for c in ALL}


@pytest.mark.parametrize("cmd", ALL, ids=lambda c: type(c).__name__)
def test_round_trip(cmd: object) -> None:
    rec = codec.decode(codec.encode(42, 1_700_000_000_000_000_000, cmd))
    assert rec == (42, 1_700_000_000_000_000_000, cmd)
    assert type(rec.cmd) is type(cmd)


@pytest.mark.parametrize("big", [2**64, 2**64 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40, -(10**40), 2**200])
def test_integers_of_any_size(big: int) -> None:
    cmd = C.Deposit("f", "A", "ETH", big)
    assert codec.decode(codec.encode(1, 2, cmd)).cmd.amount == big
    assert codec.unpackb(codec.packb({"x": [big, {"y": big}]})) == {"x": [big, {"y": big}]}


@given(st.integers(), st.integers(min_value=0, max_value=2**63 - 1), st.text(max_size=20))
def test_round_trip_random(amount: int, ts: int, fid: str) -> None:
    cmd = C.Withdraw(fid, "acct", "ETH", amount)
    assert codec.decode(codec.encode(9, ts, cmd)) == (9, ts, cmd)


def test_old_record_gets_the_defaults_of_new_fields() -> None:
    """A record written before fields were appended decodes with their defaults."""
    old = msgpack.packb((5, 6, C.TAG_OF[C.NewOrder], ["A", "c1", "BTC-USD", 1, 2, 10, 100]))
    rec = codec.decode(old)
    assert rec.cmd == C.NewOrder("A", "c1", "BTC-USD", 1, 2, 10, 100)
    assert rec.cmd.tif == TimeInForce.GTC and rec.cmd.session == "" and rec.cmd.reduce_only is False


@pytest.mark.parametrize("payload", [b"", b"\xc1", msgpack.packb((1, 2, 9999, [])), msgpack.packb((1, 2)),
                                     msgpack.packb((1, 2, 13, ["too", "many", "fields", 1, 2, 3, 4]))])
def test_undecodable_is_corrupt(payload: bytes) -> None:
    with pytest.raises(CorruptJournal, match="undecodable journal record"):
        codec.decode(payload)


def test_normalize_turns_enums_into_ints() -> None:
    cmd = C.NewOrder("A", "c", "BTC-USD", Side.SELL, OrdType.LIMIT, 5, 100, tif=TimeInForce.IOC, stp=STP.DECREMENT)
    n = codec.normalize(cmd)
    assert n == cmd and all(type(getattr(n, f)) is int for f in ("side", "ord_type", "tif", "stp"))
    assert codec.decode(codec.encode(1, 1, n)).cmd == n
    plain = C.Tick()
    assert codec.normalize(plain) is plain


@pytest.mark.parametrize("cmd, field, wanted", [
    (C.NewOrder("A", "c", "BTC-USD", 1, 2, 1.5), "qty", "int"),  # type: ignore[arg-type]
    (C.NewOrder("A", "c", "BTC-USD", 1, 2, Decimal(5)), "qty", "int"),  # type: ignore[arg-type]
    (C.NewOrder("A", "c", "BTC-USD", 1, 2, True), "qty", "int"),
    (C.NewOrder("A", "c", "BTC-USD", 1, 2, 5, post_only=1), "post_only", "bool"),  # type: ignore[arg-type]
    (C.NewOrder(7, "c", "BTC-USD", 1, 2, 5), "account", "str"),  # type: ignore[arg-type]
    (C.NewOrder(None, "c", "BTC-USD", 1, 2, 5), "account", "str"),  # type: ignore[arg-type]
    (C.DefineInstrument([1, 2]), "record", "dict"),  # type: ignore[arg-type]
    (C.Deposit("f", "A", "USD", "100"), "amount", "int"),  # type: ignore[arg-type]
])
def test_normalize_refuses_wrong_types(cmd: object, field: str, wanted: str) -> None:
    with pytest.raises(InvalidValue) as e:
        codec.normalize(cmd)
    assert e.value.code == Reject.BAD_COMMAND
    assert f"{type(cmd).__name__}.{field} must be {wanted}" in e.value.text


def test_normalize_refuses_what_the_journal_cannot_hold() -> None:
    """A command that cannot be encoded must be refused at the door: if it reached the
    sequencer, encoding it there would stop the venue."""
    for cmd in (C.NewOrder("A", "c\ud800", "BTC-USD", 1, 2, 5, 100),
                C.DefineInstrument({"symbol": object()}),
                C.DefineInstrument({"symbol": Decimal("1")})):
        with pytest.raises(InvalidValue) as e:
            codec.normalize(cmd)
        assert e.value.code == Reject.BAD_COMMAND


def test_normalize_refuses_foreign_objects() -> None:
    with pytest.raises(InvalidValue, match="is not a venue command"):
        codec.normalize(("A", "c"))
