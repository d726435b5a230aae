"""Custody's settings, with the embedded defaults, and the ``custody.toml`` that asks
``venue run`` to start custody.

Amounts are written in the asset's own units as strings (``"10"`` ETH, ``"250000"``
USDC) and converted exactly when the service starts. Per-account limits set by an
operator at run time live in the custody store and override these defaults.

``venue run`` starts custody when ``<data_dir>/custody.toml`` exists (or the file
``VENUE_CUSTODY_CONFIG`` names). Its keys are the fields below, at the top level or
under ``[custody]``; every one is optional (an empty file means the embedded defaults)::

    ethereum_url = "http://127.0.0.1:8545"     # a JSON-RPC node; omit for the embedded EVM
    stablecoin_address = "0x..."               # the token on that node
    confirmations = 12
    approvers = ["ops-alice", "ops-bob", "ops-carol"]
    approvals_required = 2
    per_tx_limit = { ETH = "100", USDC = "1000000" }
    hot_ceiling = { ETH = "500" }
    cold_address = { ethereum = "0x..." }
    pkcs11_module = "/usr/lib/vendor/libhsm.so"  # a real HSM; PIN in $VENUE_HSM_PIN
    pkcs11_token = "custody"
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from typing import Any

from custody.errors import ConfigError


@dataclass
class CustodyConfig:
    confirmations: int = 3  # a deposit is credited, and a withdrawal settled, at this depth
    approvers: tuple[str, ...] = ("ops-alice", "ops-bob", "ops-carol")  # N: who may approve
    approvals_required: int = 2  # M: distinct approvers per withdrawal (never the requester)
    per_tx_limit: dict[str, str] = field(default_factory=lambda: {"ETH": "100", "USDC": "1000000", "BTC": "10"})
    daily_limit: dict[str, str] = field(default_factory=lambda: {"ETH": "250", "USDC": "2500000", "BTC": "25"})
    hot_ceiling: dict[str, str] = field(default_factory=dict)  # symbol -> most the hot wallet keeps
    cold_address: dict[str, str] = field(default_factory=dict)  # chain -> address whose key is offline
    sweep_minimum: dict[str, str] = field(default_factory=lambda: {"ETH": "0.001", "USDC": "1", "BTC": "0.0001"})
    auto_sweep: bool = True  # sweep credited deposits to the hot wallet on every tick
    auto_rebalance: bool = True  # send the hot wallet's excess over its ceiling to cold
    stablecoin_symbol: str = "USDC"
    stablecoin_ledger_asset: str = "USD"  # the ledger asset a stablecoin unit is credited to
    stablecoin_decimals: int = 6
    stablecoin_address: str = ""  # the token contract on a real node ("" on the embedded chain: deployed)
    bitcoin_network: str = "regtest"
    bitcoin_fee_rate: int = 10  # sat per vbyte
    bitcoind_url: str = ""  # real mode; "" = no node (withdrawals are signed and wait for one)
    ethereum_url: str = ""  # real mode; "" = the embedded in-process EVM
    reorg_window: int = 64  # block hashes kept to detect a reorg
    scan_batch: int = 200  # blocks scanned per poll at most
    poll_seconds: float = 1.0
    dev_block_seconds: float = 1.0  # embedded chain only: mine a block this often (0: only when there are transactions)
    use_pkcs11: bool = True  # False forces the software keystore
    pkcs11_module: str = ""  # "" = SoftHSM2 under the data directory; else a real module ...
    pkcs11_token: str = ""  # ... its token label ...
    pkcs11_pin_env: str = "VENUE_HSM_PIN"  # ... and the variable holding its PIN


_MONEY_MAPS = ("per_tx_limit", "daily_limit", "hot_ceiling", "sweep_minimum")


def custody_config_from(raw: dict[str, Any], where: str = "custody configuration") -> CustodyConfig:
    """A :class:`CustodyConfig` from a mapping (a parsed ``custody.toml``), checked:
    unknown keys, wrong types and amounts written as floats are refused."""
    table = raw.get("custody", raw) if isinstance(raw.get("custody"), dict) else raw
    fields = {f.name: f for f in dataclasses.fields(CustodyConfig)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    defaults = CustodyConfig()
    kw: dict[str, Any] = {}
    for name, value in table.items():
        want = getattr(defaults, name)
        if name in _MONEY_MAPS or name == "cold_address":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{where}: {name} maps names to strings (amounts are strings, e.g. \"10\")")
            kw[name] = {str(k): v for k, v in value.items()}
        elif name == "approvers":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{where}: approvers is a list of operator names")
            kw[name] = tuple(value)
        elif isinstance(want, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: {name} is true or false")
            kw[name] = value
        elif isinstance(want, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}: {name} must be a whole number, 0 or more")
            kw[name] = value
        elif isinstance(want, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{where}: {name} must be a number of seconds, 0 or more")
            kw[name] = float(value)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {name} must be a string")
            kw[name] = value
    cfg = CustodyConfig(**kw)
    if cfg.approvals_required > len(cfg.approvers):
        raise ConfigError(f"{where}: approvals_required {cfg.approvals_required} exceeds the "
                          f"{len(cfg.approvers)} approvers")
    if cfg.confirmations < 1:
        raise ConfigError(f"{where}: confirmations must be at least 1")
    return cfg


def load_custody_config(path: str) -> CustodyConfig:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"no custody configuration file {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return custody_config_from(raw, path)
