"""The HTTP API's request bodies and route table, and the OpenAPI document built from them.

Bodies are pydantic models with ``extra="forbid"``: a misspelt field is a 422, never a value
silently dropped (an ``approver`` nobody reads would be a decision recorded under the wrong name).
The OpenAPI document is generated from this table, and a test checks docs/openapi.json is current.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__

Name = Field(default=None, min_length=1, max_length=256)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(Body):
    """Create (``/tasks``) or start (``/tasks/{id}/start``) a task. The agent name defaults to the caller."""

    metadata: dict[str, Any] | None = None
    step: str | None = Field(default=None, max_length=1024)
    agent: str | None = Name
    framework: str | None = Field(default=None, max_length=256)
    run_id: str | None = Field(default=None, max_length=256)
    parent_id: str | None = Field(default=None, max_length=256)


class CreateBody(StartBody):
    task_id: str = Field(min_length=1, max_length=256)
    start: bool = False


class ActionBody(Body):
    name: str = Field(min_length=1, max_length=256)
    args: dict[str, Any] = Field(default_factory=dict)


class RequestBody(Body):
    """Ask a person. ``requested_by`` is not accepted: the server records the caller."""

    reason: str = Field(min_length=1, max_length=65536)
    context: dict[str, Any] | None = None
    options: list[str] | None = Field(default=None, max_length=64)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    kind: Literal["approval", "question", "review"] = "approval"
    action: ActionBody | None = None
    args: dict[str, Any] | None = None
    allowed_decisions: list[Literal["approve", "reject", "edit", "respond"]] | None = None
    response_schema: dict[str, Any] | None = None
    deadline: datetime | None = None
    timeout: float | None = Field(default=None, gt=0)
    default_decision: Literal["approve", "reject"] = "reject"
    assignees: list[str] | None = Field(default=None, max_length=256)
    required_approvals: int = Field(default=1, ge=1, le=2)
    step: str | None = Field(default=None, max_length=1024)


class PauseBody(Body):
    reason: str = Field(min_length=1, max_length=65536)
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    context: dict[str, Any] | None = None
    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)


class DecideBody(Body):
    """A person's decision. ``as`` names someone other than the caller: only with ``impersonate``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)
    option: str | None = Field(default=None, max_length=256)
    comment: str | None = Field(default=None, max_length=65536)
    interrupt_id: str | None = Field(default=None, max_length=128)
    args_fingerprint: str | None = Field(default=None, max_length=128)


class RejectBody(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=65536)
    option: str | None = Field(default=None, max_length=256)
    interrupt_id: str | None = Field(default=None, max_length=128)


class EditBody(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)
    edited_args: dict[str, Any]
    comment: str | None = Field(default=None, max_length=65536)
    interrupt_id: str | None = Field(default=None, max_length=128)
    args_fingerprint: str | None = Field(default=None, max_length=128)


class RespondBody(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)
    response: Any = None
    interrupt_id: str | None = Field(default=None, max_length=128)


class ResumeBody(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: str | None = Field(default=None, alias="as", min_length=1, max_length=256)
    step: str | None = Field(default=None, max_length=1024)


class CompleteBody(Body):
    result: Any = None


class FailBody(Body):
    error: str = Field(max_length=65536)


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["agent", "operator", "admin"]
    expires: str | None = Field(default=None, max_length=16, description="e.g. 30d, 12h, 90m; none: never")
    impersonate: bool = False


class PolicyBody(Body):
    """A hitl.toml to enforce from now on (admin). ``source`` is a label kept with it (a file name)."""

    text: str = Field(min_length=0, max_length=256 * 1024)
    source: str | None = Field(default=None, max_length=1024)


#: (method, path, operation id, body model or None, summary)
ROUTES: list[tuple[str, str, str, type[Body] | None, str]] = [
    ("GET", "/healthz", "healthz", None, "Liveness: the server runs and its store answers"),
    (
        "GET",
        "/metrics",
        "metrics",
        None,
        "Prometheus text: waiting tasks, decisions, refusals, streams, audit, checkpoints (authenticated unless"
        " --metrics-public)",
    ),
    ("GET", "/v1/whoami", "whoami", None, "The authenticated principal: name, role, channel"),
    (
        "GET",
        "/v1/tasks",
        "list_tasks",
        None,
        "Tasks, optionally by state, changed after an event (?state=&limit=&after=)",
    ),
    ("POST", "/v1/tasks", "create_task", CreateBody, "Create a PENDING task (or RUNNING with start=true)"),
    ("GET", "/v1/tasks/{task_id:path}", "get_task", None, "One task's snapshot"),
    ("POST", "/v1/tasks/{task_id:path}/start", "start_task", StartBody, "PENDING → RUNNING, or create-and-start"),
    ("POST", "/v1/tasks/{task_id:path}/request", "request_approval", RequestBody, "RUNNING → AWAITING_APPROVAL"),
    ("POST", "/v1/tasks/{task_id:path}/pause", "pause", PauseBody, "A person interrupts a RUNNING task"),
    ("POST", "/v1/tasks/{task_id:path}/approve", "approve", DecideBody, "Approve (or the first of two approvals)"),
    ("POST", "/v1/tasks/{task_id:path}/reject", "reject", RejectBody, "Reject, with a reason for the agent"),
    ("POST", "/v1/tasks/{task_id:path}/edit", "edit", EditBody, "Approve with edited args"),
    ("POST", "/v1/tasks/{task_id:path}/respond", "respond", RespondBody, "Answer a question"),
    ("POST", "/v1/tasks/{task_id:path}/resume", "resume", ResumeBody, "APPROVED/REJECTED → RUNNING"),
    ("POST", "/v1/tasks/{task_id:path}/complete", "complete", CompleteBody, "RUNNING → COMPLETED"),
    ("POST", "/v1/tasks/{task_id:path}/fail", "fail", FailBody, "Any non-terminal state → FAILED"),
    ("GET", "/v1/tokens", "list_tokens", None, "Tokens (admin): names, roles, status; never secrets"),
    ("POST", "/v1/tokens", "create_token", TokenBody, "Make a token (admin); the secret is in this response only"),
    ("POST", "/v1/tokens/{name}/revoke", "revoke_token", None, "Revoke a token (admin), effective at once"),
    ("GET", "/v1/policy", "show_policy", None, "The policy in force (operator): version, sha256, text"),
    ("PUT", "/v1/policy", "put_policy", PolicyBody, "Apply a policy (admin): validated, stored, versioned, audited"),
    ("GET", "/v1/audit", "audit_records", None, "The server's audit chain (operator): refusals, applied policies"),
    ("GET", "/v1/events", "events", None, "Committed events in order (?after=&limit=&task_id=)"),
    ("GET", "/v1/stream", "stream", None, "Server-Sent Events: every event after ?after= (or Last-Event-ID)"),
]

_PROBLEM = {
    "description": "RFC 9457 problem; `type` names the kind (urn:hitl:problem:not-found, …)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}

_QUERY = {
    "list_tasks": [("state", "string"), ("limit", "integer"), ("after", "integer")],
    "events": [("after", "integer"), ("limit", "integer"), ("task_id", "string")],
    "stream": [("after", "integer")],
    "audit_records": [("after", "integer"), ("limit", "integer"), ("kind", "string")],
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API (what ``/openapi.json`` serves)."""
    schemas: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "exit_code": {"type": "integer"},
            },
            "required": ["type", "title", "status"],
        }
    }
    paths: dict[str, Any] = {}
    for method, path, op_id, body, summary in ROUTES:
        op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": {}}
        # Every {name} or {name:path} of the route is a declared path parameter (schemathesis
        # found /v1/tokens/{name}/revoke's missing: a client generated from the document could not call it).
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)(?::path)?\}", path)
        ]
        for name, kind in _QUERY.get(op_id, []):
            params.append({"name": name, "in": "query", "required": False, "schema": {"type": kind}})
        if params:
            op["parameters"] = params
        if body is not None:
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[body.__name__] = schema
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
            }
        ok = "text/event-stream" if op_id == "stream" else "text/plain" if op_id == "metrics" else "application/json"
        op["responses"]["200"] = {"description": "OK", "content": {ok: {}}}
        if path.startswith("/v1/"):
            op["security"] = [{"bearer": []}, {}]
            for status in ("401", "403", "404", "409", "422", "429", "503"):
                op["responses"][status] = _PROBLEM
        elif op_id == "metrics":
            # {}: the Unix socket's peer credentials, or a server started with --metrics-public.
            op["security"] = [{"bearer": []}, {}]
            for status in ("401", "429"):
                op["responses"][status] = _PROBLEM
        paths.setdefault(path.replace(":path}", "}"), {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "hitl", "version": __version__, "description": "hitl serve: the authority's HTTP API"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


if __name__ == "__main__":  # python -m hitl_core.server.api > docs/openapi.json
    import json
    import sys

    json.dump(openapi_document(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
