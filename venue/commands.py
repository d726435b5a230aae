"""Commands: the only way anything changes in the venue.

Every command is an immutable ``NamedTuple`` of primitives (str, int, bool, dict of
primitives), so the journal can store it as its tag and its fields, and a replay builds
the very same command. The sequencer stamps each one with a sequence number and a
timestamp; the engine turns it into events.

Adding a field: append it at the end with a default, so old journals still decode.
Never reorder or remove fields, and never reuse a tag.
"""
from __future__ import annotations

from typing import NamedTuple

from venue.types import CancelReason, STP, TimeInForce


class NewOrder(NamedTuple):
    account: str
    cl_ord_id: str
    symbol: str
    side: int  # Side
    ord_type: int  # OrdType
    qty: int  # lots
    price: int = 0  # ticks; 0 for market and stop-market
    stop_px: int = 0  # ticks; stop and stop-limit only
    tif: int = int(TimeInForce.GTC)
    expire_ts: int = 0  # ns since the epoch, GTD only
    post_only: bool = False
    display_qty: int = 0  # lots shown of an iceberg; 0 = all
    stp: int = int(STP.DEFAULT)
    session: str = ""  # the session that sent it (cancel-on-disconnect, kill switch)
    reduce_only: bool = False


class CancelOrder(NamedTuple):
    account: str
    cl_ord_id: str  # of this request
    order_id: int = 0  # either the venue's order id ...
    orig_cl_ord_id: str = ""  # ... or the order's current ClOrdID
    symbol: str = ""
    session: str = ""
    reason: int = int(CancelReason.REQUESTED)


class AmendOrder(NamedTuple):
    """Cancel/replace. ``qty`` is the new total order quantity (FIX OrderQty of a G)."""

    account: str
    cl_ord_id: str
    order_id: int = 0
    orig_cl_ord_id: str = ""
    symbol: str = ""
    qty: int = 0  # 0 = unchanged
    price: int = 0  # 0 = unchanged
    stop_px: int = 0  # 0 = unchanged
    session: str = ""


class MassCancel(NamedTuple):
    """Cancel every open order matching all the non-empty filters."""

    cl_ord_id: str = ""
    account: str = ""
    firm: str = ""
    symbol: str = ""
    side: int = 0  # 0 = both
    session: str = ""
    reason: int = int(CancelReason.MASS_CANCEL)
    accounts: str = ""  # comma list: only orders of these accounts
    requester: str = ""  # the session that asked (where the report goes); not a filter


class Halt(NamedTuple):
    symbol: str
    cancel_book: bool = False
    reason: str = ""


class Resume(NamedTuple):
    symbol: str
    reason: str = ""


class DefineAsset(NamedTuple):
    code: str
    decimals: int


class DefineInstrument(NamedTuple):
    record: dict  # Instrument.to_record()


class CreateFirm(NamedTuple):
    firm: str
    name: str = ""


class CreateAccount(NamedTuple):
    account: str
    firm: str
    kind: int = 1  # AccountKind
    maker_ppm: int = 0  # fee rates in parts per million of notional; maker may be negative
    taker_ppm: int = 0
    stp: int = int(STP.CANCEL_NEWEST)
    leverage: int = 1


class SetFees(NamedTuple):
    account: str
    maker_ppm: int
    taker_ppm: int


class SetAccountEnabled(NamedTuple):
    account: str
    enabled: bool
    reason: str = ""


class Deposit(NamedTuple):
    funding_id: str
    account: str
    asset: str
    amount: int  # atoms


class Withdraw(NamedTuple):
    """Immediate withdrawal (an operator posting): the amount leaves the venue."""

    funding_id: str
    account: str
    asset: str
    amount: int


class HoldWithdrawal(NamedTuple):
    """First step of a custody withdrawal: the amount is held at once."""

    funding_id: str
    account: str
    asset: str
    amount: int


class ReleaseWithdrawal(NamedTuple):
    """A rejected or failed withdrawal: the hold goes back to available."""

    funding_id: str
    reason: str = ""


class CompleteWithdrawal(NamedTuple):
    """The withdrawal is settled on-chain: the held amount leaves the venue."""

    funding_id: str
    reference: str = ""  # e.g. the chain transaction id


class Tick(NamedTuple):
    """Time has passed: expire GTD and Day orders that are due at the stamped time."""


# Tags are part of the journal format: append only.
TAGS: dict[int, type] = {
    1: NewOrder,
    2: CancelOrder,
    3: AmendOrder,
    4: MassCancel,
    5: Halt,
    6: Resume,
    7: DefineAsset,
    8: DefineInstrument,
    9: CreateFirm,
    10: CreateAccount,
    11: SetFees,
    12: SetAccountEnabled,
    13: Deposit,
    14: Withdraw,
    15: HoldWithdrawal,
    16: ReleaseWithdrawal,
    17: CompleteWithdrawal,
    18: Tick,
}
TAG_OF: dict[type, int] = {cls: tag for tag, cls in TAGS.items()}


def register(tag: int, cls: type) -> type:
    """Register a command class defined outside this module (risk, margin, custody)."""
    if tag in TAGS and TAGS[tag] is not cls:
        raise ValueError(f"command tag {tag} is taken by {TAGS[tag].__name__}")
    TAGS[tag] = cls
    TAG_OF[cls] = tag
    return cls
