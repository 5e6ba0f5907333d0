"""The ``Store`` contract every backend implements, and the one conformance suite checks.

A store is an append-only event log plus the latest snapshot of each task. One transition is one
``append``: the event and the new snapshot commit together, and only if the task is still at
the version the machine read (compare-and-set). Everything else — waiting, following, auditing —
is built on ``append``, ``get``, ``query``, ``events`` and ``follow``.

Auditing adds three reads and one write: ``tasks_with_events`` and ``tasks_without_snapshot``
(replay: every stored snapshot must equal the fold of its task's events) and ``add_checkpoint`` /
``checkpoints`` (signed checkpoints of the chain head, made and checked by ``hitl_core.audit``;
the store only keeps them).

The server's own audit records (refusals, applied policies) are a second, separate hash chain:
``append_audit`` / ``audit_records``. They are never events: they touch no task, move no version,
and nothing that follows the event log sees them; ``verify`` walks their chain as it walks the log.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..canonical import GENESIS_HASH, canonical_json
from ..errors import StoreError
from ..models import TaskState
from ..records import EventRecord, ReplayError, TaskRecord, fold, snapshot_differences

#: One transition for ``Store.append_many``: the event, the new snapshot, the version read (None: new task).
AppendStep = tuple[EventRecord, TaskRecord, "int | None"]

#: ``verify`` stops collecting problems after this many (the first is what matters; the rest say "how bad").
MAX_PROBLEMS = 20


@dataclass(slots=True)
class VerifyReport:
    """What ``verify`` found walking the hash chain and replaying every task.

    ``checked`` counts the events before the first problem (all of them when ``ok``);
    ``problem`` is the first problem, ``problems`` all of them (up to ``MAX_PROBLEMS``).
    ``first_hash`` (the store's identity in checkpoints), ``last_seq``/``last_hash`` (the head the
    walk reached) and ``hashes`` (the stored hash at each seq asked for) feed checkpoint checks.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)
    events: int = 0
    tasks: int = 0
    first_hash: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    hashes: dict[int, str] = field(default_factory=dict)
    #: How many server audit records (``append_audit``) the walk of their own chain checked, the
    #: head it reached, and the stored hash at each audit seq asked for (checkpoints compare them).
    audit_records: int = 0
    audit_last_seq: int = 0
    audit_last_hash: str = GENESIS_HASH
    audit_hashes: dict[int, str] = field(default_factory=dict)

    def fail(self, problem: str, seq: int | None = None) -> None:
        if self.ok:
            self.ok = False
            self.checked = self.events
            self.first_bad_seq = seq
            self.problem = problem
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task row as the store holds it, unparsed: what replay compares with the fold of its events.

    ``state``, ``version`` and ``last_seq`` are the row's own columns where the backend keeps them
    beside the snapshot (SQLite and PostgreSQL query by them), so an edit of either is seen.
    """

    task_id: str
    state: str
    version: int
    last_seq: int
    snapshot: str


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint as kept in the store: ``body`` is the signed text, ``signature`` base64.

    The store keeps checkpoints and nothing else about them: ``hitl_core.audit`` makes, parses and
    verifies them. ``seq`` repeats the body's for ordering; the body is what counts.
    """

    seq: int
    body: str
    signature: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the server's audit chain: who (``actor``) did or was refused what (``kind``,
    ``data``) at ``at`` (µs since the epoch). ``seq`` runs 1, 2, 3, … in its own chain."""

    seq: int
    kind: str
    actor: str | None
    at: int
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def compute_hash(self, prev_hash: str) -> str:
        return audit_hash(prev_hash, self.seq, self.kind, self.actor, self.at, self.data)


def audit_hash(prev_hash: str, seq: int, kind: str, actor: str | None, at_us: int, data: Any) -> str:
    """An audit record's chain link: as ``event_hash``, with a leading "audit" so that no audit
    record can ever hash like an event (or the other way round)."""
    body = canonical_json(["audit", seq, kind, actor, at_us, data])
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def audit_record_from_row(row: tuple[Any, ...]) -> AuditRecord:
    seq, kind, actor, at, data, prev_hash, digest = row
    return AuditRecord(int(seq), str(kind), actor, int(at), json.loads(data), str(prev_hash), str(digest))


class Store(abc.ABC):
    """Abstract store. All methods are coroutines except ``follow`` (an async iterator).

    ``shared`` is True when other processes may write to the same store: the machine then
    follows it to learn about decisions made elsewhere.
    """

    url: str = ""
    shared: bool = False
    durable: bool = False
    #: True when ``append_many`` commits its steps atomically (all or none). The machine commits
    #: what happens together (a task that starts and asks at once, a run's last completions) in
    #: one ``append_many`` only then; on other stores it makes one ``append`` per step, as before.
    atomic_batches: bool = False

    async def open(self) -> None:
        """Connect, create or migrate. Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    @abc.abstractmethod
    async def append(self, event: EventRecord, task: TaskRecord, expected_version: int | None) -> None:
        """Commit ``event`` and ``task`` (the new snapshot) atomically.

        ``expected_version`` is the version the caller read, or None when the task must not
        exist yet. Raises ``ConflictError`` (or ``DuplicateTaskError`` for an existing id when
        None was expected) and writes nothing when that no longer holds. On success fills
        ``event.seq`` (store-wide, increasing) and ``task.last_seq``; the chain hash may be
        computed now or lazily, but ``events``/``follow`` return events with ``hash`` set.
        """

    async def append_many(self, steps: Sequence[AppendStep]) -> None:
        """Commit several transitions in one transaction: every step or none.

        Each step is ``(event, task, expected_version)`` as for ``append``, checked in order
        against the store *as the earlier steps of the same call left it* (a task may take two
        steps: its version 1 and then 2). Every event is its own entry in the log, with its own
        sequence number and chain hash; only the transaction is shared. If any step's
        compare-and-set fails, nothing is written and that step's ``ConflictError`` /
        ``DuplicateTaskError`` is raised. Stores that set ``atomic_batches`` implement it; this
        default refuses, so that nobody mistakes a loop of appends for an atomic one.
        """
        if len(steps) == 1:
            await self.append(*steps[0])
            return
        raise StoreError(f"the {type(self).__name__} store at {self.url} cannot commit several transitions atomically")

    @abc.abstractmethod
    async def get(self, task_id: str) -> TaskRecord | None:
        """The latest snapshot with its history, or None."""

    @abc.abstractmethod
    async def query(
        self, state: TaskState | Iterable[TaskState] | None = None, limit: int | None = None, after: int | None = None
    ) -> list[TaskRecord]:
        """Tasks in ``state`` (all when None), oldest change first, after ``last_seq`` ``after``.

        Must use an index on state: looking up the few waiting tasks among many finished ones
        must not scan them all.
        """

    @abc.abstractmethod
    async def events(
        self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None
    ) -> list[EventRecord]:
        """Committed events with ``seq > after_seq`` in order, hashes set."""

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The highest committed sequence number (0 for an empty store)."""

    @abc.abstractmethod
    async def count_by_state(self) -> dict[TaskState, int]:
        """How many tasks are in each state (states with none may be omitted)."""

    @abc.abstractmethod
    def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        """Yield every event committed (by any process) after ``after_seq``, in order, forever."""

    # -- auditing -------------------------------------------------------------------------------

    async def tasks_with_events(
        self, after_task_id: str | None = None, limit: int = 500
    ) -> list[tuple[StoredTask, list[EventRecord]]]:
        """A page of stored tasks in task-id order (the store's own), after ``after_task_id``, each
        with its events in ``seq`` order, all read at one point in time (a task committing
        meanwhile is seen before or after, never half).

        This default reads every task through ``query`` (not a page at a time): backends override
        it so that verifying a large store holds one page in memory, not the store.
        """
        records = sorted(await self.query(), key=lambda r: r.task_id)
        if after_task_id is not None:
            records = [r for r in records if r.task_id > after_task_id]
        page = []
        for r in records[:limit]:
            row = StoredTask(r.task_id, r.state.value, r.version, r.last_seq, r.snapshot_json())
            page.append((row, await self.events(task_id=r.task_id)))
        return page

    async def tasks_without_snapshot(self, limit: int = 10) -> list[str]:
        """Ids of tasks that have events but no stored snapshot (a deleted task row), at most ``limit``."""
        known = {r.task_id for r in await self.query()}
        missing: list[str] = []
        after = 0
        while len(missing) < limit:
            batch = await self.events(after_seq=after, limit=5000)
            if not batch:
                break
            for event in batch:
                if event.task_id not in known and event.task_id not in missing:
                    missing.append(event.task_id)
            after = batch[-1].seq
        return missing[:limit]

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a signed checkpoint (``hitl audit checkpoint``). Backends without a place for them refuse."""
        raise StoreError(f"the {type(self).__name__} store at {self.url} does not keep audit checkpoints")

    async def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint kept, oldest first (by ``seq``, then by when it was added)."""
        return []

    async def append_audit(self, kind: str, actor: str | None, data: dict[str, Any], at: int) -> AuditRecord:
        """Append one record to the audit chain (seq and hashes filled here) and return it.

        Backends without a place for it refuse: a server must not promise an audit it cannot keep.
        """
        raise StoreError(f"the {type(self).__name__} store at {self.url} does not keep audit records")

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[AuditRecord]:
        """Audit records with ``seq > after_seq`` (of one ``kind``, if given), oldest first."""
        return []

    async def last_audit_record(self, kind: str) -> AuditRecord | None:
        """The newest audit record of ``kind`` (e.g. the policy in force), or None."""
        found = None
        after = 0
        while True:
            batch = await self.audit_records(after_seq=after, limit=1000, kind=kind)
            if not batch:
                return found
            found, after = batch[-1], batch[-1].seq

    async def verify(
        self, *, hashes_at: Collection[int] = (), replay: bool = True, audit_hashes_at: Collection[int] = ()
    ) -> VerifyReport:
        """Walk the whole chain, then replay every task; report every problem found (up to a limit).

        The chain: every link must hash to what it says, point at its predecessor, and sequence
        numbers must run 1, 2, 3, … without a gap (every backend assigns them gap-free, so a gap
        is a removed event). The replay: every stored snapshot must equal the fold of its task's
        events (``hitl_core.records.fold``), and every task with events must have a snapshot.
        Reads a page at a time. ``hashes_at``: sequence numbers whose stored hash to report
        (checkpoints compare them). ``replay=False`` walks the chain only (for stores filled by
        hand with events that are not a legal history, as some backend tests do). The server's
        audit chain is walked too; ``audit_hashes_at``: its seqs whose stored hash to report.
        """
        report = VerifyReport(ok=True, checked=0)
        await self._verify_chain(report, set(hashes_at))
        await self._verify_audit_chain(report, set(audit_hashes_at))
        if replay:
            await self._verify_replay(report)
        if report.ok:
            report.checked = report.events
        return report

    async def _verify_chain(self, report: VerifyReport, wanted: set[int]) -> None:
        prev = GENESIS_HASH
        expected_seq = 1
        after = 0
        while True:
            batch = await self.events(after_seq=after, limit=5000)
            if not batch:
                return
            for event in batch:
                where = f"event {event.seq} (task {event.task_id!r}, {event.action})"
                if report.first_hash is None:
                    report.first_hash = event.hash
                if event.prev_hash != prev:
                    report.fail(
                        f"event {event.seq} (task {event.task_id!r}) does not point "
                        "at the event before it: an event was removed or reordered",
                        event.seq,
                    )
                elif event.hash != event.compute_hash(prev):
                    report.fail(f"{where} was altered: its content does not match its hash", event.seq)
                elif event.seq != expected_seq:
                    report.fail(
                        f"{where} follows event {expected_seq - 1}: "
                        + (
                            f"events {expected_seq}-{event.seq - 1} were removed"
                            if event.seq > expected_seq + 1
                            else f"event {expected_seq} was removed"
                        )
                        + " and the chain rehashed",
                        event.seq,
                    )
                if event.seq in wanted:
                    report.hashes[event.seq] = event.hash or ""
                # Go on from what is stored, so that one bad link is reported once, not for every
                # event after it, and later checkpoints still find their hashes.
                prev = event.hash or ""
                expected_seq = event.seq + 1
                report.events += 1
                report.last_seq, report.last_hash = event.seq, prev
                after = event.seq

    async def _verify_audit_chain(self, report: VerifyReport, wanted: set[int]) -> None:
        prev = GENESIS_HASH
        expected_seq = 1
        after = 0
        while True:
            batch = await self.audit_records(after_seq=after, limit=5000)
            if not batch:
                return
            for record in batch:
                where = f"audit record {record.seq} ({record.kind})"
                if record.prev_hash != prev:
                    report.fail(f"{where} does not point at the audit record before it: one was removed or reordered")
                elif record.hash != record.compute_hash(prev):
                    report.fail(f"{where} was altered: its content does not match its hash")
                elif record.seq != expected_seq:
                    report.fail(f"{where} follows audit record {expected_seq - 1}: audit records were removed")
                if record.seq in wanted:
                    report.audit_hashes[record.seq] = record.hash
                prev = record.hash
                expected_seq = record.seq + 1
                report.audit_records += 1
                report.audit_last_seq, report.audit_last_hash = record.seq, record.hash
                after = record.seq

    async def _verify_replay(self, report: VerifyReport) -> None:
        after: str | None = None
        while True:
            page = await self.tasks_with_events(after, 500)
            if not page:
                break
            for row, events in page:
                report.tasks += 1
                for problem in _replay_problems(row, events):
                    report.fail(problem)
                after = row.task_id
        for task_id in await self.tasks_without_snapshot():
            report.fail(f"task {task_id!r} has events but no snapshot: its task row was deleted")


def _replay_problems(row: StoredTask, events: list[EventRecord]) -> list[str]:
    """What is wrong with one stored task against the replay of its events (nothing: [])."""
    task = f"task {row.task_id!r}"
    if not events:
        return [f"{task} has a snapshot but no events: it was inserted by hand, or its events were deleted"]
    try:
        replayed = fold(events)
    except ReplayError as exc:
        return [f"{task} does not replay: {exc}"]
    problems = [
        f"{task} snapshot was edited: {difference}" for difference in snapshot_differences(replayed, row.snapshot)
    ]
    for column, stored, expected in (
        ("state", row.state, replayed.state.value),
        ("version", row.version, replayed.version),
        ("last_seq", row.last_seq, replayed.last_seq),
    ):
        if stored != expected:
            problems.append(f"{task} row was edited: its {column} column is {stored!r}, its events say {expected!r}")
    return problems
