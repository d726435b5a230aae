"""The test client's book (fixbook.FixMdClient) is strict: an X entry that contradicts
the book it holds fails the test at once, even where applying it loosely would end in
the right book. Without this, a feed that sends New for a level the client already
holds, or deletes a level it never announced, would pass the book comparisons."""
from __future__ import annotations

import pytest

from tests.mdsessions.fixbook import FixMdClient


def raw(msg_type: str, body: str) -> bytes:
    return f"8=FIX.4.4|35={msg_type}|{body}10=000|".replace("|", "\x01").encode()


W_LEVELS = "262=r|55=X-Y|83=4|268=2|269=0|270=100|271=3|346=1|269=1|270=101|271=2|346=1|"
W_ORDERS = "262=r|55=X-Y|83=4|268=1|269=0|270=100|271=3|37=7|"


def x_entry(action: str, side: str, px: str, rpt: int, tail: str) -> bytes:
    return raw("X", f"262=r|268=1|279={action}|269={side}|55=X-Y|270={px}|{tail}83={rpt}|")


@pytest.mark.parametrize("snapshot,bad", [
    (W_LEVELS, ("0", "0", "100", "271=5|346=2|")),  # New for a level already held
    (W_LEVELS, ("1", "0", "99", "271=5|346=1|")),  # Change for a level not held
    (W_LEVELS, ("2", "1", "102", "")),  # Delete for a level not held
    (W_ORDERS, ("0", "0", "100", "271=5|37=7|")),  # New for an order already held
    (W_ORDERS, ("1", "0", "100", "271=5|37=8|")),  # Change for an order not held
    (W_ORDERS, ("2", "0", "100", "37=8|")),  # Delete for an order not held
    (W_ORDERS, ("2", "1", "100", "37=7|")),  # Delete of a held order on the wrong side
], ids=["new-held-level", "change-unheld-level", "delete-unheld-level", "new-held-order", "change-unheld-order",
        "delete-unheld-order", "delete-order-wrong-side"])
def test_an_entry_that_contradicts_the_book_fails(snapshot: str, bad: tuple[str, str, str, str]) -> None:
    c = FixMdClient()
    c.apply(raw("W", snapshot))
    book = c.books[("r", "X-Y")]
    good = ("1", "0", "100", "271=4|346=1|") if "346" in snapshot else ("1", "0", "100", "271=4|37=7|")
    c.apply(x_entry(good[0], good[1], good[2], 5, good[3]))
    assert book.book_levels("0")[0][1] == 4
    with pytest.raises(AssertionError):
        c.apply(x_entry(bad[0], bad[1], bad[2], 6, bad[3]))
