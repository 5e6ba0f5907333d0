"""The forger's toolkit: what someone with write access to the store's database can do by hand.

Each function edits the real database (a SQLite file through ``sqlite3``, PostgreSQL through
``psycopg`` as the superuser), never hitl's API, and uses hitl's own public hashing and fold, as an
attacker who has read the source would: the result is a log whose chain and snapshots are all
self-consistent. Only something outside the writer's reach — a signed checkpoint — tells.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hitl_core.canonical import GENESIS_HASH, canonical_json
from hitl_core.models import TaskState
from hitl_core.records import EventRecord, fold


@dataclass(frozen=True)
class Db:
    """A DB-API connection and how this backend names its tables and parameters."""

    conn: Any
    events: str
    tasks: str
    checkpoints: str
    ph: str  # "?" (sqlite3) or "%s" (psycopg)
    chain_head: str | None = None  # PostgreSQL keeps the head in a table of its own

    def q(self, sql: str) -> str:
        return sql.replace("?", self.ph).format(e=self.events, t=self.tasks, c=self.checkpoints)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self.q(sql), params).fetchall())

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(self.q(sql), params)

    def commit(self) -> None:
        self.conn.commit()


def sqlite_db(conn: Any) -> Db:
    return Db(conn, "events", "tasks", "checkpoints", "?")


def postgres_db(conn: Any) -> Db:
    return Db(conn, "hitl_events", "hitl_tasks", "hitl_checkpoints", "%s", chain_head="hitl_chain_head")


_COLUMNS = "seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, data, prev_hash, hash"


def read_events(db: Db) -> list[EventRecord]:
    events = []
    for seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, data, prev, h in db.rows(
        f"SELECT {_COLUMNS} FROM {{e}} ORDER BY seq"
    ):
        events.append(
            EventRecord(
                task_id,
                version,
                action,
                TaskState(from_state) if from_state else None,
                TaskState(to_state),
                actor_id,
                actor_source,
                at,
                json.loads(data),
                seq,
                prev,
                h,
            )
        )
    return events


def rewrite_log(db: Db, events: list[EventRecord], *, renumber: bool = True) -> None:
    """Replace the whole log with ``events``: chain recomputed from the genesis hash, every task's
    snapshot and row re-folded from its events, rows of tasks left without events deleted.

    ``renumber``: give the events seqs 1, 2, 3, … (as if nothing had been removed); otherwise keep
    each event's seq.
    """
    prev = GENESIS_HASH
    db.run("DELETE FROM {e}")
    for i, event in enumerate(events, start=1):
        if renumber:
            event.seq = i
        event.prev_hash = prev
        prev = event.hash = event.compute_hash(prev)
        db.run(
            f"INSERT INTO {{e}} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.seq,
                event.task_id,
                event.version,
                event.action,
                event.from_state.value if event.from_state else None,
                event.to_state.value,
                event.actor_id,
                event.actor_source,
                event.at,
                canonical_json(event.data),
                event.prev_hash,
                event.hash,
            ),
        )
    by_task: dict[str, list[EventRecord]] = {}
    for event in events:
        by_task.setdefault(event.task_id, []).append(event)
    for (task_id,) in db.rows("SELECT task_id FROM {t}"):
        if task_id not in by_task:
            db.run("DELETE FROM {t} WHERE task_id = ?", (task_id,))
    for task_id, its_events in by_task.items():
        task = fold(its_events)
        db.run(
            "UPDATE {t} SET state = ?, version = ?, last_seq = ?, snapshot = ? WHERE task_id = ?",
            (task.state.value, task.version, task.last_seq, task.snapshot_json(), task_id),
        )
    if db.chain_head is not None and events:
        db.run(f"UPDATE {db.chain_head} SET seq = ?, hash = ?", (events[-1].seq, prev))
    db.commit()


def forge(db: Db, change: Callable[[list[EventRecord]], list[EventRecord]], *, renumber: bool = True) -> None:
    """Read the log, let ``change`` rewrite it, write it back fully consistent."""
    rewrite_log(db, change(read_events(db)), renumber=renumber)


def edit_snapshot(db: Db, task_id: str, **fields: Any) -> None:
    """Change fields of one task's stored snapshot JSON only (not its row's columns, not its events)."""
    (text,) = db.rows("SELECT snapshot FROM {t} WHERE task_id = ?", (task_id,))[0]
    snapshot = json.loads(text)
    snapshot.update(fields)
    db.run("UPDATE {t} SET snapshot = ? WHERE task_id = ?", (json.dumps(snapshot), task_id))
    db.commit()
