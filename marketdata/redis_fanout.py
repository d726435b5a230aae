"""Market data to Redis, and back: a publisher thread and a stream consumer.

Per instrument, under a key prefix (default ``md``)::

    md:instruments          hash  symbol -> Instrument record (JSON: tick size, lot size, limits)
    md:<SYMBOL>             pub/sub channel: every increment, and reset notices
    md:<SYMBOL>:stream      stream (XADD ... MAXLEN ~ maxlen) of entries
                              {type: "increment", rpt_seq, msg: <increment JSON>}
                              {type: "reset", rpt_seq}: the numbering restarted from a new snapshot
    md:<SYMBOL>:snapshot    string: the latest snapshot JSON (see :mod:`marketdata.wire`), with
                              the id of the last stream entry it already contains

To follow a book: read the snapshot, then the stream entries after its ``stream_id``,
applying increments in RptSeq order; a hole in RptSeq (the stream was trimmed past you)
or a reset you did not expect means: read the snapshot again. :class:`RedisBookConsumer`
does exactly that. The publisher refreshes the snapshot every ``snapshot_every``
increments, well inside ``maxlen``, so a newcomer always finds the increments after it.

:class:`RedisPublisher` is an ordinary pull subscriber of :class:`~marketdata.hub.MarketData`
with its own thread: Redis being slow or down costs the engine nothing. Its queue is
bounded like anyone's; when it lags, or Redis fails, it starts again from a new snapshot
(written together with a reset entry, atomically). It does not keep history beyond
``maxlen`` entries per stream; services that need more read the venue's store.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis

from marketdata.errors import BadRequest, BookInconsistent, SequenceGap
from marketdata.hub import MarketData, Subscription
from marketdata.messages import ASK, BID, Book, FeedSpec, Increment, Snapshot
from marketdata.replica import BookReplica
from marketdata.wire import decode, encode_increment, encode_snapshot
from venue.instruments import Instrument

log = logging.getLogger("marketdata.redis")


def keys(prefix: str, symbol: str) -> tuple[str, str, str]:
    """(channel, stream, snapshot key) of one instrument."""
    return f"{prefix}:{symbol}", f"{prefix}:{symbol}:stream", f"{prefix}:{symbol}:snapshot"


class _Out:
    """One instrument's publication state."""

    __slots__ = ("sub", "inst", "replica", "channel", "stream", "snap_key", "last_id", "since_snapshot")

    def __init__(self, sub: Subscription, inst: Instrument, prefix: str) -> None:
        self.sub = sub
        self.inst = inst
        self.replica = BookReplica(sub.spec)
        self.channel, self.stream, self.snap_key = keys(prefix, inst.symbol)
        self.last_id = "0-0"
        self.since_snapshot = 0


class RedisPublisher:
    """Publishes each instrument's feed to a Redis channel, stream and snapshot key."""

    def __init__(self, md: MarketData, client: redis.Redis, *, symbols: list[str] | None = None,
                 book: int = int(Book.L2), prefix: str = "md", maxlen: int = 10_000, snapshot_every: int = 500,
                 max_pending: int = 4096) -> None:
        if snapshot_every * 2 > maxlen:
            raise BadRequest("snapshot_every must be well inside maxlen (at most half of it)")
        self.md = md
        self.client = client
        self.symbols = symbols
        self.book = book
        self.prefix = prefix
        self.maxlen = maxlen
        self.snapshot_every = snapshot_every
        self.max_pending = max_pending
        self.errors = 0  # Redis failures survived
        self.published = 0  # increments written
        self._wake = threading.Event()
        self._outs: list[_Out] = []
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._follow()
        self._thread = threading.Thread(target=self._run, name="marketdata-redis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        for o in self._outs:
            o.sub.close()

    def _follow(self) -> None:
        """Subscribe to instruments not yet published (those defined since the last look)."""
        known = {o.inst.symbol for o in self._outs}
        for inst in self.md.instruments():
            if inst.symbol not in known and (self.symbols is None or inst.symbol in self.symbols):
                sub = self.md.subscribe(FeedSpec(inst.symbol, self.book, 0, True), max_pending=self.max_pending,
                                        wake=self._wake)
                self._outs.append(_Out(sub, inst, self.prefix))

    # -- the publisher thread --------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.05
        described: set[str] = set()  # instruments written to the instruments hash
        next_look = time.monotonic() + 1.0
        while not self._stop:
            self._wake.wait(0.5)
            self._wake.clear()
            if time.monotonic() >= next_look:
                self._follow()
                next_look = time.monotonic() + 1.0
            try:
                new: dict[Any, Any] = {o.inst.symbol: json.dumps(o.inst.to_record()) for o in self._outs
                                       if o.inst.symbol not in described}
                if new:
                    self.client.hset(f"{self.prefix}:instruments", mapping=new)
                    described.update(new)
                for o in self._outs:
                    msgs = o.sub.take()
                    if msgs:
                        self._publish(o, msgs)
                backoff = 0.05
            except redis.RedisError as e:
                self.errors += 1
                log.warning("redis publication failed (%s); starting again from snapshots in %.2fs", e, backoff)
                for o in self._outs:
                    o.sub.request_snapshot()  # what reached Redis is unknown: begin anew
                if self._stop:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._wake.set()

    def _publish(self, o: _Out, msgs: list[Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        n = 0
        for m in msgs:
            if type(m) is Snapshot:
                if n:
                    self._flush(o, pipe)
                    pipe = self.client.pipeline(transaction=False)
                    n = 0
                o.replica.apply(m)
                self._reset(o, m)
                continue
            o.replica.apply(m)
            body = encode_increment(m, o.inst)
            pipe.xadd(o.stream, {"type": "increment", "rpt_seq": m.rpt_seq, "msg": body}, maxlen=self.maxlen,
                      approximate=True)
            pipe.publish(o.channel, body)
            n += 1
        if n:
            self._flush(o, pipe)

    def _flush(self, o: _Out, pipe: Any) -> None:
        results = pipe.execute()
        ids = results[0::2]
        o.last_id = _text(ids[-1])
        self.published += len(ids)
        o.since_snapshot += len(ids)
        if o.since_snapshot >= self.snapshot_every:
            self.client.set(o.snap_key, encode_snapshot(self._snapshot_of(o), o.inst, o.last_id, False))
            o.since_snapshot = 0

    def _reset(self, o: _Out, snap: Snapshot) -> None:
        """A new numbering starts: the snapshot and its reset entry, atomically."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(o.snap_key, encode_snapshot(snap, o.inst, o.last_id, True))
        pipe.xadd(o.stream, {"type": "reset", "rpt_seq": snap.rpt_seq}, maxlen=self.maxlen, approximate=True)
        pipe.publish(o.channel, json.dumps({"type": "reset", "symbol": o.inst.symbol, "rpt_seq": snap.rpt_seq}))
        results = pipe.execute()
        o.last_id = _text(results[1])
        o.since_snapshot = 0

    @staticmethod
    def _snapshot_of(o: _Out) -> Snapshot:
        """The replica's book as a snapshot at its RptSeq (what the stream holds so far)."""
        r = o.replica
        orders = tuple(r.orders(BID) + r.orders(ASK)) if r.spec.book == Book.L3 else ()
        return Snapshot(r.spec, r.rpt_seq, r.seq, r.ts, r.halted, tuple(r.levels(BID)), tuple(r.levels(ASK)), orders,
                        r.last_trade)


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


class RedisBookConsumer:
    """Rebuilds one instrument's book from Redis: snapshot key, then the stream."""

    def __init__(self, client: redis.Redis, symbol: str, *, prefix: str = "md") -> None:
        self.client = client
        self.symbol = symbol
        self.prefix = prefix
        self.channel, self.stream, self.snap_key = keys(prefix, symbol)
        self.inst: Instrument | None = None
        self.replica: BookReplica | None = None
        self.last_id = "0-0"
        self.resyncs = 0  # snapshots read
        self.inconsistent = 0  # stream entries that contradicted the book held, or could not be used
        self._expect_reset = False

    def sync(self) -> bool:
        """Read the snapshot; False if none is published yet."""
        if self.inst is None:
            rec = self.client.hget(f"{self.prefix}:instruments", self.symbol)
            if rec is None:
                return False
            self.inst = Instrument.from_record(json.loads(rec))
        raw = self.client.get(self.snap_key)
        if raw is None:
            return False
        snap, stream_id, reset = decode(raw, self.inst)
        assert type(snap) is Snapshot
        if self.replica is None or self.replica.spec != snap.spec:
            self.replica = BookReplica(snap.spec)
        self.replica.apply(snap)
        self.last_id = stream_id or "0-0"
        self._expect_reset = reset
        self.resyncs += 1
        return True

    def poll(self, block_ms: int | None = None, count: int = 1000) -> int:
        """Apply what the stream holds after the last entry applied; the number applied.
        ``block_ms`` waits for new entries (None: do not wait)."""
        if self.replica is None or not self.replica.synced:
            if not self.sync():
                return 0
        assert self.replica is not None and self.inst is not None
        got: Any = self.client.xread({self.stream: self.last_id}, count=count, block=block_ms)
        applied = 0
        for _stream, entries in got or ():
            for eid, fields in entries:
                f = {_text(k): _text(v) for k, v in fields.items()}
                if f.get("type") == "reset":
                    if self._expect_reset:
                        self._expect_reset = False
                        self.last_id = _text(eid)
                        continue
                    self.sync()
                    return applied
                self._expect_reset = False
                try:
                    inc, _, _ = decode(f.get("msg", ""), self.inst)
                    if type(inc) is not Increment:
                        raise BadRequest(f"stream entry {_text(eid)} is not an increment")
                    if self.replica.apply(inc):
                        applied += 1
                except (SequenceGap, BookInconsistent, BadRequest) as e:
                    # trimmed past us, fell behind, or an entry we cannot use: start again from the snapshot
                    if not isinstance(e, SequenceGap):
                        self.inconsistent += 1
                        log.warning("%s: %s; reading the snapshot again", self.symbol, e)
                    self.replica.synced = False
                    self.sync()
                    return applied
                self.last_id = _text(eid)
        return applied
