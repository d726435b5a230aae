"""Minimal FIX tag=value framing for the logon gateway (which must read a Logon before
QuickFIX does). Not a FIX engine: it finds message boundaries, splits fields and builds
a message with its BodyLength and CheckSum. Everything after the Logon is QuickFIX's.
"""
from __future__ import annotations

from datetime import datetime, timezone

SOH = b"\x01"


class FramingError(ValueError):
    """The bytes are not a FIX message."""


def next_message(buf: bytes | bytearray) -> tuple[bytes | None, int]:
    """(the first complete message in ``buf``, bytes it used). (None, 0) if more is
    needed; raises FramingError if ``buf`` does not start like a FIX message."""
    if len(buf) < 2:
        return None, 0
    if not buf.startswith(b"8="):
        raise FramingError("a FIX message starts with BeginString (8)")
    i = buf.find(SOH)
    if i < 0:
        if len(buf) > 32:
            raise FramingError("BeginString is not terminated")
        return None, 0
    if not buf.startswith(b"9=", i + 1):
        if len(buf) > i + 3:
            raise FramingError("BodyLength (9) must follow BeginString")
        return None, 0
    j = buf.find(SOH, i + 1)
    if j < 0:
        if len(buf) > i + 16:
            raise FramingError("BodyLength is not terminated")
        return None, 0
    try:
        body_len = int(buf[i + 3:j])
    except ValueError:
        raise FramingError("BodyLength is not a number") from None
    if not 0 < body_len < 1_000_000:
        raise FramingError("BodyLength out of range")
    end = j + 1 + body_len + 7  # "10=xxx\x01"
    if len(buf) < end:
        return None, 0
    msg = bytes(buf[:end])
    if not msg.endswith(SOH) or msg[end - 7:end - 4] != b"10=":
        raise FramingError("CheckSum (10) not where BodyLength says")
    if int(msg[end - 4:end - 1]) != sum(msg[:end - 7]) % 256:
        raise FramingError("CheckSum mismatch")
    return msg, end


def fields(msg: bytes) -> dict[int, str]:
    """Tag -> value (the first occurrence of each tag)."""
    out: dict[int, str] = {}
    for part in msg.split(SOH):
        if not part:
            continue
        tag, sep, value = part.partition(b"=")
        if not sep:
            raise FramingError(f"field without '=': {part[:20]!r}")
        try:
            t = int(tag)
        except ValueError:
            raise FramingError(f"tag is not a number: {tag[:10]!r}") from None
        out.setdefault(t, value.decode("latin-1"))
    return out


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def build(msg_type: str, body: list[tuple[int, str]], begin: str = "FIX.4.4") -> bytes:
    """A message with header fields first as given in ``body`` (49, 56, 34, 52, ...)."""
    payload = f"35={msg_type}\x01" + "".join(f"{t}={v}\x01" for t, v in body)
    head = f"8={begin}\x019={len(payload.encode('latin-1'))}\x01"
    raw = (head + payload).encode("latin-1")
    return raw + f"10={sum(raw) % 256:03d}\x01".encode()
