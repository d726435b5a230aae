"""The demo venue's data: what ``venue demo`` seeds into an empty data directory."""
from __future__ import annotations

from venue import access as A
from venue import commands as C
from venue.genesis import genesis_commands
from venue.instruments import DEFAULT_ASSETS
from venue.margin import INSURANCE_ACCOUNT, LENDING_ACCOUNT
from venue.types import AccountKind, STP

ASSETS = {a.code: a for a in DEFAULT_ASSETS}
DEMO_FUNDS = (("USD", "1000000"), ("BTC", "100"), ("ETH", "1000"))
DEMO_MAKER_PPM = 200  # 0.02%
DEMO_TAKER_PPM = 500  # 0.05%


# (user, password, firm, session CompID, role, default account, entitled firms)
DEMO_SESSIONS = (
    ("alpha", "alpha-demo", "ALPHA", "ALPHA-OE", "order_entry", "ALPHA-1", ""),
    ("beta", "beta-demo", "BETA", "BETA-OE", "order_entry", "BETA-1", ""),
    ("alpharisk", "alpharisk-demo", "ALPHA", "ALPHA-RISK", "risk", "", ""),
    ("broker", "broker-demo", "BROKER", "BROKER-DC", "drop_copy", "", "ALPHA,BETA"),
    ("md", "md-demo", "DATA", "MD-CLIENT", "market_data", "", ""),
)
DEMO_MARGIN_ACCOUNT = ("ALPHA", "ALPHA-M", 10, (("USD", "10000"),))  # firm, account, leverage, collateral
# The venue's lending pool (what margin accounts borrow) and insurance fund (what covers
# a liquidation's shortfall) are funded like any account: by deposits, journaled.
DEMO_LENDING_POOL = (("USD", "5000000"), ("BTC", "100"), ("ETH", "2000"))
DEMO_INSURANCE_FUND = (("USD", "250000"),)
DEMO_MSG_RATE = 1000  # messages per second per session before throttling


def demo_access_commands() -> list:
    """Users with hashed passwords and the demo's FIX sessions (TargetCompID VENUE)."""
    from sessions.auth import hash_password

    cmds: list = [C.CreateFirm("BROKER", "Broker Clearing"), C.CreateFirm("DATA", "Market Data Subscriber")]
    for user, password, firm, comp_id, role, account, entitled in DEMO_SESSIONS:
        cmds.append(A.CreateUser(user, firm, hash_password(password), user.title()))
        cmds.append(A.CreateSession(comp_id, role, firm, user, "VENUE", account, "", entitled, False, DEMO_MSG_RATE))
    return cmds


def demo_commands() -> list:
    """Genesis, firms ALPHA and BETA with funded accounts ALPHA-1 and BETA-1, ALPHA's
    10x margin account ALPHA-M with 10,000 USD of collateral, the venue's funded lending
    pool and insurance fund, and the demo's users and FIX sessions."""
    cmds: list = list(genesis_commands())
    for firm, account in (("ALPHA", "ALPHA-1"), ("BETA", "BETA-1")):
        cmds.append(C.CreateFirm(firm, f"{firm.title()} Capital"))
        cmds.append(C.CreateAccount(account, firm, int(AccountKind.CASH), DEMO_MAKER_PPM, DEMO_TAKER_PPM,
                                    int(STP.CANCEL_NEWEST)))
        for asset, amount in DEMO_FUNDS:
            cmds.append(C.Deposit(f"demo-{account}-{asset}", account, asset, ASSETS[asset].to_atoms(amount)))
    firm, account, leverage, collateral = DEMO_MARGIN_ACCOUNT
    cmds.append(C.CreateAccount(account, firm, int(AccountKind.MARGIN), DEMO_MAKER_PPM, DEMO_TAKER_PPM,
                                int(STP.CANCEL_NEWEST), leverage))
    for venue_account, funds in ((account, collateral), (LENDING_ACCOUNT, DEMO_LENDING_POOL),
                                 (INSURANCE_ACCOUNT, DEMO_INSURANCE_FUND)):
        for asset, amount in funds:
            cmds.append(C.Deposit(f"demo-{venue_account}-{asset}", venue_account, asset, ASSETS[asset].to_atoms(amount)))
    return cmds + demo_access_commands()


CONNECT_HELP = """\
FIX 4.4, TargetCompID VENUE, on {host}:
  order entry  port {order_entry:<5}  SenderCompID ALPHA-OE   Username alpha   Password alpha-demo   (account ALPHA-1;
                                                                        Account(1)=ALPHA-M: margin, 10x, 10,000 USD)
                           SenderCompID BETA-OE    Username beta    Password beta-demo    (account BETA-1)
                           SenderCompID ALPHA-RISK Username alpharisk Password alpharisk-demo (ALPHA's risk session)
  drop copy    port {drop_copy:<5}  SenderCompID BROKER-DC  Username broker  Password broker-demo  (firms ALPHA, BETA)
  market data  port {market_data:<5}  SenderCompID MD-CLIENT  Username md      Password md-demo
Instruments BTC-USD, ETH-USD, ETH-BTC. Data directory: {data_dir}. Ctrl-C stops (state is kept)."""
