"""The public data model: what a caller gets back, what the console shows, what the audit exports.

Models are data: the machine (``hitl_core.machine``) owns every behaviour. Each model round-trips
through JSON losslessly (``to_dict``/``from_dict``, ``model_dump_json``/``model_validate_json``).

Internally the machine and the stores work with compact slotted records (``hitl_core.records``)
and build these models only at the boundary, so that a transition costs microseconds and a
waiting task a little over a kilobyte.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskState(StrEnum):
    """The seven states of a task. Members compare equal to their lower-case string values."""

    PENDING = "pending"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED)


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low … 3 for critical: severities compare by rank, never alphabetically."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class InterruptKind(StrEnum):
    APPROVAL = "approval"  # the agent asks before a risky step
    QUESTION = "question"  # the agent asks for an answer (``respond``)
    REVIEW = "review"  # a person paused a running task


class DecisionType(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"  # approve with edited args
    RESPOND = "respond"  # approve with an answer
    TIMEOUT = "timeout"  # the deadline passed; ``outcome`` says what it applied
    POLICY = "policy"  # a rule decided; ``outcome`` says what it applied


#: The decisions a person can make on an interrupt (``allowed_decisions`` is a subset of these).
PERSON_DECISIONS: tuple[str, ...] = ("approve", "reject", "edit", "respond")

#: Actor sources that only the machine gives (to what a policy or a deadline decided): a person's
#: decision may not claim them, so the audit trail's "who" can't be forged through the API.
MACHINE_SOURCES: frozenset[str] = frozenset({"policy", "timeout"})
#: Actor id prefixes reserved for the machine's own actors (``policy:<rule>``, ``timeout:<plugin>``,
#: ``hitl:timeout``, ``escalation:level-<n>``).
MACHINE_ACTOR_PREFIXES: tuple[str, ...] = ("policy:", "timeout:", "hitl:", "escalation:")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False, defer_build=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (datetimes as ISO strings): the seed's persistence format."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


class Actor(_Model):
    """Who did something. ``source`` says through what: ``api``, ``cli``, ``console``, ``web``, ``demo``,
    ``agent``, ``person`` (a person named on ``resume`` or on a request they made), ``policy``,
    ``timeout``."""

    id: str
    source: str = "api"

    def __str__(self) -> str:
        return self.id


class Action(_Model):
    """The step an agent wants to take: a tool or function name and the arguments it would get."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class InterruptPoint(_Model):
    """Why a task stopped and what a person may decide about it."""

    reason: str
    context: dict[str, Any] = Field(default_factory=dict)
    options: list[str] = Field(default_factory=lambda: ["approve", "reject"])
    severity: Severity = Severity.MEDIUM
    created_at: datetime = Field(default_factory=utcnow)
    interrupt_id: str = ""
    kind: InterruptKind = InterruptKind.APPROVAL
    action: Action | None = None
    #: sha256 of the canonical JSON of ``action.args``: a decision binds to exactly what was shown.
    args_fingerprint: str | None = None
    allowed_decisions: list[str] = Field(default_factory=lambda: list(PERSON_DECISIONS))
    response_schema: dict[str, Any] | None = None
    deadline: datetime | None = None
    default_decision: Literal["approve", "reject"] = "reject"
    assignees: list[str] = Field(default_factory=list)
    required_approvals: int = Field(default=1, ge=1, le=2)
    requested_by: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _lower_severity(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Escalation(_Model):
    """A deadline plugin's answer that hands a waiting request to the next assignees.

    Returned from ``hitl_deadline_expired`` instead of a ``Decision``; the machine applies it
    (``escalate``, recorded by ``escalation:level-N`` where N counts the escalations of this
    request). There is no public ``escalate`` method: re-assigning a request is the policy's,
    so a caller of the API cannot hand a request to itself under the policy's name.
    """

    assignees: list[str]
    deadline: datetime | None = None
    message: str | None = None


class Decision(_Model):
    """What was decided about one interrupt, by whom, and with what."""

    type: DecisionType
    actor: Actor
    option: str | None = None
    message: str | None = None
    edited_args: dict[str, Any] | None = None
    response: Any = None
    decided_at: datetime = Field(default_factory=utcnow)
    interrupt_id: str | None = None
    #: For ``timeout`` and ``policy`` decisions: the decision they applied.
    outcome: Literal["approve", "reject"] | None = None
    #: Set by the machine: the fingerprint of the args this decision approved (for an edit, of the
    #: edited args). Under four eyes only approvals of the same fingerprint count together.
    args_fingerprint: str | None = None

    @property
    def approved(self) -> bool:
        """True when this decision lets the action go ahead."""
        if self.type in (DecisionType.TIMEOUT, DecisionType.POLICY):
            return self.outcome == "approve"
        return self.type != DecisionType.REJECT

    @property
    def effective_type(self) -> DecisionType:
        """approve, reject, edit or respond: what this decision amounts to for the agent.

        A ``timeout`` or ``policy`` decision amounts to its ``outcome`` (reject when it names none:
        fail closed). Adapters map this, never ``type``, so that no decision path is forgotten.
        """
        if self.type in (DecisionType.TIMEOUT, DecisionType.POLICY):
            return DecisionType.APPROVE if self.outcome == "approve" else DecisionType.REJECT
        return self.type

    def rejection_text(self, subject: str = "Tool call") -> str:
        """What a model reads in place of a refused call's result: who said no, and why.

        ``"Tool call rejected by alice: not on a Friday"``; the same words in every adapter, so a
        prompt that reacts to a refusal works whatever framework runs the agent.
        """
        if self.message:
            return f"{subject} rejected by {self.actor.id}: {self.message}"
        return f"{subject} rejected by {self.actor.id}."


class Event(_Model):
    """One committed transition. ``hash`` chains over the whole log (see ``hitl_core.audit``)."""

    seq: int
    task_id: str
    version: int
    action: str
    from_state: TaskState | None
    to_state: TaskState
    actor: Actor | None = None
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


class TaskContext(_Model):
    """A snapshot of one task at one version. Returned by every machine call; never live.

    Read-only: the machine may hand the same snapshot to several callers (a listing of thousands
    of waiting tasks reuses the ones it built before), so assigning a field raises. To change a
    copy, ``model_copy(update=..., deep=True)``.
    """

    model_config = ConfigDict(frozen=True)

    task_id: str
    state: TaskState = TaskState.PENDING
    current_step: str | None = None
    #: One entry per committed transition of this task, oldest first (``hitl_core.records``).
    history: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    interrupt_point: InterruptPoint | None = None
    approval_data: dict[str, Any] | None = None
    error: str | None = None
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    agent: str | None = None
    framework: str | None = None
    run_id: str | None = None
    parent_id: str | None = None
    result: Any = None
    #: The decision on the current (or last) interrupt; under four eyes, the approvals so far.
    decision: Decision | None = None
    approvals: list[Decision] = Field(default_factory=list)

    # The machine returns a snapshot from every call; most callers never read its history, so a
    # snapshot built by the machine holds the task's event records and turns them into
    # ``history`` entries only when something reads, compares, copies or serialises it.
    _pending_history: Any = PrivateAttr(default=None)

    def _materialise(self) -> None:
        private = self.__pydantic_private__
        pending = private.get("_pending_history") if private else None
        if pending is not None:
            self.__dict__["history"] = [event.history_entry() for event in pending]
            private["_pending_history"] = None  # type: ignore[index]

    @model_serializer(mode="wrap")
    def _serialise(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # pydantic's own serialiser reads ``__dict__`` directly when this model sits inside
        # another one or goes through a ``TypeAdapter`` (none of the overrides below run):
        # without this, such a dump raised ``KeyError: 'history'`` or left ``history`` out.
        # No return annotation on purpose: with one, pydantic takes the serialisation JSON
        # schema from it instead of from the fields.
        self._materialise()
        return handler(self)

    def __getattr__(self, item: str) -> Any:
        if item == "history":
            self._materialise()
            return self.__dict__["history"]
        return super().__getattr__(item)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        self._materialise()
        if isinstance(other, TaskContext):
            other._materialise()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._materialise()
        return super().model_dump(*args, **kwargs)

    def model_dump_json(self, *args: Any, **kwargs: Any) -> str:
        self._materialise()
        return super().model_dump_json(*args, **kwargs)

    def __copy__(self) -> Self:
        self._materialise()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        self._materialise()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._materialise()
        return super().__getstate__()

    def __repr_args__(self) -> Any:
        self._materialise()
        return super().__repr_args__()

    def __iter__(self) -> Any:
        self._materialise()
        return super().__iter__()


def escalation_level(task: TaskContext) -> int:
    """How many times the current request has escalated (0: still with its first assignees)."""
    level = 0
    for entry in task.history:
        action = entry.get("action")
        if action in ("request_approval", "pause"):
            level = 0
        elif action == "escalate":
            level += 1
    return level
