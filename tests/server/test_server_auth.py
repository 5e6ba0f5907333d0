"""Every caller authenticated, every refusal a 401/403 problem: the tests an attacker would write.

A real ``hitl serve`` on TLS (self-signed certificate) and a Unix socket; raw HTTP requests with
forged, missing, expired and revoked tokens, and tokens whose role or name does not allow the act.
Each refusal leaves a ``refused`` record in the store's audit chain (who, what, why) and changes
nothing else: no event, no task.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from hitl_core.server.problems import PROBLEM_JSON

from .conftest import ServerFactory, ServerProcess

pytestmark = pytest.mark.processes

POLICY = """
[authorization]
no_self_approval = true
enforce_assignees = true
four_eyes = ["critical"]
"""


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == f"urn:hitl:problem:{kind}", body
    assert body["status"] == status
    return body


def ask(server: ServerProcess, agent_token: str, task_id: str, **request: Any) -> dict[str, Any]:
    """As the agent: start ``task_id`` and ask for approval; returns the waiting task."""
    with server.https_client(agent_token) as c:
        assert c.post(f"/v1/tasks/{task_id}/start", json={}).status_code == 200
        response = c.post(f"/v1/tasks/{task_id}/request", json={"reason": "deploy", **request})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def tls_server(start_module_server: ServerFactory) -> ServerProcess:
    # One server for the module: each test uses its own task ids and token names. The refusal
    # bound is raised so that every refusal these tests make is recorded (its own test is elsewhere).
    return start_module_server(POLICY, listen=True, extra=("--refusal-audit-limit", "1000"))


class Mark:
    """Where the audit chain and the event log stood, and what every task looked like."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.audit = len(audit_records(server))
        self.tasks = tasks_now(server)

    def refusals(self) -> list[dict[str, Any]]:
        """The refusals recorded since, after checking that nothing else changed."""
        assert tasks_now(self.server) == self.tasks, "a refusal changed a task or the event log"
        records = audit_records(self.server)[self.audit :]
        assert all(r["kind"] == "refused" for r in records), records
        return [r["data"] | {"actor": r["actor"]} for r in records]


def audit_records(server: ServerProcess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with server.unix_client() as c:  # root over the socket: the server's admin
        while True:
            page = c.get("/v1/audit", params={"after": out[-1]["seq"] if out else 0}).json()["records"]
            if not page:
                return out
            out += page


def tasks_now(server: ServerProcess) -> tuple[int, list[dict[str, Any]]]:
    with server.unix_client() as c:
        return c.get("/healthz").json()["last_seq"], c.get("/v1/tasks").json()


def test_no_token_is_401(tls_server: ServerProcess) -> None:
    mark = Mark(tls_server)
    with tls_server.https_client() as c:
        body = problem(c.get("/v1/tasks"), 401, "unauthenticated")
        assert "no credentials" in body["detail"]
        problem(c.post("/v1/tasks/t/approve", json={}), 401, "unauthenticated")
    first, second = mark.refusals()
    assert first["status"] == 401 and first["actor"] is None and first["peer"] == "127.0.0.1"
    assert first["path"] == "/v1/tasks" and first["what"] == "authenticate" and "no credentials" in first["reason"]
    assert second["method"] == "POST" and second["path"] == "/v1/tasks/t/approve"


def test_wrong_token_is_401(tls_server: ServerProcess) -> None:
    real = tls_server.token("ops", "operator")
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    mark = Mark(tls_server)
    for token in (forged, "hitl_0000000000000000_guess", "not-a-hitl-token"):
        with tls_server.https_client(token) as c:
            problem(c.get("/v1/tasks"), 401, "unauthenticated")
    with tls_server.https_client() as c:
        problem(c.get("/v1/tasks", headers={"Authorization": f"Basic {real}"}), 401, "unauthenticated")
    refused = mark.refusals()
    assert [r["status"] for r in refused] == [401] * 4
    # Whose token was tried is recorded (its id, never the secret). The secret is everything after
    # the id: it is URL-safe base64, so it may itself hold "_" (one CI run's began with one, and
    # split("_")[2] was then "", which is "in" any text).
    _, token_id, secret = real.split("_", 2)
    assert secret and refused[0]["token_id"] == token_id and secret not in str(refused)
    assert refused[1]["token_id"] == "0000000000000000" and "token_id" not in refused[2]


def test_revoked_token_is_401(tls_server: ServerProcess, hitl_cli: Any) -> None:
    made = hitl_cli("token", "--tokens", str(tls_server.token_file), "create", "ci-bot", "--role", "operator")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with tls_server.https_client(token) as c:
        assert c.get("/v1/whoami").json()["name"] == "ci-bot"
        revoked = hitl_cli("token", "--tokens", str(tls_server.token_file), "revoke", "ci-bot")
        assert revoked.returncode == 0, revoked.stderr
        # The server read the revocation another process wrote, at the very next request.
        mark = Mark(tls_server)
        problem(c.get("/v1/whoami"), 401, "unauthenticated")
        (refused,) = mark.refusals()
        assert refused["token_id"] == token.split("_")[1] and "revoked" in refused["reason"]
    listed = hitl_cli("token", "--tokens", str(tls_server.token_file), "ls")
    assert "ci-bot" in listed.stdout and "revoked" in listed.stdout
    assert token not in listed.stdout


def test_expired_token_is_401(tls_server: ServerProcess, hitl_cli: Any) -> None:
    made = hitl_cli(
        "token", "--tokens", str(tls_server.token_file), "create", "brief", "--role", "operator", "--expires", "2s"
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with tls_server.https_client(token) as c:
        first = c.get("/v1/whoami")
        deadline = time.monotonic() + 60
        while True:
            response = c.get("/v1/whoami")
            if response.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    # Either it was still valid at the first call (the usual case) or the machine was slow enough
    # that it had expired already; what matters is that it ends up refused.
    assert first.status_code in (200, 401)
    problem(response, 401, "unauthenticated")
    records = [r["data"] for r in audit_records(tls_server) if r["kind"] == "refused"]
    assert any(r.get("token_id") == token.split("_")[1] and "expired" in r["reason"] for r in records)


def test_token_secret_is_stored_hashed(tls_server: ServerProcess) -> None:
    token = tls_server.token("hashed", "operator")
    secret = token.rsplit("_", 1)[1]
    raw = tls_server.token_file.read_bytes()
    for suffix in ("-wal",):
        path = tls_server.token_file.with_name(tls_server.token_file.name + suffix)
        if path.exists():
            raw += path.read_bytes()
    assert secret.encode() not in raw
    assert b"$argon2id$" in raw


def test_agent_token_cannot_decide(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    other_agent = tls_server.token("other-bot", "agent")
    ask(tls_server, other_agent, "t-agent-decide")
    mark = Mark(tls_server)
    with tls_server.https_client(agent) as c:
        for verb, body in (("approve", {}), ("reject", {"reason": "no"}), ("edit", {"edited_args": {}})):
            refused = problem(c.post(f"/v1/tasks/t-agent-decide/{verb}", json=body), 403, "not-authorized")
            assert "operator role" in refused["detail"]
        # …nor read, complete or fail another agent's task.
        problem(c.get("/v1/tasks/t-agent-decide"), 403, "not-authorized")
        problem(c.post("/v1/tasks/t-agent-decide/fail", json={"error": "x"}), 403, "not-authorized")
        assert c.get("/v1/tasks").json() == []
    refused = mark.refusals()
    assert [(r["actor"], r["what"], r["status"]) for r in refused] == [
        ("deploy-bot", "approve", 403),
        ("deploy-bot", "reject", 403),
        ("deploy-bot", "edit", 403),
        ("deploy-bot", "read", 403),
        ("deploy-bot", "fail", 403),
    ]
    assert refused[0]["task_id"] == "t-agent-decide" and "operator role" in refused[0]["reason"]
    assert refused[0]["role"] == "agent" and refused[0]["channel"] == "token"
    with tls_server.https_client(other_agent) as c:
        assert c.get("/v1/tasks/t-agent-decide").json()["state"] == "awaiting_approval"


def test_operator_outside_assignees_is_403(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    ask(tls_server, agent, "t-assignees", assignees=["alice"])
    mark = Mark(tls_server)
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        refused = problem(c.post("/v1/tasks/t-assignees/approve", json={}), 403, "not-authorized")
        assert "assignees" in refused["detail"]
    (record,) = mark.refusals()
    assert record["actor"] == "bob" and record["what"] == "approve" and record["task_id"] == "t-assignees"
    assert "assignees" in record["reason"]
    with tls_server.https_client(tls_server.token("alice", "operator")) as c:
        approved = c.post("/v1/tasks/t-assignees/approve", json={})
        assert approved.status_code == 200, approved.text
        assert approved.json()["decision"]["actor"] == {"id": "alice", "source": "token"}


def test_self_approval_is_403(tls_server: ServerProcess) -> None:
    dana = tls_server.token("dana", "operator")
    ask(tls_server, dana, "t-self")  # an operator runs an agent task of her own…
    mark = Mark(tls_server)
    with tls_server.https_client(dana) as c:
        refused = problem(c.post("/v1/tasks/t-self/approve", json={}), 403, "not-authorized")
        assert "self-approval" in refused["detail"]
    (record,) = mark.refusals()
    assert record["actor"] == "dana" and "self-approval" in record["reason"] and record["task_id"] == "t-self"


def test_requested_by_cannot_be_forged_to_dodge_self_approval(tls_server: ServerProcess) -> None:
    dana = tls_server.token("dana", "operator")
    with tls_server.https_client(dana) as c:
        assert c.post("/v1/tasks/t-forge/start", json={}).status_code == 200
        body = {"reason": "deploy", "requested_by": "somebody-else"}
        problem(c.post("/v1/tasks/t-forge/request", json=body), 422, "invalid")
        problem(c.post("/v1/tasks/t-forge2/start", json={"agent": "somebody-else"}), 403, "not-authorized")
        problem(c.get("/v1/tasks/t-forge2"), 404, "not-found")


def test_same_person_twice_under_four_eyes_is_403(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    ask(tls_server, agent, "t-four-eyes", severity="critical")
    alice = tls_server.token("alice", "operator")
    with tls_server.https_client(alice) as c:
        first = c.post("/v1/tasks/t-four-eyes/approve", json={})
        assert first.status_code == 200 and first.json()["state"] == "awaiting_approval"
        mark = Mark(tls_server)
        refused = problem(c.post("/v1/tasks/t-four-eyes/approve", json={}), 403, "not-authorized")
        assert "four eyes" in refused["detail"]
        (record,) = mark.refusals()
        assert record["actor"] == "alice" and "four eyes" in record["reason"]
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        second = c.post("/v1/tasks/t-four-eyes/approve", json={})
        assert second.status_code == 200 and second.json()["state"] == "approved"


def test_as_without_impersonate_is_403(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    ask(tls_server, agent, "t-as")
    mark = Mark(tls_server)
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        refused = problem(c.post("/v1/tasks/t-as/approve", json={"as": "alice"}), 403, "not-authorized")
        assert "impersonate" in refused["detail"]
        assert c.get("/v1/tasks/t-as").json()["state"] == "awaiting_approval"
    (record,) = mark.refusals()
    assert record["actor"] == "bob" and "impersonate" in record["reason"] and record["task_id"] == "t-as"


def test_as_with_impersonate_records_both(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    ask(tls_server, agent, "t-via")
    bridge = tls_server.token("chat-bridge", "operator", impersonate=True)
    with tls_server.https_client(bridge) as c:
        approved = c.post("/v1/tasks/t-via/approve", json={"as": "alice", "comment": "from chat"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["decision"]["actor"] == {"id": "alice", "source": "via chat-bridge"}
        events = c.get("/v1/events", params={"task_id": "t-via"}).json()["events"]
        assert events[-1]["actor"] == {"id": "alice", "source": "via chat-bridge"}


def test_timeout_and_policy_decisions_have_no_endpoint(tls_server: ServerProcess) -> None:
    agent = tls_server.token("deploy-bot", "agent")
    ask(tls_server, agent, "t-forged-type")
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        for body in ({"type": "timeout"}, {"type": "policy"}, {"actor": {"id": "hitl:timeout", "source": "timeout"}}):
            problem(c.post("/v1/tasks/t-forged-type/approve", json=body), 422, "invalid")
        for verb in ("decide", "expire", "escalate"):
            assert c.post(f"/v1/tasks/t-forged-type/{verb}", json={}).status_code in (404, 405)
        assert c.get("/v1/tasks/t-forged-type").json()["state"] == "awaiting_approval"


def test_malformed_json_is_422(tls_server: ServerProcess) -> None:
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        headers = {"content-type": "application/json"}
        body = problem(c.post("/v1/tasks", content=b'{"task_id": ', headers=headers), 422, "invalid")
        assert "not valid JSON" in body["detail"]
        problem(c.post("/v1/tasks", content=b"[1, 2]", headers=headers), 422, "invalid")
        problem(c.post("/v1/tasks", content=b"[" * 100_000, headers=headers), 422, "invalid")


def test_unknown_fields_are_422(tls_server: ServerProcess) -> None:
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        body = problem(c.post("/v1/tasks", json={"task_id": "t-unknown", "approver": "alice"}), 422, "invalid")
        assert body["errors"][0]["loc"] == ["approver"]
        problem(c.get("/v1/tasks/t-unknown"), 404, "not-found")  # nothing half-written


def test_oversized_body_is_422(tls_server: ServerProcess) -> None:
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        huge = {"task_id": "t-huge", "metadata": {"blob": "x" * (3 * 1024 * 1024)}}
        body = problem(c.post("/v1/tasks", json=huge), 422, "invalid")
        assert "over the limit" in body["detail"]
        # Under the body limit but over the machine's payload limit: refused by the machine, also 422.
        big = {"task_id": "t-big", "metadata": {"blob": "x" * (1024 * 1024 + 10)}}
        problem(c.post("/v1/tasks", json=big), 422, "invalid")
        problem(c.get("/v1/tasks/t-huge"), 404, "not-found")
        problem(c.get("/v1/tasks/t-big"), 404, "not-found")


def refusals(server: ServerProcess) -> int:
    with server.unix_client() as c:
        line = next(x for x in c.get("/metrics").text.splitlines() if x.startswith("hitl_refusals_total "))
    return int(line.split()[1])


def test_refusals_are_audited_in_the_log_and_metrics(tls_server: ServerProcess) -> None:
    before = refusals(tls_server)
    with tls_server.https_client() as c:
        c.get("/v1/tasks")
    with tls_server.https_client(tls_server.token("deploy-bot", "agent")) as c:
        c.post("/v1/tasks/nope/approve", json={})
    ask(tls_server, tls_server.token("deploy-bot", "agent"), "t-audited", assignees=["alice"])
    with tls_server.https_client(tls_server.token("bob", "operator")) as c:
        c.post("/v1/tasks/t-audited/approve", json={})  # the policy refuses: not an assignee
    log = tls_server.log.read_text()
    assert "refused: unauthenticated request to /v1/tasks" in log
    assert "refused: deploy-bot (agent) may not approve nope" in log
    assert "refused: bob may not approve task t-audited: only the assignees may decide" in log
    assert refusals(tls_server) == before + 3


async def test_a_waiting_agent_whose_token_is_revoked_is_told_not_left_hanging(tls_server: ServerProcess) -> None:
    from hitl_core import HITLStateMachine
    from hitl_core.server.problems import UnauthenticatedError

    token = tls_server.token("doomed-bot", "agent")
    machine = HITLStateMachine(tls_server.https_url, token=token, ca=str(tls_server.cert))
    try:
        await machine.start_task("t-doomed")
        await machine.request_approval("t-doomed", "deploy")
        waiting = asyncio.create_task(machine.wait_for_decision("t-doomed", timeout=240))
        await machine._ensure_follower()  # the stream is open
        tls_server.tokens.revoke("doomed-bot")
        # Its open stream is closed at the next event (or keepalive); the reconnect gets the 401.
        other = tls_server.token("busy-bot", "agent")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        with tls_server.https_client(other) as c:
            i = 0
            while not waiting.done() and loop.time() < deadline:
                c.post(f"/v1/tasks/t-busy-{i}/start", json={})
                i += 1
                await asyncio.wait({waiting}, timeout=0.3)
        with pytest.raises(UnauthenticatedError):
            await waiting
    finally:
        await machine.close()
