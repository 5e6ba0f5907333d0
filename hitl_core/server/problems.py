"""Errors over HTTP as RFC 9457 ``application/problem+json``, and back into ``HITLError``s.

One table, used by both sides: the server turns a ``HITLError`` into a problem whose ``type``
names the same kind as the CLI's exit codes (3 not found, 4 conflict, 5 illegal, 6 store,
7 not authorized, 2 invalid input); the client turns the problem back into the same exception
class with the same attributes, so code written against a local machine catches the same thing.
Pure Python: the client imports it without the server's dependencies.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    AlreadyDecidedError,
    ConflictError,
    DecisionTimeoutError,
    DuplicateTaskError,
    HITLError,
    InvalidTransitionError,
    NotAuthorizedError,
    PayloadError,
    StoreError,
    TaskFailedError,
    TaskNotFoundError,
)

PROBLEM_JSON = "application/problem+json"
_BASE = "urn:hitl:problem:"

#: kind -> (HTTP status, title, CLI exit code)
KINDS: dict[str, tuple[int, str, int]] = {
    "invalid": (422, "Invalid input", 2),
    "not-found": (404, "Task not found", 3),
    "conflict": (409, "Conflict: the task changed first", 4),
    "already-decided": (409, "Already decided", 4),
    "duplicate": (409, "Task already exists", 4),
    "illegal-transition": (409, "Illegal transition", 5),
    "store": (503, "Store unavailable", 6),
    "not-authorized": (403, "Not authorized", 7),
    "unauthenticated": (401, "Not authenticated", 7),
    "rate-limited": (429, "Too many failed authentications", 7),
    "task-failed": (409, "Task failed", 1),
    "error": (500, "Internal error", 1),
}


class UnauthenticatedError(NotAuthorizedError):
    """No credentials, or credentials the server does not accept (HTTP 401)."""

    def __init__(self, reason: str) -> None:
        self.task_id = ""
        self.actor = ""
        self.reason = reason
        HITLError.__init__(self, f"not authenticated: {reason}")


class RateLimitedError(UnauthenticatedError):
    """Too many failed token checks from one address (HTTP 429, ``retry_after`` seconds)."""

    def __init__(self, reason: str, retry_after: int = 60) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def problem_type(kind: str) -> str:
    return _BASE + kind


def kind_of(exc: BaseException) -> str:
    declared = getattr(exc, "problem_kind", None)
    if isinstance(exc, HITLError) and declared in KINDS:
        return declared
    # Order matters: AlreadyDecidedError is both a conflict and an illegal transition.
    if isinstance(exc, TaskNotFoundError):
        return "not-found"
    if isinstance(exc, AlreadyDecidedError):
        return "already-decided"
    if isinstance(exc, ConflictError):
        return "conflict"
    if isinstance(exc, DuplicateTaskError):
        return "duplicate"
    if isinstance(exc, InvalidTransitionError):
        return "illegal-transition"
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, RateLimitedError):
        return "rate-limited"
    if isinstance(exc, UnauthenticatedError):
        return "unauthenticated"
    if isinstance(exc, NotAuthorizedError):
        return "not-authorized"
    if isinstance(exc, PayloadError):
        return "invalid"
    if isinstance(exc, TaskFailedError):
        return "task-failed"
    return "error"


_FIELDS = (
    "task_id",
    "state",
    "action",
    "decided_by",
    "decision_type",
    "expected_version",
    "actual_version",
    "actor",
    "reason",
    "error",
    "retry_after",
)


def problem_of(exc: BaseException, instance: str | None = None) -> tuple[int, dict[str, Any]]:
    """(status, body) for ``exc``; the body carries the exception's attributes to rebuild it."""
    kind = kind_of(exc)
    status, title, exit_code = KINDS[kind]
    body: dict[str, Any] = {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": str(exc) if kind != "error" else "internal error (see the server's log)",
        "exit_code": exit_code,
    }
    if instance:
        body["instance"] = instance
    for name in _FIELDS:
        value = getattr(exc, name, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            body[name] = value
    return status, body


def error_of(status: int, body: dict[str, Any] | None) -> HITLError:
    """The ``HITLError`` a problem stands for (a plain ``HITLError`` for anything unknown)."""
    body = body if isinstance(body, dict) else {}
    kind = str(body.get("type", "")).removeprefix(_BASE)
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    g = body.get
    task_id = str(g("task_id") or "")
    exc: HITLError
    if kind == "not-found":
        exc = TaskNotFoundError(task_id)
    elif kind == "already-decided":
        exc = AlreadyDecidedError(
            task_id,
            str(g("state") or ""),
            str(g("action") or ""),
            g("decided_by"),
            g("decision_type"),
            int(g("expected_version") or 0),
        )
    elif kind == "conflict":
        exc = ConflictError(task_id, int(g("expected_version") or 0), g("actual_version"), detail)
    elif kind == "duplicate":
        exc = DuplicateTaskError(task_id, str(g("state") or ""))
    elif kind == "illegal-transition":
        exc = InvalidTransitionError(task_id, g("state"), str(g("action") or ""))
    elif kind == "store":
        exc = StoreError(detail)
    elif kind == "rate-limited":
        exc = RateLimitedError(str(g("reason") or detail), int(g("retry_after") or 60))
    elif kind == "unauthenticated":
        exc = UnauthenticatedError(str(g("reason") or detail))
    elif kind == "not-authorized":
        exc = NotAuthorizedError(task_id, str(g("actor") or ""), str(g("reason") or detail))
    elif kind == "invalid":
        exc = PayloadError(detail)
    elif kind == "task-failed":
        exc = TaskFailedError(task_id, g("error"))
    else:
        exc = HITLError(detail)
    # The server's message is the one to show: it may say more than the rebuilt default.
    exc.args = (detail,)
    exc.problem_kind = kind  # type: ignore[attr-defined]
    return exc


__all__ = [
    "KINDS",
    "PROBLEM_JSON",
    "DecisionTimeoutError",
    "RateLimitedError",
    "UnauthenticatedError",
    "error_of",
    "kind_of",
    "problem_of",
    "problem_type",
]
