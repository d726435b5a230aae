"""Builds fix_config/FIX44.xml: QuickFIX's FIX 4.4 dictionary plus the venue's tags.

    python fix_config/make_dictionary.py [path/to/quickfix/FIX44.xml]

The venue's additions (declared so the acceptor validates them, not merely tolerates):
  25001 SelfTradePreventionMode (INT)  NewOrderSingle, OrderCancelReplaceRequest, ExecutionReport
        1=NONE 2=EXPIRE_TAKER 3=EXPIRE_MAKER 4=EXPIRE_BOTH 5=DECREMENT (Binance's values)
  8013  CancelOrdersOnDisconnect (CHAR) Logon: Y=all orders of the session's accounts,
        S=orders entered by this session, N=none (Coinbase's values)
  25002 VenueRejectCode (INT) ExecutionReport, OrderCancelReject: the venue's own reject code
        (venue.types.Reject) beside the standard OrdRejReason/CxlRejReason
  880   TrdMatchID added to ExecutionReport (the trade id of a fill, also in the standard
        SecondaryExecID 527)
  25005 VenueExtensions (BOOLEAN) Logon: Y = this session's reports may carry 25001, 25002
        and 880. Without it the venue sends only what the stock FIX 4.4 dictionary declares
        (25001 echoed on the reports of an order that carried it), so that a client with an
        unmodified FIX 4.4 engine can trade.
  1     Account added to OrderMassCancelRequest (FIX 4.4 has it in OrderMassStatusRequest
        but not there): cancel the orders of one of the session's accounts
Market data and trade capture (sessions/marketdata_session.py, sessions/trade_capture.py):
  83    RptSeq added to MarketDataSnapshotFullRefresh, SecurityStatus and the MDIncGrp entries
        (FIX 4.4 has the field but not there; FIX 5.0 puts it in W and MDIncGrp)
  1003  TradeID (STRING, FIX 5.0's) and 5797 AggressorSide (INT 1=buy 2=sell, as CME and
        Eurex use it) in the MDIncGrp and MDFullGrp entries of trades
  969   MinPriceIncrement (FIX 5.0's tick size), 1140 MaxTradeVol (FIX 5.0's), 326
        SecurityTradingStatus, 25003 MinNotional and 25004 MaxNotional (AMT, in the quote
        currency) in the SecListGrp entries of a SecurityList
  1057  AggressorIndicator (BOOLEAN, FIX 5.0's) in the TrdCapRptSideGrp entries of a
        TradeCaptureReport
Margin, positions, limits and the kill switch (sessions/risk_session.py):
  25010 LiquidationIndicator (BOOLEAN) ExecutionReport: Y on the reports of a liquidation
        order (its fills) and of an order cancelled because its account is being liquidated
        (every client also sees Text(58) starting "liquidation")
  25011 Leverage (INT), 25012 MarginLevel (FLOAT: equity / maintenance margin; liquidation
        below 1), 25013 InitialMargin, 25014 MaintenanceMargin, 25015 MarginUsed (initial
        margin counting open orders), 25016 GrossPositionValue (AMT, in Currency(15)) and
        25017 LiquidationState (STRING: normal, started, stalled, ...) in CollateralReport
  25018 LiquidationPrice (PRICE) in PositionReport
  The custom tags above go only to sessions that logged on with 25005=Y.
  FIX 5.0 SP2 messages a FIX 4.4 venue lacks, declared with their FIX 5.0 tags and layout
  (a subset of their fields), for the venue's dictionary users:
  CL PartyRiskLimitsRequest / CM PartyRiskLimitsReport: the limits that apply to an
        account, where each was set (NoPartyDetails) and its use (RiskLimitUtilizationAmount).
        RiskLimitType(1530) keeps FIX's values and adds the venue's: 4000 minimum order
        quantity, 4001 minimum order notional, 4002 price band (percent), 4003 maximum open
        orders, 4004 market order protection band (percent)
  DH PartyActionRequest / DI PartyActionReport: a risk session's kill switch
        (PartyActionType 1 halt trading, 2 reinstate)
  PartyRole(452) gains FIX 5.0's 55 (Session ID), for a kill switch on one FIX session.
The output is committed; rerun this only to change the additions.
"""
from __future__ import annotations

import os
import sys

FIELDS = [
    ("25001", "SelfTradePreventionMode", "INT",
     [("1", "NONE"), ("2", "EXPIRE_TAKER"), ("3", "EXPIRE_MAKER"), ("4", "EXPIRE_BOTH"), ("5", "DECREMENT")]),
    ("8013", "CancelOrdersOnDisconnect", "CHAR", [("Y", "ALL"), ("S", "SESSION"), ("N", "NONE")]),
    ("25002", "VenueRejectCode", "INT", []),
    ("25005", "VenueExtensions", "BOOLEAN", []),
    ("1003", "TradeID", "STRING", []),
    ("5797", "AggressorSide", "INT", [("1", "BUY"), ("2", "SELL")]),
    ("969", "MinPriceIncrement", "FLOAT", []),
    ("1140", "MaxTradeVol", "QTY", []),
    ("25003", "MinNotional", "AMT", []),
    ("25004", "MaxNotional", "AMT", []),
    ("1057", "AggressorIndicator", "BOOLEAN", []),
    # margin and positions (venue tags, to sessions with 25005=Y)
    ("25010", "LiquidationIndicator", "BOOLEAN", []),
    ("25011", "Leverage", "INT", []),
    ("25012", "MarginLevel", "FLOAT", []),
    ("25013", "InitialMargin", "AMT", []),
    ("25014", "MaintenanceMargin", "AMT", []),
    ("25015", "MarginUsed", "AMT", []),
    ("25016", "GrossPositionValue", "AMT", []),
    ("25017", "LiquidationState", "STRING", []),
    ("25018", "LiquidationPrice", "PRICE", []),
    # FIX 5.0 SP2: party risk limits
    ("1666", "RiskLimitRequestID", "STRING", []),
    ("1667", "RiskLimitReportID", "STRING", []),
    ("1760", "RiskLimitRequestType", "INT",
     [("1", "DEFINITIONS"), ("2", "UTILIZATION"), ("3", "DEFINITIONS_AND_UTILIZATIONS")]),
    ("1511", "RequestResult", "INT",
     [("0", "VALID_REQUEST"), ("1", "INVALID_OR_UNSUPPORTED_REQUEST"), ("2", "NO_DATA_FOUND"), ("3", "NOT_AUTHORIZED"),
      ("4", "DATA_TEMPORARILY_UNAVAILABLE"), ("5", "REQUEST_FOR_DATA_NOT_SUPPORTED"), ("99", "OTHER")]),
    ("1677", "NoPartyRiskLimits", "NUMINGROUP", []),
    ("1671", "NoPartyDetails", "NUMINGROUP", []),
    ("1691", "PartyDetailID", "STRING", []),
    ("1692", "PartyDetailIDSource", "CHAR", []),
    ("1693", "PartyDetailRole", "INT", []),
    ("1669", "NoRiskLimits", "NUMINGROUP", []),
    ("1529", "NoRiskLimitTypes", "NUMINGROUP", []),
    ("1530", "RiskLimitType", "INT",
     [("0", "CREDIT_LIMIT"), ("1", "GROSS_LIMIT"), ("2", "NET_LIMIT"), ("3", "EXPOSURE"), ("4", "LONG_LIMIT"),
      ("5", "SHORT_LIMIT"), ("6", "CASH_MARGIN"), ("7", "ADDITIONAL_MARGIN"), ("8", "TOTAL_MARGIN"),
      ("9", "LIMIT_CONSUMED"), ("10", "CLIP_SIZE"), ("11", "MAX_NOTIONAL_ORDER_SIZE"), ("12", "DV01_PV01_LIMIT"),
      ("13", "CS01_LIMIT"), ("14", "VOLUME_LIMIT_PER_TIME_PERIOD"), ("15", "VOL_FILLED_PCT_ORD_VOL_TM_PERIOD"),
      ("16", "NOTL_FILLED_PCT_NOTL_TM_PERIOD"), ("17", "TRANSACTION_EXECUTION_LIMIT_PER_TIME_PERIOD"),
      ("4000", "MIN_ORDER_QTY"), ("4001", "MIN_NOTIONAL_ORDER_SIZE"), ("4002", "PRICE_BAND_PCT"),
      ("4003", "MAX_OPEN_ORDERS"), ("4004", "MARKET_PROTECTION_BAND_PCT")]),
    ("1531", "RiskLimitAmount", "AMT", []),
    ("1532", "RiskLimitCurrency", "CURRENCY", []),
    ("1766", "RiskLimitUtilizationAmount", "AMT", []),
    ("1670", "RiskLimitID", "STRING", []),
    ("1534", "NoRiskInstrumentScopes", "NUMINGROUP", []),
    ("1535", "InstrumentScopeOperator", "INT", [("1", "INCLUDE"), ("2", "EXCLUDE")]),
    ("1536", "InstrumentScopeSymbol", "STRING", []),
    # FIX 5.0 SP2: party actions (the kill switch)
    ("2328", "PartyActionRequestID", "STRING", []),
    ("2329", "PartyActionType", "INT", [("0", "SUSPEND"), ("1", "HALT_TRADING"), ("2", "REINSTATE")]),
    ("2331", "PartyActionReportID", "STRING", []),
    ("2332", "PartyActionResponse", "INT", [("0", "ACCEPTED"), ("1", "COMPLETED"), ("2", "REJECTED")]),
    ("2333", "PartyActionRejectReason", "INT",
     [("0", "INVALID_PARTY"), ("1", "UNK_REQ_PARTY"), ("98", "NOT_AUTHORIZED"), ("99", "OTHER")]),
]
# values added to fields FIX 4.4 has
FIELD_VALUES = {
    "MsgType": [("CL", "PARTY_RISK_LIMITS_REQUEST"), ("CM", "PARTY_RISK_LIMITS_REPORT"),
                ("DH", "PARTY_ACTION_REQUEST"), ("DI", "PARTY_ACTION_REPORT")],
    "PartyRole": [("55", "SESSION_ID")],
}


def _scopes(indent: str) -> str:
    """RiskInstrumentScopeGrp, reduced to the instrument's symbol."""
    return (f"{indent}<group name='NoRiskInstrumentScopes' required='N'>\n"
            f"{indent} <field name='InstrumentScopeOperator' required='N' />\n"
            f"{indent} <field name='InstrumentScopeSymbol' required='N' />\n"
            f"{indent}</group>\n")


# FIX 5.0 SP2 messages (a subset of their fields, in their FIX 5.0 order)
MESSAGES = {
    ("PartyRiskLimitsRequest", "CL"): (
        "   <field name='RiskLimitRequestID' required='Y' />\n"
        "   <field name='RiskLimitRequestType' required='N' />\n"
        "   <field name='SubscriptionRequestType' required='N' />\n"
        "   <component name='Parties' required='N' />\n" + _scopes("   ") +
        "   <field name='Text' required='N' />\n"),
    ("PartyRiskLimitsReport", "CM"): (
        "   <field name='RiskLimitReportID' required='Y' />\n"
        "   <field name='RiskLimitRequestID' required='N' />\n"
        "   <field name='RiskLimitRequestType' required='N' />\n"
        "   <field name='RequestResult' required='N' />\n"
        "   <group name='NoPartyRiskLimits' required='N'>\n"
        "    <group name='NoPartyDetails' required='N'>\n"
        "     <field name='PartyDetailID' required='N' />\n"
        "     <field name='PartyDetailIDSource' required='N' />\n"
        "     <field name='PartyDetailRole' required='N' />\n"
        "    </group>\n"
        "    <group name='NoRiskLimits' required='N'>\n"
        "     <group name='NoRiskLimitTypes' required='N'>\n"
        "      <field name='RiskLimitType' required='N' />\n"
        "      <field name='RiskLimitAmount' required='N' />\n"
        "      <field name='RiskLimitUtilizationAmount' required='N' />\n"
        "      <field name='RiskLimitCurrency' required='N' />\n"
        "     </group>\n"
        + _scopes("     ") +
        "    </group>\n"
        "    <field name='RiskLimitID' required='N' />\n"
        "   </group>\n"
        "   <field name='TransactTime' required='N' />\n"
        "   <field name='Text' required='N' />\n"),
    ("PartyActionRequest", "DH"): (
        "   <field name='PartyActionRequestID' required='Y' />\n"
        "   <field name='PartyActionType' required='Y' />\n"
        "   <component name='Parties' required='Y' />\n"
        "   <field name='TransactTime' required='N' />\n"
        "   <field name='Text' required='N' />\n"),
    ("PartyActionReport", "DI"): (
        "   <field name='PartyActionRequestID' required='N' />\n"
        "   <field name='PartyActionReportID' required='Y' />\n"
        "   <field name='PartyActionType' required='Y' />\n"
        "   <field name='PartyActionResponse' required='Y' />\n"
        "   <field name='PartyActionRejectReason' required='N' />\n"
        "   <component name='Parties' required='Y' />\n"
        "   <field name='TransactTime' required='N' />\n"
        "   <field name='Text' required='N' />\n"),
}
MESSAGE_FIELDS = {
    "NewOrderSingle": ["SelfTradePreventionMode"],
    "OrderCancelReplaceRequest": ["SelfTradePreventionMode"],
    "ExecutionReport": ["SelfTradePreventionMode", "TrdMatchID", "VenueRejectCode", "LiquidationIndicator"],
    "OrderCancelReject": ["VenueRejectCode"],
    "OrderMassCancelRequest": ["Account"],
    "Logon": ["CancelOrdersOnDisconnect", "VenueExtensions"],
    "CollateralReport": ["Leverage", "MarginLevel", "InitialMargin", "MaintenanceMargin", "MarginUsed",
                         "GrossPositionValue", "LiquidationState"],
    "PositionReport": ["LiquidationPrice"],
    "MarketDataSnapshotFullRefresh": ["RptSeq"],
    "SecurityStatus": ["RptSeq"],
}
# fields added at the end of a component's repeating group
GROUP_FIELDS = {
    "MDIncGrp": ["RptSeq", "TradeID", "AggressorSide"],
    "MDFullGrp": ["TradeID", "AggressorSide"],
    "SecListGrp": ["MinPriceIncrement", "MaxTradeVol", "SecurityTradingStatus", "MinNotional", "MaxNotional"],
    "TrdCapRptSideGrp": ["AggressorIndicator"],
}


def build(src: str) -> str:
    text = open(src).read()
    defs = []
    for num, name, typ, values in FIELDS:
        if values:
            vals = "".join(f"   <value enum='{e}' description='{d}' />\n" for e, d in values)
            defs.append(f"  <field number='{num}' name='{name}' type='{typ}'>\n{vals}  </field>\n")
        else:
            defs.append(f"  <field number='{num}' name='{name}' type='{typ}' />\n")
    i = text.index(" </fields>")
    text = text[:i] + "".join(defs) + text[i:]
    for name, values in FIELD_VALUES.items():
        start = text.index(f"name='{name}' type=")
        end = text.index("  </field>", start)
        add = "".join(f"   <value enum='{e}' description='{d}' />\n" for e, d in values)
        text = text[:end] + add + text[end:]
    i = text.index(" </messages>")
    add = "".join(f"  <message name='{name}' msgtype='{mt}' msgcat='app'>\n{body}  </message>\n"
                  for (name, mt), body in MESSAGES.items())
    text = text[:i] + add + text[i:]
    for msg, names in MESSAGE_FIELDS.items():
        start = text.index(f"<message name='{msg}'")
        end = text.index("  </message>", start)
        add = "".join(f"   <field name='{n}' required='N' />\n" for n in names)
        text = text[:end] + add + text[end:]
    for comp, names in GROUP_FIELDS.items():
        start = text.index(f"<component name='{comp}'>")
        end = text.index("   </group>", start)
        add = "".join(f"    <field name='{n}' required='N' />\n" for n in names)
        text = text[:end] + add + text[end:]
    return text


if __name__ == "__main__":
    import quickfix  # noqa: F401  (to find the installed spec)

    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "FIX44.xml")
    with open(out, "w") as f:
        f.write(build(src))
    print(f"wrote {out}")
