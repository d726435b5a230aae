"""How increments go out to many subscribers, over real sockets: an increment larger
than ``max_entries`` is split over several X messages (its entries keep its RptSeq) and
the client still ends with the engine's book, order by order and at full depth; the X
of a feed is built once and sent to every subscriber of that feed with only its MDReqID
changed (the same entries, byte for byte), carried inside QuickFIX as one preformatted
field that puts on the wire exactly the bytes of the message parsed field by field; a
conflating session gets several increments per X."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import quickfix as fix

from marketdata import Book, FeedSpec, Increment, Snapshot
from sessions import mdfix
from tests.marketdata.md_flow import SYMBOLS, Flow
from tests.mdsessions.fixbook import FixMdClient, entries, fields, send
from tests.mdsessions.test_mdsession_books import drain, engine_view, matches, request
from tests.mdsessions.venues import MdVenue, wait_until
from tests.sessions.fixclients import QfClient

MAX_ENTRIES = 7
SAME_SHAPE = [f"same-{i}" for i in range(5)]  # five subscribers of one feed (L2 full depth with trades)


@pytest.fixture(scope="module")
def mv(tmp_path_factory: Any) -> Iterator[MdVenue]:
    # no lag snapshots (max_pending): every increment goes out as X
    v = MdVenue(str(tmp_path_factory.mktemp("mdfanout") / "venue"), Flow(99), max_pending=1_000_000,
                max_entries=MAX_ENTRIES)
    yield v
    v.stop()


def test_large_increments_are_split_and_one_build_serves_every_subscriber(mv: MdVenue, tmp_path: Any) -> None:
    client = QfClient(mv.port, "MD-CLIENT", "md", "md-demo", str(tmp_path / "client"))
    book = FixMdClient()
    raw: list[bytes] = []

    def read() -> None:
        while not client.app.inbox.empty():
            m = client.app.inbox.get().raw
            raw.append(m)
            book.apply(m)

    try:
        assert client.wait_logon()
        send(client, "V", request("orders", 0, "012", "N", SYMBOLS))
        for req in SAME_SHAPE:
            send(client, "V", request(req, 0, "012", "Y", SYMBOLS[:1]))
        wait_until(lambda: (read(), len(book.books) == len(SYMBOLS) + len(SAME_SHAPE))[1], what="the W")
        st0 = mv.md_status()
        for _ in range(4):
            mv.run_flow(400, waited=0.02)  # mostly queued at once: batches, hence increments, of many entries
        final = {s: mv.venue.query(lambda e, s=s: engine_view(e, s)) for s in SYMBOLS}
        wait_until(lambda: (read(), all(matches(book.books[("orders", s)], final[s], 0, "012", "N") for s in SYMBOLS)
                            and all(matches(book.books[(r, SYMBOLS[0])], final[SYMBOLS[0]], 0, "012", "Y")
                                    for r in SAME_SHAPE))[1], what="the books")
        st = mv.md_status()
        built, sent = st["built"] - st0["built"], st["sent"] - st0["sent"]
    finally:
        client.stop()
    assert all(b.gaps == 0 for b in book.books.values())
    xs = [fields(m) for m in raw if b"\x0135=X\x01" in m]
    sizes = [int(dict(f)[268]) for f in xs]
    assert max(sizes) == MAX_ENTRIES and all(0 < n <= MAX_ENTRIES for n in sizes)
    split = [f for f in xs if len({e[83] for e in entries(f, 268, 279)[1]}) == 1]
    rpts = [(dict(f)[262], entries(f, 268, 279)[1][0][83]) for f in split]
    assert len(rpts) > len(set(rpts))  # some increments went out over several X, each entry with its RptSeq
    # the five subscribers of one feed got the very same entries, each under its MDReqID
    by_req: dict[str, list[bytes]] = {r: [] for r in SAME_SHAPE}
    for m in raw:
        if b"\x0135=X\x01" in m:
            req = dict(fields(m))[262]
            if req in by_req:
                by_req[req].append(m[m.index(b"\x01268="):m.rindex(b"\x0110=")])
    assert all(by_req[r] == by_req[SAME_SHAPE[0]] for r in SAME_SHAPE) and by_req[SAME_SHAPE[0]]
    # built once per feed and range, not once per subscriber: the four other same-shape
    # subscribers' messages cost no build
    assert built <= sent - (len(SAME_SHAPE) - 1) * len(by_req[SAME_SHAPE[0]])


def test_a_conflating_session_gets_one_x_per_interval_and_the_same_book(mv: MdVenue, tmp_path: Any) -> None:
    """With ``conflate``, a subscription gets at most one delivery per interval: the
    increments of many small batches go out together (each entry with its own RptSeq),
    and the book is the same."""
    mv.configure(conflate=0.25)
    client = QfClient(mv.port, "MD-QUANT", "quant", "quant-demo", str(tmp_path / "client"))
    book = FixMdClient()
    raw: list[bytes] = []

    def read() -> None:
        while not client.app.inbox.empty():
            m = client.app.inbox.get().raw
            raw.append(m)
            book.apply(m)

    try:
        assert client.wait_logon()
        send(client, "V", request("conflated", 0, "012", "Y", SYMBOLS[:1]))
        wait_until(lambda: (read(), len(book.books) == 1)[1], what="the W")
        n0 = len(raw)
        mv.run_flow(300, waited=1.0)  # one batch per command: an increment every few ms
        final = mv.venue.query(lambda e: engine_view(e, SYMBOLS[0]))
        wait_until(lambda: (read(), matches(book.books[("conflated", SYMBOLS[0])], final, 0, "012", "Y"))[1],
                   what="the book")
    finally:
        mv.configure(conflate=0.0)
        client.stop()
    xs = [fields(m) for m in raw[n0:] if b"\x0135=X\x01" in m]
    increments = {e[83] for f in xs for e in entries(f, 268, 279)[1]}
    b = book.books[("conflated", SYMBOLS[0])]
    assert b.gaps == 0 and b.snapshots == 1
    # far fewer messages than increments: several increments per X, by time
    assert len(increments) > 3 * len(xs), (len(increments), len(xs))


def test_a_carried_message_has_the_bytes_of_the_parsed_one(mv: MdVenue) -> None:
    """FixBuilder.carried (the group as one preformatted field) puts on the wire exactly
    what the message parsed field by field against the dictionary would, and passes it."""
    build = mdfix.FixBuilder(mv.server.cfg.dictionary)
    mv.run_flow(200)
    inst = mv.server.app.instrument(SYMBOLS[0])
    assert inst is not None
    sub = mv.md.subscribe(FeedSpec(SYMBOLS[0], int(Book.L3)))
    try:
        snap = sub.take()[0]
        mv.run_flow(100, waited=0.0)
        incs = [m for m in sub.poll(5.0)]
    finally:
        sub.close()
    assert type(snap) is Snapshot and incs and all(type(m) is Increment for m in incs)
    entries_x = [e for m in incs for e in mdfix.increment_entries(m, inst)]
    pairs = [
        (build.message("W", mdfix.snapshot_body(snap, inst, "r1")),
         mdfix.FixBuilder.carried("W", [(55, inst.symbol), (83, str(snap.rpt_seq)), (262, "r1")], 268,
                                  mdfix.snapshot_entries(snap, inst))),
        (build.message("X", mdfix.incremental_body("r2", len(entries_x), "".join(entries_x))),
         mdfix.FixBuilder.carried("X", [(262, "r2")], 268, entries_x)),
    ]
    for parsed, carried in pairs:
        for m in (parsed, carried):
            for tag, value in ((8, "FIX.4.4"), (49, "VENUE"), (56, "MD-CLIENT"), (34, "7"),
                               (52, "20261204-12:00:00.000000")):
                m.getHeader().setField(tag, value)
        assert carried.toString() == parsed.toString()
        again = fix.Message(carried.toString(), build.dd, True)
        fix.DataDictionary.validate(again, build.dd, build.dd)
        assert again.groupCount(268) > 0
