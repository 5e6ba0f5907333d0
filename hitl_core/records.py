"""Compact internal records: what the machine and the stores pass around on the hot path.

Why not the pydantic models? A pydantic instance carries a ``__dict__`` of every field; keeping
one per task (plus one per event) costs several kilobytes a waiting task and microseconds a
transition. These slotted records cost a few hundred bytes, share the (immutable, validated
once at the boundary) ``InterruptPoint`` and ``Decision`` models, and are turned into
``TaskContext`` / ``Event`` only when a caller asks (``to_context``, ``to_event``).

A task's history *is* its events: a record keeps a tuple of its ``EventRecord``\\s rather than a
second copy of what happened.

Store authors: treat records as immutable once appended. ``EventRecord.seq``, ``prev_hash`` and
``hash`` are filled by the store inside ``append``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any

from .canonical import canonical_json, canonical_json_checked, datetime_to_us, event_hash, model_json, us_to_datetime
from .models import Actor, Decision, Event, InterruptPoint, TaskContext, TaskState
from .transitions import TRANSITIONS

# One "fields set" per model class, shared by every instance built here. pydantic only ever adds
# field names to it (on assignment or model_copy), and they are all in it already.
_TASK_FIELDS = set(TaskContext.model_fields)
_EVENT_FIELDS = set(Event.model_fields)
_ACTOR_FIELDS = set(Actor.model_fields)
_new = object.__new__
_set = object.__setattr__


def build_model(cls: type[Any], values: dict[str, Any]) -> Any:
    """``_build`` for any of our models, for values the caller has already validated."""
    shared = _FIELDS_SETS.get(cls)
    if shared is None:
        shared = _FIELDS_SETS[cls] = set(cls.model_fields)
    return _build(cls, values, shared)


_FIELDS_SETS: dict[type[Any], set[str]] = {}


def compact_fields_set(model: Any) -> Any:
    """Swap a validated model's own "fields set" for the class's shared one.

    A waiting task keeps its ``InterruptPoint`` for as long as it waits; its private set of the
    seven-odd fields the caller passed costs ~700 bytes, more than half of the model. The shared
    set says "every field was set", which only changes ``model_dump(exclude_unset=True)``.
    """
    shared = _FIELDS_SETS.get(type(model))
    if shared is None:
        shared = _FIELDS_SETS[type(model)] = set(type(model).model_fields)
    _set(model, "__pydantic_fields_set__", shared)
    return model


def _build(cls: type[Any], values: dict[str, Any], fields: set[str]) -> Any:
    """Make a model from values the machine already validated, without validating them again.

    This is what ``model_construct`` does, minus its per-field Python loop; the values come from
    records whose parts were validated when they entered the system.
    """
    obj = _new(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", fields)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _iso(us: int, _cache: list[Any] = [None, ""]) -> str:  # noqa: B006 - a deliberate one-slot cache
    """ISO 8601 (UTC, microseconds) for an epoch-µs time; events in the same second share a prefix."""
    seconds, micros = divmod(us, 1_000_000)
    if _cache[0] != seconds:
        _cache[0] = seconds
        _cache[1] = us_to_datetime(seconds * 1_000_000).isoformat()[:19]
    return f"{_cache[1]}.{micros:06d}+00:00"


@dataclass(slots=True, eq=False)
class EventRecord:
    task_id: str
    version: int
    action: str
    from_state: TaskState | None
    to_state: TaskState
    actor_id: str | None
    actor_source: str | None
    at: int  # microseconds since the epoch
    #: JSON-compatible, but may hold the (validated, immutable) InterruptPoint or Decision models
    #: themselves: they are dumped only when written, hashed or exported.
    data: dict[str, Any]
    seq: int = 0
    prev_hash: str | None = None
    hash: str | None = None
    #: ``history_entry()``'s answer, built on first use: events never change once committed.
    entry: dict[str, Any] | None = None

    def data_json(self) -> str:
        return canonical_json_checked(self.data)

    def compute_hash(self, prev_hash: str) -> str:
        return event_hash(
            prev_hash,
            self.seq,
            self.task_id,
            self.version,
            self.action,
            self.from_state,
            self.to_state,
            self.actor_id,
            self.actor_source,
            self.at,
            self.data,
        )

    @property
    def actor(self) -> Actor | None:
        if self.actor_id is None:
            return None
        return _build(Actor, {"id": self.actor_id, "source": self.actor_source or "api"}, _ACTOR_FIELDS)

    def history_entry(self) -> dict[str, Any]:
        """The JSON-compatible summary a ``TaskContext.history`` shows for this event (shared: read-only)."""
        entry = self.entry
        if entry is None:
            entry = self.entry = self._make_entry()
        return entry

    def _make_entry(self) -> dict[str, Any]:
        # Works alike on data holding models (fresh in this process) and plain JSON (read back
        # from a database), so every store shows the same history.
        entry: dict[str, Any] = {
            "seq": self.seq,
            "action": self.action,
            "from": _plain(self.from_state),
            "to": _plain(self.to_state),
            "at": _iso(self.at),
            "actor": self.actor_id,
        }
        data = self.data
        if not data:
            return entry
        interrupt = data.get("interrupt")
        if interrupt is not None:
            entry["interrupt_id"] = _part(interrupt, "interrupt_id")
            entry["reason"] = _part(interrupt, "reason")
            entry["severity"] = _plain(_part(interrupt, "severity"))
            entry["kind"] = _plain(_part(interrupt, "kind"))
        decision = data.get("decision")
        if decision is not None:
            entry["decision"] = _plain(_part(decision, "type"))
            entry["decided_by"] = _part(_part(decision, "actor"), "id")
            for key in ("outcome", "message", "option"):
                value = _part(decision, key)
                if value is not None:
                    entry[key] = value
        for key in ("step", "error"):
            if data.get(key) is not None:
                entry[key] = data[key]
        return entry

    def to_event(self) -> Event:
        return _build(
            Event,
            {
                "seq": self.seq,
                "task_id": self.task_id,
                "version": self.version,
                "action": self.action,
                "from_state": self.from_state,
                "to_state": self.to_state,
                "actor": self.actor,
                "at": us_to_datetime(self.at),
                "data": _as_json(self.data),
                "prev_hash": self.prev_hash or "",
                "hash": self.hash or "",
            },
            _EVENT_FIELDS,
        )

    @classmethod
    def from_event(cls, event: Event) -> EventRecord:
        return cls(
            task_id=event.task_id,
            version=event.version,
            action=event.action,
            from_state=event.from_state,
            to_state=event.to_state,
            actor_id=event.actor.id if event.actor else None,
            actor_source=event.actor.source if event.actor else None,
            at=datetime_to_us(event.at),
            data=event.data,
            seq=event.seq,
            prev_hash=event.prev_hash or None,
            hash=event.hash or None,
        )


def _part(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, (InterruptPoint, Decision)):
        return model_json(value)
    return value


@dataclass(slots=True, eq=False)
class TaskRecord:
    task_id: str
    state: TaskState
    version: int
    created_at: int
    updated_at: int
    history: tuple[EventRecord, ...] = ()
    current_step: str | None = None
    metadata: dict[str, Any] | None = None
    interrupt: InterruptPoint | None = None
    decision: Decision | None = None
    approvals: tuple[Decision, ...] = ()
    error: str | None = None
    result: Any = None
    agent: str | None = None
    framework: str | None = None
    run_id: str | None = None
    parent_id: str | None = None
    last_seq: int = 0
    #: the seed's ``approval_data`` dict, derived from ``decision`` once (see ``approval_data()``)
    approval: dict[str, Any] | None = None

    def evolve(self, **changes: Any) -> TaskRecord:
        """A copy with ``changes`` applied; ``dataclasses.replace`` is several times slower."""
        return _evolve(self, changes)

    def to_context(self) -> TaskContext:
        decision = self.decision
        history = self.history
        ctx = _build(
            TaskContext,
            {
                "task_id": self.task_id,
                "state": self.state,
                "current_step": self.current_step,
                "metadata": self.metadata if self.metadata is not None else {},
                "interrupt_point": self.interrupt,
                "approval_data": self.approval
                if self.approval is not None or decision is None
                else approval_data(decision),
                "error": self.error,
                "version": self.version,
                "created_at": us_to_datetime(self.created_at),
                "updated_at": us_to_datetime(self.updated_at),
                "agent": self.agent,
                "framework": self.framework,
                "run_id": self.run_id,
                "parent_id": self.parent_id,
                "result": self.result,
                "decision": decision,
                "approvals": list(self.approvals),
            },
            _TASK_FIELDS,
        )
        if history:
            # ``TaskContext.history`` is built from these on first use (see TaskContext._materialise).
            _set(ctx, "__pydantic_private__", {"_pending_history": history})
        else:
            ctx.__dict__["history"] = []
            _set(ctx, "__pydantic_private__", {"_pending_history": None})
        return ctx

    def snapshot_json(self) -> str:
        """The snapshot without its history (stores keep events separately)."""
        return canonical_json_checked(
            {
                "task_id": self.task_id,
                "state": self.state.value,
                "version": self.version,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "current_step": self.current_step,
                "metadata": self.metadata,
                "interrupt": self.interrupt,
                "decision": self.decision,
                "approvals": list(self.approvals),
                "error": self.error,
                "result": self.result,
                "agent": self.agent,
                "framework": self.framework,
                "run_id": self.run_id,
                "parent_id": self.parent_id,
                "last_seq": self.last_seq,
            }
        )

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], history: tuple[EventRecord, ...] = ()) -> TaskRecord:
        interrupt = data.get("interrupt")
        decision = data.get("decision")
        return cls(
            task_id=data["task_id"],
            state=TaskState(data["state"]),
            version=data["version"],
            created_at=data["created_at"],
            updated_at=data["updated_at"],
            history=history,
            current_step=data.get("current_step"),
            metadata=data.get("metadata"),
            interrupt=InterruptPoint.model_validate(interrupt) if interrupt else None,
            decision=Decision.model_validate(decision) if decision else None,
            approvals=tuple(Decision.model_validate(d) for d in data.get("approvals") or ()),
            error=data.get("error"),
            result=data.get("result"),
            agent=data.get("agent"),
            framework=data.get("framework"),
            run_id=data.get("run_id"),
            parent_id=data.get("parent_id"),
            last_seq=data.get("last_seq", 0),
        ).with_approval()

    def with_approval(self) -> TaskRecord:
        """Fill the derived ``approval`` cache (call after setting ``decision``)."""
        if self.decision is not None and self.approval is None:
            self.approval = approval_data(self.decision)
        return self


def _make_evolve() -> Any:
    # Generated once: one positional constructor call, a dict.get per field, no getattr loop.
    names = [f.name for f in fields(TaskRecord)]
    args = ", ".join(f"g({n!r}, self.{n})" for n in names)
    namespace: dict[str, Any] = {"TaskRecord": TaskRecord}
    exec(f"def _evolve(self, changes):\n    g = changes.get\n    return TaskRecord({args})\n", namespace)
    return namespace["_evolve"]


_evolve = _make_evolve()


def approval_data(decision: Decision) -> dict[str, Any]:
    """The seed's ``approval_data`` dict, derived from the decision (kept for compatibility)."""
    approved = decision.approved
    data: dict[str, Any] = {
        "approved": approved,
        "decision": decision.type.value,
        "approver" if approved else "rejector": decision.actor.id,
        "source": decision.actor.source,
        "at": decision.decided_at.isoformat(),
    }
    if decision.message is not None:
        data["notes" if approved else "reason"] = decision.message
    if decision.option is not None:
        data["option"] = decision.option
    if decision.edited_args is not None:
        data["edited_args"] = decision.edited_args
    if decision.response is not None:
        data["response"] = decision.response
    if decision.outcome is not None:
        data["outcome"] = decision.outcome
    return data


# -- replay: a task's snapshot is a function of its events -------------------------------------------


class ReplayError(ValueError):
    """A task's events cannot be replayed: the message names the event and what is wrong with it."""


def fold(events: Iterable[EventRecord]) -> TaskRecord:
    """The snapshot a task's events (in order) lead to: what ``verify`` compares the stored one with.

    Checks every step against the transition table and the version numbering; ``ReplayError`` names
    the first event that does not follow. Works alike on events whose data holds models (fresh in
    this process) and plain JSON (read back from a database).
    """
    record: TaskRecord | None = None
    for event in events:
        record = apply_event(record, event)
    if record is None:
        raise ReplayError("a task without events cannot be replayed")
    return record


def apply_event(record: TaskRecord | None, event: EventRecord) -> TaskRecord:
    """``record`` after ``event``: the machine's ``_commit`` for each action, read back from the log.

    Mirrors ``HITLStateMachine``: what each action writes into its event's ``data`` is what it
    changes in the snapshot. ``tests/audit/test_audit_replay.py`` drives random legal sequences through
    the real machine on every backend and checks that this fold equals the stored snapshot, so a
    change to one without the other fails there.
    """
    where = f"event {event.seq} (task {event.task_id!r}, {event.action})"
    moves = TRANSITIONS.get(event.action)
    if moves is None:
        raise ReplayError(f"{where}: {event.action!r} is not an action")
    from_state = record.state if record is not None else None
    if event.from_state != from_state:
        raise ReplayError(f"{where} starts from {_plain(event.from_state)}, but the task was {_plain(from_state)}")
    if moves.get(from_state) != event.to_state:
        raise ReplayError(f"{where}: {_plain(from_state)} -> {_plain(event.to_state)} is not a legal transition")
    expected_version = record.version + 1 if record is not None else 1
    if event.version != expected_version:
        raise ReplayError(f"{where} has version {event.version}, expected {expected_version}")
    data = event.data if isinstance(event.data, dict) else {}
    changes: dict[str, Any] = {}
    try:
        _replay_changes(event.action, record, data, changes)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"{where}: its data does not replay ({type(exc).__name__}: {exc})") from None
    if record is None:
        new = TaskRecord(
            task_id=event.task_id,
            state=event.to_state,
            version=event.version,
            created_at=event.at,
            updated_at=event.at,
            history=(event,),
            last_seq=event.seq,
            **changes,
        )
    else:
        new = record.evolve(
            state=event.to_state,
            version=event.version,
            updated_at=event.at,
            history=(*record.history, event),
            last_seq=event.seq,
            **changes,
        )
    return new.with_approval()


_START_FIELDS = ("metadata", "agent", "framework", "run_id", "parent_id")


def _replay_changes(action: str, record: TaskRecord | None, data: dict[str, Any], changes: dict[str, Any]) -> None:
    """Fill ``changes`` with what ``action`` did to the snapshot, from its event's ``data``."""
    if action in ("create", "start"):
        for key in _START_FIELDS:
            if key in data:
                changes[key] = data[key]
        if record is not None and isinstance(changes.get("metadata"), dict):
            # Starting a PENDING task: the event carries the metadata passed now; the task keeps
            # what it was created with underneath.
            changes["metadata"] = {**(record.metadata or {}), **changes["metadata"]}
        if data.get("step") is not None:
            changes["current_step"] = str(data["step"])
    elif action in ("request_approval", "pause"):
        changes.update(interrupt=_interrupt_of(data["interrupt"]), decision=None, approval=None, approvals=())
        if "step" in data:
            changes["current_step"] = data["step"]
    elif action in ("approve", "approve_partial", "reject"):
        decision = _decision_of(data["decision"])
        if action == "reject":
            changes.update(decision=decision, approval=None)
            return
        # Under four eyes only approvals of the args now on the table count; an edit that changed
        # them carries the new interrupt and starts the count again (``_apply_decision``).
        interrupt = record.interrupt if record is not None else None
        current = interrupt.args_fingerprint if interrupt is not None else None
        approvals = tuple(
            a
            for a in (record.approvals if record is not None else ())
            if getattr(a, "args_fingerprint", None) == current
        )
        if "interrupt" in data:
            changes["interrupt"] = _interrupt_of(data["interrupt"])
            approvals = ()
        approvals = (*approvals, decision)
        if action == "approve":
            changes.update(decision=decision, approval=None, approvals=approvals)
        else:
            changes.update(decision=None, approval=None, approvals=approvals)
    elif action == "escalate":
        current = record.interrupt if record is not None else None
        if current is None:
            raise ValueError("an escalation of a task with no interrupt")
        deadline = data["deadline"]
        changes["interrupt"] = current.model_copy(
            update={
                "assignees": [str(a) for a in data["assignees"]],
                "deadline": datetime.fromisoformat(deadline) if deadline is not None else None,
            }
        )
    elif action == "resume":
        changes["interrupt"] = None
        if "step" in data:
            changes["current_step"] = data["step"]
    elif action == "complete":
        if "result" in data:
            changes["result"] = data["result"]
    elif action == "fail":
        changes["error"] = data["error"]


def _interrupt_of(value: Any) -> InterruptPoint:
    return value if isinstance(value, InterruptPoint) else InterruptPoint.model_validate(value)


def _decision_of(value: Any) -> Decision:
    return value if isinstance(value, Decision) else Decision.model_validate(value)


def snapshot_differences(replayed: TaskRecord, stored_json: str) -> list[str]:
    """How a stored snapshot (its JSON text) differs from the replay of its task's events, field by field.

    ``last_seq`` is left out: stores write the snapshot before the event's sequence number is known
    and keep the real one beside it (compared separately). A field absent from the stored snapshot
    reads as empty (``TaskRecord.from_snapshot``), so it differs only when the events give it a value.
    """
    try:
        stored = json.loads(stored_json)
    except (TypeError, ValueError):
        return ["the snapshot is not JSON"]
    if not isinstance(stored, dict):
        return ["the snapshot is not a JSON object"]
    expected = json.loads(replayed.snapshot_json())
    problems = []
    for key in sorted(set(expected) | set(stored)):
        if key == "last_seq":
            continue
        if key not in stored:
            # ``from_snapshot`` reads a missing field as empty: only a missing value is a change.
            if expected[key] not in (None, [], {}):
                problems.append(f"{key} is missing (its events say {_short(expected[key])})")
        elif stored[key] != expected.get(key):
            problems.append(f"{key} is {_short(stored[key])}, its events say {_short(expected.get(key))}")
    return problems


def _short(value: Any, width: int = 80) -> str:
    text = canonical_json(value)
    return text if len(text) <= width else text[: width - 1] + "…"
