"""The transition table: the single source of truth for what may happen to a task.

Everything not listed raises ``InvalidTransitionError``. A decision (approve, edit, respond, or a
timeout/policy decision that applies approve) moves like ``approve``; a rejecting one like
``reject``. Under four eyes the first approval is recorded as ``approve_partial`` and leaves the
task waiting for the second.
"""

from __future__ import annotations

from types import MappingProxyType

from .models import TaskState

S = TaskState
_NON_TERMINAL = (S.PENDING, S.RUNNING, S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED)

#: action -> {from_state (None for a task that does not exist yet): to_state}
TRANSITIONS: MappingProxyType[str, MappingProxyType[TaskState | None, TaskState]] = MappingProxyType(
    {
        "create": MappingProxyType({None: S.PENDING}),
        "start": MappingProxyType({None: S.RUNNING, S.PENDING: S.RUNNING}),
        "request_approval": MappingProxyType({S.RUNNING: S.AWAITING_APPROVAL}),
        "pause": MappingProxyType({S.RUNNING: S.AWAITING_APPROVAL}),
        "approve": MappingProxyType({S.AWAITING_APPROVAL: S.APPROVED}),
        "approve_partial": MappingProxyType({S.AWAITING_APPROVAL: S.AWAITING_APPROVAL}),
        "reject": MappingProxyType({S.AWAITING_APPROVAL: S.REJECTED}),
        # A deadline passed unanswered: hand the request to the next level's assignees (new deadline).
        "escalate": MappingProxyType({S.AWAITING_APPROVAL: S.AWAITING_APPROVAL}),
        "resume": MappingProxyType({S.APPROVED: S.RUNNING, S.REJECTED: S.RUNNING}),
        "complete": MappingProxyType({S.RUNNING: S.COMPLETED}),
        "fail": MappingProxyType(dict.fromkeys(_NON_TERMINAL, S.FAILED)),
    }
)


def allowed_actions(state: TaskState | None) -> list[str]:
    """The actions the table allows from ``state``: what a console may offer."""
    return [action for action, moves in TRANSITIONS.items() if state in moves]
