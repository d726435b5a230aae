"""Start anvil (npm @foundry-rs/anvil, installed by .ci/services or here) on a free
loopback port, for custody's real JSON-RPC tests."""
from __future__ import annotations

import os
import socket
import subprocess
import time

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")
BIN = os.path.join(NODE_DIR, "node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil")


def binary() -> str:
    if not os.path.exists(BIN):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                       check=True, capture_output=True, timeout=300)
    return BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    def __init__(self, chain_id: int = 31337) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([binary(), "--host", "127.0.0.1", "--port", str(self.port), "--silent",
                                      "--chain-id", str(chain_id)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
