"""``HITLStateMachine``: every transition a task can make, each one atomic, audited and observed.

How a transition runs (``_commit``): read the task's snapshot, look the move up in the
transition table, build the event and the new snapshot, ``store.append`` them at the version
that was read (compare-and-set), then run the observers. The store is the only shared state, so
two machines — in two threads, two event loops or two processes on a shared store — never
approve the same interrupt twice: the loser's append fails and it is told who won.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import settings
from .callbacks import Callback, CallbackRegistry
from .canonical import checked_copy, datetime_to_us, fingerprint, now_us
from .errors import (
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
from .glossary import renamed_keywords
from .limits import (
    DEFAULT_LIMITS,
    Limits,
    check_decision,
    check_label,
    check_name,
    check_names,
    check_request_size,
    check_text,
)
from .models import (
    MACHINE_ACTOR_PREFIXES,
    MACHINE_SOURCES,
    PERSON_DECISIONS,
    Action,
    Actor,
    Decision,
    DecisionType,
    Escalation,
    Event,
    InterruptKind,
    InterruptPoint,
    Severity,
    TaskContext,
    TaskState,
    escalation_level,
)
from .plugins import PluginHost
from .records import EventRecord, TaskRecord, approval_data, build_model, compact_fields_set
from .schema import schema_errors
from .stores.base import Store
from .transitions import TRANSITIONS

if TYPE_CHECKING:
    from .policies import Policies, PolicyConfigSource
    from .sync import SyncHITL

log = logging.getLogger("hitl")

S = TaskState
_DECIDED = (S.APPROVED, S.REJECTED)
_STOPPED = (S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED)
#: Snapshots a machine keeps for its next listing (``HITLStateMachine._contexts``), ~1 KB each.
_CONTEXTS_MAX = 16_384


_ACTORS: dict[tuple[str, str], Actor] = {}


def actor_of(actor_id: str, source: str) -> Actor:
    """A shared, immutable ``Actor`` per (id, source): the same few actors decide thousands of tasks."""
    if not isinstance(actor_id, str) or not isinstance(source, str):
        raise PayloadError(
            f"an actor id and source must be strings, got {type(actor_id).__name__} and {type(source).__name__}"
        )
    key = (actor_id, source)
    actor = _ACTORS.get(key)
    if actor is None:
        if len(_ACTORS) > 10_000:
            _ACTORS.clear()
        actor = _ACTORS[key] = Actor(id=actor_id, source=source)
    return actor


def _check_id(task_id: Any) -> str:
    # Only where an id enters (create, start, ask): a task an older version stored under an id
    # that is refused today stays decidable by that exact id.
    if not isinstance(task_id, str) or not task_id.strip():
        raise PayloadError(f"task id must be a non-empty string, got {task_id!r:.200}")
    return check_name("task id", task_id, settings.MAX_TASK_ID_LENGTH)


def _check_person_decision(task_id: str, decision: Decision) -> None:
    """Refuse, before anything is read or written, a decision the public API may not take.

    ``policy`` and ``timeout`` decisions are the machine's own: it makes them from
    ``hitl_auto_decide`` answers (``_ask``) and at a deadline (``expire``), and applies them
    through ``_apply_decision`` directly. Through ``decide`` and its wrappers only a person
    decides, and a person may not borrow the actors those decisions are recorded under.
    """
    actor = decision.actor
    if decision.type.value not in PERSON_DECISIONS:
        raise NotAuthorizedError(
            task_id,
            actor.id,
            f"a {decision.type.value} decision is made only by the machine (its policies and deadlines); "
            f"a caller may decide {', '.join(PERSON_DECISIONS)}",
        )
    if actor.source in MACHINE_SOURCES or actor.id.startswith(MACHINE_ACTOR_PREFIXES):
        raise NotAuthorizedError(
            task_id,
            actor.id,
            f"actor {actor.id!r} (source {actor.source!r}) is reserved for the machine's policy and timeout decisions",
        )
    if decision.outcome is not None:
        raise PayloadError(
            f"task {task_id!r}: outcome goes only with a policy or timeout decision, not with {decision.type.value}"
        )


def _check_not_reserved(field: str, name: str, task_id: str) -> None:
    """Refuse a caller-named person under an id the machine's own records use.

    ``policy:``, ``timeout:``, ``hitl:`` and ``escalation:`` ids mark what the machine did by
    itself; a pause, resume or request recorded under one would read in the audit trail as the
    machine's act.
    """
    if name.startswith(MACHINE_ACTOR_PREFIXES):
        raise NotAuthorizedError(task_id, name, f"{field} {name!r} is reserved for the machine's own records")


def open_store(url: str, host: PluginHost) -> Store:
    """An unopened store for ``url``, from the backends registered through the hooks."""
    scheme, sep, _ = url.partition("://")
    factories = host.store_factories()
    factory = factories.get(scheme.lower()) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(factories))
        raise StoreError(f"no store for {url!r}: known schemes are {known}")
    return factory(url)


class HITLStateMachine:
    """The approval state machine. Async-first; ``machine.sync`` is the thread-safe sync facade.

    ``store`` is a ``Store``, a URL (``memory://``, ``sqlite:///path.db``, …) or None: then
    ``HITL_STORE`` if set, else a fresh in-memory store. ``plugins`` are registered on top of
    the entry-point plugins (``load_entrypoints=False`` skips those, e.g. in tests).
    """

    def __new__(cls, store: Store | str | None = None, *args: Any, **kwargs: Any) -> Any:
        # Server mode: a ``hitl serve`` URL (here or in HITL_STORE) gives a client with this same
        # API (hitl_core.client.RemoteMachine), so callers never know which mode they run in.
        if cls is HITLStateMachine:
            url = store if store is not None else settings.store_url_from_env()
            if isinstance(url, str) and url.partition("://")[0].lower() in ("hitl+unix", "https", "hitl+https"):
                from .client import RemoteMachine

                return RemoteMachine(url, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        store: Store | str | None = None,
        plugins: Iterable[object] = (),
        *,
        load_entrypoints: bool = True,
        max_payload_bytes: int | None = None,
        agent: str | None = None,
        framework: str | None = None,
        config: PolicyConfigSource | None = None,
    ) -> None:
        self.plugins = PluginHost(plugins, load_entrypoints=load_entrypoints)
        if store is None:
            store = settings.store_url_from_env() or "memory://"
        self.store: Store = open_store(store, self.plugins) if isinstance(store, str) else store
        self._opened = False
        self._open_lock: asyncio.Lock | None = None
        self.max_payload_bytes = max_payload_bytes or settings.max_payload_bytes()
        self.default_agent = agent
        self.default_framework = framework
        self._callbacks: CallbackRegistry | None = None
        # task id -> futures of callers waiting for a decision (or a pause, for checkpoints)
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[TaskRecord]]]] = {}
        # event loop -> (its follower task, set once the follower has its starting point)
        self._followers: dict[asyncio.AbstractEventLoop, tuple[asyncio.Task[None], asyncio.Event]] = {}
        #: Seconds a follower outlives the last waiter before it stops polling the store.
        self.follower_linger = 5.0
        # task id -> flag set while the task waits on a person (for @interruptible checkpoints)
        self._pause_flags: dict[str, threading.Event] = {}
        self._sync: SyncHITL | None = None
        # task id -> (the record a listing or get_task last turned into a snapshot, that snapshot).
        # Snapshots are read-only and a record never changes, so the next listing hands out the
        # same object while the task has not moved: 10,000 waiting tasks are listed in a few ms
        # instead of building 10,000 models. Bounded: cleared when it outgrows _CONTEXTS_MAX.
        self._contexts: dict[str, tuple[TaskRecord, TaskContext]] = {}
        # The snapshot the last commit built for its observers: the caller gets the same one.
        self._last_context: tuple[TaskRecord, TaskContext] | None = None
        # Deadlines, escalation, authorization, rules and notifiers from a hitl.toml: only when the
        # caller opts in (``config=`` a path, a loaded config, or True to look for hitl.toml).
        self.policies: Policies | None = None
        if config is not None and config is not False:
            from .policies import install_policies

            self.policies = install_policies(self, config)
        #: The bounds on names and text in requests and decisions (``[limits]`` in hitl.toml).
        self.limits: Limits = DEFAULT_LIMITS
        if self.policies is not None:
            self.limits = DEFAULT_LIMITS.updated(self.policies.config.limits.model_dump())

    # -- lifecycle ------------------------------------------------------------------------

    async def _ready(self) -> Store:
        if not self._opened:
            if self._open_lock is None:
                self._open_lock = asyncio.Lock()
            async with self._open_lock:
                if not self._opened:
                    await self.store.open()
                    self._opened = True
                    if self.policies is not None:
                        self.policies.start()
        return self.store

    async def close(self) -> None:
        """Stop following the store and close it. The machine can't be used afterwards."""
        if self.policies is not None:
            await self.policies.stop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, (task, _) in list(self._followers.items()):
            if loop is running:
                task.cancel()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)  # tasks belong to their own loop
        self._followers.clear()
        if self._sync is not None and not self._sync.is_own_thread():
            # From the facade's own loop (``machine.sync.close_machine()``) the facade stops
            # itself once this coroutine has returned; stopping it here would strand the caller.
            self._sync.close()
            self._sync = None
        if self._opened:
            await self.store.close()
            self._opened = False

    async def open(self) -> HITLStateMachine:
        """Open the store now (idempotent); every method opens it on first use anyway."""
        await self._ready()
        return self

    async def __aenter__(self) -> HITLStateMachine:
        await self._ready()
        return self

    @property
    def url(self) -> str:
        """The store's URL as it may be shown (no password)."""
        return self.store.url

    @property
    def problem(self) -> str | None:
        """Why the store can't be reached right now (a console's banner), or None.

        A store that retries on its own (PostgreSQL) says so here at once, while its calls and
        followers keep retrying; a store without such a notion always answers None.
        """
        problem = getattr(self.store, "problem", None)
        return problem if isinstance(problem, str) else None

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def sync(self) -> SyncHITL:
        """The synchronous facade (created on first use; runs its own event-loop thread)."""
        sync = self._sync
        if sync is None:
            from .sync import facade_of

            sync = facade_of(self)
        return sync

    # -- callbacks ------------------------------------------------------------------------

    def add_callback(self, callback: Callback, task_id: str = "*", *, state: TaskState | str | None = None) -> Callback:
        """Call ``callback(task, old_state, new_state)`` after each matching committed transition.

        ``task_id`` is one task's id or ``"*"``; ``state`` optionally limits it to transitions
        into that state. Sync or async; it runs before the machine's call returns. A callback
        that raises is logged and counted; the transition stands. Returns the callback, for
        ``remove_callback``.
        """
        if self._callbacks is None:
            self._callbacks = CallbackRegistry()
            self.plugins.register(self._callbacks, name="hitl.callbacks")
        self._callbacks.add(callback, task_id, TaskState(state) if state is not None else None)
        return callback

    def remove_callback(self, callback: Callback) -> None:
        if self._callbacks is not None:
            self._callbacks.remove(callback)

    @property
    def observer_errors(self) -> int:
        """How many observer hooks or callbacks have raised so far (each was logged)."""
        return self.plugins.observer_errors

    # -- the transition primitive -----------------------------------------------------------

    async def _get_record(self, task_id: str) -> TaskRecord:
        store = self.store if self._opened else await self._ready()
        record = await store.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record

    def _illegal(self, action: str, record: TaskRecord) -> HITLError:
        if action in ("approve", "reject") and record.decision is not None and record.state is not S.AWAITING_APPROVAL:
            d = record.decision
            return AlreadyDecidedError(
                record.task_id, record.state.value, action, d.actor.id, d.type.value, record.version
            )
        allowed = [
            a for a, moves in TRANSITIONS.items() if record.state in moves and a not in ("approve_partial", "escalate")
        ]
        return InvalidTransitionError(
            record.task_id,
            record.state.value,
            action,
            f"allowed from {record.state.value}: {', '.join(allowed) or 'nothing'}",
        )

    async def _commit(
        self,
        action: str,
        record: TaskRecord | None,
        task_id: str,
        actor: Actor | None,
        data: dict[str, Any],
        **changes: Any,
    ) -> TaskRecord:
        """Append one transition at ``record``'s version and run the observers."""
        event, new = self._stage(action, record, task_id, actor, data, changes)
        store = self.store if self._opened else await self._ready()
        await store.append(event, new, record.version if record is not None else None)
        self._log_commit(event, new)
        await self._after_commit(event, new)
        return new

    def _stage(
        self,
        action: str,
        record: TaskRecord | None,
        task_id: str,
        actor: Actor | None,
        data: dict[str, Any],
        changes: dict[str, Any],
    ) -> tuple[EventRecord, TaskRecord]:
        """The event and the new snapshot of one transition from ``record`` (nothing written yet)."""
        from_state = record.state if record is not None else None
        to_state = TRANSITIONS[action].get(from_state)
        if to_state is None:
            if record is None:
                raise TaskNotFoundError(task_id)
            raise self._illegal(action, record)
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
        return event, new

    async def _commit_together(self, steps: list[tuple[EventRecord, TaskRecord, int | None]]) -> None:
        """Commit staged transitions in one transaction (all or none), then observe each in order.

        Every event is its own entry in the log — its own sequence number, chain hash, hook call
        and follower wake-up; only the transaction is shared. On a store that cannot commit
        several at once (``atomic_batches`` off) they are appended one by one, as before.
        """
        store = self.store if self._opened else await self._ready()
        if store.atomic_batches and len(steps) > 1:
            await store.append_many(steps)
            for event, new, _ in steps:
                self._log_commit(event, new)
            for event, new, _ in steps:
                await self._after_commit(event, new)
            return
        for event, new, expected in steps:
            await store.append(event, new, expected)
            self._log_commit(event, new)
            await self._after_commit(event, new)

    def _log_commit(self, event: EventRecord, new: TaskRecord) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s: %s -> %s (v%d, seq %d, by %s)",
                event.task_id,
                event.action,
                event.from_state.value if event.from_state else "new",
                event.to_state.value,
                new.version,
                event.seq,
                event.actor_id or "-",
                extra={"task_id": event.task_id, "action": event.action},
            )

    async def _after_commit(
        self, event: EventRecord, record: TaskRecord, *, context: TaskContext | None = None
    ) -> TaskContext | None:
        task_id = record.task_id
        if task_id in self._waiters or task_id in self._pause_flags:
            self._wake(record)
        if self.plugins.has_transition_observers:
            if event.hash is None:
                await self.store.events(after_seq=event.seq - 1, limit=1)  # fills a lazy hash
            if context is None:
                # Kept for the caller's return value (``_context_of``): one snapshot, not two. One
                # slot, not the listing cache: a waiting task should not hold a snapshot for it.
                context = record.to_context()
                self._last_context = (record, context)
            await self.plugins.transition(event.to_event(), context)
        return context

    # -- creating and starting ------------------------------------------------------------

    def _task_fields(
        self,
        metadata: dict[str, Any] | None,
        step: str | None,
        agent: str | None,
        framework: str | None,
        run_id: str | None,
        parent_id: str | None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if metadata:
            fields["metadata"] = checked_copy(metadata, "metadata", self.max_payload_bytes)
        agent = agent or self.default_agent
        framework = framework or self.default_framework
        for key, value in (
            ("current_step", step),
            ("agent", agent),
            ("framework", framework),
            ("run_id", run_id),
            ("parent_id", parent_id),
        ):
            if value is not None:
                if key in ("run_id", "parent_id"):  # ids: exact, so refused rather than tidied
                    fields[key] = check_name(key, str(value), self.limits.name_chars, key="name_chars")
                else:
                    name = "step" if key == "current_step" else key
                    fields[key] = check_label(name, str(value), self.limits.name_chars, key="name_chars")
        return fields

    async def create_task(
        self,
        task_id: str,
        metadata: dict[str, Any] | None = None,
        *,
        step: str | None = None,
        agent: str | None = None,
        framework: str | None = None,
        run_id: str | None = None,
        parent_id: str | None = None,
    ) -> TaskContext:
        """Make a PENDING task. ``DuplicateTaskError`` if the id exists."""
        _check_id(task_id)
        fields = self._task_fields(metadata, step, agent, framework, run_id, parent_id)
        existing = await (self.store if self._opened else await self._ready()).get(task_id)
        if existing is not None:
            raise DuplicateTaskError(task_id, existing.state.value)
        data = {k: v for k, v in fields.items() if k != "current_step"}
        if step is not None:
            data["step"] = fields["current_step"]
        return self._context_of(await self._commit("create", None, task_id, self._agent_actor(fields), data, **fields))

    async def start_task(
        self,
        task_id: str,
        metadata: dict[str, Any] | None = None,
        step: str | None = None,
        *,
        agent: str | None = None,
        framework: str | None = None,
        run_id: str | None = None,
        parent_id: str | None = None,
    ) -> TaskContext:
        """PENDING → RUNNING, or create-and-start an unknown id in one event (the seed's usage).

        ``DuplicateTaskError`` if the id exists and is not PENDING.
        """
        record, actor, data, fields = await self._prepare_start(
            task_id, metadata, step, agent, framework, run_id, parent_id
        )
        return self._context_of(await self._commit("start", record, task_id, actor, data, **fields))

    async def _prepare_start(
        self,
        task_id: str,
        metadata: dict[str, Any] | None,
        step: str | None,
        agent: str | None,
        framework: str | None,
        run_id: str | None,
        parent_id: str | None,
    ) -> tuple[TaskRecord | None, Actor, dict[str, Any], dict[str, Any]]:
        """``start_task``'s checks and reads: (the PENDING task or None, actor, event data, changes)."""
        _check_id(task_id)
        fields = self._task_fields(metadata, step, agent, framework, run_id, parent_id)
        store = self.store if self._opened else await self._ready()
        record = await store.get(task_id)
        if record is not None and record.state is not S.PENDING:
            raise DuplicateTaskError(task_id, record.state.value)
        data: dict[str, Any] = {}
        if fields:
            data = {k: v for k, v in fields.items() if k != "current_step"}
            if step is not None:
                data["step"] = fields["current_step"]
        if record is not None and "metadata" in fields:
            fields["metadata"] = {**(record.metadata or {}), **fields["metadata"]}
        return record, self._agent_actor(fields, record), data, fields

    async def _start_and_request(
        self,
        task_id: str,
        start: dict[str, Any],
        reason: str,
        context: dict[str, Any] | None = None,
        options: list[str] | None = None,
        severity: Severity | str = Severity.MEDIUM,
        **request: Any,
    ) -> TaskContext:
        """``start_task(task_id, **start)`` then ``request_approval(task_id, reason, …, **request)``
        in one transaction: the task is never seen (nor left, if the process dies) running without
        its question.

        Internal (the adapters' ``ask``): every check of both calls runs before anything is
        written, both events are in the log as the two calls would have made them, and observers
        see each. ``DuplicateTaskError`` if the id exists and is not PENDING.
        """
        request.setdefault("kind", InterruptKind.APPROVAL)
        default_decision = request.get("default_decision", "reject")
        if not isinstance(reason, str) or not reason.strip():
            raise PayloadError(f"task {task_id!r}: the reason must be a non-empty string")
        self._check_default_decision(default_decision, task_id)
        step = request.pop("step", None)
        requested_by = request.get("requested_by")
        interrupt = self._build_interrupt(
            reason,
            context,
            options,
            severity,
            request.get("kind", InterruptKind.APPROVAL),
            request.get("action"),
            request.get("args"),
            request.get("allowed_decisions"),
            request.get("response_schema"),
            request.get("deadline"),
            request.get("timeout"),
            default_decision,
            request.get("assignees"),
            request.get("required_approvals", 1),
            requested_by,
        )
        record, actor, data, fields = await self._prepare_start(
            task_id,
            start.get("metadata"),
            start.get("step"),
            start.get("agent"),
            start.get("framework"),
            start.get("run_id"),
            start.get("parent_id"),
        )
        started_event, started = self._stage("start", record, task_id, actor, data, fields)
        interrupt, ask_actor, ask_data, changes = await self._prepare_ask(
            "request_approval", started, interrupt, step, requested_by
        )
        asked_event, asked = self._stage("request_approval", started, task_id, ask_actor, ask_data, changes)
        await self._commit_together(
            [
                (started_event, started, record.version if record is not None else None),
                (asked_event, asked, started.version),
            ]
        )
        return await self._after_ask(asked, interrupt)

    def _agent_actor(self, fields: dict[str, Any], record: TaskRecord | None = None) -> Actor:
        agent = fields.get("agent") or (record.agent if record else None) or "agent"
        return actor_of(agent, "agent")

    # -- asking for a decision ---------------------------------------------------------------

    async def request_approval(
        self,
        task_id: str,
        reason: str,
        context: dict[str, Any] | None = None,
        options: list[str] | None = None,
        severity: Severity | str = Severity.MEDIUM,
        *,
        kind: InterruptKind | str = InterruptKind.APPROVAL,
        action: Action | str | None = None,
        args: dict[str, Any] | None = None,
        allowed_decisions: Iterable[str] | None = None,
        response_schema: dict[str, Any] | None = None,
        deadline: datetime | None = None,
        timeout: float | None = None,
        default_decision: str = "reject",
        assignees: Iterable[str] | None = None,
        required_approvals: int = 1,
        step: str | None = None,
        requested_by: str | None = None,
    ) -> TaskContext:
        """RUNNING → AWAITING_APPROVAL: stop and ask a person.

        Everything agent-supplied is checked here, before anything is written: ``context``,
        ``args`` and the schema must be JSON-serialisable and within ``max_payload_bytes``
        (``PayloadError`` otherwise); the reason must be non-empty. ``action``/``args`` name the
        step the decision is about; a decision binds to their fingerprint. ``timeout`` (seconds)
        or ``deadline`` set when ``default_decision`` (reject unless set) applies — as a timeout,
        never as a person's decision. ``default_decision="approve"`` is refused (``PayloadError``)
        unless the machine's ``hitl.toml`` says ``[deadlines] allow_default_approve = true``: the
        agent must not choose that its own request is approved when nobody looks. A policy
        (``hitl_auto_decide``) may decide at once.
        """
        _check_id(task_id)
        if not isinstance(reason, str) or not reason.strip():
            raise PayloadError(f"task {task_id!r}: the reason must be a non-empty string")
        self._check_default_decision(default_decision, task_id)
        interrupt = self._build_interrupt(
            reason,
            context,
            options,
            severity,
            kind,
            action,
            args,
            allowed_decisions,
            response_schema,
            deadline,
            timeout,
            default_decision,
            assignees,
            required_approvals,
            requested_by,
        )
        record = await self._get_record(task_id)
        if record.state is not S.RUNNING:
            raise self._illegal("request_approval", record)
        return await self._ask("request_approval", record, interrupt, step, requested_by)

    def _default_approve_allowed(self) -> bool:
        return self.policies is not None and self.policies.config.deadlines.allow_default_approve

    def _check_default_decision(self, default_decision: Any, task_id: str | None = None) -> None:
        """``PayloadError`` for an approving default this machine's config does not allow."""
        if default_decision == "approve" and not self._default_approve_allowed():
            where = f"task {task_id!r}: " if task_id is not None else ""
            raise PayloadError(
                f"{where}default_decision='approve' is refused: a request may be approved when nobody "
                "decides only if hitl.toml sets [deadlines] allow_default_approve = true"
            )

    def _build_interrupt(
        self,
        reason: str,
        context: dict[str, Any] | None,
        options: list[str] | None,
        severity: Severity | str,
        kind: InterruptKind | str,
        action: Action | str | None,
        args: dict[str, Any] | None,
        allowed_decisions: Iterable[str] | None,
        response_schema: dict[str, Any] | None,
        deadline: datetime | None,
        timeout: float | None,
        default_decision: str,
        assignees: Iterable[str] | None,
        required_approvals: int,
        requested_by: str | None,
    ) -> InterruptPoint:
        limit = self.max_payload_bytes
        limits = self.limits
        check_text("reason", reason, limits.reason_chars, key="reason_chars")
        if context is not None and not isinstance(context, dict):
            raise PayloadError(f"context must be a dict, got {type(context).__name__}")
        values: dict[str, Any] = {
            "reason": reason,
            "severity": severity,
            "kind": kind,
            "interrupt_id": os.urandom(16).hex(),
            "default_decision": default_decision,
            "required_approvals": required_approvals,
        }
        if context:
            values["context"] = checked_copy(context, "context", limit)
        if options is not None:
            values["options"] = check_names(
                "options", options, limits.options, limits.option_chars, keys=("options", "option_chars")
            )
        if isinstance(action, str):
            action = Action(name=action, args=args or {})
        elif action is None and args is not None:
            action = Action(name="action", args=args)
        if action is not None:
            check_name("action name", action.name, limits.name_chars, key="name_chars")
            action_args = checked_copy(action.args, "action args", limit)
            values["action"] = Action(name=action.name, args=action_args)
            values["args_fingerprint"] = fingerprint(action_args)
        if allowed_decisions is not None:
            allowed = [str(d) for d in allowed_decisions]
            unknown = [d for d in allowed if d not in PERSON_DECISIONS]
            if unknown or not allowed:
                raise PayloadError(f"allowed_decisions must be a non-empty subset of {PERSON_DECISIONS}, got {allowed}")
            values["allowed_decisions"] = allowed
        if response_schema is not None:
            values["response_schema"] = checked_copy(response_schema, "response_schema", limit)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
                raise PayloadError(f"timeout must be a positive number of seconds, got {timeout!r:.100}")
            try:
                deadline = datetime.now(UTC) + timedelta(seconds=timeout)
            except OverflowError:
                raise PayloadError(f"timeout {timeout!r:.100} seconds is past any date") from None
        if deadline is not None:
            if not isinstance(deadline, datetime):
                raise PayloadError(f"deadline must be a datetime, got {type(deadline).__name__}")
            values["deadline"] = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        if assignees is not None:
            values["assignees"] = check_names(
                "assignees", assignees, limits.assignees, limits.assignee_chars, keys=("assignees", "assignee_chars")
            )
        if requested_by is not None:
            values["requested_by"] = check_name("requested_by", requested_by, limits.name_chars, key="name_chars")
        check_request_size(values, limit)
        try:
            return compact_fields_set(InterruptPoint.model_validate(values))
        except ValueError as exc:
            raise PayloadError(f"invalid approval request: {exc}") from None

    async def _ask(
        self, action: str, record: TaskRecord, interrupt: InterruptPoint, step: str | None, requested_by: str | None
    ) -> TaskContext:
        interrupt, actor, data, changes = await self._prepare_ask(action, record, interrupt, step, requested_by)
        new = await self._commit(action, record, record.task_id, actor, data, **changes)
        return await self._after_ask(new, interrupt)

    async def _prepare_ask(
        self, action: str, record: TaskRecord, interrupt: InterruptPoint, step: str | None, requested_by: str | None
    ) -> tuple[InterruptPoint, Actor, dict[str, Any], dict[str, Any]]:
        """What asking ``interrupt`` on ``record`` commits: (assessed interrupt, actor, event data, changes)."""
        if requested_by is not None:
            _check_not_reserved("requested_by", requested_by, record.task_id)
        if step is not None:
            step = check_label("step", step, self.limits.name_chars, task_id=record.task_id, key="name_chars")
        if self.plugins.has_policies:
            interrupt = await self.plugins.assess(record.to_context(), interrupt)
        changes: dict[str, Any] = {"interrupt": interrupt, "decision": None, "approval": None, "approvals": ()}
        data: dict[str, Any] = {"interrupt": interrupt}
        if step is not None:
            changes["current_step"] = data["step"] = step
        actor = (
            actor_of(requested_by, "person")
            if action == "pause" and requested_by
            else actor_of(requested_by or record.agent or "agent", "agent")
        )
        return interrupt, actor, data, changes

    async def _after_ask(self, new: TaskRecord, interrupt: InterruptPoint) -> TaskContext:
        """After the ask committed: a policy may decide at once; else tell who wants to know."""
        context = self._context_of(new)
        if self.plugins.has_policies:
            decision = await self.plugins.auto_decide(context, interrupt)
            if decision is not None:
                decision = decision.model_copy(update={"interrupt_id": interrupt.interrupt_id})
                try:
                    return await self._apply_decision(new, decision, authorize=False)
                except ConflictError:
                    return (await self._get_record(new.task_id)).to_context()
        if self.plugins.has_request_observers:
            await self.plugins.approval_requested(context, interrupt)
        return context

    async def pause(
        self,
        task_id: str,
        actor: str,
        reason: str,
        *,
        severity: Severity | str = Severity.MEDIUM,
        context: dict[str, Any] | None = None,
    ) -> TaskContext:
        """A person interrupts a RUNNING task: RUNNING → AWAITING_APPROVAL with kind=review.

        The agent notices at its next checkpoint (``@interruptible``) and waits for the decision.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise PayloadError(f"task {task_id!r}: the reason for a pause must be a non-empty string")
        record = await self._get_record(task_id)
        if record.state is not S.RUNNING:
            raise self._illegal("pause", record)
        interrupt = self._build_interrupt(
            reason,
            context,
            ["resume", "stop"],
            severity,
            InterruptKind.REVIEW,
            None,
            None,
            ["approve", "reject"],
            None,
            None,
            None,
            "reject",
            None,
            1,
            actor,
        )
        return await self._ask("pause", record, interrupt, None, actor)

    # -- deciding --------------------------------------------------------------------------

    async def approve(
        self,
        task_id: str,
        actor: str | None = None,
        *,
        option: str | None = None,
        message: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        args_fingerprint: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        """AWAITING_APPROVAL → APPROVED (or, under four eyes, the first of two approvals).

        ``actor``: who decides (default: the OS user); ``message``: a note the agent reads.
        ``interrupt_id``/``args_fingerprint``: pass what the person saw; if the task has since
        asked something else, ``ConflictError`` instead of approving what nobody looked at.
        ``approver=``, ``comment=`` and ``notes=`` still work, with a ``DeprecationWarning``.
        """
        if retired:
            words = renamed_keywords("approve", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        decision = _person_decision(
            type=DecisionType.APPROVE,
            actor=actor_of(actor or settings.os_user(), source),
            option=option,
            message=message,
        )
        return await self.decide(task_id, decision, interrupt_id=interrupt_id, args_fingerprint=args_fingerprint)

    async def reject(
        self,
        task_id: str,
        actor: str | None = None,
        message: str | None = None,
        *,
        option: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        """AWAITING_APPROVAL → REJECTED. ``message`` (why) reaches the agent (and, via adapters, the
        model). ``rejector=``, ``approver=`` and ``reason=`` still work, with a ``DeprecationWarning``."""
        if retired:
            words = renamed_keywords("reject", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        decision = _person_decision(
            type=DecisionType.REJECT,
            actor=actor_of(actor or settings.os_user(), source),
            option=option,
            message=message,
        )
        return await self.decide(task_id, decision, interrupt_id=interrupt_id)

    async def edit(
        self,
        task_id: str,
        edited_args: dict[str, Any],
        actor: str | None = None,
        *,
        message: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        args_fingerprint: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        """Approve with edited args: the action runs with ``edited_args`` instead of its own.
        ``approver=`` and ``comment=`` still work, with a ``DeprecationWarning``."""
        if retired:
            words = renamed_keywords("edit", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        decision = _person_decision(
            type=DecisionType.EDIT,
            actor=actor_of(actor or settings.os_user(), source),
            edited_args=edited_args,
            message=message,
        )
        return await self.decide(task_id, decision, interrupt_id=interrupt_id, args_fingerprint=args_fingerprint)

    async def respond(
        self,
        task_id: str,
        response: Any,
        actor: str | None = None,
        *,
        source: str = "api",
        interrupt_id: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        """Approve with an answer (questions): checked against the interrupt's ``response_schema``.
        ``responder=`` still works, with a ``DeprecationWarning``."""
        if retired:
            actor = renamed_keywords("respond", retired, actor=actor)["actor"]
        decision = _person_decision(
            type=DecisionType.RESPOND, actor=actor_of(actor or settings.os_user(), source), response=response
        )
        return await self.decide(task_id, decision, interrupt_id=interrupt_id)

    async def decide(
        self, task_id: str, decision: Decision, *, interrupt_id: str | None = None, args_fingerprint: str | None = None
    ) -> TaskContext:
        """Apply a person's ``Decision`` to a waiting task (the primitive behind approve/reject/edit/respond).

        Only a person's decision types (approve, reject, edit, respond) and actors: a ``policy``
        or ``timeout`` decision, an actor with source ``policy``/``timeout`` or an id reserved for
        the machine (``policy:…``, ``timeout:…``, ``hitl:…``, ``escalation:…``) raises
        ``NotAuthorizedError`` and changes nothing — those decisions come only from the machine's
        policies and deadlines. Raises ``AlreadyDecidedError`` (naming who) when somebody decided
        first — also when two callers race: exactly one append wins.
        """
        _check_person_decision(task_id, decision)
        record = await self._get_record(task_id)
        if interrupt_id is None:
            interrupt_id = decision.interrupt_id
        if args_fingerprint is None:
            args_fingerprint = decision.args_fingerprint
        current = record.interrupt
        if interrupt_id is not None and (current is None or current.interrupt_id != interrupt_id):
            if record.decision is not None and record.decision.interrupt_id == interrupt_id:
                d = record.decision
                raise AlreadyDecidedError(
                    task_id, record.state.value, decision.type.value, d.actor.id, d.type.value, record.version
                )
            raise ConflictError(
                task_id,
                record.version,
                record.version,
                f"task {task_id!r} is no longer waiting on interrupt {interrupt_id}",
            )
        if (
            args_fingerprint is not None
            and current is not None
            and current.args_fingerprint not in (None, args_fingerprint)
        ):
            raise ConflictError(
                task_id,
                record.version,
                record.version,
                f"task {task_id!r}: the action's args changed since they were shown",
            )
        return await self._apply_decision(record, decision, authorize=True)

    def _validate_decision(self, record: TaskRecord, decision: Decision) -> Decision:
        interrupt = record.interrupt
        assert interrupt is not None
        kind = decision.type.value
        task_id = record.task_id
        check_decision(decision, self.limits, task_id)
        if kind in PERSON_DECISIONS and kind not in interrupt.allowed_decisions:
            raise InvalidTransitionError(
                task_id,
                record.state.value,
                kind,
                f"this interrupt allows only {', '.join(interrupt.allowed_decisions)}",
            )
        if decision.option is not None and decision.option not in interrupt.options:
            raise PayloadError(f"task {task_id!r}: option {decision.option!r} is not one of {interrupt.options}")
        updates: dict[str, Any] = {
            "interrupt_id": interrupt.interrupt_id,
            "args_fingerprint": interrupt.args_fingerprint,
        }
        limit = self.max_payload_bytes
        if decision.type is DecisionType.EDIT:
            if not isinstance(decision.edited_args, dict):
                raise PayloadError(f"task {task_id!r}: an edit needs edited_args as a JSON object")
            updates["edited_args"] = edited = checked_copy(decision.edited_args, "edited args", limit)
            updates["args_fingerprint"] = fingerprint(edited)  # an edit approves the args it made
        elif decision.edited_args is not None:
            raise PayloadError(f"task {task_id!r}: edited_args only go with an edit decision")
        if decision.type is DecisionType.RESPOND:
            response = checked_copy(decision.response, "response", limit)
            if interrupt.response_schema is not None:
                problems = schema_errors(response, interrupt.response_schema)
                if problems:
                    raise PayloadError(
                        f"task {task_id!r}: the response does not fit the schema: " + "; ".join(problems)
                    )
            updates["response"] = response
        if decision.message is not None:
            updates["message"] = checked_copy(str(decision.message), "message", limit)
        return build_model(Decision, {**decision.__dict__, **updates})

    async def _apply_decision(self, record: TaskRecord, decision: Decision, *, authorize: bool) -> TaskContext:
        """Commit ``decision`` on ``record``'s interrupt. Private on purpose: this is the only way
        a ``policy`` or ``timeout`` decision is applied, and only ``_ask`` (a policy's answer) and
        ``expire`` (a deadline) call it with one; ``decide`` admits a person's decisions only."""
        task_id = record.task_id
        if record.state is not S.AWAITING_APPROVAL or record.interrupt is None:
            raise self._illegal("approve" if decision.approved else "reject", record)
        decision = self._validate_decision(record, decision)
        interrupt = record.interrupt
        person = decision.type.value in PERSON_DECISIONS
        # Under four eyes every approval counts for the args it approved: only approvals of the
        # args now on the table count, and an edit that changes them starts the count again
        # (the edit is the first approval of the new args; a second person must approve them).
        approvals = tuple(a for a in record.approvals if a.args_fingerprint == interrupt.args_fingerprint)
        edited_interrupt: InterruptPoint | None = None
        if decision.approved and interrupt.required_approvals > 1 and person:
            if decision.type is DecisionType.EDIT and decision.args_fingerprint != interrupt.args_fingerprint:
                approvals = ()
                action = interrupt.action or Action(name="action")
                edited_interrupt = interrupt.model_copy(
                    update={
                        "action": Action(name=action.name, args=decision.edited_args or {}),
                        "args_fingerprint": decision.args_fingerprint,
                    }
                )
            elif any(a.actor.id == decision.actor.id for a in approvals):
                raise NotAuthorizedError(
                    task_id, decision.actor.id, "four eyes: the second approval must come from a different person"
                )
        if authorize and self.plugins.has_authorizers:
            await self.plugins.authorize(decision.actor, record.to_context(), decision)
        data: dict[str, Any] = {"decision": decision}
        changes: dict[str, Any] = {}
        if decision.approved:
            approvals = (*approvals, decision)
            final = not person or len(approvals) >= interrupt.required_approvals
            if final and person:
                # Under four eyes the last approval closes what the earlier ones gave: edited
                # args (this person approved them) and an answer reach the agent with it,
                # instead of a bare approve that would drop them.
                carried: dict[str, Any] = {}
                edit = next((a for a in approvals if a.type is DecisionType.EDIT), None)
                if edit is not None and decision.type is not DecisionType.EDIT:
                    carried = {"type": DecisionType.EDIT, "edited_args": edit.edited_args}
                answer = next((a for a in reversed(approvals) if a.type is DecisionType.RESPOND), None)
                if answer is not None and decision.response is None:
                    carried["response"] = answer.response
                    if decision.type is DecisionType.APPROVE and "type" not in carried:
                        carried["type"] = DecisionType.RESPOND
                if carried:
                    decision = build_model(Decision, {**decision.__dict__, **carried})
                    approvals = (*approvals[:-1], decision)
                    data["decision"] = decision
            action = "approve" if final else "approve_partial"
            changes["approvals"] = approvals
            if final:
                changes["decision"] = decision
                changes["approval"] = approval_data(decision)
            else:
                changes["decision"] = changes["approval"] = None
        else:
            action = "reject"
            changes["decision"] = decision
            changes["approval"] = approval_data(decision)
        if edited_interrupt is not None:
            changes["interrupt"] = data["interrupt"] = edited_interrupt
        try:
            new = await self._commit(action, record, task_id, decision.actor, data, **changes)
        except ConflictError as exc:
            latest = await self._get_record(task_id)
            if latest.decision is not None and latest.state is not S.AWAITING_APPROVAL:
                d = latest.decision
                raise AlreadyDecidedError(
                    task_id, latest.state.value, action, d.actor.id, d.type.value, latest.version
                ) from exc
            raise
        return self._context_of(new)

    async def expire(self, task_id: str, *, force: bool = False) -> TaskContext:
        """Apply the deadline's outcome to a waiting task whose deadline has passed.

        Asks ``hitl_deadline_expired`` first (an escalation plugin may answer); otherwise applies
        the interrupt's ``default_decision`` as ``Decision(type="timeout")`` by ``hitl:timeout``
        — an approving default only if this machine's config allows it (``[deadlines]
        allow_default_approve``), else a rejection. ``force`` expires before the deadline (the
        decorator's own ``timeout``), but only ever with a rejection: an early "yes" would be an
        approval nobody gave, so it raises ``InvalidTransitionError`` instead. If a person
        decided first, their decision stands and is returned.
        """
        record = await self._get_record(task_id)
        interrupt = record.interrupt
        if record.state is not S.AWAITING_APPROVAL or interrupt is None:
            if record.decision is not None:
                return record.to_context()
            raise InvalidTransitionError(task_id, record.state.value, "expire", "it is not waiting")
        passed = interrupt.deadline is not None and datetime_to_us(interrupt.deadline) <= now_us()
        if not force and not passed:
            raise InvalidTransitionError(task_id, record.state.value, "expire", "its deadline has not passed")
        context = record.to_context()
        decision = await self.plugins.deadline_expired(context, interrupt)
        if isinstance(decision, Escalation):
            try:
                return await self._escalate(record, context, decision)
            except ConflictError:
                # Another sweeper escalated (or a person decided) first: theirs stands.
                return (await self._get_record(task_id)).to_context()
        if decision is None:
            outcome = interrupt.default_decision
            message = "no decision before the deadline"
            if outcome == "approve" and not self._default_approve_allowed():
                outcome = "reject"
                message += "; its default approve is not allowed here (hitl.toml: [deadlines] allow_default_approve)"
            decision = Decision(
                type=DecisionType.TIMEOUT,
                outcome=outcome,
                actor=actor_of("hitl:timeout", "timeout"),
                message=message,
            )
        if decision.approved and not passed:
            raise InvalidTransitionError(
                task_id,
                record.state.value,
                "expire",
                "its deadline has not passed, and an early expiry may only reject",
            )
        try:
            return await self._apply_decision(record, decision, authorize=False)
        except ConflictError:
            return (await self._get_record(task_id)).to_context()

    async def _escalate(self, record: TaskRecord, context: TaskContext, escalation: Escalation) -> TaskContext:
        """AWAITING_APPROVAL → AWAITING_APPROVAL: hand the request to the next level of assignees.

        Only ``expire`` calls it, with a deadline plugin's answer: re-assigning a request is the
        policy's, never a caller's (who could otherwise hand a request to itself, recorded under
        the policy's name). The interrupt keeps its id (a decision already on screen still
        applies) and gets the new ``assignees`` and ``deadline``; the event records the level, so
        the audit trail shows who was asked when. The commit is a compare-and-set on the version
        ``expire`` read: two sweepers never escalate the same deadline twice.
        """
        interrupt = record.interrupt
        assert interrupt is not None  # expire checked it is waiting
        deadline = escalation.deadline
        if deadline is not None and deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=UTC)
        # From the operator's own config (the escalation chain), kept as written: a name the
        # terminal cannot show is rendered inert wherever it appears (test_sqlite_terminal_safety).
        names = [str(a) for a in escalation.assignees]
        level = escalation_level(context) + 1
        interrupt = interrupt.model_copy(update={"assignees": names, "deadline": deadline})
        data: dict[str, Any] = {
            "level": level,
            "assignees": names,
            "interrupt_id": interrupt.interrupt_id,
            "deadline": deadline.isoformat() if deadline is not None else None,
        }
        if escalation.message is not None:
            data["message"] = str(escalation.message)
        new = await self._commit(
            "escalate",
            record,
            record.task_id,
            actor_of(f"escalation:level-{level}", "policy"),
            data,
            interrupt=interrupt,
        )
        return self._context_of(new)

    # -- going on -------------------------------------------------------------------------

    async def resume(self, task_id: str, step: str | None = None, *, actor: str | None = None) -> TaskContext:
        """APPROVED or REJECTED → RUNNING: the agent goes on (with the rejection as feedback).

        The interrupt leaves ``interrupt_point`` and stays in the history.
        """
        record = await self._get_record(task_id)
        data: dict[str, Any] = {}
        if record.interrupt is not None:
            data["interrupt"] = record.interrupt
        if record.decision is not None:
            data["decision"] = record.decision
        changes: dict[str, Any] = {"interrupt": None}
        if step is not None:
            step = check_label("step", step, self.limits.name_chars, task_id=task_id, key="name_chars")
            changes["current_step"] = data["step"] = step
        if actor:
            check_name("actor id", actor, self.limits.name_chars, task_id=task_id, key="name_chars")
            _check_not_reserved("actor", actor, task_id)
        who = actor_of(actor, "person") if actor else actor_of(record.agent or "agent", "agent")
        return self._context_of(await self._commit("resume", record, task_id, who, data, **changes))

    async def complete(self, task_id: str, result: Any = None) -> TaskContext:
        """RUNNING → COMPLETED (terminal). ``result`` must be JSON-serialisable."""
        record = await self._get_record(task_id)
        changes: dict[str, Any] = {}
        data: dict[str, Any] = {}
        if result is not None:
            changes["result"] = data["result"] = checked_copy(result, "result", self.max_payload_bytes)
        return self._context_of(await self._commit("complete", record, task_id, None, data, **changes))

    async def _complete_together(self, results: list[tuple[str, Any]]) -> None:
        """``complete(task_id, result)`` for each pair, in one transaction: all of them or none.

        Internal (an adapter's delivered decisions and its run's parent finish together). Raises
        what the first refused ``complete`` would (``TaskNotFoundError``, ``InvalidTransitionError``,
        ``ConflictError``) and then nothing is written; the caller may fall back to one at a time.
        """
        steps: list[tuple[EventRecord, TaskRecord, int | None]] = []
        for task_id, result in results:
            record = await self._get_record(task_id)
            changes: dict[str, Any] = {}
            data: dict[str, Any] = {}
            if result is not None:
                changes["result"] = data["result"] = checked_copy(result, "result", self.max_payload_bytes)
            event, new = self._stage("complete", record, task_id, None, data, changes)
            steps.append((event, new, record.version))
        await self._commit_together(steps)

    async def fail(self, task_id: str, error: str) -> TaskContext:
        """Any non-terminal state → FAILED (terminal), with the error kept.

        Failing is never refused for its message (an agent's failure path must always land): an
        error longer than the message limit is clipped, and text no store can hold (lone
        surrogates) is kept as backslash escapes.
        """
        record = await self._get_record(task_id)
        error = str(error).encode("utf-8", "backslashreplace").decode("utf-8")
        limit = self.limits.message_chars
        if len(error) > limit:
            error = f"{error[:limit]}… ({len(error) - limit:,} more characters)"
        return self._context_of(await self._commit("fail", record, task_id, None, {"error": error}, error=error))

    # -- queries --------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskContext | None:
        """The task's current snapshot, or None for an unknown id (the seed's contract)."""
        record = await (self.store if self._opened else await self._ready()).get(task_id)
        return self._contexts_of([record])[0] if record is not None else None

    async def get_pending_approvals(self) -> list[TaskContext]:
        """Every task waiting for a decision, longest-waiting first. Indexed: never scans."""
        return await self.get_tasks_by_state(S.AWAITING_APPROVAL)

    async def get_tasks_by_state(self, state: TaskState | str) -> list[TaskContext]:
        store = self.store if self._opened else await self._ready()
        return self._contexts_of(await store.query(TaskState(state)))

    async def get_all_tasks(self) -> list[TaskContext]:
        store = self.store if self._opened else await self._ready()
        return self._contexts_of(await store.query())

    async def get_tasks(
        self, states: Iterable[TaskState | str] | None = None, *, changed_after: int | None = None
    ) -> list[TaskContext]:
        """Tasks in any of ``states`` (every state when None) whose last event has a ``seq`` above
        ``changed_after``, least recently changed first, read at one point in time.

        What a long-lived store needs: a million finished tasks must not weigh on a listing of
        the recent ones (indexed by state and last change; the console loads every unfinished
        task and only the recently finished ones).
        """
        store = self.store if self._opened else await self._ready()
        wanted = None if states is None else [TaskState(s) for s in states]
        return self._contexts_of(await store.query(wanted, after=changed_after))

    def _context_of(self, record: TaskRecord) -> TaskContext:
        """``record``'s snapshot: the one already built for it (for observers, a listing) or a new one."""
        last = self._last_context
        if last is not None and last[0] is record:
            return last[1]
        hit = self._contexts.get(record.task_id)
        if hit is not None and hit[0] is record:
            return hit[1]
        return record.to_context()

    def _contexts_of(self, records: list[TaskRecord]) -> list[TaskContext]:
        """The snapshots of ``records``, reusing the one built for the very same record before."""
        if len(records) > _CONTEXTS_MAX:  # a listing bigger than the cache: nothing to keep
            return [record.to_context() for record in records]
        cache = self._contexts
        out: list[TaskContext] = []
        append = out.append
        for record in records:
            hit = cache.get(record.task_id)
            if hit is not None and hit[0] is record:
                append(hit[1])
                continue
            context = record.to_context()
            if hit is None and len(cache) >= _CONTEXTS_MAX:
                cache.clear()
            cache[record.task_id] = (record, context)
            append(context)
        return out

    # -- waiting --------------------------------------------------------------------------

    def _wake(self, record: TaskRecord) -> None:
        flag = self._pause_flags.get(record.task_id)
        if flag is not None:
            if record.state in _STOPPED:
                flag.set()
            else:
                flag.clear()
        waiters = self._waiters.get(record.task_id)
        if not waiters:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, future in list(waiters):
            if loop is running:
                if not future.done():
                    future.set_result(record)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_settle, future, record)

    async def _ensure_follower(self) -> None:
        """On a shared store, one task per event loop follows it to hear of decisions made elsewhere.

        Every caller — not only the one that starts the follower — returns only once the follower
        has its starting point (``last_seq``). A waiter reads its task after this returns, so a
        decision committed after that read has a later sequence number than the starting point
        and reaches the waiter; one committed before it is seen by the read itself. A follower
        whose start fails raises the failure to every caller waiting on it; the next caller
        starts a fresh one.
        """
        loop = asyncio.get_running_loop()
        entry = self._followers.get(loop)
        if entry is None or entry[0].done():
            started = asyncio.Event()
            entry = self._followers[loop] = (loop.create_task(self._follow(started), name="hitl-follow"), started)
        task, started = entry
        if started.is_set():
            return
        starting = loop.create_task(started.wait())
        try:
            await asyncio.wait((starting, task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            starting.cancel()
        if not started.is_set():
            if not task.cancelled():
                task.result()  # raises what stopped the follower before it had its starting point
            raise StoreError(f"following {self.store.url} stopped before it started")

    async def _follow(self, started: asyncio.Event) -> None:
        """Wake local waiters for events other writers commit; never dies while waiters need it.

        A store whose ``follow`` raises (a database gone for longer than it retries) is followed
        again from the last event seen, after a backoff, so nobody's ``wait_for_decision`` hangs.
        """
        store = await self._ready()
        after = await store.last_seq()
        started.set()
        backoff = 0.05
        while True:
            try:
                async for event in store.follow(after):
                    backoff = 0.05
                    if event.task_id in self._waiters or event.task_id in self._pause_flags:
                        record = await store.get(event.task_id)
                        if record is not None:
                            self._wake(record)
                    # Only now: if reading the task failed (the store went away), the follower
                    # starts again before this event, and its waiter is still woken.
                    after = event.seq
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("following %s failed (%r); retrying in %.2fs", store.url, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)  # a store that is back is noticed within 2 s
                # Anything decided meanwhile is caught up by ``after``; re-check the waiters'
                # tasks too, in case the failure hid a decision from this follower.
                for task_id in list(self._waiters) + list(self._pause_flags):
                    try:
                        record = await store.get(task_id)
                    except Exception:
                        break
                    if record is not None:
                        self._wake(record)

    async def wait_for_decision(self, task_id: str, timeout: float | None = None) -> Decision:
        """Block until the task's current interrupt is decided, here or in another process.

        Returns at once if it already is. Raises ``DecisionTimeoutError`` after ``timeout`` seconds
        (the task keeps waiting; see ``expire``), ``TaskFailedError`` if the task fails meanwhile,
        ``TaskNotFoundError`` for an unknown id. Woken by the transition itself, not by polling.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future: asyncio.Future[TaskRecord] = loop.create_future()
            entry = (loop, future)
            self._waiters.setdefault(task_id, []).append(entry)
            try:
                store = await self._ready()
                if store.shared:
                    await self._ensure_follower()
                record = await self._get_record(task_id)
                outcome = _decision_of(record)
                if outcome is None:
                    remaining = None if deadline is None else max(deadline - loop.time(), 0)
                    try:
                        record = await asyncio.wait_for(future, remaining)
                    except TimeoutError:
                        raise DecisionTimeoutError(task_id, timeout or 0) from None
                    outcome = _decision_of(record)
            finally:
                self._release(task_id, entry)
            if outcome is not None:
                return outcome

    async def watch_pause(self, task_id: str) -> threading.Event:
        """A flag that is set while ``task_id`` is stopped for a person (waiting, or decided but not
        yet resumed), kept current by the transitions
        themselves (this process's, and other processes' through the store's follower).

        Checkpoints test it for free; ``unwatch_pause`` stops keeping it.
        """
        flag = self._pause_flags.setdefault(task_id, threading.Event())
        store = await self._ready()
        if store.shared:
            await self._ensure_follower()
        if (await self._get_record(task_id)).state in _STOPPED:
            flag.set()
        return flag

    def unwatch_pause(self, task_id: str) -> None:
        self._pause_flags.pop(task_id, None)
        self._when_idle()

    def _release(self, task_id: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Future[TaskRecord]]) -> None:
        """A waiter is done: forget it, and let the follower go once nobody is left waiting."""
        waiters = self._waiters.get(task_id)
        if waiters is not None and entry in waiters:
            waiters.remove(entry)
            if not waiters:
                del self._waiters[task_id]
        self._when_idle()

    def _when_idle(self) -> None:
        """Stop this loop's follower ``follower_linger`` seconds after the last waiter left (if
        nobody came meanwhile): an idle agent should not poll the store. The next waiter starts a
        new one, and waits for its starting point like any waiter (``_ensure_follower``)."""
        if self._waiters or self._pause_flags:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # unwatch_pause from a thread without a loop: the follower stays until next time
        if loop in self._followers:
            loop.call_later(self.follower_linger, self._stop_idle_follower, loop)

    def _stop_idle_follower(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._waiters or self._pause_flags:
            return
        entry = self._followers.pop(loop, None)
        if entry is not None:
            entry[0].cancel()

    async def wait_for_state(
        self, task_id: str, states: Iterable[TaskState], timeout: float | None = None
    ) -> TaskContext:
        """Block until the task is in one of ``states``, here or in another process (woken by the
        transitions, as ``wait_for_decision``); ``DecisionTimeoutError`` after ``timeout`` seconds.
        Checkpoints notice a pause through ``watch_pause``, not this."""
        wanted = {TaskState(s) for s in states}
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future: asyncio.Future[TaskRecord] = loop.create_future()
            entry = (loop, future)
            self._waiters.setdefault(task_id, []).append(entry)
            try:
                store = await self._ready()
                if store.shared:
                    await self._ensure_follower()
                record = await self._get_record(task_id)
                if record.state in wanted:
                    return record.to_context()
                remaining = None if deadline is None else max(deadline - loop.time(), 0)
                try:
                    record = await asyncio.wait_for(future, remaining)
                except TimeoutError:
                    raise DecisionTimeoutError(task_id, timeout or 0) from None
                if record.state in wanted:
                    return record.to_context()
            finally:
                self._release(task_id, entry)

    # -- audit ----------------------------------------------------------------------------

    async def last_seq(self) -> int:
        """The sequence number of the last committed event (0 for an empty store)."""
        return await (await self._ready()).last_seq()

    async def follow(self, after_seq: int | None = 0) -> AsyncIterator[Event]:
        """Every event committed after ``after_seq`` (None: from now), in order, forever.

        Raises what the store's follower raises (a store gone for longer than it retries); the
        caller follows again from the last ``seq`` it saw.
        """
        store = await self._ready()
        after = await store.last_seq() if after_seq is None else after_seq
        async for record in store.follow(after):
            yield record.to_event()

    async def events(self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None) -> list[Any]:
        """Committed events (``Event`` models) in order: the audit trail."""
        store = await self._ready()
        return [e.to_event() for e in await store.events(after_seq, limit, task_id)]

    async def verify(self) -> Any:
        """Walk the hash chain (``VerifyReport``)."""
        return await (await self._ready()).verify()

    async def stats(self, since_seconds: float = 24 * 3600, *, now: int | None = None, settings: Any = None) -> Any:
        """The figures of the window ``since_seconds`` back from ``now`` (``hitl_core.stats.StatsFold``),
        ready to be fed the events after its ``last_seq``: what the console's stats view and
        ``hitl stats`` read, so neither needs the store itself."""
        from .stats import load_stats

        return await load_stats(await self._ready(), since_seconds=since_seconds, now=now, settings=settings)


def _person_decision(**fields: Any) -> Decision:
    """A person's ``Decision`` from the public verbs' arguments; wrong types are a ``PayloadError``."""
    try:
        return Decision(**fields)
    except ValueError as exc:  # pydantic's ValidationError
        raise PayloadError(f"invalid decision: {exc}") from None


def _settle(future: asyncio.Future[TaskRecord], record: TaskRecord) -> None:
    if not future.done():
        future.set_result(record)


def _decision_of(record: TaskRecord) -> Decision | None:
    """The decision a waiter gets for ``record``, None to keep waiting; raises if it can't come."""
    if record.state is S.FAILED:
        raise TaskFailedError(record.task_id, record.error)
    if record.state is S.AWAITING_APPROVAL:
        return None
    if record.decision is not None:
        return record.decision
    if record.state is S.COMPLETED:
        raise InvalidTransitionError(
            record.task_id, record.state.value, "wait_for_decision", "the task completed without asking for a decision"
        )
    return None
