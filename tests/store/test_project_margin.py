"""The store's postings follow every way margin moves money: borrowing, repaying, the
insurance fund covering a shortfall and taking over a bankrupt account's holdings.
Projected from the engine's own events (no database needed for the arithmetic): per
account and asset, the postings add up to the engine's balances, and each command's
postings sum to zero."""
from __future__ import annotations

from collections import defaultdict

from tests.risk.helpers import RiskHarness
from tests.risk.market import LP, TAKER, move_to, open_market
from venue import commands as C
from venue.sequencer import Processed
from venue.store.models import EXTERNAL
from venue.store.project import Projector
from venue.types import IOC


def postings_match(h: RiskHarness) -> dict[str, list]:
    ch = Projector().project([Processed(seq, 0, cmd, events, None) for seq, cmd, events in h.log])
    totals: dict[tuple[str, str], int] = defaultdict(int)
    per_seq: dict[tuple[int, str], int] = defaultdict(int)
    for r in ch.inserts["postings"]:
        per_seq[(r["seq"], r["asset"])] += r["amount"]
        if r["account"] != EXTERNAL:
            totals[(r["account"], r["asset"])] += r["amount"]
    assert not {k: v for k, v in per_seq.items() if v}
    engine = {(a, s): b.avail + b.held for a, s, b in h.engine.ledger.iter_balances() if b.avail + b.held}
    assert {k: v for k, v in totals.items() if v} == engine
    return ch.inserts


def test_takeover_cover_borrow_and_repay_are_posted() -> None:
    h = RiskHarness()
    open_market(h)
    move_to(h, "100000")
    h.margin_account("m1")
    h.buy("m1", "0.95", "100000.01", tif=IOC)  # ~9.5x long, on borrowed USD
    h.do(C.MassCancel("mc", account=LP, symbol="BTC-USD"))
    h.buy(LP, "0.01", "80000")
    h.sell(TAKER, "0.01", "80000", tif=IOC)  # bankrupt at the mark, no bids: the fund takes over
    rows = postings_match(h)
    kinds = {r["kind"] for r in rows["postings"]}
    assert {"borrow", "takeover", "cover"} <= kinds, kinds
    assert [r["stage"] for r in rows["liquidations"]] == ["started", "taken_over", "bankrupt"]
