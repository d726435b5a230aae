"""Run as a separate process by test_anvil: custody signs an approved withdrawal (with
broadcasting paused, or broadcast and unconfirmed) against a real node, then the process
dies with os._exit, without closing anything. Mode ``in_withdrawal_handler`` dies later:
inside the step that settles the confirmed transaction, after its fee was posted and
before the withdrawal itself was told."""
from __future__ import annotations

import os
import sys

from custody.ethereum import DevChain, EthereumChain
from tests.custody.world import World, config


def main() -> None:
    root, url, token, mode = sys.argv[1:5]
    eth = EthereumChain.connect(url)
    w = World(root, config(stablecoin_address=token), (eth, DevChain(eth)), seed=False)
    wid = w.svc.list_withdrawals(state="approved")[0]["id"]
    if mode == "before_broadcast":
        w.svc.pause_broadcast("ops-alice", True)
    w.tick()
    print(w.svc.withdrawal(wid)["txid"], flush=True)
    if mode == "in_withdrawal_handler":
        w.svc.outbox.handlers["withdrawal"] = lambda _tx, _ok: os._exit(9)
        for _ in range(20):
            w.tick(mine=1)
        os._exit(3)  # it never got there
    os._exit(9)


if __name__ == "__main__":
    main()
