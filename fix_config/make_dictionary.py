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
]
MESSAGE_FIELDS = {
    "NewOrderSingle": ["SelfTradePreventionMode"],
    "OrderCancelReplaceRequest": ["SelfTradePreventionMode"],
    "ExecutionReport": ["SelfTradePreventionMode", "TrdMatchID", "VenueRejectCode"],
    "OrderCancelReject": ["VenueRejectCode"],
    "OrderMassCancelRequest": ["Account"],
    "Logon": ["CancelOrdersOnDisconnect", "VenueExtensions"],
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
