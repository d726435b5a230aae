"""The venue's engine with its extensions installed (access registry, and risk/margin
when present). Everything that runs or replays a journal builds its engine here, so a
replay handles the same commands as the live venue."""
from __future__ import annotations

from venue import access, margin, operator, risk
from venue.engine import Engine


def build_engine() -> Engine:
    e = Engine()
    access.install(e)
    operator.install(e)
    risk.install(e)
    margin.install(e)  # after risk: it answers risk's calls for margin accounts
    return e
