"""A JSON-RPC relay in front of a real node (anvil) that can be made to misbehave the
way real node endpoints do: time out or fail some methods (HTTP 503), or answer
``null`` for them as a lagging load-balanced backend does. Everything else is passed to
the node unchanged, over real sockets, so custody talks to a real chain through it."""
from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyNode:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail: set[str] = set()  # methods answered with HTTP 503
        self.null: set[str] = set()  # methods answered with a null result
        self.calls: dict[str, int] = {}
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                doc = json.loads(body)
                method = doc.get("method", "") if isinstance(doc, dict) else ""
                node.calls[method] = node.calls.get(method, 0) + 1
                if method in node.fail:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"upstream unavailable")
                    return
                if method in node.null:
                    out = json.dumps({"jsonrpc": "2.0", "id": doc.get("id"), "result": None}).encode()
                else:
                    req = urllib.request.Request(node.upstream, body, {"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        out = resp.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def heal(self) -> None:
        self.fail.clear()
        self.null.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
