"""The SQL schema of the store (SQLAlchemy 2 declarative models).

Everything here is derived from the journal's commands and the engine's events, so
every row carries the sequence number that produced it and no wall-clock column: two
stores fed the same journal hold the same rows. Times are the sequencer's stamps (ns
since the epoch). Prices and quantities are the engine's integers (ticks and lots;
the instrument row converts them); asset amounts are atoms in :class:`Atoms`, exact on
every backend (18-decimal assets overflow 64-bit integers).

The schema is created and upgraded by the Alembic migrations in ``venue/store/migrations``;
``metadata`` here is what they create, and a test checks that they agree.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, MetaData, Numeric, String, Text, types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Atoms(types.TypeDecorator):
    """An integer of any size: NUMERIC(78, 0) on PostgreSQL, decimal text elsewhere
    (SQLite would turn a large NUMERIC into a float). Sum these in Python, or in SQL on
    PostgreSQL only."""

    impl = types.String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return Decimal(int(value))
        return str(int(value))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    })


class StoreState(Base):
    """One row: how far the store has applied the journal, and which venue it belongs to."""

    __tablename__ = "store_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    genesis_ts: Mapped[int] = mapped_column(BigInteger)  # the stamp of seq 1: identifies the journal


class AssetRow(Base):
    __tablename__ = "assets"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    decimals: Mapped[int] = mapped_column(Integer)
    defined_seq: Mapped[int] = mapped_column(BigInteger)


class InstrumentRow(Base):
    """An instrument, its limits and its trading status."""

    __tablename__ = "instruments"
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    base: Mapped[str] = mapped_column(String(32))
    quote: Mapped[str] = mapped_column(String(32))
    tick_size: Mapped[str] = mapped_column(String(40))
    lot_size: Mapped[str] = mapped_column(String(40))
    notional_mult: Mapped[int] = mapped_column(BigInteger)
    base_per_lot: Mapped[int] = mapped_column(Atoms)
    min_qty: Mapped[int] = mapped_column(BigInteger)
    max_qty: Mapped[int] = mapped_column(BigInteger)
    min_notional: Mapped[int] = mapped_column(Atoms)
    max_notional: Mapped[int] = mapped_column(Atoms)
    market_band_ppm: Mapped[int] = mapped_column(Integer)
    halted: Mapped[bool] = mapped_column(Boolean)
    status_reason: Mapped[str] = mapped_column(Text)
    defined_seq: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class FirmRow(Base):
    __tablename__ = "firms"
    firm: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_seq: Mapped[int] = mapped_column(BigInteger)


class AccountRow(Base):
    __tablename__ = "accounts"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    firm: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[int] = mapped_column(Integer)
    maker_ppm: Mapped[int] = mapped_column(Integer)
    taker_ppm: Mapped[int] = mapped_column(Integer)
    stp: Mapped[int] = mapped_column(Integer)
    leverage: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_seq: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class UserRow(Base):
    """A FIX user (venue.access). The credential is the scrypt hash, never the password."""

    __tablename__ = "users"
    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    firm: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_seq: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class CredentialRow(Base):
    """Each credential a user or session has held, newest last (rotation history)."""

    __tablename__ = "credentials"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)  # user name or session comp id
    kind: Mapped[str] = mapped_column(String(16))  # password (scrypt hash) | ed25519 (public key)
    value: Mapped[str] = mapped_column(Text)


class SessionRow(Base):
    """A FIX session and its entitlements (accounts it may use, firms it may see)."""

    __tablename__ = "sessions"
    comp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    firm: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(64))
    target_comp_id: Mapped[str] = mapped_column(String(64))
    default_account: Mapped[str] = mapped_column(String(64))
    cancel_on_disconnect: Mapped[bool] = mapped_column(Boolean)
    msg_rate: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_seq: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class EntitlementRow(Base):
    __tablename__ = "entitlements"
    comp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # account | firm
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)


class OrderRow(Base):
    """An order's static attributes and its state after the newest event."""

    __tablename__ = "orders"
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    firm: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    side: Mapped[int] = mapped_column(Integer)
    ord_type: Mapped[int] = mapped_column(Integer)
    tif: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BigInteger)
    stop_px: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(BigInteger)
    display_qty: Mapped[int] = mapped_column(BigInteger)
    cl_ord_id: Mapped[str] = mapped_column(String(128))
    session: Mapped[str] = mapped_column(String(64))
    entered_ts: Mapped[int] = mapped_column(BigInteger, index=True)
    status: Mapped[int] = mapped_column(Integer)
    cum_qty: Mapped[int] = mapped_column(BigInteger)
    leaves_qty: Mapped[int] = mapped_column(BigInteger)
    cum_notional: Mapped[int] = mapped_column(Atoms)  # sum of ticks x lots
    cum_fee: Mapped[int] = mapped_column(Atoms)
    updated_seq: Mapped[int] = mapped_column(BigInteger)
    updated_ts: Mapped[int] = mapped_column(BigInteger)


class OrderRejectRow(Base):
    __tablename__ = "order_rejects"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exec_n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(64), index=True)
    cl_ord_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    code: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class ExecutionRow(Base):
    """One execution report's facts (ExecID = ``{seq}-{exec_n}``)."""

    __tablename__ = "executions"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    exec_n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    account: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    kind: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    cl_ord_id: Mapped[str] = mapped_column(String(128))
    orig_cl_ord_id: Mapped[str] = mapped_column(String(128))
    cum_qty: Mapped[int] = mapped_column(BigInteger)
    leaves_qty: Mapped[int] = mapped_column(BigInteger)
    last_px: Mapped[int] = mapped_column(BigInteger)
    last_qty: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(Atoms)
    liquidity: Mapped[int] = mapped_column(Integer)
    trade_n: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class TradeRow(Base):
    """A trade (TradeID = ``{seq}-{trade_n}``)."""

    __tablename__ = "trades"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trade_n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    price: Mapped[int] = mapped_column(BigInteger)
    qty: Mapped[int] = mapped_column(BigInteger)
    aggressor_side: Mapped[int] = mapped_column(Integer)
    maker_order_id: Mapped[int] = mapped_column(BigInteger)
    taker_order_id: Mapped[int] = mapped_column(BigInteger)
    maker_account: Mapped[str] = mapped_column(String(64), index=True)
    taker_account: Mapped[str] = mapped_column(String(64), index=True)
    maker_fee: Mapped[int] = mapped_column(Atoms)
    taker_fee: Mapped[int] = mapped_column(Atoms)


class PostingRow(Base):
    """A double-entry ledger posting: ``amount`` atoms of ``asset`` into ``account``'s
    total balance (negative = out). The postings of one seq sum to zero per asset;
    money from or to the outside world posts against :data:`EXTERNAL`."""

    __tablename__ = "postings"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Atoms)
    kind: Mapped[str] = mapped_column(String(16))  # trade | fee | deposit | withdraw | borrow | repay | cover | takeover
    ref: Mapped[str] = mapped_column(String(128))  # trade id, funding id, or the counterparty of a margin move


class FundingRow(Base):
    """A deposit or withdrawal and its state."""

    __tablename__ = "fundings"
    funding_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # deposit | withdrawal
    account: Mapped[str] = mapped_column(String(64), index=True)
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Atoms)
    state: Mapped[str] = mapped_column(String(16))  # done | held | released | completed
    reference: Mapped[str] = mapped_column(Text)
    created_seq: Mapped[int] = mapped_column(BigInteger)
    created_ts: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class AuditRow(Base):
    """One operator action: who, when, what, why, and what came of it."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    operator: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # JSON
    reason: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | rejected | noted
    detail: Mapped[str] = mapped_column(Text)


class LiquidationRow(Base):
    """A margin account's liquidation moving on (venue.margin.Liquidation): started,
    stalled, restored, closed or bankrupt, with its equity and maintenance requirement
    in valuation-asset atoms at the mark, and what the insurance fund covered and the
    lending pool wrote off."""

    __tablename__ = "liquidations"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    equity: Mapped[int] = mapped_column(Atoms)
    maintenance: Mapped[int] = mapped_column(Atoms)
    covered: Mapped[int] = mapped_column(Atoms)
    written_off: Mapped[int] = mapped_column(Atoms)
    text: Mapped[str] = mapped_column(Text)


EXTERNAL = "@external"
TABLES = [m.__table__ for m in (StoreState, AssetRow, InstrumentRow, FirmRow, AccountRow, UserRow, CredentialRow,
                                SessionRow, EntitlementRow, OrderRow, OrderRejectRow, ExecutionRow, TradeRow,
                                PostingRow, FundingRow, AuditRow, LiquidationRow)]
