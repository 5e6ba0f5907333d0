"""The in-memory store: the fastest, for tests, demos and single-process agents that may lose
their tasks when they exit.

Thread-safe: one ``threading.Lock`` guards the compare-and-set, so a machine used from several
threads or event loops (the synchronous facade runs its own) stays consistent. The hash chain
is computed lazily — the first time an event is read back — because it is deterministic and
nobody can alter an in-memory log behind our back; ``verify`` still recomputes every link.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from ..canonical import GENESIS_HASH
from ..errors import ConflictError, DuplicateTaskError
from ..models import TaskState
from ..records import EventRecord, TaskRecord
from .base import AppendStep, AuditRecord, Store, StoredCheckpoint, StoredTask


class MemoryStore(Store):
    # Not shared between processes, but it may be shared between machines (threads, event
    # loops): waiters then follow it to hear of decisions another machine committed.
    shared = True
    durable = False
    atomic_batches = True

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskRecord] = {}
        # state -> task ids in the order they last changed (dicts as ordered sets)
        self._by_state: dict[TaskState, dict[str, None]] = {s: {} for s in TaskState}
        self._log: list[EventRecord] = []
        self._hashed = 0  # events [0, _hashed) have their hash filled
        self._last_hash = GENESIS_HASH
        self._followers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._checkpoints: list[StoredCheckpoint] = []
        self._audit: list[AuditRecord] = []

    async def append(self, event: EventRecord, task: TaskRecord, expected_version: int | None) -> None:
        task_id = task.task_id
        with self._lock:
            current = self._tasks.get(task_id)
            if expected_version is None:
                if current is not None:
                    raise DuplicateTaskError(task_id, current.state.value)
            elif current is None or current.version != expected_version:
                raise ConflictError(task_id, expected_version, current.version if current else None)
            self._apply(event, task, current)
            followers = self._followers
        if followers:
            self._wake(followers)

    async def append_many(self, steps: Sequence[AppendStep]) -> None:
        with self._lock:
            # Check every step against the tasks as the earlier steps leave them, before any is applied.
            seen: dict[str, TaskRecord | None] = {}
            for _event, task, expected_version in steps:
                task_id = task.task_id
                current = seen[task_id] if task_id in seen else self._tasks.get(task_id)
                if expected_version is None:
                    if current is not None:
                        raise DuplicateTaskError(task_id, current.state.value)
                elif current is None or current.version != expected_version:
                    raise ConflictError(task_id, expected_version, current.version if current else None)
                seen[task_id] = task
            for event, task, _ in steps:
                self._apply(event, task, self._tasks.get(task.task_id))
            followers = self._followers
        if followers:
            self._wake(followers)

    def _apply(self, event: EventRecord, task: TaskRecord, current: TaskRecord | None) -> None:
        """Log ``event`` and make ``task`` the snapshot (under the lock, the version checked)."""
        log = self._log
        seq = len(log) + 1
        event.seq = seq
        task.last_seq = seq
        log.append(event)
        task_id = task.task_id
        self._tasks[task_id] = task
        if current is not None:
            del self._by_state[current.state][task_id]
        self._by_state[task.state][task_id] = None

    @staticmethod
    def _wake(followers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, flag in list(followers):
            if loop is running:
                flag.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(flag.set)

    def _hash_upto(self, count: int) -> None:
        """Fill the chain hashes of the first ``count`` events."""
        if count <= self._hashed:
            return
        with self._lock:
            prev = self._last_hash
            for event in self._log[self._hashed : count]:
                event.prev_hash = prev
                prev = event.hash = event.compute_hash(prev)
            self._hashed = max(self._hashed, count)
            self._last_hash = prev

    async def get(self, task_id: str) -> TaskRecord | None:
        return self._tasks.get(task_id)

    async def query(
        self, state: TaskState | Iterable[TaskState] | None = None, limit: int | None = None, after: int | None = None
    ) -> list[TaskRecord]:
        tasks = self._tasks
        if state is None:
            records = sorted(tasks.values(), key=lambda r: r.last_seq)
        else:
            states = [state] if isinstance(state, (TaskState, str)) else list(state)
            with self._lock:
                ids = [i for s in states for i in self._by_state[TaskState(s)]]
            records = [tasks[i] for i in ids]
            if len(states) > 1:
                records.sort(key=lambda r: r.last_seq)
        if after is not None:
            records = [r for r in records if r.last_seq > after]
        return records if limit is None else records[:limit]

    async def events(
        self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None
    ) -> list[EventRecord]:
        log = self._log
        end = len(log)
        self._hash_upto(end)
        selected = log[max(after_seq, 0) : end]  # a slice: islice would walk from the start
        if task_id is not None:
            selected = [e for e in selected if e.task_id == task_id]
        return selected if limit is None else selected[:limit]

    async def last_seq(self) -> int:
        return len(self._log)

    async def count_by_state(self) -> dict[TaskState, int]:
        return {s: len(ids) for s, ids in self._by_state.items() if ids}

    async def tasks_with_events(
        self, after_task_id: str | None = None, limit: int = 500
    ) -> list[tuple[StoredTask, list[EventRecord]]]:
        with self._lock:  # one point in time: no append lands between the page and its events
            ids = sorted(i for i in self._tasks if after_task_id is None or i > after_task_id)[:limit]
            records = [self._tasks[i] for i in ids]
            wanted = set(ids)
            by_task: dict[str, list[EventRecord]] = {i: [] for i in ids}
            for event in self._log:
                if event.task_id in wanted:
                    by_task[event.task_id].append(event)
        return [
            (StoredTask(r.task_id, r.state.value, r.version, r.last_seq, r.snapshot_json()), by_task[r.task_id])
            for r in records
        ]

    async def tasks_without_snapshot(self, limit: int = 10) -> list[str]:
        with self._lock:
            missing = {e.task_id: None for e in self._log if e.task_id not in self._tasks}
        return list(missing)[:limit]

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._lock:
            self._checkpoints.append(checkpoint)

    async def checkpoints(self) -> list[StoredCheckpoint]:
        with self._lock:
            return sorted(self._checkpoints, key=lambda c: c.seq)  # stable: equal seqs stay in added order

    async def append_audit(self, kind: str, actor: str | None, data: dict[str, Any], at: int) -> AuditRecord:
        from .sql import new_audit_record

        with self._lock:
            last = self._audit[-1] if self._audit else None
            record, _row = new_audit_record((last.seq, last.hash) if last else None, kind, actor, data, at)
            self._audit.append(record)
        return record

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[AuditRecord]:
        with self._lock:
            selected = [r for r in self._audit[max(after_seq, 0) :] if kind is None or r.kind == kind]
        return selected if limit is None else selected[:limit]

    async def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        flag = asyncio.Event()
        entry = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._followers = [*self._followers, entry]
        try:
            seq = after_seq
            while True:
                flag.clear()
                for event in await self.events(after_seq=seq):
                    seq = event.seq
                    yield event
                if len(self._log) == seq:
                    await flag.wait()
        finally:
            with self._lock:
                self._followers = [f for f in self._followers if f is not entry]
