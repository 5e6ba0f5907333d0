"""One error hierarchy, so a caller can catch ``HITLError`` or exactly the case it handles.

Every message names the task and, where it applies, the state and the action, because the
operator reading a log line needs to know which task refused what without a debugger.

Task ids, actor ids and reasons in a message come from agents and the store, so each is put
through ``hitl_core.text.visible`` (``quoted`` for ids) when the message is built, and
``str()`` of any ``HITLError`` makes what is left visible once more: a message can be printed,
logged or flashed as it is.
"""

from __future__ import annotations

from .text import quoted, visible

#: The longest ``str()`` of an error: a message names things, it never carries a payload.
MESSAGE_LIMIT = 4000


class HITLError(Exception):
    """Base of every error hitl raises on purpose."""

    def __str__(self) -> str:
        # A message built by a plugin or a caller from raw agent text is still safe to print.
        return visible(super().__str__(), limit=MESSAGE_LIMIT, escape_backslash=False)


class TaskNotFoundError(HITLError, KeyError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {quoted(task_id)} not found")

    def __str__(self) -> str:  # KeyError would repr() the message
        return visible(self.args[0], limit=MESSAGE_LIMIT, escape_backslash=False)


class DuplicateTaskError(HITLError):
    def __init__(self, task_id: str, state: str) -> None:
        self.task_id = task_id
        self.state = state
        super().__init__(f"task {quoted(task_id)} already exists (state {visible(state, limit=40)})")


class InvalidTransitionError(HITLError):
    def __init__(self, task_id: str, state: str | None, action: str, detail: str = "") -> None:
        self.task_id = task_id
        self.state = state
        self.action = action
        msg = f"cannot {visible(action, limit=40)} task {quoted(task_id)} in state {visible(state, limit=40)}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class ConflictError(HITLError):
    """Compare-and-set lost: another actor changed the task first. Re-read and decide again."""

    def __init__(self, task_id: str, expected_version: int, actual_version: int | None, detail: str = "") -> None:
        self.task_id = task_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            detail
            or (
                f"task {quoted(task_id)} changed concurrently "
                f"(expected version {expected_version}, found {actual_version})"
            )
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
        who = f"{visible(decided_by, limit=200)} ({visible(decision_type, limit=40)})" if decided_by else "someone"
        Exception.__init__(
            self,
            f"cannot {visible(action, limit=40)} task {quoted(task_id)}: already decided by {who}; "
            f"state {visible(state, limit=40)}",
        )


class NotAuthorizedError(HITLError):
    def __init__(self, task_id: str, actor: str, reason: str) -> None:
        self.task_id = task_id
        self.actor = actor
        self.reason = reason
        super().__init__(
            f"{visible(actor, limit=200)} may not decide task {quoted(task_id)}: {visible(reason, limit=2000)}"
        )


class PayloadError(HITLError, ValueError):
    """Input the machine refuses before anything is written: unserialisable, oversized, invalid."""


class DecisionTimeoutError(HITLError, TimeoutError):
    """``wait_for_decision`` gave up before anybody decided (the task is still waiting)."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        super().__init__(f"no decision on task {quoted(task_id)} within {timeout:g}s")


class TaskFailedError(HITLError):
    """The task failed while a caller was waiting for its decision."""

    def __init__(self, task_id: str, error: str | None) -> None:
        self.task_id = task_id
        self.error = error
        super().__init__(f"task {quoted(task_id)} failed while waiting for a decision: {visible(error, limit=2000)}")


class StoreError(HITLError):
    """The store cannot be opened or used (bad path, corrupt file, newer schema, unreachable)."""
