"""Margin, positions, limits and the kill switch over FIX.

Order-entry and risk sessions ask about the accounts they may use (Account(1), or a
Parties entry with PartyRole 24, names one of them; another firm's account is refused);
a risk session also sends its firm's kill switch. Every answer is read on the
sequencer thread (:meth:`venue.core.Venue.call`, no journal entry: a read changes
nothing) and sent by the outbox thread after everything the session asked before.
Amounts are in the valuation currency (USD, Currency(15)), quantities in the asset's
own units, prices in the quote currency of the asset's USD instrument.

**CollateralInquiry (BB)** -> one **CollateralReport (BA)** per account (the one named, or
every account of the session): 908 CollRptID, 909 CollInquiryID, 910 CollStatus=3,
911 TotNumReports, 912 LastRptRequested, 1 Account, 15 Currency=USD, 900 TotalNetValue
(equity), and for a margin account 899 MarginExcess (equity minus the initial margin of
its positions and open orders: what it can still commit) and 901 CashOutstanding (what
it owes, valued). Each asset is an entry of UndInstrmtGrp (711): 311 UnderlyingSymbol
(the asset), 879 UnderlyingQty (what the account has, available and held), 810
UnderlyingPx (its mark in USD), 885 UnderlyingCurrentValue (the value of what it has
net of loans and pending withdrawals) and UnderlyingStipulations (887) AVAILABLE, HELD,
BORROWED and WITHDRAWING (the last two when not zero). Text(58) sums it up (leverage,
margin level, liquidation state). With 25005=Y a margin account's report also carries
25011 Leverage, 25012 MarginLevel (equity / maintenance margin: liquidation below 1),
25013 InitialMargin, 25014 MaintenanceMargin, 25015 MarginUsed (initial margin with open
orders), 25016 GrossPositionValue and 25017 LiquidationState (normal, started, stalled,
...). FIX 4.4 answers a valid inquiry with reports only; a **CollateralInquiryAck (BG)**
comes where the spec wants one: 945 CollInquiryStatus=4 (rejected) with 946
CollInquiryResult (8 not supported: a subscription, a qualifier, an order or trade
filter; 4 out-of-band transport; 9 unauthorized: an account the session may not use;
99 other) and Text; or 945=2 (completed) with 911 TotNumReports=0 when the session has
no account. An inquiry without CollInquiryID gets a BusinessMessageReject (380=5).
When a liquidation moves on (started, stalled, restored, closed, bankrupt, covered,
taken over) every order-entry and risk session that may use the account gets an
unsolicited CollateralReport, a margin notice: no CollInquiryID, 1 Account, 900 the
equity at the mark, Text "liquidation <stage>: <why>", and with 25005=Y 25014 the
maintenance margin and 25017 the stage.

**RequestForPositions (AN)** (FIX 4.4 requires 710, 724, 1, 581, 715 and 60; 724=0
positions only, snapshots only) -> **RequestForPositionsAck (AO)** (721, 710, 727
TotalNumPosReports, 728 PosReqResult, 729 PosReqStatus, 1, 581) then one **PositionReport
(AP)** per asset the account holds or owes (but USD), on the asset's USD instrument:
721, 710, 724=0, 727, 728=0, 715 (the request's), 1, 581, 55 Symbol, 15=USD, 730
SettlPrice = the mark, 731 SettlPriceType=2 (theoretical), 734 PriorSettlPrice = the mark
too (the venue has no settlement cycle), and PositionQty (702=1, 703 PosType=TQ, 704
LongQty, 705 ShortQty: the net holding, long or short). With 25005=Y a margin position
carries 25018 LiquidationPrice (the mark at which the account would fall to its
maintenance margin, the other marks unchanged). No average price and no unrealised P&L:
the ledger keeps no cost basis, so the venue cannot state them honestly. Refused: AO with
729=2 and 728 = 1 (unknown symbol, or not a USD instrument), 3 (not authorized), 4 (not
supported); no position: 728=2, 729=0.

**PartyRiskLimitsRequest (CL)** -> **PartyRiskLimitsReport (CM)**, FIX 5.0 SP2 messages
declared in the venue's dictionary (FIX 4.4 has no message for limits; the standard's
own later ones beat a venue-invented one): 1666 RiskLimitRequestID; the account in
Parties (448, 452=24), else the session's default account; NoRiskInstrumentScopes (1534)
entries with 1535=1 and 1536 InstrumentScopeSymbol narrow it to some instruments
(default: all). The report: 1667,
1666, 1760=3 (definitions and utilizations), 1511 RequestResult, and one
NoPartyRiskLimits entry per place a limit that applies was set: NoPartyDetails (1691 the
account, firm or venue, 1692=D, 1693 role 24 account / 1 executing firm / 22 exchange
for an instrument's own limits) and NoRiskLimits entries, each a NoRiskLimitTypes entry
(1530 RiskLimitType, 1531 RiskLimitAmount, 1766 RiskLimitUtilizationAmount where the
venue measures a use, 1532 RiskLimitCurrency for notionals) and the instrument
(1534=1, 1535=1, 1536); 1670 RiskLimitID names the scope (``firm:ALPHA``). RiskLimitType:
10 clip size (maximum order quantity), 11 maximum order notional, 0 credit limit (gross
open notional), 2 net limit (maximum position), and the venue's 4000 minimum quantity,
4001 minimum notional, 4002 price band (%), 4003 maximum open orders, 4004 market order
protection band (%). Text names the account and any kill switch that blocks it.

**PartyActionRequest (DH)** (risk sessions only) -> **PartyActionReport (DI)**: the kill
switch of FIX 5.0 SP2 (made for halting and reinstating a party; an
OrderMassCancelRequest with a venue flag could cancel but neither block nor lift). 2328
PartyActionRequestID, 2329 PartyActionType 1 (halt trading: the party's open orders are
cancelled and new ones refused) or 2 (reinstate), and one Parties entry naming the
party: 452=24 an account, 1 (or 13) a firm, 55 a FIX session (by its SenderCompID);
Text(58) is the reason. The engine checks that the party belongs
to the risk session's firm (or a firm it is entitled to). The report: 2328, 2331, 2329,
2332 PartyActionResponse 1 (completed) or 2 (rejected, 2333 PartyActionRejectReason 0
invalid party, 98 not authorized, 99 other), the party, and Text (with the number of
orders cancelled). 0 (suspend) is refused: the venue's only suspension cancels orders.

Other roles sending these get a BusinessMessageReject (380=6). There are no
subscriptions (SubscriptionRequestType 1 is refused); the margin notices are the only
unsolicited reports. This module keeps no state of its own.
"""
from __future__ import annotations

import itertools
import logging
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any, Callable

import quickfix as fix

from sessions import codec
from sessions.application import SessionCtx, VenueApplication
from sessions.codec import EdgeReject, utc
from venue.errors import VenueError
from venue.instruments import fmt_multiple
from venue.margin import VALUATION_ASSET as VALUATION
from venue.margin import Liquidation
from venue.risk import KillSwitch, KillSwitchReport
from venue.types import Reject

log = logging.getLogger("sessions.risk_session")

_ROLES = ("order_entry", "risk")

# CollateralInquiryAck
COLL_REJECTED, COLL_COMPLETED = "4", "2"
COLL_NOT_SUPPORTED, COLL_TRANSPORT, COLL_UNAUTHORIZED, COLL_OTHER = "8", "4", "9", "99"
# RequestForPositionsAck
POS_OK, POS_INVALID, POS_NONE, POS_UNAUTHORIZED, POS_NOT_SUPPORTED, POS_OTHER = "0", "1", "2", "3", "4", "99"
# PartyRiskLimitsReport RequestResult
RL_OK, RL_INVALID, RL_UNAUTHORIZED, RL_UNAVAILABLE, RL_NOT_SUPPORTED = "0", "1", "3", "4", "5"
# PartyActionReport
PA_COMPLETED, PA_REJECTED = "1", "2"
PA_INVALID_PARTY, PA_NOT_AUTHORIZED, PA_OTHER = "0", "98", "99"

# Parties roles <-> kill switch scopes
PARTY_SCOPE = {"24": "account", "1": "firm", "13": "firm", "55": "session"}
SCOPE_PARTY = {"account": "24", "firm": "1", "session": "55"}
LIMIT_PARTY = {"account": "24", "firm": "1", "instrument": "22"}
# venue limit -> (RiskLimitType, unit)
LIMIT_TYPES = {
    "max_qty": ("10", "qty"), "max_notional": ("11", "notional"), "max_open_notional": ("0", "notional"),
    "max_position": ("2", "qty"), "min_qty": ("4000", "qty"), "min_notional": ("4001", "notional"),
    "price_band_ppm": ("4002", "pct"), "max_open_orders": ("4003", "count"), "market_band_ppm": ("4004", "pct"),
}
_SCOPE_ORDER = {"account": 0, "firm": 1, "instrument": 2}
_ORDER_FILTERS = (11, 37, 198, 526, 124, 897, 55, 48)  # a collateral inquiry about orders, trades, instruments


def _signed(asset: Any, atoms: int) -> str:
    return asset.fmt(atoms) if atoms >= 0 else "-" + asset.fmt(-atoms)


def _pct(ppm: int) -> str:
    return fmt_multiple(ppm, Decimal("0.0001"))


class RiskRequests:
    """The handlers of BB, AN and CL (order-entry and risk sessions) and DH (risk)."""

    def __init__(self, app: VenueApplication, dictionary: str) -> None:
        self.app = app
        self.dd = fix.DataDictionary(dictionary)  # to build messages with repeating groups
        self._ids = itertools.count(1)
        self._id_base = time.time_ns() // 1_000_000
        for role in _ROLES:
            h = app.handlers[role]
            h["BB"] = self.on_collateral_inquiry
            h["AN"] = self.on_positions
            h["CL"] = self.on_limits
        app.handlers["risk"]["DH"] = self.on_party_action
        app.message_names.update({"BB": "CollateralInquiry", "AN": "RequestForPositions",
                                  "CL": "PartyRiskLimitsRequest", "DH": "PartyActionRequest"})
        app.event_routes[KillSwitchReport] = self._route_kill_report
        app.event_routes[Liquidation] = self._route_liquidation

    # -- helpers -------------------------------------------------------------------------
    def _id(self) -> str:
        return f"R{self._id_base}-{next(self._ids)}"

    def _message(self, msg_type: str, body: str) -> fix.Message:
        """A message from its body, parsed against the dictionary so that its repeating
        groups are groups (sendToTarget fills the header, BodyLength and CheckSum)."""
        payload = f"35={msg_type}\x01{body}"
        return fix.Message(f"8=FIX.4.4\x019={len(payload)}\x01{payload}10=000\x01", self.dd, False)

    def _read(self, ctx: SessionCtx, fn: Callable[[Any], Any], answer: Callable[[Any], list[fix.Message]],
              fail: Callable[[str], fix.Message]) -> None:
        """``fn(engine)`` on the sequencer thread; ``answer(result)`` built and sent by the
        outbox thread, in order with everything else the session gets."""
        app = self.app

        def reply(result: Any) -> None:
            def job() -> None:
                if isinstance(result, Exception):
                    log.error("reading for %s failed: %r", ctx.comp_id, result)
                    app.send(ctx, fail(f"internal error: {type(result).__name__}"))
                    return
                try:
                    msgs = answer(result)
                except Exception as e:  # a bug: the client still gets an answer
                    log.exception("answering %s failed", ctx.comp_id)
                    msgs = [fail(f"internal error: {type(e).__name__}")]
                for m in msgs:
                    app.send(ctx, m)
            app.outbox.put(job)

        try:
            app.venue.call(fn, reply)
        except VenueError:
            app.outbox.put(lambda: app.send(ctx, fail("venue unavailable")))

    def _account(self, ctx: SessionCtx, named: str) -> str | EdgeReject:
        return self.app.resolve_account({"1": named} if named else {}, ctx)

    @staticmethod
    def _groups(msg: fix.Message, count_tag: int, delim: int, tags: tuple[int, ...]) -> list[dict[int, str]]:
        if not msg.isSetField(count_tag):
            return []
        out = []
        for i in range(1, int(msg.getField(count_tag)) + 1):
            g = fix.Group(count_tag, delim)
            msg.getGroup(i, g)
            out.append({t: g.getField(t) for t in tags if g.isSetField(t)})
        return out

    # -- CollateralInquiry ---------------------------------------------------------------
    def on_collateral_inquiry(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        inq = f.get("909", "")
        if not inq:
            seq = msg.getHeader().getField(34)
            self.app.answer_after(ctx, lambda: codec.business_reject(
                "BB", seq, "5", "CollInquiryID(909) is required: the venue's answers refer to it"))
            return
        named = f.get("1", "")

        def refuse(result: str, text: str) -> None:
            self.app.answer_after(ctx, lambda: self._coll_ack(inq, COLL_REJECTED, result, text, named))

        sub = f.get("263", "0")
        if sub != "0":
            return refuse(COLL_NOT_SUPPORTED, f"SubscriptionRequestType {sub} is not supported: snapshots only (0)")
        if f.get("725", "0") != "0":
            return refuse(COLL_TRANSPORT, "ResponseTransportType must be 0 (in band)")
        if "938" in f:
            return refuse(COLL_NOT_SUPPORTED, "CollInquiryQualifier is not supported: the venue reports collateral "
                                              "per account")
        if any(str(t) in f for t in _ORDER_FILTERS):
            return refuse(COLL_NOT_SUPPORTED, "collateral is reported per account, not per order, trade or "
                                              "instrument")
        if f.get("15", VALUATION) != VALUATION:
            return refuse(COLL_OTHER, f"collateral is valued in {VALUATION} only")
        if named:
            acct = self._account(ctx, named)
            if isinstance(acct, EdgeReject):
                return refuse(COLL_UNAUTHORIZED, acct.text)
            accounts: tuple[str, ...] = (acct,)
        else:
            accounts = self.app.allowed_accounts(ctx)
            if not accounts:
                self.app.answer_after(ctx, lambda: self._coll_ack(inq, COLL_COMPLETED, "0",
                                                                  "this session has no accounts", "", total=0))
                return

        def read(e: Any) -> list[dict[str, Any]] | None:
            margin = e.extensions.get("margin")
            if margin is None:
                return None
            return [r for a in accounts if (r := margin.report(a)) is not None]

        def answer(reports: list[dict[str, Any]] | None) -> list[fix.Message]:
            if reports is None:
                return [self._coll_ack(inq, COLL_REJECTED, COLL_OTHER, "this venue has no margin module", named)]
            n = len(reports)
            return [self.collateral_report(r, inq, i, n, ctx.ext) for i, r in enumerate(reports)]

        self._read(ctx, read, answer, lambda text: self._coll_ack(inq, COLL_REJECTED, COLL_OTHER, text, named))

    def _coll_ack(self, inq: str, status: str, result: str, text: str, account: str, total: int | None = None
                  ) -> fix.Message:
        body = f"909={inq}\x01945={status}\x01946={result}\x01"
        if total is not None:
            body += f"911={total}\x01"
        if account:
            body += f"1={account}\x01"
        return self._message("BG", body + f"58={text[:500]}\x01")

    def collateral_report(self, r: dict[str, Any], inq: str, i: int, n: int, ext: bool) -> fix.Message:
        app = self.app
        usd = app.asset(VALUATION)
        margin = r["kind"] == "margin"
        body = (f"908={self._id()}\x01909={inq}\x01910=3\x01911={n}\x01912={'Y' if i == n - 1 else 'N'}\x01"
                f"1={r['account']}\x0115={VALUATION}\x01")
        assets = r["assets"]
        if assets:
            body += f"711={len(assets)}\x01"
            for a in assets:
                asset = app.asset(a["asset"])
                body += f"311={a['asset']}\x01879={asset.fmt(a['total'])}\x01"
                inst = app.instrument(a["symbol"]) if a["symbol"] else None
                if a["asset"] == VALUATION:
                    body += "810=1\x01"
                elif inst is not None and a["mark"]:
                    body += f"810={fmt_multiple(a['mark'], inst.tick_size)}\x01"
                if a["value"] is not None:
                    body += f"885={_signed(usd, a['value'])}\x01"
                stips = [("AVAILABLE", a["avail"]), ("HELD", a["held"])]
                stips += [(k, a[f]) for k, f in (("BORROWED", "loan"), ("WITHDRAWING", "withdrawing")) if a[f]]
                body += f"887={len(stips)}\x01" + "".join(f"888={k}\x01889={_signed(asset, v)}\x01" for k, v in stips)
        equity = r["equity"]
        if margin:
            body += f"899={_signed(usd, r['open_equity'] - r['open_initial'])}\x01"
        body += f"900={_signed(usd, equity)}\x01"
        level = None
        if margin:
            body += f"901={_signed(usd, r['borrowed_value'])}\x01"
            if r["maintenance"] > 0:
                level = (Decimal(equity) / Decimal(r["maintenance"])).quantize(Decimal("0.0001"), ROUND_DOWN)
            if ext:
                body += (f"25011={r['leverage']}\x01" + (f"25012={level}\x01" if level is not None else "") +
                         f"25013={_signed(usd, r['initial'])}\x0125014={_signed(usd, r['maintenance'])}\x01"
                         f"25015={_signed(usd, r['open_initial'])}\x0125016={_signed(usd, r['gross'])}\x01"
                         f"25017={r['state']}\x01")
            text = (f"margin account, {r['leverage']}x, in {VALUATION}: equity {_signed(usd, equity)}, gross position "
                    f"{_signed(usd, r['gross'])}, initial margin {_signed(usd, r['initial'])} "
                    f"({_signed(usd, r['open_initial'])} with open orders), maintenance margin "
                    f"{_signed(usd, r['maintenance'])}, borrowed {_signed(usd, r['borrowed_value'])}, margin level "
                    f"{level if level is not None else 'n/a'} (liquidation below 1), liquidation state {r['state']}")
        else:
            text = f"{r['kind']} account: equity {_signed(usd, equity)} {VALUATION}"
        return self._message("BA", body + f"58={text}\x01")

    def _route_liquidation(self, ev: Liquidation) -> None:
        """A liquidation moved on (outbox thread): an unsolicited CollateralReport, a margin
        notice, to every order-entry and risk session that may use the account."""
        app = self.app
        targets = [c for c in list(app.ctx.values()) if c.rec.role in _ROLES and ev.account in app.allowed_accounts(c)]
        if not targets:
            return
        usd = app.asset(VALUATION)
        body = (f"908={self._id()}\x01910=3\x011={ev.account}\x0115={VALUATION}\x01900={_signed(usd, ev.equity)}\x01"
                f"58={f'liquidation {ev.stage}: {ev.text}' if ev.text else f'liquidation {ev.stage}'}\x01")
        plain = ext = None
        for c in targets:
            if c.ext:
                ext = ext or self._message("BA", body + f"25014={_signed(usd, ev.maintenance)}\x0125017={ev.stage}\x01")
                app.send(c, ext)
            else:
                plain = plain or self._message("BA", body)
                app.send(c, plain)

    # -- RequestForPositions -------------------------------------------------------------
    def on_positions(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        req, named, acct_type, date = f["710"], f["1"], f["581"], f["715"]

        def ack(result: str, status: str, text: str, total: int = 0) -> fix.Message:
            return self._message("AO", f"721={self._id()}\x01710={req}\x01727={total}\x01728={result}\x01"
                                       f"729={status}\x011={named}\x01581={acct_type}\x0158={text[:500]}\x01")

        def refuse(result: str, text: str) -> None:
            self.app.answer_after(ctx, lambda: ack(result, "2", text))

        if f["724"] != "0":
            return refuse(POS_NOT_SUPPORTED, f"PosReqType {f['724']} is not supported: positions only (0)")
        if f.get("263", "0") != "0":
            return refuse(POS_NOT_SUPPORTED, f"SubscriptionRequestType {f['263']} is not supported: snapshots only (0)")
        if f.get("725", "0") != "0":
            return refuse(POS_NOT_SUPPORTED, "ResponseTransportType must be 0 (in band)")
        if f.get("15", VALUATION) != VALUATION:
            return refuse(POS_INVALID, f"positions are valued in {VALUATION} only")
        symbol = f.get("55", "")
        if symbol:
            inst = self.app.instrument(symbol)
            if inst is None:
                return refuse(POS_INVALID, f"unknown symbol {symbol}")
            if inst.quote != VALUATION:
                return refuse(POS_INVALID, f"a position is an asset's, reported on its {VALUATION} instrument: "
                                           f"{symbol} is not one (ask for {inst.base}-{VALUATION})")
        acct = self._account(ctx, named)
        if isinstance(acct, EdgeReject):
            return refuse(POS_UNAUTHORIZED, acct.text)

        def read(e: Any) -> dict[str, Any] | str:
            margin = e.extensions.get("margin")
            if margin is None:
                return "positions are not available (this venue has no margin module)"
            return margin.report(acct) or f"unknown account {acct}"

        def answer(r: dict[str, Any] | str) -> list[fix.Message]:
            if isinstance(r, str):
                return [ack(POS_OTHER, "2", r)]
            held = [a for a in r["assets"] if a["symbol"] and a["net"] and (not symbol or a["symbol"] == symbol)]
            if not held:
                return [ack(POS_NONE, "0", "no positions" + (f" in {symbol}" if symbol else ""))]
            n = len(held)
            out = [ack(POS_OK, "0", f"{n} position{'s' if n > 1 else ''}", n)]
            for a in held:
                out.append(self.position_report(r, a, req, acct_type, date, n, ctx.ext))
            return out

        self._read(ctx, read, answer, lambda text: ack(POS_OTHER, "2", text))

    def position_report(self, r: dict[str, Any], a: dict[str, Any], req: str, acct_type: str, date: str, n: int,
                        ext: bool) -> fix.Message:
        app = self.app
        asset = app.asset(a["asset"])
        inst = app.instrument(a["symbol"])
        assert inst is not None
        mark = fmt_multiple(a["mark"], inst.tick_size)
        net = a["net"]
        body = (f"721={self._id()}\x01710={req}\x01724=0\x01727={n}\x01728=0\x01715={date}\x01"
                f"1={r['account']}\x01581={acct_type}\x0155={a['symbol']}\x0115={VALUATION}\x01"
                f"730={mark}\x01731=2\x01734={mark}\x01"
                f"702=1\x01703=TQ\x01704={asset.fmt(max(net, 0))}\x01705={asset.fmt(max(-net, 0))}\x01")
        text = f"{'long' if net > 0 else 'short'} {asset.fmt(abs(net))} {a['asset']} at mark {mark}"
        if a["value"] is not None:
            text += f" (value {_signed(app.asset(VALUATION), a['value'])} {VALUATION})"
        if r["kind"] == "margin" and a["liquidation_price"]:
            liq = fmt_multiple(a["liquidation_price"], inst.tick_size)
            text += f"; liquidation price {liq}"
            if ext:
                body += f"25018={liq}\x01"
        return self._message("AP", body + f"58={text}\x01")

    # -- PartyRiskLimitsRequest ----------------------------------------------------------
    def on_limits(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        req = f["1666"]

        def report(result: str, text: str, body: str = "") -> fix.Message:
            return self._message("CM", f"1667={self._id()}\x011666={req}\x011760=3\x011511={result}\x01{body}"
                                       f"60={utc(time.time_ns())}\x0158={text[:500]}\x01")

        def refuse(result: str, text: str) -> None:
            self.app.answer_after(ctx, lambda: report(result, text))

        if f.get("263", "0") != "0":
            return refuse(RL_NOT_SUPPORTED, f"SubscriptionRequestType {f['263']} is not supported: snapshots only (0)")
        parties = self._groups(msg, 453, 448, (448, 452))
        named = ""
        for p in parties:
            if p.get(452) != "24" or not p.get(448):
                return refuse(RL_INVALID, "Parties may name one account (PartyRole 24) and nothing else")
            if named:
                return refuse(RL_INVALID, "one account per request")
            named = p[448]
        acct = self._account(ctx, named)
        if isinstance(acct, EdgeReject):
            return refuse(RL_UNAUTHORIZED if acct.code == Reject.NOT_ENTITLED else RL_INVALID, acct.text)
        symbols: list[str] = []
        for s in self._groups(msg, 1534, 1535, (1535, 1536)):
            if s.get(1535, "1") != "1" or not s.get(1536):
                return refuse(RL_INVALID, "instrument scopes must include (1535=1) a symbol (1536)")
            if self.app.instrument(s[1536]) is None:
                return refuse(RL_INVALID, f"unknown symbol {s[1536]}")
            symbols.append(s[1536])
        session = ctx.comp_id

        def read(e: Any) -> tuple[list[tuple[str, list[dict[str, Any]]]], str] | None:
            risk = e.extensions.get("risk")
            if risk is None:
                return None
            syms = symbols or sorted(e.markets)
            return [(s, risk.applied(acct, s)) for s in syms], risk.kill_state(acct, session)

        def answer(x: Any) -> list[fix.Message]:
            if x is None:
                return [report(RL_UNAVAILABLE, "this venue has no pre-trade risk module")]
            rows, kill = x
            text = f"limits that apply to account {acct}" + (f"; {kill}" if kill else "")
            return [report(RL_OK, text, self._limits_body(rows, ctx))]

        self._read(ctx, read, answer, lambda text: report(RL_UNAVAILABLE, text))

    def _limits_body(self, rows: list[tuple[str, list[dict[str, Any]]]], ctx: SessionCtx) -> str:
        by_scope: dict[tuple[str, str], list[str]] = {}
        for symbol, applied in rows:
            inst = self.app.instrument(symbol)
            if inst is None:
                continue
            for r in applied:
                kind = LIMIT_TYPES.get(r["name"])
                if kind is None:
                    continue
                fix_type, unit = kind
                entry = f"1529=1\x011530={fix_type}\x011531={self._limit_value(unit, r['value'], inst)}\x01"
                if r["used"] is not None:
                    entry += f"1766={self._limit_value(unit, r['used'], inst)}\x01"
                if unit == "notional":
                    entry += f"1532={inst.quote}\x01"
                entry += f"1534=1\x011535=1\x011536={symbol}\x01"
                by_scope.setdefault((r["scope"], r["target"]), []).append(entry)
        body = f"1677={len(by_scope)}\x01"
        for (scope, target), entries in sorted(by_scope.items(), key=lambda kv: (_SCOPE_ORDER[kv[0][0]], kv[0][1])):
            party = ctx.rec.target_comp_id if scope == "instrument" else target
            body += (f"1671=1\x011691={party}\x011692=D\x011693={LIMIT_PARTY[scope]}\x01"
                     f"1669={len(entries)}\x01{''.join(entries)}1670={scope}:{target}\x01")
        return body

    def _limit_value(self, unit: str, v: int, inst: Any) -> str:
        if unit == "qty":
            return fmt_multiple(v, inst.lot_size)
        if unit == "notional":
            return self.app.asset(inst.quote).fmt(v)
        if unit == "pct":
            return _pct(v)
        return str(v)

    # -- PartyActionRequest (the kill switch) -------------------------------------------
    def on_party_action(self, msg: fix.Message, ctx: SessionCtx) -> None:
        f = codec.fields_of(msg)
        req, action = f["2328"], f["2329"]
        parties = self._groups(msg, 453, 448, (448, 452))
        party = parties[0] if len(parties) == 1 else {}

        def refuse(reason: str, text: str) -> None:
            self.app.answer_after(ctx, lambda: self.party_action_report(req, action, PA_REJECTED, reason, text,
                                                                        party.get(448, ""), party.get(452, "")))

        if action not in ("1", "2"):
            return refuse(PA_OTHER, f"PartyActionType {action} is not supported: 1 (halt trading: cancels the "
                                    f"party's open orders and refuses new ones) or 2 (reinstate)")
        scope = PARTY_SCOPE.get(party.get(452, ""))
        if scope is None or not party.get(448):
            return refuse(PA_INVALID_PARTY, "name one party: PartyID(448) with PartyRole(452) 24 (account), 1 or 13 "
                                            "(firm) or 55 (FIX session)")
        reason = f.get("58", "") or f"kill switch from {ctx.comp_id}"
        cmd = KillSwitch(scope, party[448], action == "1", reason, requester=ctx.comp_id, request_id=req)
        self.app.submit(ctx, cmd, lambda code, text: self.party_action_report(
            req, action, PA_REJECTED, PA_OTHER, text, party[448], party[452]))

    def _route_kill_report(self, ev: KillSwitchReport) -> None:
        """A KillSwitchReport (outbox thread): to the risk session that asked, if any."""
        cmd = ev.cmd
        ctx = self.app.ctx.get(cmd.requester) if cmd.requester else None
        if ctx is None:
            return
        if ev.code:
            reason = PA_NOT_AUTHORIZED if ev.code == Reject.NOT_ENTITLED else (
                PA_INVALID_PARTY if ev.code in (Reject.UNKNOWN_ACCOUNT, Reject.UNKNOWN_FIRM, Reject.BAD_COMMAND)
                else PA_OTHER)
            status, text = PA_REJECTED, ev.text
        else:
            reason, status = "", PA_COMPLETED
            text = ev.text + (f": {ev.cancelled} open order{'s' if ev.cancelled != 1 else ''} cancelled"
                              if cmd.active else "")
        self.app.send(ctx, self.party_action_report(cmd.request_id, "1" if cmd.active else "2", status, reason, text,
                                                    cmd.target, SCOPE_PARTY.get(cmd.scope, ""), ev.ts))

    def party_action_report(self, req: str, action: str, status: str, reason: str, text: str, party: str,
                            role: str, ts: int = 0) -> fix.Message:
        body = f"2328={req}\x012331={self._id()}\x012329={action}\x012332={status}\x01"
        if reason:
            body += f"2333={reason}\x01"
        if party:
            body += f"453=1\x01448={party}\x01447=D\x01" + (f"452={role}\x01" if role else "")
        return self._message("DI", body + f"60={utc(ts or time.time_ns())}\x0158={text[:500]}\x01")
