"""The control endpoint itself: its wire protocol over the real socket, the handler
registry other packages use, and a handler that fails without harming the venue."""
from __future__ import annotations

import json
import os
import socket

import pytest

from cli import control
from cli.control import ControlClient, ControlContext, ControlError, register
from cli.operators import load_client_credential
from venue import commands as C


def raw(data_dir: str, payload: bytes) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(data_dir, "control.sock"))
    s.sendall(payload)
    f = s.makefile("rb")
    line = f.readline()
    s.close()
    return json.loads(line)


def test_malformed_requests_get_an_answer(running, data_dir):
    assert raw(data_dir, b"not json\n") == {"ok": False, "error": "malformed request (one JSON object per line)"}
    assert raw(data_dir, b"[1, 2]\n")["ok"] is False
    cred = load_client_credential(data_dir)
    req = {"op": "no.such.op", "args": {}, "operator": cred.name, "secret": cred.secret}
    assert raw(data_dir, (json.dumps(req) + "\n").encode())["error"] == "unknown operation 'no.such.op'"
    req = {"op": "status", "args": "nope", "operator": cred.name, "secret": cred.secret}
    assert "args object" in raw(data_dir, (json.dumps(req) + "\n").encode())["error"]
    assert ControlClient(data_dir).call("status")["engine_seq"] > 0  # and it still serves


def test_registered_handlers_journal_and_audit_through_the_sequencer(running, data_dir):
    calls = []

    def note(ctx: ControlContext, args: dict) -> dict:
        if not args.get("withdrawal_id"):
            raise ControlError("withdrawal_id is required")
        p = ctx.audit("test.approve", args)
        calls.append(p.seq)
        return {"seq": p.seq, "operator": ctx.operator}

    def create(ctx: ControlContext, args: dict) -> dict:
        ctx.check(ctx.execute("test.firm", args, C.CreateFirm(args["firm"], "x")))
        return {"ok": True}

    def broken(ctx: ControlContext, args: dict) -> dict:
        raise RuntimeError("a bug")

    register("test.approve", note)
    register("test.firm", create)
    register("test.broken", broken)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register("test.approve", broken)
        client = ControlClient(data_dir)
        out = client.call("test.approve", {"withdrawal_id": "w1"}, reason="4-eyes ok")
        assert out["operator"] == "operator" and calls == [out["seq"]]
        with pytest.raises(ControlError, match="withdrawal_id is required"):
            client.call("test.approve", {})
        assert client.call("test.firm", {"firm": "DELTA"}) == {"ok": True}
        with pytest.raises(ControlError, match="exists"):
            client.call("test.firm", {"firm": "DELTA"})
        with pytest.raises(ControlError, match="internal error in test.broken"):
            client.call("test.broken", {})
        assert client.call("status")["engine_seq"] == running.venue.query(lambda e: e.seq)
        running.store.wait_for(running.venue.query(lambda e: e.seq))
        log = {r["action"]: r for r in reversed(client.call("audit", {"limit": 10}))}  # newest wins
        assert log["test.approve"]["reason"] == "4-eyes ok" and log["test.approve"]["outcome"] == "noted"
        assert log["test.firm"]["outcome"] == "rejected"
    finally:
        for name in ("test.approve", "test.firm", "test.broken"):
            control.HANDLERS.pop(name, None)


def test_status_sections_from_other_packages(running, data_dir):
    control.register_status("test.fix", lambda v: {"sessions": 0})
    control.register_status("test.bad", lambda v: 1 / 0)
    try:
        st = ControlClient(data_dir).call("status")
        assert st["test.fix"] == {"sessions": 0} and "division" in st["test.bad"]["error"]
    finally:
        control.STATUS.pop("test.fix")
        control.STATUS.pop("test.bad")
