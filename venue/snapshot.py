"""Snapshots: the whole engine state as plain data, and back.

A snapshot at sequence S plus the journal's records after S rebuild the venue. The
dump is plain lists, dicts, ints and strs (msgpack), taken on the sequencer's thread
between commands; it is a copy, so the engine may run on while it is written.

File: ``<dir>/snap-<seq>.msgpack``: an 8-byte magic, a crc32, then the payload. Written
to a temporary file, fsynced and renamed, so a snapshot is either whole or absent.
Extensions (risk, margin) add their own state under ``ext`` through
``engine.extensions``: objects with ``dump_state()``, ``load_state(data)`` and
``state_hash()``.
"""
from __future__ import annotations

import os
import struct
import zlib
from heapq import heappush
from typing import Any

import msgpack

from venue.codec import packb, unpackb
from venue.engine import Engine, Market
from venue.errors import JournalError
from venue.events import OrderInfo
from venue.instruments import Asset, Instrument
from venue.orders import Order
from venue.types import BUY, WAITING_TRIGGER

SNAP_MAGIC = b"VSNAP001"
FORMAT = 1


def _order_rec(o: Order) -> list[Any]:
    return [o.id, o.acct.id, list(o.info), o.side, o.ord_type, o.tif, o.price, o.stop_px, o.qty, o.leaves,
            o.cum, o.visible, o.display, o.cum_notional, o.cum_fee, o.status, o.held, o.maker_ppm, o.taker_ppm,
            o.stp, o.post_only, o.cl_ord_id, o.seq, o.expire_ts, o.reduce_only, o.liquidation]


def dump_engine(e: Engine) -> dict[str, Any]:
    led = e.ledger
    books: dict[str, Any] = {}
    for sym, mkt in e.markets.items():
        books[sym] = {
            side_name: [[lvl.price, [o.id for o in lvl.live()]] for lvl in side.sorted_levels()]
            for side_name, side in (("bids", mkt.book.bids), ("asks", mkt.book.asks))
        }
    return {
        "format": FORMAT,
        "seq": e.seq,
        "ts": e.ts,
        "assets": [[a.code, a.decimals] for a in led.assets.values()],
        "instruments": [m.inst.to_record() for m in e.markets.values()],
        "markets": {s: [m.halted, m.last_px] for s, m in e.markets.items()},
        "firms": [[f.id, f.name] for f in led.firms.values()],
        "accounts": [
            [a.id, a.firm.id, a.kind, a.maker_ppm, a.taker_ppm, a.stp, a.leverage, a.enabled,
             [[asset, b.avail, b.held] for asset, b in a.bal.items()]]
            for a in led.accounts.values()
        ],
        "funding": {k: list(v) for k, v in led.funding.items()},
        "external": dict(led.external),
        "withdrawal_held": dict(led.withdrawal_held),
        "orders": [_order_rec(o) for o in e.orders.values()],
        "books": books,
        "recent": [_order_rec(e.recent[i]) for i in e.recent_ids],
        "ext": {name: x.dump_state() for name, x in getattr(e, "extensions", {}).items()},
    }


def _make_order(e: Engine, r: list[Any]) -> Order:
    (oid, aid, info, side, ord_type, tif, price, stop_px, qty, leaves, cum, visible, display, cum_notional,
     cum_fee, status, held, maker_ppm, taker_ppm, stp, post_only, cl_ord_id, seq, expire_ts, reduce_only,
     liquidation) = r
    acct = e.ledger.accounts[aid]
    inf = OrderInfo(*info)
    o = Order(oid, acct, inf, side, ord_type, tif, price, stop_px, qty, display, status, stp, maker_ppm, taker_ppm)
    o.leaves, o.cum, o.visible = leaves, cum, visible
    o.cum_notional, o.cum_fee, o.held = cum_notional, cum_fee, held
    o.post_only, o.cl_ord_id, o.seq, o.expire_ts = post_only, cl_ord_id, seq, expire_ts
    o.reduce_only, o.liquidation = reduce_only, liquidation
    mkt = e.markets[inf.symbol]
    o.mkt = mkt
    if side == BUY:
        o.hold_b, o.recv_b = acct.balance(mkt.quote), acct.balance(mkt.base)
    else:
        o.hold_b, o.recv_b = acct.balance(mkt.base), acct.balance(mkt.quote)
    return o


def load_engine(d: dict[str, Any], engine: Engine | None = None) -> Engine:
    if d.get("format") != FORMAT:
        raise JournalError(f"snapshot format {d.get('format')} is not {FORMAT}")
    e = engine or Engine()
    led = e.ledger
    for code, decimals in d["assets"]:
        led.add_asset(Asset(code, decimals))
    for rec in d["instruments"]:
        inst = Instrument.from_record(dict(rec))
        e.markets[inst.symbol] = Market(inst, e.fee_acct.balance(inst.quote))
    for sym, (halted, last_px) in d["markets"].items():
        e.markets[sym].halted, e.markets[sym].last_px = halted, last_px
    for fid, name in d["firms"]:
        if fid not in led.firms:
            led.add_firm(fid, name)
    for aid, fid, kind, maker, taker, stp, leverage, enabled, bals in d["accounts"]:
        acct = led.accounts.get(aid) or led.add_account(aid, led.firms[fid], kind=kind, maker_ppm=maker,
                                                        taker_ppm=taker, stp=stp, leverage=leverage)
        acct.enabled = enabled
        for asset, avail, held in bals:
            b = acct.balance(asset)
            b.avail, b.held = avail, held
    led.funding = {k: list(v) for k, v in d["funding"].items()}
    led.external = dict(d["external"])
    led.withdrawal_held = dict(d["withdrawal_held"])
    by_id: dict[int, Order] = {}
    for r in d["orders"]:
        o = _make_order(e, r)
        by_id[o.id] = o
        e.orders[o.id] = o
        o.acct.orders[o.id] = o
        o.acct.clids[o.cl_ord_id] = o
        if o.expire_ts:
            heappush(e.expiries, (o.expire_ts, o.id))
        if o.status == WAITING_TRIGGER:
            e._arm_stop(o)
    for sym, sides in d["books"].items():
        book = e.markets[sym].book
        for side_name in ("bids", "asks"):
            for _price, ids in sides[side_name]:
                for oid in ids:
                    o = by_id[oid]
                    vis = o.visible
                    book.rest(o)  # rest() adds o.visible to the level
                    assert o.visible == vis
    for r in d["recent"]:
        o = _make_order(e, r)
        e.recent[o.id] = o
        e.recent_ids.append(o.id)
        o.acct.clids.setdefault(o.cl_ord_id, o)  # (an open order's ClOrdID is never a closed one's)
    for name, x in getattr(e, "extensions", {}).items():
        if name in d.get("ext", {}):
            x.load_state(d["ext"][name])
    e.seq, e.ts = d["seq"], d["ts"]
    return e


# -- files -----------------------------------------------------------------------------
def _name(seq: int) -> str:
    return f"snap-{seq:016d}.msgpack"


def write_snapshot(directory: str, state: dict[str, Any]) -> str:
    """Write atomically; returns the path."""
    os.makedirs(directory, exist_ok=True)
    payload = packb(state)
    path = os.path.join(directory, _name(state["seq"]))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(SNAP_MAGIC + struct.pack("<I", zlib.crc32(payload)) + payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_snapshot(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != SNAP_MAGIC or len(data) < 12:
        raise JournalError(f"{path}: not a venue snapshot")
    (crc,) = struct.unpack("<I", data[8:12])
    payload = data[12:]
    if zlib.crc32(payload) != crc:
        raise JournalError(f"{path}: checksum mismatch")
    return unpackb(payload)


def list_snapshots(directory: str) -> list[tuple[int, str]]:
    if not os.path.isdir(directory):
        return []
    out = []
    for n in os.listdir(directory):
        if n.startswith("snap-") and n.endswith(".msgpack"):
            try:
                out.append((int(n[5:-8]), os.path.join(directory, n)))
            except ValueError:
                continue
    return sorted(out)


def latest_snapshot(directory: str, at_most: int | None = None) -> tuple[int, dict[str, Any]] | None:
    """The newest readable snapshot (with seq <= at_most); a damaged one is skipped for
    the one before it (the journal covers the difference)."""
    for seq, path in reversed(list_snapshots(directory)):
        if at_most is not None and seq > at_most:
            continue
        try:
            return seq, read_snapshot(path)
        except (JournalError, ValueError, msgpack.UnpackException):
            continue
    return None
