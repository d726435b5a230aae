"""Operator actions in the journal: who did what, when and why.

An operator's state-changing action enters the sequencer as one :class:`OperatorCommand`
(journal tag 100): the operator's name (who), the reason (why), the action's name and the
arguments the operator gave (what), and the commands it consists of, each as its journal
tag and fields. The sequencer stamps it (when). The engine applies the inner commands in
order with their ordinary handlers, so every consumer sees the ordinary events (an
``InstrumentStatus`` for a halt, cancels for a kill switch); the wrapper adds none. A
replay applies the very same commands, and the SQL store writes one audit row per
OperatorCommand with its outcome read from the events.

An OperatorCommand without inner commands is an audit note: an action whose effect lies
outside the engine (a custody approval, a snapshot request) still gets its journaled
who, when, what and why.

:class:`SetInstrumentLimits` (tag 101) changes an instrument's quantity, notional and
market-band limits after it is defined (the core only defines instruments).

Install with :func:`install` (``venue.factory.build_engine`` does), so live and replayed
engines handle the same commands. This module does not authenticate anyone
(``cli/control.py`` does, before anything is submitted) and does not decide what an action
means (the control handlers build the inner commands).
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, NamedTuple

from venue import commands as C
from venue.codec import normalize
from venue.errors import InvalidValue
from venue.events import AdminApplied, CommandRejected
from venue.types import Reject

OPERATOR_TAG = 100
LIMITS_TAG = 101


class OperatorCommand(NamedTuple):
    operator: str  # who: the authenticated operator's name
    reason: str  # why, as the operator gave it ("" if none)
    action: str  # what: the control action, e.g. "halt", "kill-switch"
    args: dict  # what: the arguments as given (plain JSON values)
    commands: list  # [[tag, [fields...]], ...] applied in order; [] = an audit note
    request_id: str = ""


class SetInstrumentLimits(NamedTuple):
    """New limits for ``symbol``; 0 leaves a limit unchanged."""

    symbol: str
    min_qty: int = 0  # lots
    max_qty: int = 0  # lots
    min_notional: int = 0  # quote atoms
    max_notional: int = 0  # quote atoms
    market_band_ppm: int = 0


C.register(OPERATOR_TAG, OperatorCommand)
C.register(LIMITS_TAG, SetInstrumentLimits)


def operator_command(operator: str, reason: str, action: str, args: dict[str, Any], cmds: list[Any],
                     request_id: str = "") -> OperatorCommand:
    """Wrap ``cmds`` (venue commands) as one audited operator action. Raises
    :class:`InvalidValue` for a command that cannot be journaled."""
    inner: list[list[Any]] = []
    for cmd in cmds:
        cmd = normalize(cmd)
        if isinstance(cmd, OperatorCommand):
            raise InvalidValue(Reject.BAD_COMMAND, "an operator command cannot wrap another")
        inner.append([C.TAG_OF[type(cmd)], list(cmd)])
    return OperatorCommand(operator, reason, action, dict(args), inner, request_id)


def inner_commands(c: OperatorCommand) -> list[Any]:
    """The commands an OperatorCommand wraps, rebuilt (live or decoded from the journal)."""
    out = []
    for tag, fields in c.commands:
        cls = C.TAGS.get(tag)
        if cls is None or cls is OperatorCommand:
            raise InvalidValue(Reject.BAD_COMMAND, f"unknown or nested command tag {tag}")
        if cls is C.DefineInstrument:
            out.append(cls(dict(fields[0])))
        else:
            out.append(cls(*fields))
    return out


class OperatorExtension:
    """Engine extension (name ``operator``): applies operator commands and instrument
    limits. Its state hash covers every instrument's limits, so a replay that disagrees
    about a limit is caught; the limits themselves live in the snapshot's instruments."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        engine.register_handler(OperatorCommand, self._operator)
        engine.register_handler(SetInstrumentLimits, self._set_limits)

    def _reject(self, c: Any, code: Reject, text: str) -> None:
        e = self.engine
        e._ev.append(CommandRejected(e.seq, e.ts, c, int(code), text))

    def _operator(self, c: OperatorCommand) -> None:
        try:
            cmds = inner_commands(c)
        except (InvalidValue, TypeError) as ex:
            return self._reject(c, Reject.BAD_COMMAND, f"bad operator command: {ex}")
        handlers = self.engine._handlers
        for cmd in cmds:
            handler = handlers.get(type(cmd))
            if handler is None:
                self._reject(cmd, Reject.BAD_COMMAND, f"unknown command {type(cmd).__name__}")
            else:
                handler(cmd)

    def _set_limits(self, c: SetInstrumentLimits) -> None:
        mkt = self.engine.markets.get(c.symbol)
        if mkt is None:
            return self._reject(c, Reject.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
        inst = mkt.inst
        new = {
            "min_qty": c.min_qty or inst.min_qty,
            "max_qty": c.max_qty or inst.max_qty,
            "min_notional": c.min_notional or inst.min_notional,
            "max_notional": c.max_notional or inst.max_notional,
            "market_band_ppm": c.market_band_ppm or inst.market_band_ppm,
        }
        if min(new.values()) <= 0 or min(c[1:]) < 0:
            return self._reject(c, Reject.BAD_COMMAND, "limits must be positive")
        if new["min_qty"] > new["max_qty"]:
            return self._reject(c, Reject.BAD_COMMAND, "the minimum quantity is above the maximum")
        if new["min_notional"] > new["max_notional"]:
            return self._reject(c, Reject.BAD_COMMAND, "the minimum notional is above the maximum")
        if new["market_band_ppm"] >= 1_000_000:
            return self._reject(c, Reject.BAD_COMMAND, "the market band must be below 100%")
        mkt.inst = dataclasses.replace(inst, **new)
        e = self.engine
        e._ev.append(AdminApplied(e.seq, e.ts, c))

    # -- extension protocol ------------------------------------------------------------
    def dump_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, d: dict[str, Any]) -> None:
        pass

    def state_hash(self) -> str:
        h = hashlib.sha256()
        for sym in sorted(self.engine.markets):
            i = self.engine.markets[sym].inst
            h.update(f"{sym}|{i.min_qty}|{i.max_qty}|{i.min_notional}|{i.max_notional}|{i.market_band_ppm}\n".encode())
        return h.hexdigest()


def install(engine: Any) -> OperatorExtension:
    ext = OperatorExtension(engine)
    engine.extensions["operator"] = ext
    return ext
