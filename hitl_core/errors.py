"""One error hierarchy, so a caller can catch ``HITLError`` or exactly the case it handles.

Every message names the task and, where it applies, the state and the action, because the
operator reading a log line needs to know which task refused what without a debugger.
"""

from __future__ import annotations


class HITLError(Exception):
    """Base of every error hitl raises on purpose."""


class TaskNotFoundError(HITLError, KeyError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} not found")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DuplicateTaskError(HITLError):
    def __init__(self, task_id: str, state: str) -> None:
        self.task_id = task_id
        self.state = state
        super().__init__(f"task {task_id!r} already exists (state {state})")


class InvalidTransitionError(HITLError):
    def __init__(self, task_id: str, state: str | None, action: str, detail: str = "") -> None:
        self.task_id = task_id
        self.state = state
        self.action = action
        msg = f"cannot {action} task {task_id!r} in state {state}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class ConflictError(HITLError):
    """Compare-and-set lost: another actor changed the task first. Re-read and decide again."""

    def __init__(self, task_id: str, expected_version: int, actual_version: int | None, detail: str = "") -> None:
        self.task_id = task_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            detail
            or (f"task {task_id!r} changed concurrently (expected version {expected_version}, found {actual_version})")
        )


class AlreadyDecidedError(ConflictError, InvalidTransitionError):
    """A second decision on an interrupt that is already decided. Says who decided and how.

    It is both a ``ConflictError`` (someone else got there first) and an
    ``InvalidTransitionError`` (deciding a decided task is not a legal transition).
    """

    def __init__(
        self, task_id: str, state: str, action: str, decided_by: str | None, decision_type: str | None, version: int = 0
    ) -> None:
        self.task_id = task_id
        self.state = state
        self.action = action
        self.decided_by = decided_by
        self.decision_type = decision_type
        self.expected_version = version
        self.actual_version = version
        who = f"{decided_by} ({decision_type})" if decided_by else "someone"
        Exception.__init__(self, f"cannot {action} task {task_id!r}: already decided by {who}; state {state}")


class NotAuthorizedError(HITLError):
    def __init__(self, task_id: str, actor: str, reason: str) -> None:
        self.task_id = task_id
        self.actor = actor
        self.reason = reason
        super().__init__(f"{actor} may not decide task {task_id!r}: {reason}")


class PayloadError(HITLError, ValueError):
    """Input the machine refuses before anything is written: unserialisable, oversized, invalid."""


class DecisionTimeoutError(HITLError, TimeoutError):
    """``wait_for_decision`` gave up before anybody decided (the task is still waiting)."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        super().__init__(f"no decision on task {task_id!r} within {timeout:g}s")


class TaskFailedError(HITLError):
    """The task failed while a caller was waiting for its decision."""

    def __init__(self, task_id: str, error: str | None) -> None:
        self.task_id = task_id
        self.error = error
        super().__init__(f"task {task_id!r} failed while waiting for a decision: {error}")


class StoreError(HITLError):
    """The store cannot be opened or used (bad path, corrupt file, newer schema, unreachable)."""
