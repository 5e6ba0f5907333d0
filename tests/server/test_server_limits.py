"""Bounds at the door: failed token checks per address (429 + Retry-After, audited once a window),
refusal records per principal (the audit chain cannot be flooded), /metrics behind authentication
unless ``--metrics-public``, and a Unix socket owned by somebody else refused at start."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from .conftest import ServerFactory
from .test_server_auth import audit_records, problem, tasks_now
from .test_server_start import serve

pytestmark = pytest.mark.processes


def test_many_wrong_tokens_get_429_with_retry_after_audited_once(start_server: ServerFactory) -> None:
    server = start_server(listen=True, extra=("--auth-failure-limit", "5"))
    good = server.token("known", "operator")
    with server.https_client(good) as c:
        assert c.get("/v1/whoami").status_code == 200  # verified once: this client goes on working
    before = tasks_now(server)
    statuses = []
    for i in range(30):
        with server.https_client(f"hitl_{i:016x}_guess-{i}") as c:
            response = c.get("/v1/tasks")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            problem(response, 429, "rate-limited")
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # Locked out, the address is refused any token the server has not verified before — unchecked —
    # while a client whose token it did verify is not locked out with the guesser.
    fresh = server.token("fresh", "operator")
    with server.https_client(fresh) as c:
        problem(c.get("/v1/whoami"), 429, "rate-limited")
    with server.https_client(good) as c:
        assert c.get("/v1/whoami").json()["name"] == "known"
    records = audit_records(server)
    limited = [r for r in records if r["kind"] == "auth_rate_limited"]
    assert len(limited) == 1 and limited[0]["data"]["peer"] == "127.0.0.1"
    assert len([r for r in records if r["kind"] == "refused"]) == 5
    assert tasks_now(server) == before


def test_refusals_are_recorded_up_to_the_bound_then_counted(start_server: ServerFactory) -> None:
    from .test_server_auth import ask

    server = start_server(listen=True, extra=("--refusal-audit-limit", "3"))
    ask(server, server.token("bot", "agent"), "bounded")
    with server.https_client(server.token("pest", "agent")) as c:
        for _ in range(50):
            problem(c.post("/v1/tasks/bounded/approve", json={}), 403, "not-authorized")
    refused = [r for r in audit_records(server) if r["kind"] == "refused"]
    assert len(refused) == 3 and all(r["actor"] == "pest" for r in refused)
    with server.unix_client() as c:
        metrics = c.get("/metrics").text
    assert "hitl_audit_suppressed_total 47" in metrics


def test_metrics_need_a_token_unless_public(start_server: ServerFactory) -> None:
    server = start_server(listen=True)
    with server.https_client() as c:
        problem(c.get("/metrics"), 401, "unauthenticated")
        assert c.get("/healthz").status_code == 200  # liveness stays open, for load balancers
    with server.https_client(server.token("scraper", "agent")) as c:
        assert "hitl_waiting_tasks" in c.get("/metrics").text
    public = start_server(listen=True, extra=("--metrics-public",))
    with public.https_client() as c:
        response = c.get("/metrics")
        assert response.status_code == 200 and "hitl_refusals_total" in response.text


def test_serve_refuses_a_unix_socket_owned_by_another_group(tmp_path: Path) -> None:
    import grp
    import pwd

    other = next(g for g in grp.getgrall() if g.gr_gid != os.getegid())
    path = tmp_path / "hitl.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # nobody listens: without the check it would be replaced
    os.chown(path, -1, other.gr_gid)
    out = serve("--socket", str(path))
    assert out.returncode == 2
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert f"owned by user {me}, group {other.gr_name}" in out.stderr and "--socket-group" in out.stderr
    assert path.exists() and path.stat().st_gid == other.gr_gid  # left as it was
