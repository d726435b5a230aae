"""journal.Tail: another process's view of a journal being written. It returns each
whole record once, in order, never past the durable mark, waits for a record that is
not yet whole, and moves on to the next segment when one begins."""
from __future__ import annotations

import pytest

from venue import commands as C
from venue import journal
from venue.codec import encode
from venue.errors import CorruptJournal


def rec(seq: int) -> bytes:
    return journal.frame(encode(seq, seq * 10, C.Deposit(f"f{seq}", "A", "USD", seq)))


def seqs(records) -> list[int]:
    return [r.seq for r in records]


def test_follows_appends_up_to_the_durable_mark_and_across_segments(tmp_path) -> None:
    d = str(tmp_path / "j")
    w = journal.JournalWriter(d, fsync=False)
    w.open()
    t = journal.Tail(d)
    assert t.poll() == [] and journal.durable_seq(d) == 0
    w.append(rec(1) + rec(2), 2)
    assert t.poll() == []  # appended, not yet durable
    w.sync()
    assert seqs(t.poll()) == [1, 2] and t.poll() == []
    w.append(rec(3), 3)
    w.sync()
    w.start_segment(4)  # as a snapshot does
    w.append(rec(4) + rec(5), 5)
    w.sync()
    assert seqs(t.poll()) == [3, 4, 5]
    assert seqs(t.poll(upto=5)) == []
    w.close()
    # a reader starting later skips what it already has
    assert seqs(journal.Tail(d, after_seq=3).poll()) == [4, 5]


def test_a_record_not_yet_whole_is_waited_for(tmp_path) -> None:
    d = str(tmp_path / "j")
    w = journal.JournalWriter(d, fsync=False)
    w.open()
    w.append(rec(1), 1)
    w.sync()
    t = journal.Tail(d)
    assert seqs(t.poll()) == [1]
    whole = rec(2)
    w.append(whole[:7], 1)  # half a record on disk (the writer is mid-write)
    assert t.poll(upto=2) == []
    w.append(whole[7:], 2)
    w.sync()
    assert seqs(t.poll()) == [2]


def test_a_sequence_gap_is_corruption(tmp_path) -> None:
    d = str(tmp_path / "j")
    w = journal.JournalWriter(d, fsync=False)
    w.open()
    w.append(rec(1) + rec(3), 3)
    w.sync()
    with pytest.raises(CorruptJournal):
        journal.Tail(d).poll()
