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
from venue.types import BUY, GTD, LIMIT, SELL, ExecKind

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


# -- batch(): the submitting thread runs the step itself -----------------------------------
def _idle(venue: Venue) -> Any:
    """The sequencer, with everything queued before run (its thread now waits for work)."""
    venue.query(lambda e: e.seq)
    assert venue.sequencer is not None
    return venue.sequencer


def test_a_batch_queues_its_commands_and_runs_them_on_its_own_thread_at_its_end(venue: Venue) -> None:
    seq = _idle(venue)
    ran_on: list[tuple[int, list[str]]] = []
    venue.subscribe(lambda batch: ran_on.append((threading.get_ident(), [p.cmd.cl_ord_id for p in batch])))
    steps = seq.inline_steps
    with venue.batch():
        for i in range(30):
            venue.submit(order(f"b{i}", side=(BUY, SELL)[i % 2], price=3_000_000 + i % 3))
        time.sleep(0.05)  # the sequencer thread could run them now: it was not woken
        assert seq.pending() == 30 and ran_on == []  # queued, not run
    assert seq.pending() == 0 and seq.inline_steps == steps + 1
    assert ran_on == [(threading.get_ident(), [f"b{i}" for i in range(30)])]  # one step, here, in order


def test_a_query_inside_a_batch_sees_the_commands_before_it(venue: Venue) -> None:
    _idle(venue)
    with venue.batch():
        venue.submit(order("q-in"))
        found = venue.query(lambda e: e.find_order("w0", cl_ord_id="q-in"), timeout=5)
        venue.submit(order("q-after"))
    assert found is not None and found.info.cl_ord_id == "q-in"
    assert venue.query(lambda e: e.find_order("w0", cl_ord_id="q-after")) is not None


def test_batched_and_queued_submitters_interleave_without_gaps_or_reordering(venue: Venue) -> None:
    seq = _idle(venue)
    published: list[Processed] = []
    durable_ok: list[bool] = []

    def listener(batch: list[Processed]) -> None:
        published.extend(batch)
        durable_ok.append(seq.durable_seq >= batch[-1].seq)

    venue.subscribe(listener)
    first = venue.query(lambda e: e.seq) + 1

    def batched() -> None:
        for k in range(25):
            with venue.batch():
                for i in range(20):
                    venue.submit(C.NewOrder("w1", f"a{k * 20 + i}", "BTC-USD", BUY, LIMIT, 100, price=2_000_000))

    def queued() -> None:
        for i in range(500):
            venue.submit(C.NewOrder("w2", f"q{i}", "BTC-USD", SELL, LIMIT, 100, price=4_000_000))

    ts = [threading.Thread(target=batched), threading.Thread(target=queued)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    last = venue.query(lambda e: e.seq)
    assert [p.seq for p in published] == list(range(first, last + 1))  # every command once, in sequence
    clids = [p.cmd.cl_ord_id for p in published]
    assert [c for c in clids if c[0] == "a"] == [f"a{i}" for i in range(500)]
    assert [c for c in clids if c[0] == "q"] == [f"q{i}" for i in range(500)]
    assert all(durable_ok) and seq.inline_steps > 0


def test_an_expiry_set_by_a_batch_wakes_the_sequencer_thread(tmp_path: Path) -> None:
    v = Venue(str(tmp_path), fsync=True)  # the live clock: the expiry comes by itself
    v.open()
    v.start()
    try:
        for cmd in workload.setup_commands():
            v.submit(cmd)
        _idle(v)
        expired = threading.Event()

        def listener(batch: list[Processed]) -> None:
            for p in batch:
                for ev in p.events:
                    if getattr(ev, "kind", None) == ExecKind.EXPIRED and ev.info.cl_ord_id == "gtd":
                        expired.set()

        v.subscribe(listener)
        with v.batch():
            v.submit(C.NewOrder("w0", "gtd", "BTC-USD", BUY, LIMIT, 100, price=3_000_000, tif=int(GTD),
                                expire_ts=time.time_ns() + 300_000_000))
        assert expired.wait(5), "the GTD order did not expire without another command"
    finally:
        v.stop(snapshot=False)
