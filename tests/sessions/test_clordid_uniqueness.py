"""ClOrdIDs are unique per account (FIX 4.4: per session and day) over a bounded window,
including the ones a replace took off an order that is still open, and a restart (from a
snapshot, or by replaying the journal) refuses the same ClOrdIDs as the venue that ran
on. Each test starts and stops its own venue (QuickFIX registers sessions process-wide)."""
from __future__ import annotations

import pytest

from tests.sessions.conftest import start_venue, stop_venue
from tests.sessions.fixclients import logged_on, now_fix, order


def _replace(c, orig: str, new: str, qty: str = "0.1") -> dict:
    c.send("G", [(41, orig), (11, new), (55, "BTC-USD"), (54, "1"), (38, qty), (40, "2"), (44, "20000.00"),
                 (60, now_fix())])
    return c.expect("8", X11=new, X150="5")


@pytest.mark.parametrize("snapshot", [True, False], ids=["from-snapshot", "from-journal"])
def test_a_clordid_a_replace_retired_cannot_be_taken_again_even_after_a_restart(tmp_path, snapshot):
    data = str(tmp_path / "v")
    r = start_venue(data)
    try:
        c = logged_on(r.oe, "ALPHA-OE", "alpha", "alpha-demo")
        c.send("D", order("u1", "BTC-USD", "1", "0.1", "20000.00"))
        oid = c.expect("8", X11="u1", X150="0")[37]
        assert _replace(c, "u1", "u2")[37] == oid
        assert _replace(c, "u2", "u3", "0.2")[37] == oid  # the order is open as u3; u1 and u2 are retired
        for clid in ("u1", "u2", "u3"):
            c.send("D", order(clid, "BTC-USD", "1", "0.1", "20000.00"))
            er = c.expect("8", X11=clid, X150="8")
            assert er[103] == "6" and "duplicate ClOrdID" in er[58]
        c.send("G", [(41, "u3"), (11, "u1"), (55, "BTC-USD"), (54, "1"), (38, "0.1"), (40, "2"), (44, "20000.00"),
                     (60, now_fix())])
        rej = c.expect("9", X11="u1")
        assert rej[434] == "2" and rej[102] == "6"
        c.close()
        before = r.query(lambda e: e.state_hashes())
    finally:
        r.server.stop()
        r.venue.stop(snapshot=snapshot)
    r = start_venue(data, seed=False)
    try:
        assert r.query(lambda e: e.state_hashes()) == before
        c = logged_on(r.oe, "ALPHA-OE", "alpha", "alpha-demo")
        c.send("D", order("u2", "BTC-USD", "1", "0.1", "20000.00"))
        er = c.expect("8", X11="u2", X150="8")
        assert er[103] == "6"
        c.send("D", order("u4", "BTC-USD", "1", "0.1", "20000.00"))
        assert c.expect("8", X11="u4")[150] == "0"
        c.close()
    finally:
        stop_venue(r)
