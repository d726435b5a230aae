"""PartyRiskLimitsRequest (CL) -> PartyRiskLimitsReport (CM) over real sockets: the limits
that apply to one of the session's accounts, where each was set, and their use, as the
engine's RiskBook.applied() states them; and the refusals."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import pytest

from tests.sessions.conftest import Running, start_venue, stop_venue
from tests.sessions.fixclients import Msg, QfClient, RawClient, logged_on, order
from venue.risk import KillSwitch, SetRiskLimits

D = Decimal
LOT = D("0.00001")  # BTC-USD


@pytest.fixture(scope="module")
def venue(tmp_path_factory: Any) -> Iterator[Running]:
    extra = (
        SetRiskLimits("instrument", "BTC-USD", price_band_ppm=50_000),  # 5%
        SetRiskLimits("firm", "ALPHA", "BTC-USD", max_position=int(500 / LOT)),
        SetRiskLimits("account", "ALPHA-1", "", max_open_orders=5),
        SetRiskLimits("account", "ALPHA-1", "BTC-USD", max_qty=int(2 / LOT), max_open_notional=5_000_000 * 10**8),
    )
    r = start_venue(str(tmp_path_factory.mktemp("limits")), extra=extra)
    yield r
    stop_venue(r)


@pytest.fixture(scope="module")
def alpha(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo")
    yield c
    c.close()
    venue.wait_offline("ALPHA-OE")


def limits(m: Msg) -> dict[str, dict[tuple[str, str], dict[int, str]]]:
    """A CM's limits: RiskLimitID -> (RiskLimitType, symbol) -> the entry's fields, and
    each party under the key ``party``."""
    out: dict[str, Any] = {}
    party: dict[int, str] = {}
    entries: list[dict[int, str]] = []
    for part in m.raw.split(b"\x01"):
        if not part:
            continue
        t, _, v = part.decode().partition("=")
        tag = int(t)
        if tag in (1691, 1692, 1693):
            party[tag] = v
        elif tag == 1530:
            entries.append({tag: v})
        elif tag in (1531, 1766, 1532, 1535, 1536):
            entries[-1][tag] = v
        elif tag == 1670:
            out[v] = {(e[1530], e[1536]): e for e in entries}
            out[v]["party"] = party
            party, entries = {}, []
    return out


def applied(venue: Running, account: str, symbol: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in venue.query(lambda e: e.extensions["risk"].applied(account, symbol))}


def test_the_limits_that_apply_where_they_were_set_and_their_use(venue, alpha):
    alpha.send("D", order("o1", "BTC-USD", "1", "0.5", "100.00"))  # a bid far below any trade: it rests
    alpha.expect("8", X11="o1", X150="0")
    alpha.send("CL", [(1666, "l1"), (453, 1), (448, "ALPHA-1"), (452, 24), (1534, 1), (1535, 1), (1536, "BTC-USD")])
    m = alpha.expect("CM", X1666="l1")
    assert (m[1511], m[1760]) == ("0", "3") and 1667 in m and 60 in m and "account ALPHA-1" in m[58]
    got = limits(m)
    assert list(got) == ["account:ALPHA-1", "firm:ALPHA", "instrument:BTC-USD"]  # narrowest first
    assert got["account:ALPHA-1"]["party"] == {1691: "ALPHA-1", 1692: "D", 1693: "24"}
    assert got["firm:ALPHA"]["party"] == {1691: "ALPHA", 1692: "D", 1693: "1"}
    assert got["instrument:BTC-USD"]["party"] == {1691: "VENUE", 1692: "D", 1693: "22"}
    acct = got["account:ALPHA-1"]
    assert acct[("4003", "BTC-USD")][1531] == "5" and acct[("4003", "BTC-USD")][1766] == "1"  # 1 open order
    assert D(acct[("10", "BTC-USD")][1531]) == 2 and 1766 not in acct[("10", "BTC-USD")]  # clip size
    credit = acct[("0", "BTC-USD")]
    assert D(credit[1531]) == 5_000_000 and D(credit[1766]) == 50 and credit[1532] == "USD"  # 0.5 x 100 open
    net = got["firm:ALPHA"][("2", "BTC-USD")]
    assert D(net[1531]) == 500 and D(net[1766]) == 100  # the firm's net position: ALPHA-1's 100 BTC
    inst = got["instrument:BTC-USD"]
    assert D(inst[("4002", "BTC-USD")][1531]) == 5 and D(inst[("4004", "BTC-USD")][1531]) == 5  # percent
    assert D(inst[("4000", "BTC-USD")][1531]) == LOT and D(inst[("11", "BTC-USD")][1531]) == 10_000_000
    # every limit RiskBook.applied() reports is there, once
    n = sum(len(v) - 1 for v in got.values())
    assert n == len(applied(venue, "ALPHA-1", "BTC-USD"))


def test_without_parties_the_default_account_and_every_instrument(venue, alpha):
    alpha.send("CL", [(1666, "l2")])
    m = alpha.expect("CM", X1666="l2")
    got = limits(m)
    assert "account ALPHA-1" in m[58]
    symbols = {s for v in got.values() for k in v if k != "party" for s in [k[1]]}
    assert symbols == {"BTC-USD", "ETH-USD", "ETH-BTC"}
    # max_open_orders was set for every instrument: it applies to each
    assert {k[1] for k in got["account:ALPHA-1"] if k != "party" and k[0] == "4003"} == symbols


def test_a_kill_switch_that_blocks_the_account_is_named(venue, alpha):
    venue.execute(KillSwitch("account", "ALPHA-1", True, "desk review"))
    alpha.send("CL", [(1666, "l3")])
    assert "kill switch active for account ALPHA-1: desk review" in alpha.expect("CM", X1666="l3")[58]
    venue.execute(KillSwitch("account", "ALPHA-1", False))
    alpha.send("CL", [(1666, "l4")])
    assert "kill switch" not in alpha.expect("CM", X1666="l4")[58]


def test_refusals(venue, alpha):
    for req, fields, result, why in (
        ("x1", [(453, 1), (448, "BETA-1"), (452, 24)], "3", "not permitted"),
        ("x2", [(453, 1), (448, "ALPHA"), (452, 1)], "1", "PartyRole 24"),
        ("x3", [(453, 2), (448, "ALPHA-1"), (452, 24), (448, "ALPHA-M"), (452, 24)], "1", "one account"),
        ("x4", [(1534, 1), (1535, 2), (1536, "BTC-USD")], "1", "include"),
        ("x5", [(1534, 1), (1535, 1), (1536, "DOGE-USD")], "1", "unknown symbol"),
        ("x6", [(263, 1)], "5", "snapshots only"),
    ):
        alpha.send("CL", [(1666, req), *fields])
        m = alpha.expect("CM", X1666=req)
        assert m[1511] == result and why in m[58] and 1677 not in m, m


def test_a_drop_copy_session_may_not_ask(venue):
    c = logged_on(venue.dc, "BROKER-DC", "broker", "broker-demo")
    try:
        c.send("CL", [(1666, "dc")])
        rej = c.expect("j", X372="CL")
        assert rej[380] == "6" and "PartyRiskLimitsRequest" in rej[58]
    finally:
        c.close()


def test_a_quickfix_initiator_with_the_venues_dictionary_validates_the_report(venue, alpha, tmp_path):
    """CL and CM are FIX 5.0 SP2 messages the venue declares in its FIX 4.4 dictionary: a
    client needs that dictionary (fix_config/FIX44.xml) to receive them."""
    alpha.close()
    venue.wait_offline("ALPHA-OE")
    qf = QfClient(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", str(tmp_path / "qf"))
    try:
        assert qf.wait_logon()
        qf.send("CL", [(1666, "qf")])
        m = qf.expect("CM", X1666="qf")
        assert m[1511] == "0" and int(m[1677]) == 5  # ALPHA-1, ALPHA, and each instrument
        assert qf.rejects_sent == []
    finally:
        qf.stop()
        venue.wait_offline("ALPHA-OE")
