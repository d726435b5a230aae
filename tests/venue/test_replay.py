"""Durability: a venue restarted from snapshot + journal, from the journal alone, or from an
older snapshot has the very same state hashes (and replays the very same events); a torn
journal tail is cut off and reported; a damaged record anywhere else refuses to open."""
from __future__ import annotations

import os
import random
import shutil
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from venue import journal
from venue.clock import TestClock
from venue.core import Venue
from venue.errors import CorruptJournal
from venue.factory import build_engine
from venue.sequencer import Processed
from venue.snapshot import list_snapshots

from tests.venue import workload
from tests.venue.harness import T0

HEADER = 16  # a segment's header: magic, version, reserved, first seq
FRAME = 8  # a record's frame: u32 length, u32 crc32


def open_venue(path: Path, clock: TestClock | None = None, **kw: Any) -> Venue:
    v = Venue(str(path), fsync=True, clock=clock or TestClock(T0), **kw)
    v.open()
    v.start()
    return v


def snapshot(v: Venue) -> str:
    done = threading.Event()
    box: list[Any] = []
    assert v.sequencer is not None
    v.sequencer.snapshot(lambda p: (box.append(p), done.set()))
    assert done.wait(10)
    assert box[0] is not None
    return str(box[0])


def hashes(v: Venue) -> dict[str, str]:
    return v.query(lambda e: e.state_hashes())


def drive(v: Venue, clock: TestClock, seed: int, n: int) -> int:
    """Submit ``n`` workload commands (the clock moving on so that GTD and Day orders
    expire) and wait until all are durable; returns the last sequence number."""
    for i, cmd in enumerate(workload.commands(seed, n, clock.now_ns)):
        v.submit(cmd)
        if i % 50 == 49:
            clock.advance(700_000_000)
    return v.execute(next(workload.commands(seed + 1, 1, clock.now_ns))).seq


class Recorder:
    """Keeps every published outcome, by sequence number."""

    def __init__(self) -> None:
        self.by_seq: dict[int, Processed] = {}
        self.lock = threading.Lock()

    def __call__(self, batch: list[Processed]) -> None:
        with self.lock:
            for p in batch:
                assert p.seq not in self.by_seq
                self.by_seq[p.seq] = p


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A venue run with two snapshots and commands before, between and after them."""
    path = tmp_path_factory.mktemp("venue") / "data"
    clock = TestClock(T0)
    v = open_venue(path, clock)
    rec = Recorder()
    v.subscribe(rec)
    for cmd in workload.setup_commands():
        v.submit(cmd)
    drive(v, clock, 1, 500)
    snap1 = snapshot(v)
    drive(v, clock, 2, 500)
    snap2 = snapshot(v)
    last = drive(v, clock, 3, 500)
    expect = hashes(v)
    stats = v.query(lambda e: (len(e.orders), e.markets["BTC-USD"].last_px, len(e.recent)))
    v.stop(snapshot=False)
    return {"path": path, "hashes": expect, "last": last, "events": rec.by_seq, "stats": stats,
            "snaps": [int(os.path.basename(s)[5:21]) for s in (snap1, snap2)]}


def copy_of(original: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(original["path"], dst)
    return dst


def recover(path: Path) -> tuple[Venue, Any, list[Processed]]:
    replayed: list[Processed] = []
    v = Venue(str(path), fsync=True, clock=TestClock(T0))
    report = v.open(on_replay=replayed.append)
    return v, report, replayed


def test_the_workload_is_worth_replaying(original: dict[str, Any]) -> None:
    open_orders, last_px, closed = original["stats"]
    assert open_orders > 20 and last_px > 0 and closed > 200
    kinds = {type(e).__name__ for p in original["events"].values() for e in p.events}
    assert {"Execution", "Trade", "OrderRejected", "CancelRejected", "MassCancelReport", "FundingPosted",
            "CommandRejected", "InstrumentStatus"} <= kinds
    execs = [e for p in original["events"].values() for e in p.events if type(e).__name__ == "Execution"]
    assert {e.kind for e in execs} >= {0, 1, 4, 5, 7, 8}  # new, fill, cancelled, replaced, expired, triggered
    assert any(type(p.cmd).__name__ == "Tick" and p.origin is None for p in original["events"].values())


@pytest.mark.parametrize("case", ["latest snapshot", "older snapshot", "journal only"])
def test_restart_gives_the_same_hashes_and_events(original: dict[str, Any], tmp_path: Path, case: str) -> None:
    path = copy_of(original, tmp_path)
    snaps = list_snapshots(str(path / "snapshots"))
    assert [s for s, _ in snaps] == original["snaps"]
    if case == "older snapshot":
        os.unlink(snaps[-1][1])
    elif case == "journal only":
        shutil.rmtree(path / "snapshots")
    v, report, replayed = recover(path)
    base = {"latest snapshot": original["snaps"][1], "older snapshot": original["snaps"][0], "journal only": 0}[case]
    assert (report.snapshot_seq, report.last_seq, report.torn_bytes) == (base, original["last"], 0)
    assert report.replayed == original["last"] - base
    assert v.engine is not None and v.engine.state_hashes() == original["hashes"]
    # the replay said exactly what the live venue said, ids and all
    assert [p.seq for p in replayed] == list(range(base + 1, original["last"] + 1))
    for p in replayed:
        live = original["events"][p.seq]
        assert (p.ts, p.cmd, p.events) == (live.ts, live.cmd, live.events)
    v.engine.check_invariants()


def test_a_recovered_venue_runs_on_and_recovers_again(original: dict[str, Any], tmp_path: Path) -> None:
    path = copy_of(original, tmp_path)
    clock = TestClock(T0 + 10**12)
    v = open_venue(path, clock)
    last = drive(v, clock, 9, 200)
    expect = hashes(v)
    v.stop()  # with a snapshot at the end
    v2, report, _ = recover(path)
    assert report.snapshot_seq == last and report.replayed == 0
    assert v2.engine is not None and v2.engine.state_hashes() == expect
    shutil.rmtree(path / "snapshots")
    v3, report, _ = recover(path)
    assert report.replayed == last
    assert v3.engine is not None and v3.engine.state_hashes() == expect


def test_stop_and_reopen_without_commands(tmp_path: Path) -> None:
    v = open_venue(tmp_path)
    for cmd in workload.setup_commands():
        v.submit(cmd)
    v.execute(workload.setup_commands()[0])  # refused (asset exists) but sequenced
    expect = hashes(v)
    v.stop()
    for _ in range(2):
        v = open_venue(tmp_path)
        assert hashes(v) == expect
        v.stop()
    assert journal.scan(str(tmp_path / "journal"))[-1].records == 0  # an empty segment after the last snapshot


# ------------------------------------------------------------------------------ torn tails
def records(segment: Path) -> list[tuple[int, int]]:
    """(offset, length incl. frame) of each record, read by the documented format."""
    data = segment.read_bytes()
    out, off = [], HEADER
    while off < len(data):
        (length,) = struct.unpack_from("<I", data, off)
        out.append((off, FRAME + length))
        off += FRAME + length
    assert off == len(data)
    return out


def last_segment(path: Path) -> Path:
    return Path(journal.list_segments(str(path / "journal"))[-1][1])


def journal_only(original: dict[str, Any], tmp_path: Path) -> Path:
    path = copy_of(original, tmp_path)
    shutil.rmtree(path / "snapshots")
    return path


def hashes_after(path: Path, upto: int) -> dict[str, str]:
    """The state after the first ``upto`` commands of the journal, by a plain engine."""
    e = build_engine()
    for r in journal.read(str(path / "journal")):
        if r.seq > upto:
            break
        e.process(r.seq, r.ts, r.cmd)
    assert e.seq == upto
    return e.state_hashes()


@pytest.mark.parametrize("garbage", ["none", "zeros", "random", "frame-like"])
@pytest.mark.parametrize("cut", ["mid-payload", "mid-frame"])
def test_torn_tail_is_cut_and_reported(original: dict[str, Any], tmp_path: Path, garbage: str, cut: str) -> None:
    path = journal_only(original, tmp_path)
    seg = last_segment(path)
    expect = hashes_after(path, original["last"] - 1)
    off, length = records(seg)[-1]
    keep = off + (length // 2 if cut == "mid-payload" else 5)
    rng = random.Random(garbage)
    tail = {"none": b"", "zeros": bytes(4096), "random": rng.randbytes(3000),
            "frame-like": struct.pack("<II", 20, 12345) + rng.randbytes(20)}[garbage]
    data = seg.read_bytes()
    seg.write_bytes(data[:keep] + tail)
    v, report, _ = recover(path)
    assert report.last_seq == original["last"] - 1
    assert report.torn_bytes == keep - off + len(tail)
    assert f"at byte {off}" in report.problem
    assert v.engine is not None and v.engine.state_hashes() == expect
    assert seg.read_bytes() == data[:off]  # cut back to the last whole record
    # and it takes new commands after it
    v.start()
    p = v.execute(workload.setup_commands()[0])
    assert p.seq == original["last"]
    v.stop(snapshot=False)
    v2, report, _ = recover(path)
    assert report.torn_bytes == 0 and report.last_seq == original["last"]


def test_segment_without_its_header_is_a_torn_tail(original: dict[str, Any], tmp_path: Path) -> None:
    """A crash while a new segment was being created leaves a file shorter than its header."""
    path = journal_only(original, tmp_path)
    first_new = original["last"] + 1
    stub = path / "journal" / f"seg-{first_new:016d}.jnl"
    stub.write_bytes(b"VJN")
    v, report, _ = recover(path)
    assert (report.last_seq, report.torn_bytes) == (original["last"], 3)
    assert not stub.exists()
    assert v.engine is not None and v.engine.state_hashes() == original["hashes"]


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["payload", "crc", "length", "length-past-the-end", "length-huge"])
def test_damage_in_the_middle_refuses_to_open(original: dict[str, Any], tmp_path: Path, where: str) -> None:
    path = journal_only(original, tmp_path)
    seg = last_segment(path)
    recs = records(seg)
    off, length = recs[len(recs) // 2]
    # a length 4 MB too long runs past the end of the file like a torn write, yet whole records follow it
    at = {"payload": off + FRAME + length // 2, "crc": off + 5, "length": off, "length-past-the-end": off + 2,
          "length-huge": off + 3}[where]
    flip(seg, at)
    before = seg.read_bytes()
    v = Venue(str(path), fsync=True, clock=TestClock(T0))
    with pytest.raises(CorruptJournal) as e:
        v.open()
    assert str(seg) in str(e.value) and f"at byte {off}" in str(e.value)
    assert seg.read_bytes() == before  # nothing was cut


def test_damage_in_an_earlier_segment_refuses_even_at_its_end(original: dict[str, Any], tmp_path: Path) -> None:
    path = journal_only(original, tmp_path)
    segs = journal.list_segments(str(path / "journal"))
    assert len(segs) >= 2
    first = Path(segs[0][1])
    off, length = records(first)[-1]
    flip(first, off + length - 1)  # the last byte of its last record
    with pytest.raises(CorruptJournal, match=f"checksum mismatch at byte {off}"):
        Venue(str(path), fsync=True).open()


def test_a_sequence_gap_refuses(original: dict[str, Any], tmp_path: Path) -> None:
    path = journal_only(original, tmp_path)
    seg = last_segment(path)
    data = seg.read_bytes()
    recs = records(seg)
    off, length = recs[3]
    seg.write_bytes(data[:off] + data[off + length:])  # a whole record missing
    with pytest.raises(CorruptJournal, match="where .* was expected"):
        Venue(str(path), fsync=True).open()


def test_a_checksummed_record_that_is_not_a_command_refuses(original: dict[str, Any], tmp_path: Path) -> None:
    path = journal_only(original, tmp_path)
    seg = last_segment(path)
    data = seg.read_bytes()
    off, length = records(seg)[2]
    junk = b"\x93\x01\x02\x03"  # msgpack, but not (seq, ts, tag, fields)
    seg.write_bytes(data[:off] + struct.pack("<II", len(junk), zlib.crc32(junk)) + junk + data[off + length:])
    with pytest.raises(CorruptJournal, match=f"undecodable journal record.* at byte {off}"):
        Venue(str(path), fsync=True).open()


def test_a_damaged_newest_snapshot_falls_back_to_the_older_one(original: dict[str, Any], tmp_path: Path) -> None:
    path = copy_of(original, tmp_path)
    snaps = list_snapshots(str(path / "snapshots"))
    flip(Path(snaps[-1][1]), 100)
    v, report, _ = recover(path)
    assert report.snapshot_seq == original["snaps"][0]
    assert v.engine is not None and v.engine.state_hashes() == original["hashes"]
