"""Liquidations over FIX.

End to end, over real sockets on the store-backed demo venue (tests/dropcopy/world.py):
ALPHA-M (10x, 10,000 USD) buys 0.9 BTC from BETA through ALPHA-OE; other accounts'
trades take the price through its maintenance level; the venue liquidates it; its
order-entry session ALPHA-OE and the broker's drop-copy session BROKER-DC both receive
its liquidation fills as ExecutionReports marked as liquidations (Text, and 25010=Y: both
asked for the venue's tags), and the cancel of its resting order too; the collateral and
position reports before and after show it, and ALPHA-OE gets margin notices
(unsolicited CollateralReports) as the liquidation starts and ends.

And the codec on the engine's own liquidation events: what is marked, and what is not
(the counterparty's fills)."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest

from sessions import codec
from tests.dropcopy.world import World
from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, move_to, open_market
from tests.sessions.fixclients import Msg, RawClient, logged_on, now_fix, order
from venue.events import Execution
from venue.types import IOC, CancelReason, ExecKind

D = Decimal


# ------------------------------------------------------------------------------ codec
def fields(m: Any) -> dict[int, str]:
    return {int(k): v for k, v in (p.split("=", 1) for p in m.toString().split("\x01") if p)}


def test_the_codec_marks_liquidation_fills_and_cancels_and_nothing_else():
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.buy("m1", "0.95", "100000.01", tif=IOC)  # ~9.5x long
    h.sell("m1", "0.01", "150000")  # resting: the liquidation cancels it
    ev = move_to(h, "90000")
    inst = h.inst()
    usd = h.engine.ledger.assets["USD"]
    mine = [e for e in ev if isinstance(e, Execution) and e.info.account == "m1"]
    fills = [e for e in mine if e.kind == ExecKind.FILL]
    cancels = [e for e in mine if e.kind == ExecKind.CANCELLED and e.reason == CancelReason.LIQUIDATION]
    assert fills and len(cancels) == 1 and all(e.info.liquidation for e in fills)
    for e in fills + cancels:
        plain = fields(codec.execution_report(e, inst, usd))
        ext = fields(codec.execution_report(e, inst, usd, ext=True))
        assert plain[58].startswith("liquidation") and ext[58] == plain[58]
        assert codec.TAG_LIQUIDATION not in plain and ext[codec.TAG_LIQUIDATION] == "Y"
    assert fields(codec.execution_report(fills[0], inst, usd))[11].startswith("LIQ-")
    assert fields(codec.execution_report(cancels[0], inst, usd))[58] == \
        "liquidation: cancelled: the account is being liquidated"
    # the other side of a liquidation fill is an ordinary fill
    theirs = [e for e in ev if isinstance(e, Execution) and e.info.account == LP and e.kind == ExecKind.FILL
              and e.trade_n in {f.trade_n for f in fills}]
    assert theirs
    for e in theirs:
        m = fields(codec.execution_report(e, inst, usd, ext=True))
        assert codec.TAG_LIQUIDATION not in m and 58 not in m


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(str(tmp_path_factory.mktemp("liquidation") / "venue"))
    yield w
    w.stop()


def collect(c: RawClient, pred: Callable[[list[Msg]], bool], timeout: float = 15.0) -> list[Msg]:
    """Every message ``c`` receives (its inbox first) until ``pred`` holds on them."""
    got: list[Msg] = list(c.inbox)
    c.inbox.clear()
    end = time.monotonic() + timeout
    while not pred(got):
        if time.monotonic() > end:
            raise AssertionError(f"timed out; got {got}")
        m = c.recv(0.2)
        if m is None:
            continue
        if m.type == "1":
            c.send("0", [(112, m[112])])
        elif m.type != "0":
            got.append(m)
    return got


def collateral(c: RawClient, inq: str) -> Msg:
    c.send("BB", [(909, inq), (1, "ALPHA-M")])
    return c.expect("BA", X909=inq)


def position(c: RawClient, req: str) -> tuple[Msg, Msg | None]:
    c.send("AN", [(710, req), (724, 0), (1, "ALPHA-M"), (581, 1), (715, "20260101"), (60, now_fix())])
    ack = c.expect("AO", X710=req)
    return ack, (c.expect("AP", X710=req) if ack[728] == "0" else None)


def liquidation_reports(msgs: list[Msg]) -> list[Msg]:
    return [m for m in msgs if m.type == "8" and m.get(1) == "ALPHA-M" and m.get(58, "").startswith("liquidation")]


def test_a_10x_account_is_liquidated_and_its_session_and_the_drop_copy_see_it(world):
    alpha = logged_on(world.oe, "ALPHA-OE", "alpha", "alpha-demo", ext=True)
    beta = logged_on(world.oe, "BETA-OE", "beta", "beta-demo")
    broker = logged_on(world.dc, "BROKER-DC", "broker", "broker-demo", ext=True)
    try:
        # BETA makes a market; ALPHA-M buys 0.9 BTC at 10x (borrowing ~80,000 USD) and rests a bid
        beta.send("D", order("b-ask", "BTC-USD", "2", "1", "100000.00"))
        beta.expect("8", X11="b-ask", X150="0")
        beta.send("D", order("b-bid", "BTC-USD", "1", "1", "99990.00"))
        beta.expect("8", X11="b-bid", X150="0")
        alpha.send("D", order("m-buy", "BTC-USD", "1", "0.9", "100000.00", tif="3", extra=[(1, "ALPHA-M")]))
        assert D(alpha.expect("8", X11="m-buy", X150="F")[14]) == D("0.9")
        alpha.send("D", order("m-bid", "BTC-USD", "1", "0.01", "80000.00", extra=[(1, "ALPHA-M")]))
        alpha.expect("8", X11="m-bid", X150="0")

        before = collateral(alpha, "before")
        assert before[25017] == "normal" and 1 < D(before[25012]) < 3
        borrowed_before = D(before[901])
        assert borrowed_before > 79_000
        _, ap = position(alpha, "pos-before")
        assert ap is not None and D(ap[704]) == D("0.9")
        liq_px = D(ap[25018])
        assert 93_000 < liq_px < 94_000  # 0.9 P - 80,045 = 5% of 0.9 P

        # the price falls through it: BETA quotes around 92,000 and ALPHA-1 (another account)
        # sells to its bid, so the last trade and the mid are 92,000
        beta.send("q", [(11, "b-mc"), (530, "7"), (60, now_fix())])
        beta.expect("r", X11="b-mc")
        beta.send("D", order("b-bid2", "BTC-USD", "1", "5", "91990.00"))
        beta.expect("8", X11="b-bid2", X150="0")
        beta.send("D", order("b-ask2", "BTC-USD", "2", "5", "92010.00"))
        beta.expect("8", X11="b-ask2", X150="0")
        alpha.send("D", order("a1-sell", "BTC-USD", "2", "0.01", "91990.00", tif="3", extra=[(1, "ALPHA-1")]))
        assert D(92_000) < liq_px

        def liquidated(msgs: list[Msg]) -> bool:  # its liquidation order is done and the notice says so
            reports = liquidation_reports(msgs)
            done = any(m[150] == "F" and m[39] == "2" for m in reports) or any(
                m[150] == "4" and m[11].startswith("LIQ-") for m in reports)
            return done and any(m.type == "BA" and m.get(25017) in ("restored", "closed") for m in msgs)

        seen = collect(alpha, liquidated)
        # margin notices: unsolicited CollateralReports, the first before the first liquidation report
        notices = [m for m in seen if m.type == "BA"]
        assert [m[25017] for m in notices] == ["started", "restored"] and all(909 not in m for m in notices)
        assert notices[0][58] == "liquidation started: equity below the maintenance margin (10x)"
        assert D(notices[0][900]) < D(notices[0][25014])  # equity below maintenance
        assert seen.index(notices[0]) < min(seen.index(m) for m in liquidation_reports(seen))
        mine = liquidation_reports(seen)
        fills = [m for m in mine if m[150] == "F"]
        assert fills and all(m[11].startswith("LIQ-") and m[54] == "2" and m[25010] == "Y" for m in fills)
        assert all(D(m[31]) == D("91990") for m in fills)  # BETA's bid, within the liquidation's limit
        cancel = next(m for m in mine if m[11] == "m-bid")
        assert cancel[150] == "4" and cancel[25010] == "Y" and "account is being liquidated" in cancel[58]
        sold = sum(D(m[32]) for m in fills)
        assert 0 < sold <= D("0.9")

        # the broker's drop copy has the same fills, marked the same way (it asked for the venue's tags too)
        exec_ids = {m[17] for m in fills}
        copies = collect(broker, lambda ms: exec_ids <= {m.get(17) for m in liquidation_reports(ms)})
        copied = [m for m in liquidation_reports(copies) if m[17] in exec_ids]
        assert {m[17] for m in copied} == exec_ids
        assert all(m[797] == "Y" and m[150] == "F" and m[25010] == "Y" for m in copied)
        assert any(m[11] == "m-bid" and m[150] == "4" for m in liquidation_reports(copies))
        assert not [m for m in copies if m.type == "BA"]  # margin notices go to the account's own sessions

        # the venue's own record agrees: these were the account's liquidation fills (the
        # record is a venue listener after the FIX outbox: the reports may be out first)
        def recorded() -> set[str]:
            with world.lock:
                return {k for k, v in world.executions.items() if v["account"] == "ALPHA-M"
                        and v["cl_ord_id"].startswith("LIQ-") and v["kind"] == ExecKind.FILL}

        end = time.monotonic() + 10
        while not exec_ids <= recorded() and time.monotonic() < end:
            time.sleep(0.01)
        assert exec_ids == recorded()

        after = collateral(alpha, "after")
        assert D(after[901]) < borrowed_before
        assert D(after[25016]) < D(before[25016])  # a smaller gross position
        assert after[25017] == "normal" and (25012 not in after or D(after[25012]) >= 2)  # restored (or flat)
        _, ap = position(alpha, "pos-after")
        assert ap is None or D(ap[704]) == D("0.9") - sold
    finally:
        for c in (alpha, beta, broker):
            c.close()
