"""Reading a whole store back, to compare stores and check them against the engine."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from venue.store.models import TABLES


def dump(store: Any) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two stores are equal iff their dumps are."""
    out = {}
    with store.db.connect() as c:
        for t in TABLES:
            out[t.name] = sorted(tuple(r) for r in c.execute(select(t)))
    return out
