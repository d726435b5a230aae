"""The venue's configuration file (TOML), read by ``venue init`` and ``venue run``.

::

    [venue]
    data_dir = "/var/lib/venue"                       # or --data-dir / VENUE_DATA_DIR
    db = "postgresql+psycopg://venue@db/venue"        # default: SQLite under data_dir
    snapshot_every = 200000
    fsync = true

    [[assets]]                                        # default: USD, BTC, ETH
    code = "USD"
    decimals = 8

    [[instruments]]                                   # default: BTC-USD, ETH-USD, ETH-BTC
    symbol = "BTC-USD"
    base = "BTC"
    quote = "USD"
    tick_size = "0.01"
    lot_size = "0.00001"
    min_qty = "0.00001"
    max_qty = "1000"
    min_notional = "1"
    max_notional = "10000000"
    market_band_pct = "5"

    [marketdata]                                      # optional
    redis = "redis://127.0.0.1:6379/0"                # also publish market data to Redis

    [fix]                                             # for the FIX acceptor (sessions/)
    host = "127.0.0.1"
    order_entry_port = 9878
    drop_copy_port = 9879
    market_data_port = 9880

Numbers that are money are strings (exact decimals); a float is refused. Instruments and
assets are configuration only until they are journaled: ``venue run`` defines those the
journal lacks and never changes one it has (use ``venue limits set``).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from cli.errors import ConfigError
from venue.errors import InvalidValue
from venue.instruments import DEFAULT_ASSETS, Asset, Instrument, default_instruments

_INST_KEYS = ("symbol", "base", "quote", "tick_size", "lot_size", "min_qty", "max_qty", "min_notional",
              "max_notional")


@dataclass
class FixConfig:
    host: str = "127.0.0.1"
    order_entry_port: int = 9878
    drop_copy_port: int = 9879
    market_data_port: int = 9880


@dataclass
class VenueConfig:
    data_dir: str = ""
    db: str = ""
    snapshot_every: int = 200_000
    fsync: bool = True
    assets: tuple[Asset, ...] = DEFAULT_ASSETS
    instruments: list[Instrument] = field(default_factory=default_instruments)
    fix: FixConfig = field(default_factory=FixConfig)
    path: str = ""
    redis: str = ""  # [marketdata] redis: publish market data there too


def load_config(path: str) -> VenueConfig:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        return _parse(raw, path)
    except (InvalidValue, KeyError, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise ConfigError(f"{path}: {what}") from None


def _parse(raw: dict[str, Any], path: str) -> VenueConfig:
    unknown = set(raw) - {"venue", "assets", "instruments", "fix", "marketdata"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    v = raw.get("venue", {})
    cfg = VenueConfig(path=os.path.abspath(path))
    base_dir = os.path.dirname(cfg.path)
    if v.get("data_dir"):
        cfg.data_dir = os.path.join(base_dir, os.path.expanduser(str(v["data_dir"])))
    cfg.db = str(v.get("db", ""))
    cfg.snapshot_every = _int(v.get("snapshot_every", cfg.snapshot_every), "venue.snapshot_every")
    cfg.fsync = bool(v.get("fsync", True))
    if "assets" in raw:
        cfg.assets = tuple(Asset(str(a["code"]), _int(a["decimals"], f"asset {a.get('code')} decimals"))
                           for a in raw["assets"])
    assets = {a.code: a for a in cfg.assets}
    if "instruments" in raw:
        insts = []
        for r in raw["instruments"]:
            for k in _INST_KEYS:
                if k not in r:
                    raise ConfigError(f"{path}: instrument {r.get('symbol', '?')} lacks {k}")
                if isinstance(r[k], float):
                    raise ConfigError(f"{path}: instrument {r['symbol']} {k} must be a string, not a float")
            for k in ("base", "quote"):
                if r[k] not in assets:
                    raise ConfigError(f"{path}: instrument {r['symbol']}: unknown asset {r[k]}")
            insts.append(Instrument.create(str(r["symbol"]), assets[r["base"]], assets[r["quote"]],
                                           *(str(r[k]) for k in _INST_KEYS[3:]),
                                           market_band_pct=str(r.get("market_band_pct", "5"))))
        cfg.instruments = insts
    else:
        cfg.instruments = default_instruments(assets) if set(assets) >= {"USD", "BTC", "ETH"} else []
    cfg.redis = str(raw.get("marketdata", {}).get("redis", ""))
    f = raw.get("fix", {})
    cfg.fix = FixConfig(str(f.get("host", "127.0.0.1")),
                        *(_int(f.get(k, d), f"fix.{k}") for k, d in (("order_entry_port", 9878),
                                                                     ("drop_copy_port", 9879),
                                                                     ("market_data_port", 9880))))
    return cfg


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{what} must be a whole number")
    return v
