"""The order state machine: every allowed transition, and every other one is a bug."""
from __future__ import annotations

import itertools

import pytest

from venue.errors import EngineBug
from venue.events import OrderInfo
from venue.ledger import Account, Firm
from venue.orders import (
    T_CANCEL, T_EXPIRE, T_FILL, T_PARTIAL_FILL, T_REPLACE, T_RESTATE, T_TRIGGER, TRANSITIONS, TRIGGER_NAMES, Order,
)
from venue.types import TERMINAL, OrderStatus

W, N, P, F, C, E = (OrderStatus.WAITING_TRIGGER, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED,
                    OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED)

# The whole table, written out from the order life cycle (FIX OrdStatus), not copied.
EXPECTED = {
    (W, T_TRIGGER): N, (W, T_CANCEL): C, (W, T_EXPIRE): E, (W, T_REPLACE): W,
    (N, T_PARTIAL_FILL): P, (N, T_FILL): F, (N, T_CANCEL): C, (N, T_EXPIRE): E, (N, T_REPLACE): N, (N, T_RESTATE): N,
    (P, T_PARTIAL_FILL): P, (P, T_FILL): F, (P, T_CANCEL): C, (P, T_EXPIRE): E, (P, T_REPLACE): P, (P, T_RESTATE): P,
}
TRIGGERS = (T_PARTIAL_FILL, T_FILL, T_CANCEL, T_EXPIRE, T_REPLACE, T_RESTATE, T_TRIGGER)


def make_order(status: int) -> Order:
    acct = Account("A", Firm("F"))
    info = OrderInfo(1, "A", "F", "BTC-USD", 1, 2, 1, 100, 0, 10, 0, "c1", 0, 1, False, "", 0)
    return Order(1, acct, info, 1, 2, 1, 100, 0, 10, 0, status, 1, 0, 0)


def test_table_is_the_life_cycle() -> None:
    assert {(OrderStatus(s), t): OrderStatus(n) for (s, t), n in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("status, trigger", sorted(EXPECTED))
def test_allowed_transition(status: OrderStatus, trigger: int) -> None:
    o = make_order(status)
    assert o.apply(trigger) == EXPECTED[(status, trigger)]
    assert o.status == EXPECTED[(status, trigger)]


FORBIDDEN = [(s, t) for s, t in itertools.product(OrderStatus, TRIGGERS) if (s, t) not in EXPECTED]


@pytest.mark.parametrize("status, trigger", FORBIDDEN)
def test_forbidden_transition_is_a_bug(status: OrderStatus, trigger: int) -> None:
    o = make_order(status)
    with pytest.raises(EngineBug, match=f"{TRIGGER_NAMES[trigger]} not allowed from {status.name}"):
        o.apply(trigger)
    assert o.status == status  # unchanged


def test_terminal_states_have_no_way_out() -> None:
    assert len(FORBIDDEN) == len(TERMINAL) * len(TRIGGERS) + 5  # 3 terminal states x 7, plus 2 + 2 + 1
    for s in TERMINAL:
        assert not any((s, t) in EXPECTED for t in TRIGGERS)
    # a live order cannot be triggered again, and a waiting stop cannot fill or be restated
    assert (N, T_TRIGGER) not in EXPECTED and (P, T_TRIGGER) not in EXPECTED
    assert {(W, t) for t in (T_PARTIAL_FILL, T_FILL, T_RESTATE)}.isdisjoint(EXPECTED)


def test_new_order_fields() -> None:
    o = make_order(N)
    assert (o.leaves, o.cum, o.visible, o.level, o.seq) == (10, 0, 0, None, 1)
    assert "status=NEW" in repr(o)
