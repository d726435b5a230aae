"""What a custody request answers: done, or refused with a code and a reason."""
from __future__ import annotations

from typing import Any, NamedTuple


class Outcome(NamedTuple):
    ok: bool
    code: str = ""  # e.g. velocity_daily, self_approval, address_unapproved, duplicate_request
    reason: str = ""
    data: dict[str, Any] | None = None

    @classmethod
    def done(cls, **data: Any) -> Outcome:
        return cls(True, "", "", data)

    @classmethod
    def refused(cls, code: str, reason: str, **data: Any) -> Outcome:
        return cls(False, code, reason, data or None)
