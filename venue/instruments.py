"""Assets and instruments, and the only place where ``Decimal`` meets integers.

Inside the engine a price is a whole number of ticks and a quantity a whole number of
lots; a balance is a whole number of the asset's atoms (1e-8 USD, 1 satoshi, 1 wei).
The conversions here are exact: a price that is not a whole number of ticks, or a
quantity that is not a whole number of lots, is refused (:class:`InvalidValue`), never
rounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext

from venue.errors import InvalidValue
from venue.types import Reject

_PREC = 60  # digits: far beyond any price or quantity the venue will see
# Multiplication and scaling only (never division): exact at any size, no rounding at 28 digits.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def to_decimal(value: Decimal | str | int, what: str = "value") -> Decimal:
    """Parse a number from the edge exactly. Floats are refused: they are not exact."""
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"{what}: floats are not accepted for money, pass a str or Decimal")
    try:
        d = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidValue(Reject.BAD_COMMAND, f"{what} {value!r} is not a number") from None
    if not d.is_finite():
        raise InvalidValue(Reject.BAD_COMMAND, f"{what} {value!r} is not a finite number")
    return d


def units_of(value: Decimal, unit: Decimal) -> int | None:
    """``value / unit`` if it is a whole number, else None. Exact. A quotient of more
    than ~50 digits is refused (:class:`InvalidValue`) rather than computed: no price,
    quantity or amount comes near it, and a huge exponent must not cost time or memory."""
    if value and value.adjusted() - unit.adjusted() > _PREC - 10:
        raise InvalidValue(Reject.BAD_COMMAND, f"{value} is out of range")
    with localcontext() as ctx:
        ctx.prec = _PREC
        if value % unit != 0:
            return None
        return int(value / unit)


_STEPS: dict[Decimal, tuple[int, int]] = {}


def step_parts(step: Decimal) -> tuple[int, int]:
    """``step`` as (m, k) with step == m * 10**-k exactly (k >= 0). Every finite decimal is."""
    parts = _STEPS.get(step)
    if parts is None:
        sign, digits, exp = step.as_tuple()
        m = int("".join(map(str, digits)) or "0")
        assert isinstance(exp, int)
        parts = (m * 10**exp, 0) if exp >= 0 else (m, -exp)
        _STEPS[step] = parts
    return parts


def _plain_multiple(s: str, step: Decimal) -> int | None:
    """The fast, exact path for the common case: ``s`` a plain positive decimal ("50000.01")
    that is a whole number of ``step``s. None for anything else (the Decimal path then
    decides, and explains a refusal)."""
    m, k = step_parts(step)
    whole, dot, frac = s.partition(".")
    if not whole.isdigit() or (dot and frac and not frac.isdigit()) or (dot and not frac) or len(whole) > _PREC - 12:
        return None  # signs, exponents, spaces, ".5", "5.", absurd sizes: the careful path (which refuses)
    frac = frac.rstrip("0")
    if len(frac) > k:
        return None
    units = int(whole) * 10**k + (int(frac) * 10 ** (k - len(frac)) if frac else 0)
    if units <= 0 or units % m:
        return None
    return units // m


def fmt_multiple(n: int, step: Decimal) -> str:
    """``n * step`` as a plain decimal string without trailing zeros (exact, integer math)."""
    m, k = step_parts(step)
    v = n * m
    if not k:
        return str(v)
    sign = "-" if v < 0 else ""
    digits = str(abs(v)).rjust(k + 1, "0")
    whole, frac = digits[:-k], digits[-k:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    decimals: int  # the atom is 10**-decimals of the asset

    @property
    def atom(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)

    def to_atoms(self, amount: Decimal | str | int) -> int:
        d = to_decimal(amount, f"{self.code} amount")
        n = units_of(d, self.atom)
        if n is None:
            raise InvalidValue(Reject.INVALID_AMOUNT, f"{self.code} amount {d} has more than {self.decimals} decimals")
        return n

    def from_atoms(self, atoms: int) -> Decimal:
        return Decimal(atoms).scaleb(-self.decimals, _EXACT)

    def fmt(self, atoms: int) -> str:
        """A readable amount without trailing zeros (``1.5``, not ``1.50000000``)."""
        d = self.from_atoms(atoms)
        s = format(d, "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s


@dataclass(frozen=True, slots=True)
class Instrument:
    """A spot pair. Limits are integers: quantities in lots, notionals in quote atoms."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: int  # lots
    max_qty: int  # lots
    min_notional: int  # quote atoms
    max_notional: int  # quote atoms
    market_band_ppm: int  # market orders may not trade further than this from the touch
    notional_mult: int  # quote atoms per (tick x lot)
    base_per_lot: int  # base atoms per lot
    price_decimals: int
    qty_decimals: int

    @classmethod
    def create(
        cls,
        symbol: str,
        base: Asset,
        quote: Asset,
        tick_size: Decimal | str,
        lot_size: Decimal | str,
        min_qty: Decimal | str,
        max_qty: Decimal | str,
        min_notional: Decimal | str,
        max_notional: Decimal | str,
        market_band_pct: Decimal | str = "5",
    ) -> Instrument:
        tick = to_decimal(tick_size, "tick size")
        lot = to_decimal(lot_size, "lot size")
        if tick <= 0 or lot <= 0:
            raise InvalidValue(Reject.BAD_COMMAND, "tick size and lot size must be positive")
        mult = units_of(tick * lot, quote.atom)
        bpl = units_of(lot, base.atom)
        if not mult or not bpl:
            raise InvalidValue(
                Reject.BAD_COMMAND,
                f"{symbol}: tick x lot must be a whole number of {quote.code} atoms and the lot a whole number of {base.code} atoms",
            )
        band = units_of(to_decimal(market_band_pct, "market band") * 10_000, Decimal(1))
        if band is None or not 0 < band < 1_000_000:
            raise InvalidValue(Reject.BAD_COMMAND, "market band must be a percentage in (0, 100) with at most 4 decimals")
        inst = cls(
            symbol=symbol,
            base=base.code,
            quote=quote.code,
            tick_size=tick,
            lot_size=lot,
            min_qty=0,
            max_qty=0,
            min_notional=0,
            max_notional=0,
            market_band_ppm=band,
            notional_mult=mult,
            base_per_lot=bpl,
            price_decimals=_decimals(tick),
            qty_decimals=_decimals(lot),
        )
        return cls.from_record(
            inst.to_record()
            | {
                "min_qty": inst.qty_to_lots(min_qty),
                "max_qty": inst.qty_to_lots(max_qty),
                "min_notional": quote.to_atoms(min_notional),
                "max_notional": quote.to_atoms(max_notional),
            }
        )

    # -- conversions at the edge ------------------------------------------------------
    def price_to_ticks(self, price: Decimal | str) -> int:
        if type(price) is str:
            n = _plain_multiple(price, self.tick_size)
            if n is not None:
                return n
        d = to_decimal(price, "price")
        if d <= 0:
            raise InvalidValue(Reject.INVALID_PRICE, f"price {d} must be positive")
        n = units_of(d, self.tick_size)
        if n is None:
            raise InvalidValue(Reject.OFF_TICK, f"price {d} is not a multiple of the tick size {self.tick_size} of {self.symbol}")
        return n

    def qty_to_lots(self, qty: Decimal | str) -> int:
        if type(qty) is str:
            n = _plain_multiple(qty, self.lot_size)
            if n is not None:
                return n
        d = to_decimal(qty, "quantity")
        if d <= 0:
            raise InvalidValue(Reject.INVALID_QUANTITY, f"quantity {d} must be positive")
        n = units_of(d, self.lot_size)
        if n is None:
            raise InvalidValue(Reject.OFF_LOT, f"quantity {d} is not a multiple of the lot size {self.lot_size} of {self.symbol}")
        return n

    def ticks_to_price(self, ticks: int) -> Decimal:
        return _EXACT.multiply(self.tick_size, ticks).quantize(self.tick_size, context=_EXACT) if ticks else Decimal(0)

    def lots_to_qty(self, lots: int) -> Decimal:
        return _EXACT.multiply(self.lot_size, lots).quantize(self.lot_size, context=_EXACT) if lots else Decimal(0)

    def notional(self, ticks: int, lots: int) -> int:
        """Quote atoms of ``lots`` at ``ticks``."""
        return ticks * lots * self.notional_mult

    def avg_price(self, cum_notional_ticks_lots: int, cum_lots: int) -> Decimal:
        """Average price of fills, from the sum of (ticks x lots) and the lots filled."""
        if not cum_lots:
            return Decimal(0)
        with localcontext() as ctx:
            ctx.prec = _PREC
            return (self.tick_size * cum_notional_ticks_lots / cum_lots).normalize()

    # -- records (journal and snapshot) ----------------------------------------------
    def to_record(self) -> dict:
        return {
            "symbol": self.symbol,
            "base": self.base,
            "quote": self.quote,
            "tick_size": str(self.tick_size),
            "lot_size": str(self.lot_size),
            "min_qty": self.min_qty,
            "max_qty": self.max_qty,
            "min_notional": self.min_notional,
            "max_notional": self.max_notional,
            "market_band_ppm": self.market_band_ppm,
            "notional_mult": self.notional_mult,
            "base_per_lot": self.base_per_lot,
            "price_decimals": self.price_decimals,
            "qty_decimals": self.qty_decimals,
        }

    @classmethod
    def from_record(cls, r: dict) -> Instrument:
        return cls(**{**r, "tick_size": Decimal(r["tick_size"]), "lot_size": Decimal(r["lot_size"])})

    @classmethod
    def from_checked_record(cls, r: object) -> Instrument:
        """``from_record`` for a record from outside (a DefineInstrument command): every
        field present, of its type and in range, or :class:`InvalidValue` saying which is
        not. (Whether the sizes agree with the assets is the engine's check.)"""
        if not isinstance(r, dict) or set(r) != _RECORD_FIELDS:
            have = set(r) if isinstance(r, dict) else set()
            raise InvalidValue(Reject.BAD_COMMAND, f"fields missing {sorted(_RECORD_FIELDS - have)}, unknown {sorted(map(str, have - _RECORD_FIELDS))}")
        for name in ("symbol", "base", "quote", "tick_size", "lot_size"):
            if type(r[name]) is not str or not r[name]:
                raise InvalidValue(Reject.BAD_COMMAND, f"{name} must be a non-empty string")
        for name in _RECORD_FIELDS - {"symbol", "base", "quote", "tick_size", "lot_size"}:
            if type(r[name]) is not int:
                raise InvalidValue(Reject.BAD_COMMAND, f"{name} must be an integer")
        tick, lot = to_decimal(r["tick_size"], "tick size"), to_decimal(r["lot_size"], "lot size")
        if tick <= 0 or lot <= 0:
            raise InvalidValue(Reject.BAD_COMMAND, "tick size and lot size must be positive")
        if not (1 <= r["min_qty"] <= r["max_qty"] and 0 <= r["min_notional"] <= r["max_notional"]
                and r["max_notional"] > 0 and r["notional_mult"] >= 1 and r["base_per_lot"] >= 1):
            raise InvalidValue(Reject.BAD_COMMAND, "limits must satisfy 1 <= min_qty <= max_qty, 0 <= min_notional <= max_notional, and the multipliers be positive")
        if not 0 < r["market_band_ppm"] < 1_000_000:
            raise InvalidValue(Reject.BAD_COMMAND, "market_band_ppm must be within (0, 1000000)")
        if (r["price_decimals"], r["qty_decimals"]) != (_decimals(tick), _decimals(lot)):
            raise InvalidValue(Reject.BAD_COMMAND, "price_decimals and qty_decimals must follow the tick and lot sizes")
        return cls.from_record(r)


def _decimals(step: Decimal) -> int:
    return max(0, -int(step.normalize().as_tuple().exponent))


_RECORD_FIELDS = frozenset(Instrument.__dataclass_fields__)


DEFAULT_ASSETS: tuple[Asset, ...] = (
    Asset("USD", 8),
    Asset("BTC", 8),
    Asset("ETH", 18),
)


def default_instruments(assets: dict[str, Asset] | None = None) -> list[Instrument]:
    """BTC-USD, ETH-USD and ETH-BTC with the venue's standard sizes."""
    a = assets or {x.code: x for x in DEFAULT_ASSETS}
    return [
        Instrument.create("BTC-USD", a["BTC"], a["USD"], "0.01", "0.00001", "0.00001", "1000", "1", "10000000"),
        Instrument.create("ETH-USD", a["ETH"], a["USD"], "0.01", "0.0001", "0.0001", "10000", "1", "10000000"),
        Instrument.create("ETH-BTC", a["ETH"], a["BTC"], "0.00001", "0.001", "0.001", "10000", "0.0001", "1000"),
    ]
