"""Custody's settings, with the embedded defaults.

Amounts are written in the asset's own units as strings (``"10"`` ETH, ``"250000"``
USDC) and converted exactly when the service starts. Per-account limits set by an
operator at run time live in the custody store and override these defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field


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
    use_pkcs11: bool = True  # False forces the software keystore
    pkcs11_module: str = ""  # "" = SoftHSM2 under the data directory; else a real module ...
    pkcs11_token: str = ""  # ... its token label ...
    pkcs11_pin_env: str = "VENUE_HSM_PIN"  # ... and the variable holding its PIN
