"""Fuzz the HTTP API in process: whatever the body, the server answers with a status it documents
(never a 500) and errors are problem+json; forged decisions never change a task.

The app runs on a memory store through ``httpx.ASGITransport`` (no sockets: thousands of requests
in seconds); authentication is a real operator token from a real token file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hitl_core import HITLStateMachine
from hitl_core.server.api import ROUTES
from hitl_core.server.app import Server, create_app
from hitl_core.server.auth import Authenticator
from hitl_core.server.problems import PROBLEM_JSON
from hitl_core.server.tokens import TokenStore

DOCUMENTED = {200, 401, 403, 404, 405, 409, 422}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Bodies shaped like ours: known field names with arbitrary values, plus strangers.
FIELDS = ["task_id", "reason", "as", "option", "comment", "edited_args", "response", "result", "error", "metadata",
          "severity", "kind", "action", "args", "assignees", "required_approvals", "timeout", "deadline", "start",
          "agent", "type", "actor", "requested_by", "name", "role", "expires"]  # fmt: skip
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5) | json_values
POSTS = [path for method, path, *_ in ROUTES if method == "POST"]


class App:
    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        tokens = TokenStore(directory / "tokens.db")
        self.token = tokens.create("fuzzer", "operator")[0]
        self.machine = HITLStateMachine("memory://", load_entrypoints=False)
        self.server = Server(self.machine, Authenticator(tokens))
        self.loop.run_until_complete(self.server.start())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(self.server)),
            base_url="http://hitl",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        self.run(self.machine.start_task("t", agent="fuzzer-agent"))
        self.run(self.machine.request_approval("t", "deploy", args={"n": 1}))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.server.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    a = App(tmp_path_factory.mktemp("fuzz"))
    yield a
    a.close()


def check(response: httpx.Response) -> None:
    assert response.status_code in DOCUMENTED, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
        assert response.json()["status"] == response.status_code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(POSTS), body=bodies, task_id=st.sampled_from(["t", "new", "x/y", "%2F", "ü"]))
def test_any_json_body_gets_a_documented_answer(app: App, path: str, body: Any, task_id: str) -> None:
    url = path.replace("{task_id:path}", task_id).replace("{name}", "fuzzer")
    check(app.run(app.client.post(url, json=body)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(POSTS), raw=st.binary(max_size=200))
def test_any_bytes_get_a_documented_answer(app: App, path: str, raw: bytes) -> None:
    url = path.replace("{task_id:path}", "t").replace("{name}", "fuzzer")
    check(app.run(app.client.post(url, content=raw, headers={"content-type": "application/json"})))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["after", "limit", "state", "task_id"]), st.text(max_size=12)))
def test_any_query_gets_a_documented_answer(app: App, params: dict[str, str]) -> None:
    for path in ("/v1/tasks", "/v1/events"):
        check(app.run(app.client.get(path, params=params)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
def test_no_forged_body_records_a_timeout_or_policy_decision_or_another_actor(app: App, body: dict[str, Any]) -> None:
    before = app.run(app.machine.get_task("t"))
    response = app.run(app.client.post("/v1/tasks/t/approve", json=body))
    check(response)
    after = app.run(app.machine.get_task("t"))
    if response.status_code == 200:
        assert after.decision is not None
        assert after.decision.type.value in ("approve", "reject", "edit", "respond")
        assert after.decision.actor.id == "fuzzer" and after.decision.actor.source == "token"
        # Put a fresh request up for the next example.
        app.run(app.machine.resume("t"))
        app.run(app.machine.request_approval("t", "deploy", args={"n": 1}))
    else:
        assert after.version == before.version, json.dumps(body)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_422(app: App, constant: bytes) -> None:
    body = b'{"task_id": "nan-task", "metadata": {"x": ' + constant + b"}}"
    response = app.run(app.client.post("/v1/tasks", content=body, headers={"content-type": "application/json"}))
    check(response)
    assert response.status_code == 422 and "is not JSON" in response.json()["detail"]
    assert app.run(app.machine.get_task("nan-task")) is None


def test_caller_text_reaches_the_audit_log_escaped(app: App, caplog: pytest.LogCaptureFixture) -> None:
    forged = "x\x1b[1A\x1b[2K2026-01-01 hitl.audit WARNING approved by root\x1b[2J"
    anonymous = httpx.AsyncClient(transport=app.client._transport, base_url="http://hitl")
    with caplog.at_level("WARNING", logger="hitl.audit"):
        # An unauthenticated request: refused, and the refusal names the path it asked for.
        response = app.run(anonymous.get(f"/v1/tasks/{quote(forged, safe='')}"))
    app.run(anonymous.aclose())
    assert response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "unauthenticated request" in r.getMessage()]
    assert len(lines) == 1
    assert "\x1b" not in lines[0]
    assert "x\\x1b[1A\\x1b[2K2026-01-01" in lines[0] and "\\x1b[2J" in lines[0]
