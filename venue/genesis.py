"""The commands that bring an empty venue to life: assets and instruments.

A venue's configuration enters through the journal like everything else, so a replay
from the first record rebuilds the very same venue.
"""
from __future__ import annotations

from venue import commands as C
from venue.instruments import DEFAULT_ASSETS, Asset, Instrument, default_instruments


def genesis_commands(assets: tuple[Asset, ...] = DEFAULT_ASSETS,
                     instruments: list[Instrument] | None = None) -> list:
    insts = instruments if instruments is not None else default_instruments({a.code: a for a in assets})
    return [C.DefineAsset(a.code, a.decimals) for a in assets] + [C.DefineInstrument(i.to_record()) for i in insts]
