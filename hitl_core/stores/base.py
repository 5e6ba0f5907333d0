"""The ``Store`` contract every backend implements, and the one conformance suite checks.

A store is an append-only event log plus the latest snapshot of each task. One transition is one
``append``: the event and the new snapshot commit together, and only if the task is still at
the version the machine read (compare-and-set). Everything else — waiting, following, auditing —
is built on ``append``, ``get``, ``query``, ``events`` and ``follow``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from ..canonical import GENESIS_HASH
from ..models import TaskState
from ..records import EventRecord, TaskRecord


@dataclass(slots=True)
class VerifyReport:
    """What ``verify`` found walking the hash chain."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)


class Store(abc.ABC):
    """Abstract store. All methods are coroutines except ``follow`` (an async iterator).

    ``shared`` is True when other processes may write to the same store: the machine then
    follows it to learn about decisions made elsewhere.
    """

    url: str = ""
    shared: bool = False
    durable: bool = False

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

    async def verify(self) -> VerifyReport:
        """Walk the whole chain: every link must hash to what it says and point at its predecessor."""
        prev = GENESIS_HASH
        checked = 0
        after = 0
        while True:
            batch = await self.events(after_seq=after, limit=5000)
            if not batch:
                return VerifyReport(ok=True, checked=checked)
            for event in batch:
                if event.prev_hash != prev:
                    return VerifyReport(
                        False,
                        checked,
                        event.seq,
                        f"event {event.seq} (task {event.task_id!r}) does not point "
                        "at the event before it: an event was removed or reordered",
                    )
                expected = event.compute_hash(prev)
                if event.hash != expected:
                    return VerifyReport(
                        False,
                        checked,
                        event.seq,
                        f"event {event.seq} (task {event.task_id!r}, {event.action}) "
                        "was altered: its content does not match its hash",
                    )
                prev = event.hash
                checked += 1
                after = event.seq
