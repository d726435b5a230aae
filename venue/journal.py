"""The journal: every state-changing command, in sequence, durable before any ack.

Layout: ``<dir>/seg-<first seq>.jnl`` segment files. A segment starts with a 16-byte
header (magic ``VJNL``, version, first sequence number) followed by records::

    u32 length | u32 crc32(payload) | payload (see venue.codec)

Recovery reads every segment. A bad record (cut short, failing its checksum, garbage)
in the last segment *after which no whole record follows* is a torn tail from a crash:
it is cut off (that command was never acknowledged, because acknowledgement waits for
fsync), and so is a last segment whose header was never completely written. A bad record
with a whole record after it, a bad record in an earlier segment, or a gap in the
sequence numbers is corruption: opening refuses with :class:`CorruptJournal` and names
the place, rather than silently skipping past it.

The writer does no threading itself: :class:`venue.sequencer.Sequencer` appends batches
and calls :meth:`JournalWriter.sync` once per batch (group commit). After each sync it
records the durable sequence number in ``<dir>/durable`` (8 bytes, written in place,
never fsynced: after a machine crash it can only be behind the journal, never ahead), so
a reader in another process (:class:`Tail`, the SQL store's follower) takes only what
can no longer be lost.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from venue.codec import Record, decode
from venue.errors import CorruptJournal, JournalError

MAGIC = b"VJNL"
VERSION = 1
_HEADER = struct.Struct("<4sHHQ")  # magic, version, reserved, first seq
_REC = struct.Struct("<II")  # payload length, crc32
MAX_RECORD = 16 * 1024 * 1024
_DURABLE = struct.Struct("<Q")
DURABLE_FILE = "durable"


def frame(payload: bytes) -> bytes:
    return _REC.pack(len(payload), zlib.crc32(payload)) + payload


def _segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:016d}.jnl"


def list_segments(directory: str) -> list[tuple[int, str]]:
    """(first seq, path) of each segment, in order."""
    if not os.path.isdir(directory):
        return []
    out = []
    for name in os.listdir(directory):
        if name.startswith("seg-") and name.endswith(".jnl"):
            try:
                out.append((int(name[4:-4]), os.path.join(directory, name)))
            except ValueError:
                continue
    return sorted(out)


@dataclass
class ScanResult:
    path: str
    first_seq: int
    last_seq: int  # 0 if the segment holds no record
    records: int
    good_bytes: int  # offset just past the last whole record
    file_bytes: int
    torn: bool = False  # a partial or bad record at the end
    problem: str = ""


def _check_header(head: bytes, path: str) -> int:
    magic, version, _, first = _HEADER.unpack(head)
    if magic != MAGIC or version != VERSION:
        raise CorruptJournal(f"{path}: not a journal segment of version {VERSION}")
    return first


def _iter_segment(path: str, result: ScanResult | None = None) -> Iterator[Record]:
    """Records of one segment. A bad record stops the iteration and is described in
    ``result`` (torn = nothing whole follows it)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:  # a crash while the segment was being created
            if result is not None:
                result.file_bytes, result.good_bytes = size, 0
            _stop(result, f"segment header cut short ({len(head)} bytes)", torn=True)
            return
        first = _check_header(head, path)
        if result is not None:
            result.first_seq, result.file_bytes, result.good_bytes = first, size, _HEADER.size
        pos = _HEADER.size
        data = f.read()
    view = memoryview(data)
    off = 0
    n = len(data)
    expect = first
    while off < n:
        if n - off < _REC.size:
            _stop(result, f"record header cut short at byte {pos + off}", torn=True)
            return
        length, crc = _REC.unpack_from(view, off)
        end = off + _REC.size + length
        if length > MAX_RECORD or end > n:
            # A length running past the end of the file is what a crash mid-write leaves
            # (or a damaged length field: then whole records follow it).
            _stop(result, f"record at byte {pos + off} runs past the end of the file",
                  torn=not _whole_record_after(view, off + 1))
            return
        payload = bytes(view[off + _REC.size:end])
        if zlib.crc32(payload) != crc:
            _stop(result, f"checksum mismatch at byte {pos + off}", torn=not _whole_record_after(view, off + 1))
            return
        try:
            rec = decode(payload)
        except CorruptJournal as e:  # whole and checksummed, yet not a command: never a torn write
            _stop(result, f"{e} at byte {pos + off}", torn=False)
            return
        if rec.seq != expect:
            _stop(result, f"sequence {rec.seq} where {expect} was expected at byte {pos + off}", torn=False)
            return
        expect += 1
        off = end
        if result is not None:
            result.records += 1
            result.last_seq = rec.seq
            result.good_bytes = pos + off
        yield rec


def _whole_record_after(view: memoryview, start: int) -> bool:
    """Does a whole record (framing, checksum and payload all good) begin anywhere at or
    after ``start``? Only asked once a bad record is found, to tell a torn tail (nothing
    whole after it) from damage in the middle."""
    n = len(view)
    for off in range(start, n - _REC.size + 1):
        length, crc = _REC.unpack_from(view, off)
        end = off + _REC.size + length
        if length > MAX_RECORD or end > n:
            continue
        payload = bytes(view[off + _REC.size:end])
        if zlib.crc32(payload) != crc:
            continue
        try:
            decode(payload)
        except CorruptJournal:
            continue
        return True
    return False


def _stop(result: ScanResult | None, problem: str, torn: bool) -> None:
    if result is not None:
        result.problem = problem
        result.torn = torn


def scan(directory: str) -> list[ScanResult]:
    """Check every segment; raise CorruptJournal on anything but a torn tail of the last."""
    segs = list_segments(directory)
    results = []
    prev_last = None
    for i, (first, path) in enumerate(segs):
        r = ScanResult(path, first, 0, 0, 0, 0)
        for _ in _iter_segment(path, r):
            pass
        if r.problem and (not r.torn or i != len(segs) - 1):
            raise CorruptJournal(f"{path}: {r.problem}")
        if prev_last is not None and r.first_seq != prev_last + 1:
            raise CorruptJournal(f"{path}: starts at sequence {r.first_seq} but the previous segment ends at {prev_last}")
        prev_last = r.last_seq if r.records else r.first_seq - 1
        results.append(r)
    return results


def read(directory: str, after_seq: int = 0) -> Iterator[Record]:
    """Every whole record with seq > ``after_seq``, in order. Stops at a torn tail of the
    last segment; raises CorruptJournal on anything else."""
    segs = list_segments(directory)
    for i, (_, path) in enumerate(segs):
        if i + 1 < len(segs) and segs[i + 1][0] - 1 <= after_seq:
            continue  # the whole segment is at or before after_seq
        r = ScanResult(path, 0, 0, 0, 0, 0)
        for rec in _iter_segment(path, r):
            if rec.seq > after_seq:
                yield rec
        if r.problem and (not r.torn or i != len(segs) - 1):
            raise CorruptJournal(f"{path}: {r.problem}")


@dataclass
class Recovery:
    last_seq: int = 0
    torn_bytes: int = 0
    problem: str = ""
    segments: list[ScanResult] = field(default_factory=list)


class JournalWriter:
    """Appends framed records to the newest segment. Not thread-safe: one writer."""

    def __init__(self, directory: str, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self.fd = -1
        self.path = ""
        self.last_seq = 0
        self.bytes_written = 0
        self._durable_fd = -1

    def open(self) -> Recovery:
        """Scan the journal, cut off a torn tail, and open the last segment for appending."""
        os.makedirs(self.directory, exist_ok=True)
        results = scan(self.directory)
        rec = Recovery(segments=results)
        if results and results[-1].torn:
            last = results[-1]
            rec.torn_bytes = last.file_bytes - last.good_bytes
            rec.problem = last.problem
            if last.good_bytes == 0:  # not even its header: the segment never began
                os.unlink(last.path)
                _fsync_dir(self.directory)
                results.pop()
            else:
                with open(last.path, "r+b") as f:
                    f.truncate(last.good_bytes)
                    f.flush()
                    os.fsync(f.fileno())
        if results:
            last = results[-1]
            rec.last_seq = last.last_seq if last.records else last.first_seq - 1
            self.path = last.path
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.last_seq = rec.last_seq
        self._durable_fd = os.open(os.path.join(self.directory, DURABLE_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        self._mark_durable()
        return rec

    def _mark_durable(self) -> None:
        if self._durable_fd >= 0:
            os.pwrite(self._durable_fd, _DURABLE.pack(self.last_seq), 0)

    def start_segment(self, first_seq: int) -> None:
        """Begin a new segment whose first record will be ``first_seq``."""
        if first_seq != self.last_seq + 1:
            raise JournalError(f"new segment at {first_seq} after {self.last_seq}")
        path = os.path.join(self.directory, _segment_name(first_seq))
        if self.fd >= 0 and self.path == path:
            return  # the open segment already starts there and is empty (two snapshots at one seq)
        if self.fd >= 0:
            self.sync()
            os.close(self.fd)
        self.path = path
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.write(fd, _HEADER.pack(MAGIC, VERSION, 0, first_seq))
        if self.fsync:
            os.fsync(fd)
            _fsync_dir(self.directory)
        self.fd = fd

    def append(self, data: bytes, last_seq: int) -> None:
        """Append already framed records (one batch) ending with ``last_seq``."""
        if self.fd < 0:
            self.start_segment(self.last_seq + 1)
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.bytes_written += len(data)
        self.last_seq = last_seq

    def sync(self) -> None:
        if self.fsync and self.fd >= 0:
            os.fdatasync(self.fd)
        self._mark_durable()

    def close(self) -> None:
        if self.fd >= 0:
            self.sync()
            os.close(self.fd)
            self.fd = -1
        if self._durable_fd >= 0:
            os.close(self._durable_fd)
            self._durable_fd = -1


def durable_seq(directory: str) -> int:
    """The newest sequence number the running writer has made durable (0 if unknown)."""
    try:
        with open(os.path.join(directory, DURABLE_FILE), "rb") as f:
            data = f.read(_DURABLE.size)
    except FileNotFoundError:
        return 0
    return _DURABLE.unpack(data)[0] if len(data) == _DURABLE.size else 0


class Tail:
    """Follows a journal another process is writing: :meth:`poll` returns the whole
    records after the last one returned, up to the durable mark, reading only what was
    appended since the previous poll (and moving on to the next segment when one
    begins). A record that is not yet whole is waited for; a record that is whole but
    wrong (checksum, sequence) is corruption and raises."""

    def __init__(self, directory: str, after_seq: int = 0) -> None:
        self.directory = directory
        self.last_seq = after_seq
        self._path = ""
        self._f: Any = None
        self._buf = bytearray()

    def _open_next(self) -> bool:
        """Open the segment holding ``last_seq + 1``; False if none does yet."""
        want = self.last_seq + 1
        segs = list_segments(self.directory)
        cands = [(first, path) for first, path in segs if first <= want]
        if not cands:
            return False
        first, path = cands[-1]
        if path == self._path:
            return False
        if self._f is not None:
            self._f.close()
        f = open(path, "rb")
        head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:  # being created: try again later
            f.close()
            return False
        _check_header(head, path)
        self._f, self._path, self._buf = f, path, bytearray()
        # skip the records at or before last_seq
        for rec in self._records(upto=want - 1):
            pass
        return True

    def _records(self, upto: int) -> list[Record]:
        out: list[Record] = []
        if self._f is None:
            return out
        self._buf += self._f.read()
        view = memoryview(self._buf)
        off, n = 0, len(self._buf)
        while n - off >= _REC.size:
            length, crc = _REC.unpack_from(view, off)
            end = off + _REC.size + length
            if length > MAX_RECORD:
                raise CorruptJournal(f"{self._path}: record length {length} beyond the maximum")
            if end > n:
                break  # not whole yet
            payload = bytes(view[off + _REC.size:end])
            if zlib.crc32(payload) != crc:
                break  # being written (or torn): the durable mark says whether to wait
            rec = decode(payload)
            if rec.seq > upto:
                break
            off = end
            if rec.seq <= self.last_seq:
                continue
            if rec.seq != self.last_seq + 1:
                raise CorruptJournal(f"{self._path}: sequence {rec.seq} after {self.last_seq}")
            self.last_seq = rec.seq
            out.append(rec)
        view.release()
        del self._buf[:off]
        return out

    def poll(self, upto: int | None = None) -> list[Record]:
        """New whole records up to ``upto`` (default: the durable mark)."""
        limit = durable_seq(self.directory) if upto is None else upto
        if limit <= self.last_seq:
            return []
        if self._f is None and not self._open_next():
            return []
        out = self._records(limit)
        while self.last_seq < limit and self._open_next():  # the rest is in a newer segment
            out += self._records(limit)
        return out

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
