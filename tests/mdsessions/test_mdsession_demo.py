"""``venue demo`` wires market data and the drop copy into the running venue: as a
separate process (with ``--redis``), its market-data session streams the book, a Redis
consumer rebuilds the same book, an operator halt reaches the session as SecurityStatus,
the broker gets the copies and trade capture answers from the demo's store."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Iterator

import pytest
import redis

from marketdata import ASK, BID
from marketdata.redis_fanout import RedisBookConsumer
from tests.mdsessions.fixbook import entries, fields
from tests.sessions.fixclients import logged_on, order

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def demo(tmp_path: Any) -> Iterator[dict[str, Any]]:
    data_dir = str(tmp_path / "demo")
    prefix = f"mddemo-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUE_")}
    p = subprocess.Popen([sys.executable, "-m", "cli", "demo", "--data-dir", data_dir, "--fix-ports", "0,0,0",
                          "--redis", "redis://127.0.0.1:6379/0", "--redis-prefix", prefix],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = p.stdout.readline() if p.stdout else ""
        if not line:
            break
        seen.append(line)
        if "Control:" in line:
            break
    text = "".join(seen)
    ports = {k: int(v) for k, v in re.findall(r"(order entry|drop copy|market data)\s+port (\d+)", text)}
    rds = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        assert len(ports) == 3, text
        yield {"ports": ports, "data_dir": data_dir, "prefix": prefix, "rds": rds}
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
        for k in rds.scan_iter(f"{prefix}:*"):
            rds.delete(k)
        rds.close()


def test_demo_streams_market_data_to_fix_and_redis_and_copies_to_the_broker(demo: dict[str, Any]) -> None:
    ports = demo["ports"]
    md = logged_on(ports["market data"], "MD-CLIENT", "md", "md-demo")
    dc = logged_on(ports["drop copy"], "BROKER-DC", "broker", "broker-demo")
    alpha = logged_on(ports["order entry"], "ALPHA-OE", "alpha", "alpha-demo")
    beta = logged_on(ports["order entry"], "BETA-OE", "beta", "beta-demo")
    try:
        md.send("V", [(262, "d"), (263, 1), (264, 0), (265, 1), (267, 3), (269, 0), (269, 1), (269, 2),
                      (146, 1), (55, "BTC-USD")])
        md.expect("W", X262="d")
        alpha.send("D", order("a1", "BTC-USD", "1", "0.5", "40000"))
        alpha.send("D", order("a2", "BTC-USD", "1", "0.25", "39990"))
        beta.send("D", order("b1", "BTC-USD", "2", "0.2", "40000"))
        beta.send("D", order("b2", "BTC-USD", "2", "0.3", "40100"))
        # the market-data session: the resting orders and the trade
        book: dict[tuple[str, str], str] = {}
        trades = []
        end = time.monotonic() + 10
        while time.monotonic() < end and not (trades and len(book) == 3):
            x = md.expect("X", X262="d")
            for e in entries(fields(x.raw), 268, 279)[1]:
                if e[269] == "2":
                    trades.append((e[270], e[271]))
                elif e[279] == "2":
                    book.pop((e[269], e[270]), None)
                else:
                    book[(e[269], e[270])] = e[271]
        assert trades == [("40000", "0.2")]
        assert book == {("0", "40000"): "0.3", ("0", "39990"): "0.25", ("1", "40100"): "0.3"}
        # the same book through Redis
        c = RedisBookConsumer(demo["rds"], "BTC-USD", prefix=demo["prefix"])
        end = time.monotonic() + 10
        while time.monotonic() < end:
            c.poll(block_ms=50)
            if c.replica is not None and c.replica.synced and len(c.replica.levels(BID)) == 2 \
                    and len(c.replica.levels(ASK)) == 1:
                break
        assert c.replica is not None and c.inst is not None
        assert [(str(c.inst.ticks_to_price(lv.price)), str(c.inst.lots_to_qty(lv.qty))) for lv in c.replica.levels(BID)] \
            == [("40000.00", "0.30000"), ("39990.00", "0.25000")]
        # the broker: copies of all six execution reports, then the trade from the store
        copies = [dc.expect("8") for _ in range(6)]
        assert all(m[797] == "Y" for m in copies) and {m[1] for m in copies} == {"ALPHA-1", "BETA-1"}
        dc.send("AD", [(568, "today"), (569, 0)])
        ack = dc.expect("AQ")
        assert ack[750] == "0" and ack[748] == "1"
        ae = dc.expect("AE")
        assert ae[55] == "BTC-USD" and ae[31] == "40000" and ae[32] == "0.2"
        # an operator halt reaches the market-data session
        r = subprocess.run([sys.executable, "-m", "cli", "halt", "BTC-USD", "--reason", "drill", "--data-dir",
                            demo["data_dir"]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        f = md.expect("f", X324="d")
        assert f[326] == "2" and f[55] == "BTC-USD"
    finally:
        for cl in (md, dc, alpha, beta):
            cl.close()


def test_venue_run_configuration_names_the_redis_publication(tmp_path: Any) -> None:
    from cli.config import load_config

    path = tmp_path / "venue.toml"
    path.write_text('[marketdata]\nredis = "redis://127.0.0.1:6379/0"\n')
    assert load_config(str(path)).redis == "redis://127.0.0.1:6379/0"
    path.write_text('[venue]\nfsync = false\n')
    assert load_config(str(path)).redis == ""
