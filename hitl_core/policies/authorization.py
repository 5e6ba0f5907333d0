"""Who may decide: assignees (by actor or role), roles per severity, no self-approval, four eyes.

Each check is a ``hitl_authorize`` refusal with its own reason, so the person refused (and the
audit log) reads which rule stopped them. Refusals commit nothing (the hook contract), so they
are audited beside the event log: on the ``hitl.audit`` logger and, if configured, as JSON lines
in ``refusals_log``. Four eyes itself is the machine's (``required_approvals=2``); this plugin
only asks for it, by severity, through ``hitl_assess``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import NotAuthorizedError
from ..hookspecs import hookimpl
from ..models import Actor, Decision, InterruptKind, InterruptPoint, TaskContext
from .config import AuthorizationConfig, RolesFile

audit_log = logging.getLogger("hitl.audit")

ROLE_PREFIX = "role:"


class AuthorizationPlugin:
    def __init__(self, config: AuthorizationConfig, roles: RolesFile) -> None:
        self.config = config
        self.roles = roles
        self.refusals = 0

    def roles_of(self, actor_id: str) -> set[str]:
        return set(self.roles.actors.get(actor_id, ()))

    @hookimpl
    def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any] | None:
        if interrupt.severity in self.config.four_eyes:
            return {"required_approvals": 2}
        return None

    @hookimpl
    def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> bool | None:
        interrupt = task.interrupt_point
        if interrupt is None:
            return None
        reason = self._refusal(actor, task, interrupt, decision)
        if reason is None:
            return None
        self._audit(actor, task, decision, reason)
        raise NotAuthorizedError(task.task_id, actor.id, reason)

    def _refusal(self, actor: Actor, task: TaskContext, interrupt: InterruptPoint, decision: Decision) -> str | None:
        config = self.config
        roles = self.roles_of(actor.id)
        if config.enforce_assignees and interrupt.assignees:
            allowed = interrupt.assignees
            if actor.id not in allowed and not any(a.removeprefix(ROLE_PREFIX) in roles for a in allowed):
                return f"only the assignees may decide ({', '.join(allowed)})"
        wanted = self.roles.severity.get(interrupt.severity)
        if wanted is not None and not roles.intersection(wanted):
            return (
                f"a {interrupt.severity.value} request needs the role {' or '.join(wanted)}"
                f" (the roles file gives {actor.id!r} {', '.join(sorted(roles)) or 'none'})"
            )
        if config.no_self_approval and decision.approved:
            requester = interrupt.requested_by or task.agent
            # A person who paused a task (a review they asked for) may let it go on: that is
            # taking back their own interruption, not approving an agent's request.
            own_pause = interrupt.kind is InterruptKind.REVIEW and interrupt.requested_by == actor.id
            if requester is not None and requester == actor.id and not own_pause:
                return "no self-approval: the actor that requested this may not approve it"
        return None

    def _audit(self, actor: Actor, task: TaskContext, decision: Decision, reason: str) -> None:
        self.refusals += 1
        audit_log.warning(
            "refused: %s may not %s task %s: %s",
            actor.id,
            decision.type.value,
            task.task_id,
            reason,
            extra={"task_id": task.task_id, "actor": actor.id},
        )
        path = self.config.refusals_log
        if path is not None:
            line = json.dumps(
                {
                    "at": datetime.now(UTC).isoformat(),
                    "task_id": task.task_id,
                    "version": task.version,
                    "actor": actor.id,
                    "source": actor.source,
                    "decision": decision.type.value,
                    "reason": reason,
                },
                ensure_ascii=False,
            )
            _append_line(path, line)


def _append_line(path: Path, line: str) -> None:
    # O_APPEND: lines from several processes interleave whole, never torn.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)
