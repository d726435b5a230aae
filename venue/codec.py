"""Binary encoding of sequenced commands for the journal.

A record's payload is msgpack of ``(seq, ts, tag, fields)``: the command's tag from
:data:`venue.commands.TAGS` and its fields as an array. Decoding builds the same
NamedTuple, filling fields added since the record was written with their defaults.
"""
from __future__ import annotations

from typing import Any, NamedTuple, get_type_hints

import msgpack

from venue import commands as C
from venue.errors import CorruptJournal, InvalidValue
from venue.types import Reject

_BIGINT = 1  # msgpack ext type: an integer beyond 64 bits (wei amounts), as signed big-endian bytes


def _big(x: int) -> msgpack.ExtType:
    return msgpack.ExtType(_BIGINT, x.to_bytes((x.bit_length() + 8) // 8, "big", signed=True))


def _widen(obj: Any) -> Any:
    """``obj`` with every integer beyond 64 bits replaced by its ext form."""
    if type(obj) is int:
        return _big(obj) if not -(1 << 63) <= obj < (1 << 64) else obj
    if isinstance(obj, (list, tuple)):
        return [_widen(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _widen(v) for k, v in obj.items()}
    return obj


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _BIGINT:
        return int.from_bytes(data, "big", signed=True)
    return msgpack.ExtType(code, data)


def packb(obj: Any) -> bytes:
    """msgpack, with integers of any size (the fast path is plain msgpack)."""
    try:
        return msgpack.packb(obj)
    except OverflowError:
        return msgpack.packb(_widen(obj))


def unpackb(data: bytes, use_list: bool = True) -> Any:
    return msgpack.unpackb(data, use_list=use_list, strict_map_key=False, ext_hook=_ext_hook)


class Record(NamedTuple):
    seq: int
    ts: int
    cmd: Any


def encode(seq: int, ts: int, cmd: Any) -> bytes:
    return packb((seq, ts, C.TAG_OF[type(cmd)], cmd))


def decode(payload: bytes) -> Record:
    try:
        seq, ts, tag, fields = unpackb(payload, use_list=False)
        cls = C.TAGS[tag]
        if cls is C.DefineInstrument:
            return Record(seq, ts, cls(dict(fields[0])))
        return Record(seq, ts, cls(*fields))
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as e:
        raise CorruptJournal(f"undecodable journal record: {e}") from e


_TYPES: dict[type, tuple[tuple[str, type], ...]] = {}


def normalize(cmd: Any) -> Any:
    """``cmd`` with plain field types (IntEnum members become ints), or :class:`InvalidValue`
    saying which field is wrong.

    The engine trusts field types, and a replay decodes plain ints, so the live command
    must hold the same plain values. The sequencer runs this on the submitting thread.
    """
    cls = type(cmd)
    spec = _TYPES.get(cls)
    if spec is None:
        if cls not in C.TAG_OF:
            raise InvalidValue(Reject.BAD_COMMAND, f"{cls.__name__} is not a venue command")
        hints = get_type_hints(cls)
        spec = tuple((f, hints[f]) for f in cls._fields if hints.get(f) in (str, int, bool, dict))
        _TYPES[cls] = spec
    fixes: dict[str, Any] = {}
    for name, typ in spec:
        value = getattr(cmd, name)
        if type(value) is typ:
            if (typ is str and not value.isascii()) or typ is dict:
                _check_encodable(cls, name, value)  # else encoding it on the sequencer stops the venue
            continue
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            fixes[name] = int(value)
            continue
        raise InvalidValue(Reject.BAD_COMMAND, f"{cls.__name__}.{name} must be {typ.__name__}, not {type(value).__name__}")
    return cmd._replace(**fixes) if fixes else cmd


def _check_encodable(cls: type, name: str, value: Any) -> None:
    try:
        packb(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidValue(Reject.BAD_COMMAND, f"{cls.__name__}.{name} cannot be journaled: {e}") from None
