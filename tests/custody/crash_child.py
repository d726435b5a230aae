"""Run as a separate process by test_anvil: custody signs an approved withdrawal (with
broadcasting paused, or broadcast and unconfirmed) against a real node, then the process
dies with os._exit, without closing anything."""
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
    os._exit(9)


if __name__ == "__main__":
    main()
