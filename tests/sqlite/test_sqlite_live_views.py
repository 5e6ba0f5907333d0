"""A SQLite store's listings of live states come from views kept current from the event log.

``get_pending_approvals()`` and the other listings of non-terminal states are answered from an
in-memory view of (task id, version, last_seq) per state, read once and then brought up to date
with the events committed since, by this process or any other. These tests hold that view to
what the tasks table says, after every step of random work done by two stores (two connections,
as two processes are) and by a real second process, across a rebuild, and against a hand-edited
event.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_core.stores import sqlite as sqlite_module
from hitl_core.stores.sqlite import LIVE_STATES


def table_says(path: Path, states: list[TaskState], after: int | None = None) -> list[tuple[str, int]]:
    """(task id, version) of the tasks in ``states`` by the tasks table, least recently changed first."""
    conn = sqlite3.connect(path)
    try:
        sql = f"SELECT task_id, version FROM tasks WHERE state IN ({', '.join('?' * len(states))})"
        params: list[Any] = [s.value for s in states]
        if after is not None:
            sql += " AND last_seq > ?"
            params.append(after)
        return [tuple(row) for row in conn.execute(sql + " ORDER BY last_seq", params)]  # type: ignore[misc]
    finally:
        conn.close()


async def listed(machine: HITLStateMachine, states: list[TaskState], after: int | None = None) -> list[tuple[str, int]]:
    records = await machine.store.query(states if len(states) > 1 else states[0], after=after)
    return [(r.task_id, r.version) for r in records]


async def random_step(machine: HITLStateMachine, rng: random.Random, ids: list[str]) -> None:
    task_id = rng.choice(ids)
    action = rng.choice(["start", "ask", "approve", "reject", "resume", "complete", "fail"])
    try:
        if action == "start":
            await machine.start_task(task_id)
        elif action == "ask":
            await machine.request_approval(task_id, "go on?", {"n": 1})
        elif action == "approve":
            await machine.approve(task_id, "alice")
        elif action == "reject":
            await machine.reject(task_id, "bob", message="no")
        elif action == "resume":
            await machine.resume(task_id)
        elif action == "complete":
            await machine.complete(task_id)
        else:
            await machine.fail(task_id, "boom")
    except HITLError:
        pass  # an illegal step for the task's state: nothing written


async def test_listings_follow_the_tasks_table_through_random_work_by_two_stores(tmp_path: Path) -> None:
    path = tmp_path / "hitl.db"
    rng = random.Random(14)
    ids = [f"t{i}" for i in range(40)]
    async with (
        HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as one,
        HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as two,
    ):
        for step in range(600):
            await random_step(rng.choice([one, two]), rng, ids)
            if step % 7 == 0:
                for state in LIVE_STATES:
                    assert await listed(one, [state]) == table_says(path, [state]), (step, state)
                assert await listed(two, [TaskState.APPROVED, TaskState.REJECTED]) == table_says(
                    path, [TaskState.APPROVED, TaskState.REJECTED]
                ), step
                after = step * 5
                assert await listed(one, [TaskState.RUNNING], after=after) == table_says(
                    path, [TaskState.RUNNING], after=after
                ), step
        pending = await one.get_pending_approvals()
        assert [(t.task_id, t.version) for t in pending] == table_says(path, [TaskState.AWAITING_APPROVAL])
        assert all(t.state is TaskState.AWAITING_APPROVAL for t in pending)


@pytest.mark.processes
async def test_a_listing_sees_what_another_process_committed(tmp_path: Path, spawn: Any) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        await machine.start_task("mine")
        await machine.request_approval("mine", "ok?")
        assert [t.task_id for t in await machine.get_pending_approvals()] == ["mine"]
        churner = spawn("churn", url, "other")
        for _ in range(12):  # a little over two lifecycles of the other process
            churner.read_until("ACK")
        churner.kill()
        for state in LIVE_STATES:
            assert await listed(machine, [state]) == table_says(path, [state]), state
        # The churner asks and then approves at once: whatever it left waiting is listed too.
        waiting = table_says(path, [TaskState.AWAITING_APPROVAL])
        assert [(t.task_id, t.version) for t in await machine.get_pending_approvals()] == waiting
        assert waiting[0][0] == "mine"


async def test_a_view_far_behind_the_log_is_read_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "VIEW_REBUILD_AFTER", 3)
    path = tmp_path / "hitl.db"
    async with (
        HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as reader,
        HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as writer,
    ):
        assert await reader.get_pending_approvals() == []
        for i in range(5):  # 10 events: more than the view takes one by one
            await writer.start_task(f"t{i}")
            await writer.request_approval(f"t{i}", "ok?")
        await writer.approve("t2", "alice")
        assert [t.task_id for t in await reader.get_pending_approvals()] == ["t0", "t1", "t3", "t4"]
        await writer.approve("t0", "alice")  # 1 event: taken one by one
        assert [t.task_id for t in await reader.get_pending_approvals()] == ["t1", "t3", "t4"]
        assert [t.task_id for t in await reader.get_tasks_by_state(TaskState.APPROVED)] == ["t2", "t0"]


async def test_a_hand_edited_state_in_the_log_does_not_break_a_listing(tmp_path: Path) -> None:
    """An event whose ``to_state`` was edited to nonsense is in no view; ``verify`` names it."""
    path = tmp_path / "hitl.db"
    async with HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as machine:
        await machine.start_task("a")
        await machine.request_approval("a", "ok?")
        assert [t.task_id for t in await machine.get_pending_approvals()] == ["a"]
        await machine.start_task("b")
        conn = sqlite3.connect(path)
        conn.execute("UPDATE events SET to_state = 'bogus' WHERE task_id = 'b'")
        conn.commit()
        conn.close()
        await machine.start_task("c")
        assert [t.task_id for t in await machine.get_tasks_by_state(TaskState.RUNNING)] == ["c"]
        assert [t.task_id for t in await machine.get_pending_approvals()] == ["a"]
        report = await machine.verify()
        assert not report.ok
