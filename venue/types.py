"""Enumerations and reject codes shared by the core and the edges.

Values are small ints so that commands and events stay cheap to build and to journal.
The engine compares against the module-level aliases at the bottom for speed; the
``IntEnum`` classes are for people and for the edges.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Final


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP = 3  # stop-market: becomes a protected market order when triggered
    STOP_LIMIT = 4


class TimeInForce(IntEnum):
    DAY = 0  # expires at the next 00:00 UTC after acceptance
    GTC = 1
    IOC = 3
    FOK = 4
    GTD = 6


class STP(IntEnum):
    """Self-trade prevention. The incoming (taker) order's mode decides."""

    DEFAULT = 0  # use the account's default
    CANCEL_NEWEST = 1  # cancel the incoming order
    CANCEL_OLDEST = 2  # cancel the resting order, keep matching
    CANCEL_BOTH = 3
    DECREMENT = 4  # reduce both by the overlap; whichever reaches zero is cancelled
    NONE = 5  # self-trades allowed (account configuration only)


class OrderStatus(IntEnum):
    WAITING_TRIGGER = 0  # a stop order not yet triggered (FIX OrdStatus New)
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    EXPIRED = 5


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})


class ExecKind(IntEnum):
    """What an :class:`venue.events.Execution` reports (maps onto FIX ExecType)."""

    NEW = 0
    FILL = 1  # partial or full, see status
    CANCELLED = 4
    REPLACED = 5
    RESTATED = 6  # quantity reduced by the venue (self-trade decrement)
    EXPIRED = 7
    TRIGGERED = 8


class Liquidity(IntEnum):
    NONE = 0
    MAKER = 1  # FIX LastLiquidityInd 1 = added liquidity
    TAKER = 2  # FIX LastLiquidityInd 2 = removed liquidity


class BookEffect(IntEnum):
    """How an execution changes the visible book (for market data)."""

    NONE = 0
    ADD = 1  # rests now at the back of its price level with ``visible``
    UPDATE = 2  # visible quantity changed in place, priority kept
    REMOVE = 3  # left the book
    REQUEUE = 4  # left its place and rests again at the back (iceberg refill, amend)


class AccountKind(IntEnum):
    CASH = 1
    MARGIN = 2
    VENUE = 3  # the venue's own accounts (fees, insurance)


class Reject(IntEnum):
    """Why the venue refused something. Bands per module, as in exchange-core:
    1xx validation, 2xx funds and risk, 3xx matching and order state, 4xx funding,
    5xx administration."""

    UNKNOWN_SYMBOL = 101
    UNKNOWN_ACCOUNT = 102
    INVALID_SIDE = 103
    INVALID_ORDER_TYPE = 104
    INVALID_TIME_IN_FORCE = 105
    INVALID_QUANTITY = 106
    INVALID_PRICE = 107
    OFF_TICK = 108
    OFF_LOT = 109
    QTY_BELOW_MIN = 110
    QTY_ABOVE_MAX = 111
    NOTIONAL_BELOW_MIN = 112
    NOTIONAL_ABOVE_MAX = 113
    DUPLICATE_CL_ORD_ID = 114
    INVALID_EXPIRE_TIME = 115
    INVALID_DISPLAY_QTY = 116
    INVALID_STOP_PRICE = 117
    UNSUPPORTED = 118
    INVALID_STP = 119
    ACCOUNT_DISABLED = 120
    INSUFFICIENT_FUNDS = 201
    PRICE_BAND = 202
    MAX_OPEN_ORDERS = 203
    CREDIT_LIMIT = 204
    MAX_POSITION = 205
    KILL_SWITCH = 206
    MARGIN_INSUFFICIENT = 207
    REDUCE_ONLY = 208
    NOT_ENTITLED = 209
    THROTTLED = 210
    INSTRUMENT_HALTED = 301
    POST_ONLY_WOULD_TAKE = 302
    NO_LIQUIDITY = 303
    FOK_NOT_FILLABLE = 304
    UNKNOWN_ORDER = 305
    ORDER_NOT_OPEN = 306
    AMEND_BELOW_FILLED = 307
    AMEND_NO_CHANGE = 308
    STOP_WOULD_TRIGGER = 309
    SELF_TRADE = 310
    DUPLICATE_FUNDING_ID = 401
    INVALID_AMOUNT = 402
    UNKNOWN_ASSET = 403
    UNKNOWN_FUNDING_ID = 404
    FUNDING_STATE = 405
    UNKNOWN_FIRM = 501
    DUPLICATE_FIRM = 502
    DUPLICATE_ACCOUNT = 503
    INVALID_FEES = 504
    BAD_COMMAND = 505


class CancelReason(IntEnum):
    """Why an order left the book without filling."""

    REQUESTED = 0  # the owner asked
    IOC_REMAINDER = 1
    FOK_NOT_FILLABLE = 2
    SELF_TRADE = 3
    MASS_CANCEL = 4
    HALT = 5
    OPERATOR = 6
    KILL_SWITCH = 7
    DISCONNECT = 8
    NO_LIQUIDITY = 9
    MARKET_PROTECTION = 10  # a market order's remainder beyond its price band
    POST_ONLY = 11
    LIQUIDATION = 12
    EXPIRED = 13
    REDUCE_ONLY = 14


# Fast aliases for the engine's hot paths, equal to the enum members above.
# ``Final`` literals, so that the compiled modules (mypyc, see setup.py) inline them: any
# other module-level name costs a dictionary lookup each time compiled code reads it.
BUY: Final = 1
SELL: Final = 2

MARKET: Final = 1
LIMIT: Final = 2
STOP: Final = 3
STOP_LIMIT: Final = 4

DAY: Final = 0
GTC: Final = 1
IOC: Final = 3
FOK: Final = 4
GTD: Final = 6

WAITING_TRIGGER: Final = 0
NEW: Final = 1
PARTIALLY_FILLED: Final = 2
FILLED: Final = 3
CANCELLED: Final = 4
EXPIRED: Final = 5

EXEC_NEW: Final = 0
EXEC_FILL: Final = 1
EXEC_CANCELLED: Final = 4
EXEC_REPLACED: Final = 5
EXEC_RESTATED: Final = 6
EXEC_EXPIRED: Final = 7
EXEC_TRIGGERED: Final = 8

LIQ_NONE: Final = 0
LIQ_MAKER: Final = 1
LIQ_TAKER: Final = 2

FX_NONE: Final = 0
FX_ADD: Final = 1
FX_UPDATE: Final = 2
FX_REMOVE: Final = 3
FX_REQUEUE: Final = 4

STP_DEFAULT: Final = 0
STP_CN: Final = 1
STP_CO: Final = 2
STP_CB: Final = 3
STP_DC: Final = 4
STP_NONE: Final = 5
