"""Clocks. Only the sequencer reads one: it stamps each command's time, and the engine
sees time only through those stamps, so a replay sees the same times."""
from __future__ import annotations

import threading
import time


class Clock:
    def now_ns(self) -> int:
        raise NotImplementedError


class LiveClock(Clock):
    def now_ns(self) -> int:
        return time.time_ns()


class TestClock(Clock):
    """A clock tests move by hand."""

    __test__ = False  # not a pytest test class

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now = start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ns: int) -> None:
        with self._lock:
            self._now += ns

    def set(self, ns: int) -> None:
        with self._lock:
            self._now = ns
