"""Exact conversion between Decimal and ticks, lots and atoms; refusals, never rounding."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from venue.errors import InvalidValue
from venue.instruments import Asset, Instrument, default_instruments, to_decimal, units_of
from venue.types import Reject

USD, BTC, ETH = Asset("USD", 8), Asset("BTC", 8), Asset("ETH", 18)
BTC_USD, ETH_USD, ETH_BTC = default_instruments()


def test_default_instruments_are_the_three_pairs() -> None:
    assert [(i.symbol, i.base, i.quote) for i in default_instruments()] == [
        ("BTC-USD", "BTC", "USD"), ("ETH-USD", "ETH", "USD"), ("ETH-BTC", "ETH", "BTC")]
    # tick 0.01 USD x lot 0.00001 BTC = 0.0000001 USD = 10 USD atoms; a lot is 1000 satoshi
    assert BTC_USD.notional_mult == 10 and BTC_USD.base_per_lot == 1000
    assert BTC_USD.min_qty == 1 and BTC_USD.max_qty == 100_000_000
    assert BTC_USD.min_notional == 10**8 and BTC_USD.max_notional == 10**15
    assert ETH_USD.base_per_lot == 10**14  # 0.0001 ETH in wei
    assert ETH_BTC.notional_mult == 1  # 0.00001 BTC x 0.001 = 1 satoshi
    assert BTC_USD.market_band_ppm == 50_000  # 5 %


@pytest.mark.parametrize("price, ticks", [("0.01", 1), ("1", 100), ("30000.00", 3_000_000), ("30000.5", 3_000_050),
                                          ("1E+2", 10_000), (Decimal("123.45"), 12_345), (7, 700)])
def test_price_to_ticks_exact(price: object, ticks: int) -> None:
    assert BTC_USD.price_to_ticks(price) == ticks  # type: ignore[arg-type]


@pytest.mark.parametrize("price", ["30000.001", "0.005", "1.0000000000000000000000000000000000001"])
def test_off_tick_price_refused_not_rounded(price: str) -> None:
    with pytest.raises(InvalidValue) as e:
        BTC_USD.price_to_ticks(price)
    assert e.value.code == Reject.OFF_TICK
    assert "tick size 0.01" in e.value.text and "BTC-USD" in e.value.text


@pytest.mark.parametrize("qty", ["0.000015", "1.000001", "0.000001"])
def test_off_lot_quantity_refused_not_rounded(qty: str) -> None:
    with pytest.raises(InvalidValue) as e:
        BTC_USD.qty_to_lots(qty)
    assert e.value.code == Reject.OFF_LOT
    assert "lot size 0.00001" in e.value.text


@pytest.mark.parametrize("bad, code", [("0", Reject.INVALID_PRICE), ("-1", Reject.INVALID_PRICE),
                                       ("abc", Reject.BAD_COMMAND), ("NaN", Reject.BAD_COMMAND),
                                       ("Infinity", Reject.BAD_COMMAND), ("", Reject.BAD_COMMAND)])
def test_bad_prices(bad: str, code: int) -> None:
    with pytest.raises(InvalidValue) as e:
        BTC_USD.price_to_ticks(bad)
    assert e.value.code == code


@pytest.mark.parametrize("bad, code", [("0", Reject.INVALID_QUANTITY), ("-0.5", Reject.INVALID_QUANTITY),
                                       ("1,5", Reject.BAD_COMMAND)])
def test_bad_quantities(bad: str, code: int) -> None:
    with pytest.raises(InvalidValue) as e:
        BTC_USD.qty_to_lots(bad)
    assert e.value.code == code


@pytest.mark.parametrize("huge", ["1E+70", "1E+999999999", "9" * 80])
def test_huge_values_get_a_clear_refusal_not_a_crash(huge: str) -> None:
    """Out-of-range numbers from the edge are an InvalidValue, never a decimal trap."""
    for convert in (BTC_USD.price_to_ticks, BTC_USD.qty_to_lots, USD.to_atoms):
        with pytest.raises(InvalidValue):
            convert(huge)


def test_tiny_exponent_is_off_tick() -> None:
    with pytest.raises(InvalidValue) as e:
        BTC_USD.price_to_ticks("1E-999999")
    assert e.value.code == Reject.OFF_TICK


@pytest.mark.parametrize("value", [1.5, 0.01, True])
def test_floats_and_bools_refused(value: object) -> None:
    with pytest.raises(TypeError, match="float"):
        BTC_USD.price_to_ticks(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BTC_USD.qty_to_lots(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        USD.to_atoms(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_decimal(value)  # type: ignore[arg-type]


def test_back_to_decimal_carries_the_instrument_precision() -> None:
    assert str(BTC_USD.ticks_to_price(3_000_050)) == "30000.50"
    assert str(BTC_USD.lots_to_qty(150_000)) == "1.50000"
    assert BTC_USD.ticks_to_price(0) == 0 and BTC_USD.lots_to_qty(0) == 0
    assert BTC_USD.avg_price(3 * 100 + 1 * 200, 4) == Decimal("1.25")
    assert BTC_USD.avg_price(0, 0) == 0


def test_assets_atoms_exact_including_wei_beyond_64_bits() -> None:
    assert USD.to_atoms("12.34567891") == 1_234_567_891
    assert ETH.to_atoms("123456.000000000000000001") == 123456 * 10**18 + 1
    assert ETH.to_atoms("1000000") > 2**64
    assert ETH.from_atoms(123456 * 10**18 + 1) == Decimal("123456.000000000000000001")
    assert USD.fmt(150_000_000) == "1.5" and USD.fmt(0) == "0" and USD.fmt(10**8) == "1"
    with pytest.raises(InvalidValue) as e:
        USD.to_atoms("0.000000001")
    assert e.value.code == Reject.INVALID_AMOUNT


@given(ticks=st.integers(1, 10**15), lots=st.integers(1, 10**15))
def test_round_trip_ticks_lots(ticks: int, lots: int) -> None:
    for inst in default_instruments():
        assert inst.price_to_ticks(inst.ticks_to_price(ticks)) == ticks
        assert inst.price_to_ticks(str(inst.ticks_to_price(ticks))) == ticks
        assert inst.qty_to_lots(inst.lots_to_qty(lots)) == lots


@given(atoms=st.integers(-(10**40), 10**40))
def test_round_trip_atoms(atoms: int) -> None:
    for a in (USD, BTC, ETH):
        assert a.to_atoms(a.from_atoms(atoms)) == atoms
        assert a.to_atoms(a.fmt(atoms)) == atoms


@given(ticks=st.integers(1, 10**12), frac=st.integers(1, 9))
def test_between_ticks_is_always_refused(ticks: int, frac: int) -> None:
    price = BTC_USD.ticks_to_price(ticks) + Decimal(frac) / 1000
    with pytest.raises(InvalidValue):
        BTC_USD.price_to_ticks(price)


def test_units_of_is_exact() -> None:
    assert units_of(Decimal("0.3"), Decimal("0.1")) == 3
    assert units_of(Decimal("0.35"), Decimal("0.1")) is None
    assert units_of(Decimal("1" + "0" * 40), Decimal("0.01")) == 10**42
    with pytest.raises(InvalidValue, match="out of range"):
        units_of(Decimal("1E+60"), Decimal("0.01"))


def test_instrument_create_refuses_inexact_sizes() -> None:
    with pytest.raises(InvalidValue):  # a lot of 1e-9 BTC is not a whole satoshi
        Instrument.create("X", BTC, USD, "0.01", "0.000000001", "0.000000001", "1", "1", "10")
    with pytest.raises(InvalidValue):  # tick x lot below one USD atom
        Instrument.create("X", BTC, USD, "0.0001", "0.00000001", "0.00000001", "1", "1", "10")
    with pytest.raises(InvalidValue):
        Instrument.create("X", BTC, USD, "0", "0.001", "0.001", "1", "1", "10")
    with pytest.raises(InvalidValue):
        Instrument.create("X", BTC, USD, "0.01", "0.001", "0.001", "1", "1", "10", market_band_pct="100")
    with pytest.raises(InvalidValue):  # min qty off the lot
        Instrument.create("X", BTC, USD, "0.01", "0.001", "0.0015", "1", "1", "10")


def test_record_round_trip() -> None:
    for inst in default_instruments():
        assert Instrument.from_record(inst.to_record()) == inst
