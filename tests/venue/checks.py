"""Independent checks of an engine's state, written from the documented rules rather than
from the engine's own bookkeeping.

:class:`Observer` follows the event stream alone and keeps what a downstream consumer
would: a copy of each book by order (from the events' book effects), the money each
account should have (from fills and funding postings) and what pending withdrawals hold.
:meth:`Observer.check` compares that with the engine after each command:

- every book is uncrossed at rest and each level holds its orders in FIFO order of their
  arrival as the events told it (so the events' book effects are right, too);
- no balance is negative;
- every (account, asset) holds exactly what its open orders need (quote at the limit
  price plus the taker fee for buys, base for sells) plus its pending withdrawals;
- per asset, the sum over all accounts, the fee account included, equals deposits minus
  withdrawals; and each account's total equals what its fills and postings add up to.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from venue.engine import Engine
from venue.events import Execution, FundingPosted, Trade
from venue.ledger import FEE_ACCOUNT
from venue.types import BUY, TERMINAL, BookEffect as FX

PPM = 1_000_000
LevelKey = tuple[str, int, int]  # symbol, side, price


class Observer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.levels: dict[LevelKey, list[list[int]]] = defaultdict(list)  # [[order id, visible], ...] FIFO
        self.where: dict[int, LevelKey] = {}
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.external: dict[str, int] = defaultdict(int)
        self.withdrawals: dict[str, tuple[str, str, int]] = {}  # funding id -> (account, asset, amount) while held

    # -- following events ------------------------------------------------------------
    def feed(self, events: list[Any]) -> None:
        for e in events:
            if type(e) is Execution:
                self._execution(e)
            elif type(e) is Trade:
                self._trade(e)
            elif type(e) is FundingPosted:
                self._funding(e)

    def _execution(self, e: Execution) -> None:
        oid = e.info.order_id
        if e.status in TERMINAL:
            assert e.leaves_qty == 0, e
        else:
            assert e.cum_qty + e.leaves_qty == e.info.qty, e
        fx = e.book
        if fx == FX.NONE:
            return
        if fx in (FX.REMOVE, FX.REQUEUE):
            key = self.where.pop(oid)
            self.levels[key] = [x for x in self.levels[key] if x[0] != oid]
        if fx in (FX.ADD, FX.REQUEUE):
            assert oid not in self.where, f"order {oid} added twice"
            key = (e.info.symbol, e.info.side, e.info.price)
            assert e.visible > 0, e
            self.levels[key].append([oid, e.visible])
            self.where[oid] = key
        elif fx == FX.UPDATE:
            (entry,) = [x for x in self.levels[self.where[oid]] if x[0] == oid]
            entry[1] = e.visible

    def _trade(self, t: Trade) -> None:
        inst = self.engine.markets[t.symbol].inst
        notional = t.price * t.qty * inst.notional_mult
        base = t.qty * inst.base_per_lot
        if t.aggressor_side == BUY:
            buyer, b_fee, seller, s_fee = t.taker_account, t.taker_fee, t.maker_account, t.maker_fee
        else:
            buyer, b_fee, seller, s_fee = t.maker_account, t.maker_fee, t.taker_account, t.taker_fee
        self.totals[(buyer, inst.base)] += base
        self.totals[(buyer, inst.quote)] -= notional + b_fee
        self.totals[(seller, inst.base)] -= base
        self.totals[(seller, inst.quote)] += notional - s_fee
        self.totals[(FEE_ACCOUNT, inst.quote)] += t.maker_fee + t.taker_fee
        assert t.maker_fee + t.taker_fee >= 0, t  # a rebate never exceeds the trade's taker fee

    def _funding(self, f: FundingPosted) -> None:
        key = (f.account, f.asset)
        if f.kind == "deposit":
            self.totals[key] += f.amount
            self.external[f.asset] += f.amount
        elif f.kind == "withdraw":
            self.totals[key] -= f.amount
            self.external[f.asset] -= f.amount
        elif f.kind == "hold":
            self.withdrawals[f.funding_id] = (f.account, f.asset, f.amount)
        elif f.kind == "release":
            assert self.withdrawals.pop(f.funding_id) == (f.account, f.asset, f.amount)
        elif f.kind == "complete":
            assert self.withdrawals.pop(f.funding_id) == (f.account, f.asset, f.amount)
            self.totals[key] -= f.amount
            self.external[f.asset] -= f.amount
        else:  # pragma: no cover
            raise AssertionError(f"unknown funding kind {f.kind}")

    # -- comparing -------------------------------------------------------------------
    def book_levels(self) -> dict[LevelKey, list[list[int]]]:
        """The engine's books as {(symbol, side, price): [[id, visible], ...]} in queue order."""
        out: dict[LevelKey, list[list[int]]] = {}
        for sym, mkt in self.engine.markets.items():
            for side, bs in ((BUY, mkt.book.bids), (2, mkt.book.asks)):
                for lvl in bs.levels.values():
                    out[(sym, side, lvl.price)] = [[o.id, o.visible] for o in lvl.live()]
        return out

    def check(self) -> None:
        e = self.engine
        # books: what the events said, level by level in FIFO order, and uncrossed
        mine = {k: v for k, v in self.levels.items() if v}
        assert mine == self.book_levels()
        for sym, mkt in e.markets.items():
            bids = [p for (s, side, p) in mine if s == sym and side == BUY]
            asks = [p for (s, side, p) in mine if s == sym and side != BUY]
            assert not bids or not asks or max(bids) < min(asks), f"{sym} crossed at rest: {max(bids)} >= {min(asks)}"
            assert mkt.book.best_bid() == (max(bids) if bids else None)
            assert mkt.book.best_ask() == (min(asks) if asks else None)
        # holds: exactly what open orders need, plus pending withdrawals
        need: dict[tuple[str, str], int] = defaultdict(int)
        for o in e.orders.values():
            inst = o.mkt.inst
            if o.side == BUY:
                n = o.price * o.leaves * inst.notional_mult
                need[(o.acct.id, inst.quote)] += n + n * o.taker_ppm // PPM
            else:
                need[(o.acct.id, inst.base)] += o.leaves * inst.base_per_lot
            assert o.status not in TERMINAL
        for account, asset, amount in self.withdrawals.values():
            need[(account, asset)] += amount
        sums: dict[str, int] = defaultdict(int)
        for aid, acct in e.ledger.accounts.items():
            for asset, b in acct.bal.items():
                assert b.avail >= 0 and b.held >= 0, f"negative balance {aid} {asset} {b}"
                assert b.held == need.get((aid, asset), 0), f"{aid} {asset} holds {b.held}, needs {need.get((aid, asset), 0)}"
                assert b.avail + b.held == self.totals.get((aid, asset), 0), f"{aid} {asset} total {b}"
                sums[asset] += b.avail + b.held
        # money: per asset, all accounts together == deposits - withdrawals
        for asset in set(sums) | set(self.external):
            assert sums.get(asset, 0) == self.external.get(asset, 0), asset
            assert e.ledger.external.get(asset, 0) == self.external.get(asset, 0), asset
        for (aid, asset), total in self.totals.items():  # postings and fills that left no balance behind
            b = e.ledger.accounts[aid].bal.get(asset)
            assert (b.avail + b.held if b else 0) == total, (aid, asset)
        for (aid, asset), amount in need.items():
            b = e.ledger.accounts[aid].bal.get(asset)
            assert (b.held if b else 0) == amount, (aid, asset)
