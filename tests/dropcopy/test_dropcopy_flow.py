"""Drop copy over real sockets: BROKER-DC (entitled to ALPHA and BETA) receives every
execution report of those firms' accounts exactly once, with the engine's ExecID and
CopyMsgIndicator(797)=Y, whatever caused it: a random FIX order flow of both firms (new,
cancel, replace, IOC, GTD orders expiring on the sequencer's Tick, engine refusals),
operator cancels, a kill-switch mass cancel and a halt that cancels the book. Nothing of
firm GAMMA reaches it. A drop-copy session cannot trade."""
from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from tests.dropcopy.clients import Reader, body
from tests.dropcopy.world import World, wait_until
from tests.sessions.fixclients import logged_on, now_fix, order
from venue import commands as C
from venue.types import BUY, LIMIT, SELL, CancelReason, ExecKind


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(str(tmp_path_factory.mktemp("dropcopy") / "venue"))
    yield w
    w.stop()


def expire_at(seconds: float) -> str:
    t = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return t.strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def random_flow(rng: random.Random, alpha: Any, beta: Any, n: int, prefix: str = "") -> set[str]:
    """``n`` FIX requests of ALPHA-OE and BETA-OE on ETH-USD, pipelined (no waiting);
    returns the ClOrdIDs of the requests sent."""
    sent: dict[Any, list[str]] = {alpha: [], beta: []}
    asked: set[str] = set()
    for i in range(n):
        c = alpha if rng.random() < 0.5 else beta
        side = rng.choice("12")
        px = f"{3000 + rng.randint(-20, 20) * 0.5:.2f}"
        qty = f"{rng.randint(1, 60) / 100:.2f}"
        clid = f"{prefix}{'a' if c is alpha else 'b'}{i}"
        x = rng.random()
        if x < 0.55:
            c.send("D", order(clid, "ETH-USD", side, qty, px))
        elif x < 0.65:
            c.send("D", order(clid, "ETH-USD", side, qty, px, tif="3"))  # IOC
        elif x < 0.70:
            c.send("D", order(clid, "ETH-USD", side, qty, px, tif="6", extra=[(126, expire_at(rng.uniform(0.5, 1.5)))]))
        elif x < 0.72:
            c.send("D", order(clid, "ETH-USD", "1", "500", px))  # 1.5M USD: refused by the engine
        elif x < 0.73:
            c.send("D", order(clid, "ETH-USD", "1", "20000", px))  # above the instrument's maximum
        elif x < 0.87 and sent[c]:
            c.send("F", [(11, clid), (41, rng.choice(sent[c])), (55, "ETH-USD"), (54, side), (60, now_fix())])
        elif sent[c]:
            c.send("G", [(11, clid), (41, rng.choice(sent[c])), (55, "ETH-USD"), (54, side), (38, qty), (40, "2"),
                         (44, px), (60, now_fix())])
            asked.add(clid)
            continue
        else:
            continue
        sent[c].append(clid)
        asked.add(clid)
    return asked


def answered(*readers: Any) -> set[str]:
    """ClOrdIDs that got an ExecutionReport or an OrderCancelReject on their own session."""
    return {m[11] for r in readers for m in list(r.msgs) if m.type in ("8", "9") and 11 in m}


def open_orders(w: World, account: str) -> list[int]:
    return w.venue.query(lambda e: sorted(o.id for o in e.orders.values() if o.acct.id == account))


def test_every_execution_of_the_entitled_firms_once_with_797(world: World) -> None:
    w = world
    broker = Reader(logged_on(w.dc, "BROKER-DC", "broker", "broker-demo"))
    alpha = logged_on(w.oe, "ALPHA-OE", "alpha", "alpha-demo")
    beta = logged_on(w.oe, "BETA-OE", "beta", "beta-demo")
    ra, rb = Reader(alpha), Reader(beta)
    try:
        rng = random.Random(5)
        random_flow(rng, alpha, beta, 700)
        # GAMMA trades with ALPHA and with itself: ALPHA's side is copied, GAMMA's never
        for k in range(5):
            w.venue.execute(C.NewOrder("GAMMA-1", f"g{k}", "ETH-USD", SELL, LIMIT, 100, 295_000))
            w.venue.execute(C.NewOrder("GAMMA-1", f"gb{k}", "ETH-USD", BUY, LIMIT, 50, 280_000))
        wait_until(lambda: len(ra.of_type("8")) + len(rb.of_type("8")) > 600, what="order entry answers")
        # operator cancels, one by one
        for oid in open_orders(w, "ALPHA-1")[:5]:
            w.venue.execute(C.CancelOrder("ALPHA-1", f"op-{oid}", order_id=oid, reason=int(CancelReason.OPERATOR)))
        # kill switch on BETA: every open order of the account
        w.venue.execute(C.MassCancel("kill-1", accounts="BETA-1", reason=int(CancelReason.KILL_SWITCH)))
        random_flow(rng, alpha, beta, 300)
        time.sleep(0.3)
        w.venue.execute(C.Halt("ETH-USD", cancel_book=True, reason="test halt"))
        w.venue.execute(C.Resume("ETH-USD", "resumed"))
        asked = random_flow(rng, alpha, beta, 200, prefix="last-")  # ClOrdIDs unique to this flow
        # every pipelined request has been processed (answered from its durable events), so
        # no more client commands can arrive ...
        wait_until(lambda: asked <= answered(ra, rb), what="answers to the last flow")
        # ... then the last GTD orders expire within 1.5 s, on a Tick of the sequencer
        wait_until(lambda: not w.venue.query(lambda e: [o for o in e.orders.values() if o.info.tif == 6]),
                   timeout=10, what="GTD expiry")
        w.venue.query(lambda e: e.seq)  # its reply follows the publication of every event before it
        want = w.expected()
        wait_until(lambda: {m[17] for m in broker.of_type("8")} >= set(want), what="every copy")
        time.sleep(0.3)  # anything extra would arrive now
        copies = broker.of_type("8")
    finally:
        for r in (broker, ra, rb):
            r.stop()

    ids = [m[17] for m in copies]
    dup = [k for k, n in Counter(ids).items() if n > 1]
    assert not dup, f"copied more than once: {dup[:5]}"
    assert set(ids) == set(want)
    assert all(m.get(797) == "Y" for m in copies)
    for m in copies:
        ev = want[m[17]]
        assert m[1] == ev["account"] and m[37] == ev["order_id"] and m[11] == ev["cl_ord_id"]
    # a copy is the owner's report: same body
    originals = {m[17]: m for m in ra.of_type("8") + rb.of_type("8")}
    compared = 0
    for m in copies:
        o = originals.get(m[17])
        if o is not None:
            assert body(m) == body(o), m[17]
            compared += 1
    assert compared > 500
    # what the flow covered (the engine's facts, so the assertions above mean something)
    reasons = Counter((v["kind"], v["reason"]) for v in want.values())
    for kind, reason in ((int(ExecKind.CANCELLED), int(CancelReason.OPERATOR)),
                         (int(ExecKind.CANCELLED), int(CancelReason.KILL_SWITCH)),
                         (int(ExecKind.CANCELLED), int(CancelReason.HALT)),
                         (int(ExecKind.EXPIRED), int(CancelReason.EXPIRED))):
        assert reasons[(kind, reason)] > 0, (kind, reason)
    kinds = Counter(v["kind"] for v in want.values())
    assert kinds[int(ExecKind.FILL)] > 50 and kinds[int(ExecKind.REPLACED)] > 5 and kinds[-1] > 5
    gamma = w.expected(("GAMMA",))
    assert gamma and not set(gamma) & set(ids)
    assert any(v["firm"] == "ALPHA" for v in want.values()) and any(v["firm"] == "BETA" for v in want.values())


@pytest.mark.parametrize("msg_type,fields", [
    ("D", order("dc1", "ETH-USD", "1", "1", "3000")),
    ("F", [(11, "dc2"), (41, "x"), (55, "ETH-USD"), (54, "1"), (60, "20240101-00:00:00")]),
    ("G", [(11, "dc3"), (41, "x"), (55, "ETH-USD"), (54, "1"), (38, "1"), (40, "2"), (44, "3000"),
           (60, "20240101-00:00:00")]),
    ("H", [(11, "x"), (55, "ETH-USD"), (54, "1")]),
    ("q", [(11, "dc4"), (530, "7"), (60, "20240101-00:00:00")]),
    ("AF", [(584, "m1"), (585, "7")]),
])
def test_a_drop_copy_session_cannot_trade(world: World, msg_type: str, fields: list) -> None:
    world.wait_offline("BROKER-DC")
    c = logged_on(world.dc, "BROKER-DC", "broker", "broker-demo")
    try:
        before = world.venue.query(lambda e: e.seq)
        c.send(msg_type, fields)
        j = c.expect("j")
        assert j[372] == msg_type and j[380] == "6"
        assert world.venue.query(lambda e: e.seq) == before  # nothing reached the engine
    finally:
        c.close()
