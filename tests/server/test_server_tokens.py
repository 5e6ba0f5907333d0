"""Admins manage tokens through the server; nobody else can."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ServerFactory

pytestmark = pytest.mark.processes


def test_admin_manages_tokens_through_the_server_and_others_cannot(start_server: ServerFactory, hitl_cli: Any) -> None:
    server = start_server(listen=True)
    # root on the Unix socket is an admin: the CLI goes through the server's API.
    made = hitl_cli("--store", server.unix_url, "token", "create", "bridge", "--role", "operator", "--impersonate")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with server.https_client(token) as c:
        assert c.get("/v1/whoami").json() == {
            "name": "bridge",
            "role": "operator",
            "channel": "token",
            "impersonate": True,
        }
        # An operator token may not list, create or revoke tokens.
        assert c.get("/v1/tokens").status_code == 403
        assert c.post("/v1/tokens", json={"name": "mine", "role": "admin"}).status_code == 403
        assert c.post("/v1/tokens/bridge/revoke").status_code == 403
    twice = hitl_cli("--store", server.unix_url, "token", "create", "bridge", "--role", "agent")
    assert twice.returncode == 4 and "already exists" in twice.stderr
    listed = hitl_cli("--store", server.unix_url, "token", "ls")
    assert listed.returncode == 0 and "bridge" in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout
    assert hitl_cli("--store", server.unix_url, "token", "revoke", "bridge").returncode == 0
    with server.https_client(token) as c:
        assert c.get("/v1/whoami").status_code == 401
    unknown = hitl_cli("--store", server.unix_url, "token", "revoke", "nobody")
    assert unknown.returncode == 3 and "no token named 'nobody'" in unknown.stderr
    admin = server.token("root-bot", "admin")
    with server.https_client(admin) as c:
        bad = c.post("/v1/tokens", json={"name": "x", "role": "agent", "expires": "forever"})
        assert bad.status_code == 422 and "positive duration" in bad.json()["detail"]
        assert c.post("/v1/tokens", json={"name": "x", "role": "root"}).status_code == 422
        assert [t["name"] for t in c.get("/v1/tokens").json()] == ["bridge", "root-bot"]
    assert "token 'bridge' (operator) created by root" in server.log.read_text()
