"""The sequencer: nothing is published before it is durable, queries see every command
before them, bad commands are refused at the door, and an engine exception stops the
venue without journaling the command that raised."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from venue import commands as C, journal
from venue.clock import TestClock
from venue.core import Venue
from venue.errors import InvalidValue
from venue.sequencer import Processed, VenueUnavailable
from venue.types import BUY, LIMIT, SELL

from tests.venue import workload
from tests.venue.harness import T0


@pytest.fixture
def venue(tmp_path: Path) -> Any:
    v = Venue(str(tmp_path), fsync=True, clock=TestClock(T0))
    v.open()
    v.start()
    for cmd in workload.setup_commands():
        v.submit(cmd)
    yield v
    v.stop(snapshot=False)


def order(clid: str, side: int = BUY, price: int = 3_000_000, account: str = "w0") -> C.NewOrder:
    return C.NewOrder(account, clid, "BTC-USD", side, LIMIT, 100, price=price)


def test_events_are_published_only_once_durable(venue: Venue, tmp_path: Path) -> None:
    seen: list[tuple[list[int], int, int]] = []

    def listener(batch: list[Processed]) -> None:
        assert venue.sequencer is not None
        on_disk = [r.seq for r in journal.read(str(tmp_path / "journal"))]  # what a crash now would keep
        seen.append(([p.seq for p in batch], venue.sequencer.durable_seq, on_disk[-1]))

    venue.subscribe(listener)
    for i in range(400):
        venue.submit(order(f"d{i}", side=(BUY, SELL)[i % 2], price=3_000_000 + i % 7))
    last = venue.execute(order("d-last")).seq
    published = [s for batch, _, _ in seen for s in batch]
    assert published == list(range(published[0], last + 1))  # in order, none missing
    for batch, durable, disk in seen:
        assert durable >= batch[-1] and disk >= batch[-1], (batch, durable, disk)
    assert venue.sequencer is not None and venue.sequencer.batches < 400  # group commit took batches


def test_queries_see_every_command_before_them(venue: Venue) -> None:
    published: list[int] = []
    venue.subscribe(lambda batch: published.extend(p.seq for p in batch))
    for i in range(200):
        venue.submit(order(f"q{i}", price=2_900_000 + i))
    seq, n_open, found = venue.query(lambda e: (e.seq, len(e.orders), e.find_order("w0", cl_ord_id="q199")))
    assert n_open >= 200 and found is not None and found.price == 2_900_199
    assert published and published[-1] == seq  # its answer came after the events before it
    assert venue.query(lambda e: e.seq) == seq


def test_a_failing_query_is_its_callers_answer(venue: Venue) -> None:
    with pytest.raises(KeyError):
        venue.query(lambda e: e.markets["NOPE"])
    assert venue.execute(order("after")).seq > 0


def test_bad_commands_are_refused_at_the_door(venue: Venue) -> None:
    for bad in (C.NewOrder("w0", "f", "BTC-USD", BUY, LIMIT, 1.5, price=3_000_000),  # type: ignore[arg-type]
                C.DefineInstrument({"symbol": object()}), C.NewOrder("w0", "s\ud800", "BTC-USD", BUY, LIMIT, 1, 1),
                ("not", "a", "command")):
        with pytest.raises(InvalidValue):
            venue.submit(bad)
    p = venue.execute(order("fine"))
    assert type(p.events[0]).__name__ == "Execution"


def test_one_failing_listener_does_not_stop_the_others(venue: Venue) -> None:
    got: list[int] = []

    def broken(batch: list[Processed]) -> None:
        raise RuntimeError("listener bug")

    venue.subscribe(broken)
    venue.subscribe(lambda batch: got.extend(p.seq for p in batch))
    seq = venue.execute(order("x")).seq
    assert seq in got


def test_unsubscribing_while_publishing_skips_no_other_listener(venue: Venue) -> None:
    seqs_b: list[int] = []

    def a(batch: list[Processed]) -> None:
        assert venue.sequencer is not None
        venue.sequencer.listeners.remove(a)  # leaves during its own call, as execute() does

    def b(batch: list[Processed]) -> None:
        seqs_b.extend(p.seq for p in batch)

    venue.subscribe(a)
    venue.subscribe(b)
    seq = venue.execute(order("y")).seq
    assert seq in seqs_b


class Boom:
    """A pre-trade risk extension with a bug: it raises on one ClOrdID."""

    def check_new(self, engine: Any, cmd: C.NewOrder, acct: Any, mkt: Any, price: int) -> None:
        if cmd.cl_ord_id == "boom":
            raise RuntimeError("risk extension bug")
        return None


def test_an_engine_exception_stops_the_venue_without_journaling_the_command(venue: Venue, tmp_path: Path) -> None:
    venue.query(lambda e: setattr(e, "risk", Boom()))
    good = venue.execute(order("good")).seq
    t0 = time.monotonic()
    with pytest.raises(VenueUnavailable):
        venue.execute(order("boom"))
    assert time.monotonic() - t0 < 5  # told at once, not after a timeout
    assert venue.sequencer is not None and isinstance(venue.sequencer.failed, RuntimeError)
    with pytest.raises(VenueUnavailable):
        venue.submit(order("after"))
    with pytest.raises(VenueUnavailable):
        venue.query(lambda e: e.seq)
    venue.stop(snapshot=False)
    recs = list(journal.read(str(tmp_path / "journal")))
    assert recs[-1].seq == good and all(getattr(r.cmd, "cl_ord_id", "") != "boom" for r in recs)
    again = Venue(str(tmp_path), fsync=True)
    report = again.open()
    assert report.last_seq == good and report.torn_bytes == 0


def test_calls_queued_behind_a_failing_command_are_answered(venue: Venue) -> None:
    venue.query(lambda e: setattr(e, "risk", Boom()))
    seq = venue.sequencer
    assert seq is not None
    gate = threading.Event()
    seq.call(lambda e: gate.wait(10), lambda _: None)  # holds the sequencer while the next batch queues
    answers: list[Any] = []
    answered = threading.Event()
    seq.submit(order("before"))
    seq.submit(order("boom"))
    seq.call(lambda e: e.seq, lambda r: (answers.append(r), answered.set()))
    gate.set()
    assert answered.wait(5), "a query behind the failing command was never answered"
    assert isinstance(answers[0], VenueUnavailable)
