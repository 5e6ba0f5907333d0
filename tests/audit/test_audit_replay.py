"""Replay: every stored snapshot must equal the fold of its task's events.

The attack these pin down: edit the ``tasks`` table alone (a waiting task's snapshot says
"approved", with a decision nobody made) and a restarted agent acts on it — while the hash chain,
which covers only the events, still verifies.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from audit_forgery import edit_snapshot, forge, read_events, sqlite_db
from audit_helpers import Target, child_env, make_history, postgres_target

from hitl_core import HITLStateMachine, TaskState
from hitl_core.canonical import now_us
from hitl_core.records import EventRecord, ReplayError, fold
from hitl_core.stores.sqlite import SqliteStore

INJECTED_DECISION = {
    "type": "approve",
    "actor": {"id": "mallory", "source": "cli"},
    "option": None,
    "message": None,
    "edited_args": None,
    "response": None,
    "decided_at": "2026-01-01T00:00:00Z",
    "interrupt_id": None,
    "outcome": None,
}


async def _verify(url: str) -> Any:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        return await m.verify()


def test_snapshot_only_edit_is_named_by_verify(db_url: str, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(
        "UPDATE tasks SET snapshot = json_set(snapshot, '$.state', 'approved', '$.decision', json(?)) "
        "WHERE task_id = 't2'",
        (json.dumps(INJECTED_DECISION),),
    )
    conn.commit()
    conn.close()

    async def restarted_agent() -> Any:
        async with HITLStateMachine(db_url, load_entrypoints=False) as m:
            return await m.get_task("t2")

    # The attack is real: a restarted agent reads the forged approval.
    forged = asyncio.run(restarted_agent())
    assert forged.state is TaskState.APPROVED and forged.decision.actor.id == "mallory"

    report = asyncio.run(_verify(db_url))
    assert not report.ok
    decision, state = report.problems
    assert decision.startswith('task \'t2\' snapshot was edited: decision is {"actor":{"id":"mallory"')
    assert decision.endswith(", its events say null")
    assert state == 'task \'t2\' snapshot was edited: state is "approved", its events say "awaiting_approval"'


def test_state_column_edit_is_named_by_verify(db_url: str, db_path: Path) -> None:
    """The ``state`` column is what ``get_pending_approvals`` looks up: hiding a waiting task there shows."""
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE tasks SET state = 'completed' WHERE task_id = 't2'")
    conn.commit()
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems == [
        "task 't2' row was edited: its state column is 'completed', its events say 'awaiting_approval'"
    ]


def test_deleted_task_row_is_named_by_verify(db_url: str, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM tasks WHERE task_id = 't2'")
    conn.commit()
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems == ["task 't2' has events but no snapshot: its task row was deleted"]


def test_task_row_inserted_without_events_is_named_by_verify(db_url: str, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    snapshot = conn.execute("SELECT snapshot FROM tasks WHERE task_id = 't1'").fetchone()[0]
    conn.execute(
        "INSERT INTO tasks (task_id, state, version, last_seq, snapshot) VALUES ('ghost', 'approved', 1, 1, ?)",
        (snapshot.replace('"t1"', '"ghost"'),),
    )
    conn.commit()
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems == [
        "task 'ghost' has a snapshot but no events: it was inserted by hand, or its events were deleted"
    ]


def test_forged_illegal_event_with_a_recomputed_chain_does_not_replay(db_url: str, db_path: Path) -> None:
    """An approval appended to a task that never asked: the chain is recomputed, so only replay sees it."""

    def approve_completed_t1(events: list[EventRecord]) -> list[EventRecord]:
        last = [e for e in events if e.task_id == "t1"][-1]
        forged = EventRecord(
            "t1", last.version + 1, "approve", TaskState.RUNNING, TaskState.APPROVED, "mallory", "cli", now_us(), {}
        )
        return [*events, forged]

    conn = sqlite3.connect(db_path)
    db = sqlite_db(conn)
    # The forger's own fold refuses too; they write the rows by hand instead.
    with pytest.raises(ReplayError, match="starts from running, but the task was completed"):
        forge(db, approve_completed_t1)
    conn.rollback()
    events = approve_completed_t1(read_events(db))
    prev = events[-2].hash
    bad = events[-1]
    bad.seq, bad.prev_hash = events[-2].seq + 1, prev
    bad.hash = bad.compute_hash(prev)
    conn.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (bad.seq, "t1", bad.version, "approve", "running", "approved", "mallory", "cli", bad.at, "{}", prev, bad.hash),
    )
    conn.execute(
        "UPDATE tasks SET state = 'approved', version = ?, last_seq = ? WHERE task_id = 't1'", (bad.version, bad.seq)
    )
    conn.commit()
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems[0] == (
        "task 't1' does not replay: event 13 (task 't1', approve) starts from running, but the task was completed"
    )


def test_snapshot_edit_of_a_json_field_is_named(db_url: str, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    edit_snapshot(sqlite_db(conn), "t1", result={"refunded": 12000})
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems == [
        'task \'t1\' snapshot was edited: result is {"refunded":12000}, its events say {"refunded":120}'
    ]


def test_fold_of_no_events_is_refused() -> None:
    with pytest.raises(ReplayError, match="a task without events"):
        fold([])


def test_verify_reads_a_large_store_a_page_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,200 tasks are replayed in pages of at most 500 tasks, never all at once."""
    url = f"sqlite:///{tmp_path / 'big.db'}"

    async def fill() -> None:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            for i in range(1200):
                await m.start_task(f"job-{i:05d}")

    asyncio.run(fill())
    pages: list[int] = []
    real = SqliteStore.tasks_with_events

    async def counting(self: SqliteStore, after_task_id: str | None = None, limit: int = 500) -> Any:
        page = await real(self, after_task_id, limit)
        pages.append(len(page))
        return page

    monkeypatch.setattr(SqliteStore, "tasks_with_events", counting)
    report = asyncio.run(_verify(url))
    assert report.ok and report.tasks == 1200
    assert pages == [500, 500, 200, 0]


def test_snapshot_only_edit_is_named_by_verify_on_postgresql(tmp_path: Path) -> None:
    target = postgres_target(tmp_path)
    asyncio.run(make_history(target.url))
    with target.open_db() as db:
        edit_snapshot(db, "t2", state="approved", decision=INJECTED_DECISION)
        db.run("UPDATE {t} SET state = 'approved' WHERE task_id = 't2'")
        db.commit()
    report = asyncio.run(_verify(target.url))
    decision, state, column = report.problems
    assert decision.startswith('task \'t2\' snapshot was edited: decision is {"actor":{"id":"mallory"')
    assert state == 'task \'t2\' snapshot was edited: state is "approved", its events say "awaiting_approval"'
    assert column == "task 't2' row was edited: its state column is 'approved', its events say 'awaiting_approval'"


def test_snapshot_field_removed_by_hand_is_named_only_when_it_had_a_value(db_url: str, db_path: Path) -> None:
    """A missing field reads as empty: removing t1's (empty) error changes nothing, removing its result does."""
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE tasks SET snapshot = json_remove(snapshot, '$.error', '$.result') WHERE task_id = 't1'")
    conn.commit()
    conn.close()
    report = asyncio.run(_verify(db_url))
    assert report.problems == ["task 't1' snapshot was edited: result is missing (its events say {\"refunded\":120})"]


WRITER = """
import asyncio, sys
from hitl_core import HITLStateMachine
async def main(url, n):
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        print("READY", flush=True)
        for i in range(n):
            task_id = f"w{i}"
            await m.start_task(task_id)
            await m.request_approval(task_id, "ok?")
            await m.approve(task_id, "alice")
            await m.resume(task_id)
            await m.complete(task_id)
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_verify_while_another_process_writes_finds_nothing_wrong(target: Target) -> None:
    """Each page of tasks is read with its events at one point in time: a task committing meanwhile is
    never seen half-written (a snapshot ahead of the events read with it)."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, target.url, "400"], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "READY"
        reports = []
        while writer.poll() is None or not reports:
            reports.append(asyncio.run(_verify(target.url)))
        assert writer.wait(120) == 0
        reports.append(asyncio.run(_verify(target.url)))
    finally:
        writer.kill()
        writer.wait()
    assert [r.problems for r in reports if not r.ok] == []
    assert reports[-1].tasks == 403 and len(reports) >= 2
