"""CollateralInquiry (BB) and RequestForPositions (AN) over real sockets: a raw simplefix
client that asked for the venue's tags (25005=Y) and a stock QuickFIX 4.4 initiator (its
own FIX44.xml: any field FIX 4.4 does not declare would make it refuse the message).
Every figure is checked against the margin module's own report, read from the engine."""
from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Iterator

import pytest

from cli.demo import DEMO_MSG_RATE
from sessions.auth import hash_password
from tests.sessions.conftest import Running, start_venue, stop_venue
from tests.sessions.fixclients import Msg, QfClient, RawClient, logged_on, now_fix, order, parse
from venue import access as A

D = Decimal


@pytest.fixture(scope="module")
def venue(tmp_path_factory: Any) -> Iterator[Running]:
    # a risk session of a firm without accounts (DATA, the market-data subscriber's firm)
    extra = (A.CreateUser("datarisk", "DATA", hash_password("datarisk-pw")),
             A.CreateSession("DATA-RISK", "risk", "DATA", "datarisk", "VENUE", "", "", "", False, DEMO_MSG_RATE))
    r = start_venue(str(tmp_path_factory.mktemp("collateral")), extra=extra)
    yield r
    stop_venue(r)


@pytest.fixture(scope="module")
def alpha(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", ext=True)
    yield c
    c.close()
    venue.wait_offline("ALPHA-OE")


@pytest.fixture(scope="module")
def beta(venue: Running) -> Iterator[RawClient]:
    c = logged_on(venue.oe, "BETA-OE", "beta", "beta-demo")
    yield c
    c.close()


def report(venue: Running, account: str) -> dict[str, Any]:
    return venue.query(lambda e: e.extensions["margin"].report(account))


def usd(venue: Running, atoms: int) -> D:
    return venue.query(lambda e: e.ledger.assets["USD"].from_atoms(atoms))


def underlyings(m: Msg) -> dict[str, dict[Any, str]]:
    """The UndInstrmtGrp entries of a CollateralReport by asset: their fields and their
    stipulations (by stipulation type)."""
    out: dict[str, dict[Any, str]] = {}
    cur: dict[Any, str] = {}
    stip = ""
    for part in m.raw.split(b"\x01"):
        if not part:
            continue
        t, _, v = part.decode().partition("=")
        tag = int(t)
        if tag == 311:
            cur = out.setdefault(v, {})
        elif tag in (879, 810, 885):
            cur[tag] = v
        elif tag == 888:
            stip = v
        elif tag == 889:
            cur[stip] = v
    return out


def inquiry(c: RawClient, inq: str, *extra: tuple[int, object]) -> None:
    c.send("BB", [(909, inq), *extra])


def positions_request(req: str, account: str, *extra: tuple[int, object]) -> list[tuple[int, object]]:
    return [(710, req), (724, 0), (1, account), (581, 1), (715, "20260101"), (60, now_fix()), *extra]


def test_a_margin_account_without_positions_has_none_to_report(venue, alpha):
    alpha.send("AN", positions_request("p0", "ALPHA-M"))
    ack = alpha.expect("AO", X710="p0")
    assert (ack[728], ack[729], ack[727]) == ("2", "0", "0")  # no positions found, completed
    assert ack[1] == "ALPHA-M" and ack[581] == "1" and 721 in ack


def test_every_account_of_the_session_gets_a_collateral_report(venue, alpha, beta):
    beta.send("D", order("ask1", "BTC-USD", "2", "1", "100000.00"))
    beta.expect("8", X11="ask1", X150="0")
    beta.send("D", order("bid1", "BTC-USD", "1", "1", "99990.00"))
    beta.expect("8", X11="bid1", X150="0")
    alpha.send("D", order("lev1", "BTC-USD", "1", "0.5", "100000.00", tif="3", extra=[(1, "ALPHA-M")]))
    alpha.expect("8", X11="lev1", X150="F")
    inquiry(alpha, "c1")
    first, second = alpha.expect("BA", X909="c1"), alpha.expect("BA", X909="c1")
    assert (first[1], second[1]) == ("ALPHA-1", "ALPHA-M")
    assert (first[911], first[912], second[911], second[912]) == ("2", "N", "2", "Y")
    assert first[908] != second[908] and first[910] == "3" and first[15] == "USD"
    # the cash account: equity, its holdings, no margin figures
    r = report(venue, "ALPHA-1")
    assert D(first[900]) == usd(venue, r["equity"])
    assert 899 not in first and 901 not in first and 25011 not in first
    assert "cash account" in first[58]
    und = underlyings(first)
    assert set(und) == {"BTC", "ETH", "USD"} and D(und["BTC"][879]) == D("100") and D(und["BTC"]["AVAILABLE"]) == 100

    # the margin account: borrowed USD to buy 0.5 BTC at 10x
    r = report(venue, "ALPHA-M")
    m = second
    assert D(m[900]) == usd(venue, r["equity"]) and D(m[901]) == usd(venue, r["borrowed_value"]) > 0
    assert D(m[899]) == usd(venue, r["open_equity"] - r["open_initial"])
    assert (m[25011], m[25017]) == ("10", "normal")
    assert D(m[25013]) == usd(venue, r["initial"]) and D(m[25014]) == usd(venue, r["maintenance"])
    assert D(m[25015]) == usd(venue, r["open_initial"]) and D(m[25016]) == usd(venue, r["gross"])
    level = D(m[25012])
    assert level == (D(r["equity"]) / D(r["maintenance"])).quantize(D("0.0001"), "ROUND_DOWN") and 1 < level < 5
    und = underlyings(m)
    assert D(und["BTC"][879]) == D("0.5") and D(und["BTC"][810]) == D("99995")  # the mark: mid of 99990/100000
    assert D(und["USD"]["BORROWED"]) == usd(venue, r["borrowed_value"]) and D(und["USD"][885]) < 0
    assert "margin account, 10x" in m[58] and "liquidation state normal" in m[58]


def test_one_account_and_the_refusals(venue, alpha):
    inquiry(alpha, "c2", (1, "ALPHA-M"))
    m = alpha.expect("BA", X909="c2")
    assert (m[1], m[911], m[912]) == ("ALPHA-M", "1", "Y")
    for inq, extra, result, why in (
        ("c3", [(1, "BETA-1")], "9", "not permitted"),  # another firm's account
        ("c4", [(1, "NOPE")], "9", "not permitted"),
        ("c5", [(263, 1)], "8", "snapshots only"),  # a subscription
        ("c6", [(725, 1)], "4", "in band"),
        ("c7", [(938, 1), (896, 0)], "8", "CollInquiryQualifier"),
        ("c8", [(11, "lev1")], "8", "per account"),
        ("c9", [(15, "EUR")], "99", "USD"),
    ):
        inquiry(alpha, inq, *extra)
        ack = alpha.expect("BG", X909=inq)
        assert (ack[945], ack[946]) == ("4", result) and why in ack[58], ack
    alpha.send("BB", [(1, "ALPHA-M")])  # no CollInquiryID: nothing to answer with a BG
    rej = alpha.expect("j", X372="BB")
    assert rej[380] == "5" and "CollInquiryID" in rej[58]


def test_a_session_without_accounts_gets_an_ack_with_no_reports(venue):
    c = logged_on(venue.oe, "DATA-RISK", "datarisk", "datarisk-pw")
    try:
        inquiry(c, "none")
        ack = c.expect("BG", X909="none")
        assert (ack[945], ack[946], ack[911]) == ("2", "0", "0")
    finally:
        c.close()


def test_positions_long_and_short_with_their_liquidation_price(venue, alpha):
    alpha.send("AN", positions_request("p1", "ALPHA-M"))
    ack = alpha.expect("AO", X710="p1")
    assert (ack[728], ack[729], ack[727]) == ("0", "0", "1")
    ap = alpha.expect("AP", X710="p1")
    r = report(venue, "ALPHA-M")
    btc = next(a for a in r["assets"] if a["asset"] == "BTC")
    assert (ap[55], ap[1], ap[581], ap[715], ap[724], ap[728], ap[727]) == (
        "BTC-USD", "ALPHA-M", "1", "20260101", "0", "0", "1")
    assert (D(ap[704]), D(ap[705]), ap[703], ap[731]) == (D("0.5"), 0, "TQ", "2")
    assert D(ap[730]) == D(ap[734]) == D("99995") and 721 in ap and ap[721] != ack[721]
    assert D(ap[25018]) == D(btc["liquidation_price"]) / 100 and 80000 < D(ap[25018]) < 90000
    assert f"liquidation price {ap[25018]}" in ap[58]
    # sell 1 BTC: the account borrows 0.5 BTC and is short
    alpha.send("D", order("short1", "BTC-USD", "2", "1", "99990.00", tif="3", extra=[(1, "ALPHA-M")]))
    alpha.expect("8", X11="short1", X150="F")
    alpha.send("AN", positions_request("p2", "ALPHA-M", (55, "BTC-USD")))
    alpha.expect("AO", X710="p2")
    ap = alpha.expect("AP", X710="p2")
    assert (D(ap[704]), D(ap[705])) == (0, D("0.5")) and D(ap[25018]) > D("99995")  # a short's is above
    assert ap[58].startswith("short 0.5 BTC")


def test_a_cash_accounts_positions_are_its_holdings(venue, alpha):
    alpha.send("AN", positions_request("p3", "ALPHA-1"))
    ack = alpha.expect("AO", X710="p3")
    assert ack[727] == "2"
    aps = [alpha.expect("AP", X710="p3") for _ in range(2)]
    assert {(m[55], m[704], m[705]) for m in aps} == {("BTC-USD", "100", "0"), ("ETH-USD", "1000", "0")}
    assert all(25018 not in m for m in aps)  # no liquidation price for a cash account


def test_position_request_refusals(venue, alpha):
    for req, account, extra, result in (
        ("r1", "BETA-1", [], "3"),  # another firm's account
        ("r2", "ALPHA-M", [(55, "ETH-BTC")], "1"),  # not a USD instrument
        ("r3", "ALPHA-M", [(55, "DOGE-USD")], "1"),
        ("r4", "ALPHA-M", [(263, 1)], "4"),  # a subscription
        ("r5", "ALPHA-M", [(15, "EUR")], "1"),
    ):
        alpha.send("AN", positions_request(req, account, *extra))
        ack = alpha.expect("AO", X710=req)
        assert (ack[728], ack[729], ack[1]) == (result, "2", account) and ack[58], ack
    alpha.send("AN", [(710, "r6"), (724, 1), (1, "ALPHA-M"), (581, 1), (715, "20260101"), (60, now_fix())])
    assert alpha.expect("AO", X710="r6")[728] == "4"  # trades, not positions
    # Account is required by FIX 4.4: QuickFIX refuses the message itself
    alpha.send("AN", [(710, "r7"), (724, 0), (581, 1), (715, "20260101"), (60, now_fix())])
    rej = alpha.expect("3")
    assert rej[371] == "1" and rej[373] == "1"


def test_other_roles_may_not_ask(venue):
    c = logged_on(venue.dc, "BROKER-DC", "broker", "broker-demo")
    try:
        inquiry(c, "dc1")
        rej = c.expect("j", X372="BB")
        assert rej[380] == "6" and "drop-copy sessions cannot send CollateralInquiry" in rej[58]
        c.send("AN", positions_request("dc2", "ALPHA-M"))
        assert c.expect("j", X372="AN")[380] == "6"
    finally:
        c.close()


def test_a_stock_quickfix_initiator_accepts_the_reports(venue, alpha, tmp_path):
    alpha.close()  # the stock client takes the session over, without the venue's tags
    venue.wait_offline("ALPHA-OE")
    qf = QfClient(venue.oe, "ALPHA-OE", "alpha", "alpha-demo", str(tmp_path / "qf"), stock=True)
    try:
        assert qf.wait_logon()
        qf.send("BB", [(909, "qf1")])
        a, m = qf.expect("BA", X909="qf1"), qf.expect("BA", X909="qf1")
        assert m[1] == "ALPHA-M" and 901 in m and 25011 not in m and 900 in a
        qf.send("BB", [(909, "qf2"), (1, "BETA-1")])
        assert qf.expect("BG", X909="qf2")[946] == "9"
        qf.send("AN", positions_request("qf3", "ALPHA-M"))
        assert qf.expect("AO", X710="qf3")[727] == "1"
        ap = qf.expect("AP", X710="qf3")
        assert ap[55] == "BTC-USD" and 25018 not in ap and "liquidation price" in ap[58]
        assert qf.rejects_sent == []  # nothing it could not validate
    finally:
        qf.stop()
        venue.wait_offline("ALPHA-OE")
