"""What a FIX market-data client holds: books rebuilt from W, X and f messages alone.

Written from the FIX side only (the messages' text), independent of the venue's own
market-data code, so a test comparing it with the engine's book checks the whole path:
engine events -> hub -> FIX encoding -> QuickFIX -> socket. One :class:`FixBook` per
(MDReqID, symbol); RptSeq is checked on every X entry and f (equal to the last, or one
more); a jump is counted as a gap and the book waits for the next W. Entries are applied
strictly: one that contradicts the book held (New for a level already held, Change or
Delete for one not held) fails the test at once.
"""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import quickfix as fix

SOH = b"\x01"


def fields(raw: bytes) -> list[tuple[int, str]]:
    out = []
    for part in raw.split(SOH):
        if part:
            t, _, v = part.partition(b"=")
            out.append((int(t), v.decode()))
    return out


W_ENTRY = {269, 270, 271, 346, 37, 272, 273, 1003, 5797}
X_ENTRY = W_ENTRY | {279, 55, 83}
AE_SIDE = {54, 37, 11, 1, 12, 13, 479, 1057}
SECURITY = {55, 107, 15, 561, 562, 1140, 969, 326, 25003, 25004}
_MEMBERS = {(268, 269): W_ENTRY, (268, 279): X_ENTRY, (552, 54): AE_SIDE, (146, 55): SECURITY}


def entries(fs: list[tuple[int, str]], count_tag: int, delimiter: int) -> tuple[dict[int, str], list[dict[int, str]]]:
    """The top-level fields and the entries of the repeating group ``count_tag``: an entry
    starts at ``delimiter``; a field that is not a member of the group ends it."""
    members = _MEMBERS[(count_tag, delimiter)]
    top: dict[int, str] = {}
    group: list[dict[int, str]] = []
    in_group = False
    for t, v in fs:
        if t == count_tag:
            in_group = True
            top[t] = v
            continue
        if in_group and t not in members:
            in_group = False
        if in_group and t == delimiter:
            group.append({})
        if in_group and group:
            group[-1][t] = v
        else:
            top.setdefault(t, v)
    return top, group


class FixBook:
    """One (MDReqID, symbol): price levels or orders, halted flag, trades seen."""

    def __init__(self, req_id: str, symbol: str) -> None:
        self.req_id = req_id
        self.symbol = symbol
        self.rpt = -1
        self.synced = False
        self.gaps = 0
        self.snapshots = 0
        self.halted = False
        self.levels: dict[str, dict[Decimal, tuple[Decimal, int]]] = {"0": {}, "1": {}}
        self.orders: dict[str, tuple[str, Decimal, Decimal]] = {}  # order id -> (side, price, qty)
        self.queues: dict[str, dict[Decimal, list[str]]] = {"0": {}, "1": {}}  # FIFO of order ids per level
        self.trade_ids: list[str] = []
        self.last_trade: dict[int, str] | None = None

    def _seq(self, rpt: int) -> bool:
        """True if an entry numbered ``rpt`` may be applied."""
        if not self.synced:
            return False
        if rpt == self.rpt or rpt == self.rpt + 1:
            self.rpt = rpt
            return True
        self.gaps += 1
        self.synced = False
        return False

    def snapshot(self, top: dict[int, str], group: list[dict[int, str]]) -> None:
        self.snapshots += 1
        self.rpt = int(top[83])
        self.synced = True
        self.levels = {"0": {}, "1": {}}
        self.orders, self.queues = {}, {"0": {}, "1": {}}
        for e in group:
            t = e[269]
            if t == "2":
                self.last_trade = e
            elif 37 in e:
                self._add(e[37], t, Decimal(e[270]), Decimal(e[271]))
            else:
                self.levels[t][Decimal(e[270])] = (Decimal(e[271]), int(e[346]))

    def _add(self, oid: str, side: str, px: Decimal, qty: Decimal) -> None:
        self.orders[oid] = (side, px, qty)
        self.queues[side].setdefault(px, []).append(oid)

    def entry(self, e: dict[int, str]) -> None:
        """Apply one X entry. An entry that contradicts the book held fails the test
        (AssertionError): a New for a level or order already held, a Change or Delete for
        one not held, or an order entry on the wrong side or price. Applied loosely, such
        entries can still end in the right book and hide a wrong feed."""
        if not self._seq(int(e[83])):
            return
        action, t = e[279], e[269]
        if t == "2":
            assert action == "0", f"{self.req_id} {self.symbol}: a trade entry is always New: {e}"
            self.trade_ids.append(e[1003])
            self.last_trade = e
            return
        assert action in ("0", "1", "2"), f"{self.req_id} {self.symbol}: MDUpdateAction {action}"
        px = Decimal(e[270])
        where = f"{self.req_id} {self.symbol} RptSeq {e[83]}"
        if 37 in e:
            oid = e[37]
            held = self.orders.get(oid)
            if action == "0":
                assert held is None, f"{where}: New for order {oid}, already held as {held}"
                self._add(oid, t, px, Decimal(e[271]))
                return
            assert held is not None, f"{where}: {'Change' if action == '1' else 'Delete'} for order {oid}, not held"
            side, p, _ = held
            assert (side, p) == (t, px), f"{where}: order {oid} is held at {side} {p}, the entry says {t} {px}"
            if action == "1":
                self.orders[oid] = (side, p, Decimal(e[271]))
            else:
                del self.orders[oid]
                q = self.queues[side][p]
                q.remove(oid)
                if not q:
                    del self.queues[side][p]
            return
        levels = self.levels[t]
        if action == "0":
            assert px not in levels, f"{where}: New for level {t} {px}, already held as {levels[px]}"
            levels[px] = (Decimal(e[271]), int(e[346]))
        elif action == "1":
            assert px in levels, f"{where}: Change for level {t} {px}, not held"
            levels[px] = (Decimal(e[271]), int(e[346]))
        else:
            assert px in levels, f"{where}: Delete for level {t} {px}, not held"
            del levels[px]

    def status(self, top: dict[int, str]) -> None:
        if 83 in top and not self._seq(int(top[83])):
            return
        self.halted = top[326] == "2"

    # -- reads, best first ------------------------------------------------------------
    def book_levels(self, side: str) -> list[tuple[Decimal, Decimal, int]]:
        if self.orders or any(self.queues.values()):
            q = self.queues[side]
            lv = {p: (sum(self.orders[o][2] for o in ids), len(ids)) for p, ids in q.items()}
        else:
            lv = self.levels[side]
        return [(p, *lv[p]) for p in sorted(lv, reverse=side == "0")]

    def book_orders(self, side: str) -> list[tuple[str, Decimal, Decimal]]:
        q = self.queues[side]
        return [(o, p, self.orders[o][2]) for p in sorted(q, reverse=side == "0") for o in q[p]]


class FixMdClient:
    """Every book a client follows, from the messages it received (in order)."""

    def __init__(self) -> None:
        self.books: dict[tuple[str, str], FixBook] = {}
        self.rejects: list[dict[int, str]] = []
        self.statuses: list[dict[int, str]] = []
        self.messages = 0

    def book(self, req_id: str, symbol: str) -> FixBook:
        key = (req_id, symbol)
        if key not in self.books:
            self.books[key] = FixBook(req_id, symbol)
        return self.books[key]

    def apply(self, raw: bytes) -> str:
        """Apply one received message; returns its MsgType."""
        fs = fields(raw)
        mt = dict(fs)[35]
        self.messages += 1
        if mt == "W":
            top, group = entries(fs, 268, 269)
            self.book(top[262], top[55]).snapshot(top, group)
        elif mt == "X":
            top, group = entries(fs, 268, 279)
            for e in group:
                self.book(top[262], e[55]).entry(e)
        elif mt == "f":
            top = dict(fs)
            self.statuses.append(top)
            b = self.books.get((top.get(324, ""), top[55]))
            if b is not None:
                b.status(top)
        elif mt == "Y":
            self.rejects.append(dict(fs))
        return mt


def as_ticks(inst: Any, levels: list[tuple[Decimal, Decimal, int]]) -> list[tuple[int, int, int]]:
    return [(inst.price_to_ticks(str(p)), inst.qty_to_lots(str(q)), n) for p, q, n in levels]


_DD: list[Any] = []


def send(client: Any, msg_type: str, body: list[tuple[int, object]]) -> None:
    """Send through a QuickFIX initiator (tests.sessions.fixclients.QfClient) a message whose
    fields are given in order, repeating groups included (QfClient.send would keep only the
    last of repeated tags)."""
    if not _DD:
        _DD.append(fix.DataDictionary(os.path.join(os.path.dirname(__file__), "..", "..", "fix_config", "FIX44.xml")))
    payload = f"35={msg_type}\x01" + "".join(f"{t}={v}\x01" for t, v in body)
    m = fix.Message(f"8=FIX.4.4\x019={len(payload)}\x01{payload}10=000\x01", _DD[0], False)
    fix.Session.sendToTarget(m, client.sid)
