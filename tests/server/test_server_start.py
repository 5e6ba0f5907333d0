"""``hitl serve`` refuses to start on a wrong socket path, group, address or certificate, with a
message that says which; it stops cleanly on SIGTERM; ``hitl token`` refuses bad input."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, StoreError
from hitl_core.client import RemoteMachine

from .conftest import ROOT, ServerFactory, child_env, server_directory

pytestmark = pytest.mark.processes


def serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    directory = server_directory()
    return subprocess.run(
        [sys.executable, "-m", "hitl_core.cli", "--store", f"sqlite:///{directory / 'h.db'}", "serve", *args],
        capture_output=True,
        text=True,
        env=child_env(XDG_CONFIG_HOME=str(directory / "xdg")),
        cwd=ROOT,
        timeout=timeout,
    )


def test_serve_refuses_a_socket_in_a_missing_directory() -> None:
    out = serve("--socket", "/nonexistent-dir/hitl.sock")
    assert out.returncode == 2
    assert "the directory /nonexistent-dir does not exist" in out.stderr


def test_serve_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    precious = tmp_path / "hitl.sock"
    precious.write_text("not a socket")
    out = serve("--socket", str(precious))
    assert out.returncode == 2 and "exists and is not a socket" in out.stderr
    assert precious.read_text() == "not a socket"


def test_serve_refuses_an_unknown_socket_group(tmp_path: Path) -> None:
    out = serve("--socket", str(tmp_path / "hitl.sock"), "--socket-group", "no-such-group-hitl")
    assert out.returncode == 2 and "no group named 'no-such-group-hitl'" in out.stderr


def test_serve_refuses_a_socket_another_server_listens_on(start_server: ServerFactory) -> None:
    server = start_server()
    out = serve("--socket", str(server.socket_path))
    assert out.returncode == 2 and "another server is listening there" in out.stderr


def test_serve_replaces_a_stale_socket_left_by_a_dead_server(start_server: ServerFactory) -> None:
    server = start_server()
    server.kill()
    assert server.socket_path.exists()  # SIGKILL left it behind
    server.start()
    with server.unix_client() as c:
        assert c.get("/healthz").status_code == 200


def test_serve_refuses_tcp_without_tls(tmp_path: Path) -> None:
    out = serve("--listen", "127.0.0.1:0")
    assert out.returncode == 2 and "--listen needs --tls-cert and --tls-key" in out.stderr


def test_serve_refuses_an_unreadable_certificate(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("garbage")
    out = serve("--listen", "127.0.0.1:0", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "k"))
    assert out.returncode == 2 and "cannot load the TLS certificate" in out.stderr


def test_serve_refuses_an_invalid_policy_config(tmp_path: Path) -> None:
    config = tmp_path / "hitl.toml"
    config.write_text("[authorization]\nno_self_aproval = true\n")
    out = serve("--socket", str(tmp_path / "hitl.sock"), "--config", str(config))
    assert out.returncode == 2 and "no_self_aproval" in out.stderr
    assert not (tmp_path / "hitl.sock").exists()


def test_sigterm_stops_the_server_and_removes_its_socket(start_server: ServerFactory) -> None:
    server = start_server()
    assert server.proc is not None
    # A live stream (a waiting agent's) does not hold the shutdown up.
    with server.unix_client() as c, c.stream("GET", "/v1/stream") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: hello"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    assert not server.socket_path.exists()


def test_client_refuses_a_server_certificate_it_does_not_trust(start_server: ServerFactory) -> None:
    server = start_server(listen=True)
    token = server.token("ops", "operator")

    async def call() -> None:
        async with HITLStateMachine(server.https_url, token=token) as m:  # no ca: the system's roots
            await m.get_pending_approvals()

    with pytest.raises(StoreError, match="cannot reach the hitl server"):
        asyncio.run(call())


async def test_an_agent_sees_only_its_own_tasks_on_every_read_path(start_server: ServerFactory) -> None:
    server = start_server(listen=True)
    mine = RemoteMachine(server.https_url, token=server.token("bot-a", "agent"), ca=str(server.cert))
    theirs = RemoteMachine(server.https_url, token=server.token("bot-b", "agent"), ca=str(server.cert))
    try:
        seen: list[str] = []

        async def follow() -> None:
            async for event in mine.follow(0):
                seen.append(event.task_id)

        follower = asyncio.create_task(follow())
        await theirs.start_task("secret-task", {"card": "4111"})
        await mine.start_task("my-task")
        for _ in range(2400):
            if seen:
                break
            await asyncio.sleep(0.05)
        follower.cancel()
        assert seen == ["my-task"]
        assert [t.task_id for t in await mine.get_all_tasks()] == ["my-task"]
        assert [t.task_id for t in await mine.get_tasks(["running", "completed"], changed_after=0)] == ["my-task"]
        mine_at = (await mine.events())[-1].seq
        assert await mine.get_tasks(None, changed_after=mine_at) == []
        await theirs.complete("secret-task")
        assert await mine.get_tasks(["completed"], changed_after=mine_at) == [], "theirs, though recent"
        with server.https_client(server.token("ops", "operator")) as c:
            bad = c.get("/v1/tasks", params={"after": "yesterday"})
            assert bad.status_code == 422 and "after" in bad.json()["detail"]
            # beyond a 64-bit integer: a clear 422, not the store's OverflowError as a 500
            for path, name in (("/v1/tasks", "after"), ("/v1/tasks", "limit"), ("/v1/events", "after")):
                huge = c.get(path, params={name: str(10**30)})
                assert huge.status_code == 422 and name in huge.json()["detail"], (path, name, huge.text)
            negative = c.get("/v1/tasks", params={"limit": "-1"})
            assert negative.status_code == 422 and "limit must be 0 or more" in negative.json()["detail"]
            listed = c.get("/v1/tasks", params={"after": mine_at})
            assert [t["task_id"] for t in listed.json()] == ["secret-task"]
        assert {e.task_id for e in await mine.events()} == {"my-task"}
        assert await mine.store.get("my-task") is not None
    finally:
        await mine.close()
        await theirs.close()


def test_token_cli_refuses_bad_input(tmp_path: Path, hitl_cli: Any) -> None:
    tokens = str(tmp_path / "tokens.db")
    bad_name = hitl_cli("token", "--tokens", tokens, "create", "bad name!", "--role", "agent")
    assert bad_name.returncode == 2 and "token name" in bad_name.stderr
    bad_expiry = hitl_cli("token", "--tokens", tokens, "create", "ok", "--role", "agent", "--expires", "soon")
    assert bad_expiry.returncode == 2 and "positive duration" in bad_expiry.stderr
    assert hitl_cli("token", "--tokens", tokens, "create", "ok", "--role", "agent").returncode == 0
    twice = hitl_cli("token", "--tokens", tokens, "create", "ok", "--role", "agent")
    assert twice.returncode == 2 and "already exists" in twice.stderr
    unknown = hitl_cli("token", "--tokens", tokens, "revoke", "nobody")
    assert unknown.returncode == 3 and "no token named 'nobody'" in unknown.stderr
    assert (tmp_path / "tokens.db").stat().st_mode & 0o777 == 0o600


def test_socket_is_not_reachable_over_tcp_as_a_unix_peer(start_server: ServerFactory) -> None:
    # Peer credentials come from the Unix socket only: on TCP, with no token, nobody is anybody.
    server = start_server(listen=True)
    with server.https_client() as c:
        assert c.get("/v1/whoami").status_code == 401
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
        assert b"200 OK" not in raw.recv(4096)
