"""A running venue (core, store, control endpoint; no FIX) seeded with the demo data,
and a CliRunner pointed at it."""
from __future__ import annotations

import shutil
import tempfile
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from cli.demo import demo_commands
from cli.main import cli
from cli.runtime import RunningVenue, start_venue


@pytest.fixture
def data_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="vcli")  # short: a Unix socket path has at most 107 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def running(data_dir: str) -> Iterator[RunningVenue]:
    r = start_venue(data_dir, fsync=False)
    for c in demo_commands():
        r.venue.execute(c)
    yield r
    r.stop()


class Venue:
    """Runs ``venue ...`` against the fixture's data directory."""

    def __init__(self, data_dir: str, running: RunningVenue | None) -> None:
        self.data_dir = data_dir
        self.running = running
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        base = {"VENUE_OPERATOR": None, "VENUE_OPERATOR_SECRET": None, "VENUE_DATA_DIR": None}
        res = self.runner.invoke(cli, [*args, "--data-dir", self.data_dir], env={**base, **(env or {})},
                                 catch_exceptions=False)
        return res

    def seq(self) -> int:
        assert self.running is not None
        return self.running.venue.query(lambda e: e.seq)

    def hashes(self) -> dict[str, str]:
        assert self.running is not None
        return self.running.venue.query(lambda e: e.state_hashes())


@pytest.fixture
def venue(data_dir: str, running: RunningVenue) -> Venue:
    return Venue(data_dir, running)
