"""The JSON form of market-data messages: decimals exactly as the instrument shows them,
decoding gives back the very same messages, and bad input gets a clear refusal."""
from __future__ import annotations

import json

import pytest

from marketdata import BadRequest, Book, FeedSpec, Increment, MarketData, Snapshot, capture
from marketdata.wire import decode, encode_increment, encode_snapshot
from md_flow import SYMBOLS, Flow


def test_every_message_of_a_flow_survives_the_round_trip() -> None:
    flow = Flow(41)
    md = MarketData()
    md.load(capture(flow.engine))
    subs = [md.subscribe(FeedSpec(SYMBOLS[0], Book.L2, 0)), md.subscribe(FeedSpec(SYMBOLS[0], Book.L3)),
            md.subscribe(FeedSpec(SYMBOLS[1], Book.L2, 3, sides=2))]
    inst = {s: md.instrument(s) for s in SYMBOLS}
    seen = {"snapshot": 0, "increment": 0, "trades": 0, "statuses": 0}
    for _ in range(60):
        md.on_batch(list(flow.steps(25)))
        for sub in subs:
            for m in sub.take():
                i = inst[m.spec.symbol]
                if type(m) is Snapshot:
                    text = encode_snapshot(m, i, "12-0", True)
                    assert decode(text, i) == (m, "12-0", True)
                    seen["snapshot"] += 1
                else:
                    text = encode_increment(m, i)
                    back, _, _ = decode(text, i)
                    assert back == m._replace(memo={})
                    assert encode_increment(m, i) is text  # cached for every subscriber of the feed
                    seen["increment"] += 1
                    seen["trades"] += len(m.trades)
                    seen["statuses"] += len(m.statuses)
                d = json.loads(text)
                assert all(isinstance(p, str) for p, _, _ in d.get("bids", []))
    assert seen["snapshot"] == 3 and seen["increment"] > 50 and seen["trades"] > 10 and seen["statuses"] > 0


def test_decimals_are_in_the_instrument_sizes() -> None:
    flow = Flow(42)
    md = MarketData()
    md.load(capture(flow.engine))
    md.on_batch(list(flow.steps(200)))
    snap = md.snapshot(FeedSpec(SYMBOLS[0], Book.L2, 1))
    inst = md.instrument(SYMBOLS[0])
    d = json.loads(encode_snapshot(snap, inst))
    px, qty, n = d["bids"][0]
    assert px == str(inst.ticks_to_price(snap.bids[0].price)) and px.count(".") == 1 and len(px.split(".")[1]) == 2
    assert qty == str(inst.lots_to_qty(snap.bids[0].qty)) and len(qty.split(".")[1]) == 3
    assert n == snap.bids[0].orders


@pytest.mark.parametrize("text", [
    "not json",
    "{}",
    '{"type": "increment", "symbol": "MD-USD", "book": "L2", "depth": 0}',
    '{"type": "weird", "symbol": "MD-USD", "book": "L2", "depth": 0}',
    '{"type": "increment", "symbol": "MD-USD", "book": "L2", "depth": 0, "rpt_seq": 1, "seq": 1, "ts": 1,'
    ' "levels": [["new", "bid", "100.001", "1.000", 1]], "orders": [], "trades": [], "statuses": []}',
    '{"type": "increment", "symbol": "MD-USD", "book": "L2", "depth": 0, "rpt_seq": 1, "seq": 1, "ts": 1,'
    ' "levels": [["new", "bid", "100.00", 1.5, 1]], "orders": [], "trades": [], "statuses": []}',
    '{"type": "increment", "symbol": "MD-USD", "book": "L2", "depth": 0, "rpt_seq": 1, "seq": 1, "ts": 1,'
    ' "levels": [["sideways", "bid", "100.00", "1.000", 1]], "orders": [], "trades": [], "statuses": []}',
])
def test_bad_input_is_refused_clearly(text: str) -> None:
    flow = Flow(43)
    md = MarketData()
    md.load(capture(flow.engine))
    with pytest.raises(BadRequest) as e:
        decode(text, md.instrument(SYMBOLS[0]))
    assert "market-data message" in str(e.value)


def test_increment_type_is_kept() -> None:
    flow = Flow(44)
    md = MarketData()
    md.load(capture(flow.engine))
    sub = md.subscribe(FeedSpec(SYMBOLS[0], Book.L3, trades=False))
    sub.take()
    md.on_batch(list(flow.steps(50)))
    inc = next(m for m in sub.take() if type(m) is Increment)
    back, _, _ = decode(encode_increment(inc, md.instrument(SYMBOLS[0])), md.instrument(SYMBOLS[0]))
    assert type(back) is Increment and back.spec == inc.spec and back.spec.trades is False
