"""Writing to a store as an older hitl could have: straight through ``Store.append``, without
today's checks on names and sizes (the store's contract is the only thing enforced).

A store outlives versions, and anyone who can write the file can put anything in it, so the
CLI, the console and the logs must show such data safely and keep it decidable by its exact id.
"""

from __future__ import annotations

import os
from typing import Any

from hitl_core import HITLStateMachine, TaskState
from hitl_core.canonical import now_us
from hitl_core.models import Actor, InterruptPoint
from hitl_core.records import EventRecord, TaskRecord
from hitl_core.transitions import TRANSITIONS


async def commit_as_older_version(
    machine: HITLStateMachine, task_id: str, action: str, actor: Actor | None, data: dict[str, Any], **changes: Any
) -> TaskRecord:
    """Append one transition of ``task_id`` (created by ``start`` if it does not exist), unchecked."""
    store = machine.store
    await store.open()
    record = await store.get(task_id)
    from_state = record.state if record is not None else None
    to_state = TRANSITIONS[action][from_state]
    at = now_us()
    event = EventRecord(
        task_id,
        (record.version + 1) if record else 1,
        action,
        from_state,
        to_state,
        actor.id if actor else None,
        actor.source if actor else None,
        at,
        data,
    )
    if record is None:
        new = TaskRecord(
            task_id=task_id, state=to_state, version=1, created_at=at, updated_at=at, history=(event,), **changes
        )
    else:
        new = record.evolve(
            state=to_state, version=event.version, updated_at=at, history=(*record.history, event), **changes
        )
    await store.append(event, new, record.version if record is not None else None)
    return new


async def start_as_older_version(machine: HITLStateMachine, task_id: str, **fields: Any) -> TaskRecord:
    """A RUNNING task whose id and names (``agent``, ``current_step``, …) were never checked."""
    agent = fields.get("agent") or "agent"
    return await commit_as_older_version(machine, task_id, "start", Actor(id=agent, source="agent"), {}, **fields)


async def ask_as_older_version(machine: HITLStateMachine, task_id: str, reason: str, **fields: Any) -> TaskRecord:
    """RUNNING -> AWAITING_APPROVAL with an ``InterruptPoint`` of ``fields``, never checked."""
    interrupt = InterruptPoint(reason=reason, interrupt_id=os.urandom(16).hex(), **fields)
    actor = Actor(id="agent", source="agent")
    return await commit_as_older_version(
        machine, task_id, "request_approval", actor, {"interrupt": interrupt}, interrupt=interrupt
    )


__all__ = ["TaskState", "ask_as_older_version", "commit_as_older_version", "start_as_older_version"]
