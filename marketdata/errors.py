"""The market-data package's exceptions: one root, leaves that also subclass the builtin
a caller would expect (an unknown symbol is a ``KeyError``, a bad request a ``ValueError``).

A refusal a client can act on (unknown symbol, unsupported depth) is raised at
subscription time so the FIX layer can turn it into a MarketDataRequestReject; nothing
raised here ever reaches the engine.
"""
from __future__ import annotations


class MarketDataError(Exception):
    """Root of every error this package raises on purpose."""


class UnknownSymbol(MarketDataError, KeyError):
    """No instrument of that symbol is defined."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else "unknown symbol"


class BadRequest(MarketDataError, ValueError):
    """A subscription or query that cannot be served as asked (its text says why)."""


class BookInconsistent(MarketDataError, RuntimeError):
    """An event names an order the book does not hold (or holds already): the book no
    longer follows the engine and must be reloaded (:meth:`MarketData.resync`)."""


class SequenceGap(MarketDataError):
    """A consumer saw an increment that does not follow the last one it applied; it must
    take a new snapshot before applying more."""

    def __init__(self, symbol: str, expected: int, got: int) -> None:
        super().__init__(f"{symbol}: expected RptSeq {expected}, got {got}")
        self.symbol = symbol
        self.expected = expected
        self.got = got


class Unavailable(MarketDataError, RuntimeError):
    """The market data is not loaded (yet) or was stopped."""
