"""FIX clients that keep reading in the background, for drop-copy tests."""
from __future__ import annotations

import threading
import time
from typing import Any

from tests.sessions.fixclients import Msg, RawClient

HEADER = {8, 9, 10, 34, 43, 49, 52, 56, 97, 122, 797}


class Reader:
    """Receives every message of a logged-on RawClient on its own thread."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.msgs: list[Msg] = []
        self.closed = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                m = self.client.recv(0.2)
            except (ConnectionError, OSError):
                self.closed = True
                return
            if m is not None:
                self.msgs.append(m)

    def of_type(self, msg_type: str) -> list[Msg]:
        return [m for m in list(self.msgs) if m.type == msg_type]

    def wait_for(self, pred: Any, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise AssertionError("timed out")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.client.close()


def body(m: Msg) -> dict[int, str]:
    """A message's fields without the session header and trailer (and without 797)."""
    return {t: v for t, v in m.items() if t not in HEADER}
