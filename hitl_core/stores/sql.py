"""What the SQL stores share: columns, row decoding, read queries, migrations, the queued append.

The SQLite store (``sqlite.py``) and the PostgreSQL store (``postgres.py``) keep one log in the
same shape — an events table, a tasks table of snapshots, a checkpoints table — and read it the
same way. The SQL that reads it is built here once, from a ``Dialect`` (the placeholder and the
table names); each backend keeps only what truly differs: connections, locking, how appends are
grouped into transactions, how followers are woken, and PostgreSQL's server-side ``hitl_append``.

Migrations, both backends: ``MIGRATIONS[n]`` is the statements that take a database from schema
version n - 1 to n (so the keys are the versions written to disk: SQLite's ``PRAGMA
user_version``, PostgreSQL's ``hitl_schema_version`` rows). ``steps(...)`` walks them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..canonical import GENESIS_HASH, canonical_json, canonical_json_checked
from ..errors import PayloadError
from ..models import Decision, InterruptPoint, TaskState
from ..records import EventRecord, TaskRecord
from .base import AuditRecord, StoredCheckpoint, audit_hash

#: An event row, in the order ``event_from_row`` reads it.
EVENT_COLUMNS = "seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, data, prev_hash, hash"
#: An audit record row, in the order ``audit_record_from_row`` reads it.
AUDIT_COLUMNS = "seq, kind, actor, at, data, prev_hash, hash"
#: A task row as ``query``/``get`` read it.
TASK_COLUMNS = "task_id, version, last_seq, snapshot"

#: Forward migrations: ``MIGRATIONS[n]`` takes a database from version n - 1 to n.
Migrations = Mapping[int, tuple[str, ...]]


def steps(migrations: Migrations, current: int, target: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """``(version, statements)`` for each migration from ``current`` up to ``target``, in order."""
    for version in range(current + 1, target + 1):
        yield version, migrations[version]


@dataclass(frozen=True)
class Dialect:
    """How one backend spells the shared SQL: its parameter placeholder and its table names
    (``events``, ``tasks``, ``checkpoints`` behind a prefix: none in SQLite's own file,
    ``hitl_`` in a PostgreSQL schema shared with other applications)."""

    ph: str  # "?" (sqlite3) or "%s" (psycopg)
    prefix: str
    #: ``(seq, hash)`` of the chain head, no row for an empty log. PostgreSQL keeps the head in a
    #: row of its own (locked by ``hitl_append``); SQLite reads the last event (under the write lock).
    head_sql: str

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}tasks"

    @property
    def checkpoints(self) -> str:
        return f"{self.prefix}checkpoints"

    def events_sql(self, after_seq: int, limit: int | None, task_id: str | None = None) -> tuple[str, list[Any]]:
        """Events after ``after_seq`` (of one task, if given), oldest first."""
        sql = f"SELECT {EVENT_COLUMNS} FROM {self.events} WHERE seq > {self.ph}"
        params: list[Any] = [after_seq]
        if task_id is not None:
            sql += f" AND task_id = {self.ph}"
            params.append(task_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {self.ph}"
            params.append(limit)
        return sql, params

    def tasks_sql(
        self,
        state: TaskState | Iterable[TaskState] | None,
        limit: int | None,
        after: int | None,
        columns: str = TASK_COLUMNS,
    ) -> tuple[str, list[Any]] | None:
        """``query``'s task rows, least recently changed first (served by the (state, last_seq)
        index); None when ``state`` is an empty collection (nothing can match)."""
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            states = [TaskState(state)] if isinstance(state, str) else [TaskState(s) for s in state]
            if not states:
                return None
            if len(states) == 1:
                where.append(f"state = {self.ph}")
            else:
                where.append(f"state IN ({', '.join([self.ph] * len(states))})")
            params.extend(s.value for s in states)
        if after is not None:
            where.append(f"last_seq > {self.ph}")
            params.append(after)
        sql = f"SELECT {columns} FROM {self.tasks}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY last_seq"
        if limit is not None:
            sql += f" LIMIT {self.ph}"
            params.append(limit)
        return sql, params

    @property
    def count_by_state_sql(self) -> str:
        return f"SELECT state, count(*) FROM {self.tasks} GROUP BY state"

    def tasks_without_snapshot_sql(self) -> str:
        return (
            f"SELECT DISTINCT e.task_id FROM {self.events} e WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.tasks} t WHERE t.task_id = e.task_id) LIMIT {self.ph}"
        )

    def insert_checkpoint_sql(self) -> str:
        return f"INSERT INTO {self.checkpoints} (seq, body, signature) VALUES ({self.ph}, {self.ph}, {self.ph})"

    @property
    def checkpoints_sql(self) -> str:
        return f"SELECT seq, body, signature FROM {self.checkpoints} ORDER BY seq, id"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    def audit_sql(self, after_seq: int, limit: int | None, kind: str | None) -> tuple[str, list[Any]]:
        """Audit records after ``after_seq`` (of one kind, if given), oldest first."""
        sql = f"SELECT {AUDIT_COLUMNS} FROM {self.audit} WHERE seq > {self.ph}"
        params: list[Any] = [after_seq]
        if kind is not None:
            sql += f" AND kind = {self.ph}"
            params.append(kind)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {self.ph}"
            params.append(limit)
        return sql, params

    @property
    def audit_head_sql(self) -> str:
        return f"SELECT seq, hash FROM {self.audit} ORDER BY seq DESC LIMIT 1"

    def insert_audit_sql(self) -> str:
        return f"INSERT INTO {self.audit} ({AUDIT_COLUMNS}) VALUES ({', '.join([self.ph] * 7)})"


def new_audit_record(
    head: tuple[int, str] | None, kind: str, actor: str | None, data: dict[str, Any], at: int
) -> tuple[AuditRecord, tuple[Any, ...]]:
    """The record that follows ``head`` (``(seq, hash)`` of the last one, None when there is
    none), and its row for ``insert_audit_sql``. Called under the backend's write lock."""
    seq, prev = (head[0] + 1, head[1]) if head is not None else (1, GENESIS_HASH)
    data_json = canonical_json(data)
    plain = json.loads(data_json)
    record = AuditRecord(seq, kind, actor, at, plain, prev, audit_hash(prev, seq, kind, actor, at, plain))
    return record, (seq, kind, actor, at, data_json, prev, record.hash)


def checkpoints_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[StoredCheckpoint]:
    return [StoredCheckpoint(int(seq), str(body), str(signature)) for seq, body, signature in rows]


def chain_head(row: tuple[Any, ...] | None) -> tuple[int, str]:
    """``(seq, hash)`` of the head from ``Dialect.head_sql``'s row: the genesis hash when empty."""
    return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS_HASH)


# -- decoding rows ------------------------------------------------------------------------------


def _hydrate(data: dict[str, Any]) -> dict[str, Any]:
    """Turn the interrupt/decision an event carries back into models, as the writer had them.

    ``TaskContext.history`` summarises events from these models; an event whose stored JSON no
    longer validates (it was edited by hand) keeps its plain JSON so that reading never fails —
    ``verify`` reports the edit.
    """
    interrupt = data.get("interrupt")
    decision = data.get("decision")
    if not isinstance(interrupt, dict) and not isinstance(decision, dict):
        return data
    data = dict(data)
    try:
        if isinstance(interrupt, dict):
            data["interrupt"] = InterruptPoint.model_validate(interrupt)
        if isinstance(decision, dict):
            data["decision"] = Decision.model_validate(decision)
    except ValueError:
        pass
    return data


def _state_of(value: Any) -> Any:
    try:
        return TaskState(value)
    except ValueError:
        return value  # an edited row: keep what is there so that ``verify`` reports it


def event_from_row(row: tuple[Any, ...] | list[Any], hydrate: bool = False) -> EventRecord:
    """An event as stored (``EVENT_COLUMNS``). A row edited into something unreadable still reads
    (its raw text kept under ``unreadable_data``, an unknown state kept as text) so that
    ``verify`` can name it instead of every reader failing."""
    seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, data, prev, digest = row
    try:
        payload = json.loads(data)
    except (TypeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        payload = {"unreadable_data": data}
    return EventRecord(
        task_id=task_id,
        version=version,
        action=action,
        from_state=_state_of(from_state) if from_state is not None else None,
        to_state=_state_of(to_state),
        actor_id=actor_id,
        actor_source=actor_source,
        at=at,
        data=_hydrate(payload) if hydrate else payload,
        seq=seq,
        prev_hash=prev,
        hash=digest,
    )


def record_from_snapshot(snapshot: str, last_seq: int, history: Any) -> TaskRecord:
    """A task from its stored snapshot, the sequence number of its last event and its history."""
    data = json.loads(snapshot)
    data["last_seq"] = last_seq
    return TaskRecord.from_snapshot(data, history)


# -- the chain hash, computed client-side -------------------------------------------------------

#: ``canonical_json`` for a flat list of strings, ints and None: sorting keys and the ``default``
#: hook have nothing to do there, and skipping them halves the cost on the commit path.
_encode_head = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def event_fields(event: EventRecord) -> tuple[Any, ...]:
    """An event's columns from ``task_id`` to ``at`` as stored (states as their text): what the
    chain hash covers before ``data``, and what both backends' inserts write."""
    return (
        event.task_id,
        event.version,
        event.action,
        event.from_state.value if event.from_state is not None else None,
        event.to_state.value,
        event.actor_id,
        event.actor_source,
        event.at,
    )


def chain_hash(prev_hash: str, seq: int, fields: tuple[Any, ...], data_json: str) -> str:
    """``EventRecord.compute_hash`` from the event's ``event_fields`` (made once, also written by
    the insert) and its data's JSON, without serialising ``data`` a second time.

    The canonical JSON of ``[..., data]`` is the canonical JSON of the list without it with
    ``,<data json>`` spliced before the closing bracket (no spaces, same key order); the
    conformance suite checks the two agree. (PostgreSQL's ``hitl_append`` builds the same bytes
    on the server.)
    """
    head = _encode_head([seq, *fields])
    body = f"{head[:-1]},{data_json}]"
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


# -- the queued append --------------------------------------------------------------------------


@dataclass(slots=True)
class QueuedAppend:
    """One append waiting for its group commit, serialised once, and where its outcome goes.

    The committer fills ``error`` or ``seq``/``prev_hash``/``hash``; the records learn their
    place in the log only once the transaction has committed. ``rest``: the further steps of an
    ``append_many``, committed with this one or not at all (they share its future and its error).
    """

    event: EventRecord
    task: TaskRecord
    expected_version: int | None
    data_json: str
    snapshot_json: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    error: BaseException | None = None
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""
    rest: tuple[QueuedAppend, ...] = ()

    @classmethod
    def make(cls, event: EventRecord, task: TaskRecord, expected_version: int | None) -> QueuedAppend:
        """Serialise the transition (``PayloadError`` if it is not JSON) and make its future."""
        loop = asyncio.get_running_loop()
        return cls._serialised(event, task, expected_version, loop, loop.create_future())

    @classmethod
    def make_group(cls, steps: Sequence[tuple[EventRecord, TaskRecord, int | None]]) -> QueuedAppend:
        """One queued append for all of ``steps`` (``Store.append_many``): the first carries the rest."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        items = [cls._serialised(e, t, v, loop, future) for e, t, v in steps]
        items[0].rest = tuple(items[1:])
        return items[0]

    @classmethod
    def _serialised(
        cls,
        event: EventRecord,
        task: TaskRecord,
        expected_version: int | None,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[None],
    ) -> QueuedAppend:
        try:
            data_json = canonical_json_checked(event.data)
            snapshot_json = task.snapshot_json()
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"task {task.task_id!r}: the transition is not JSON-serialisable: {exc}") from None
        return cls(event, task, expected_version, data_json, snapshot_json, loop, future)

    def steps(self) -> tuple[QueuedAppend, ...]:
        """This append and the steps committed with it, in order."""
        return (self, *self.rest) if self.rest else (self,)

    def committed(self, seq: int, prev_hash: str, digest: str) -> None:
        """The append is durable at ``seq``: tell the records where they stand in the log."""
        self.event.seq = self.task.last_seq = seq
        self.event.prev_hash = prev_hash
        self.event.hash = digest
