"""Listings hand out the same read-only snapshot while a task has not moved.

``get_pending_approvals()`` and the other listings reuse the snapshot built for the very same
record before (``HITLStateMachine._contexts``): what makes a listing of 10,000 waiting tasks cost a
few milliseconds. These tests hold the reuse to its promise: never a snapshot of an older
version, never one a caller could change for the next caller, and never an unbounded cache.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hitl_core import HITLStateMachine, TaskState
from hitl_core import machine as machine_module


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/hitl.db"


async def test_a_task_that_has_not_moved_is_listed_as_the_same_snapshot_and_a_moved_one_afresh(url: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for task_id in ("a", "b"):
            await m.start_task(task_id)
            await m.request_approval(task_id, "ok?")
        first = await m.get_pending_approvals()
        again = await m.get_pending_approvals()
        assert [t.task_id for t in again] == ["a", "b"]
        assert again[0] is first[0] and again[1] is first[1]
        assert (await m.get_task("a")) is first[0]
        await m.approve("a", "alice")
        (b,) = await m.get_pending_approvals()
        assert b is first[1]
        (a,) = await m.get_tasks_by_state(TaskState.APPROVED)
        assert a.state is TaskState.APPROVED and a.version == first[0].version + 1
        assert first[0].state is TaskState.AWAITING_APPROVAL  # the old snapshot is still what it was


async def test_a_snapshot_is_read_only_so_one_caller_cannot_change_what_the_next_is_handed(url: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        await m.start_task("a")
        await m.request_approval("a", "deploy?", severity="low")
        (listed,) = await m.get_pending_approvals()
        for field, value in (("state", TaskState.APPROVED), ("version", 99), ("error", "x"), ("interrupt_point", None)):
            with pytest.raises(ValidationError, match="frozen"):
                setattr(listed, field, value)
        (again,) = await m.get_pending_approvals()
        assert again.state is TaskState.AWAITING_APPROVAL and again.version == 2
        assert again.interrupt_point is not None and again.interrupt_point.reason == "deploy?"
        copy = again.model_copy(update={"error": "mine"}, deep=True)  # the way to a changed copy
        assert copy.error == "mine" and again.error is None


async def test_the_kept_snapshots_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_module, "_CONTEXTS_MAX", 5)
    async with HITLStateMachine("memory://", load_entrypoints=False) as m:
        for i in range(8):
            await m.start_task(f"t{i}")
        assert len(await m.get_tasks_by_state(TaskState.RUNNING)) == 8  # bigger than the cache: none kept
        assert len(m._contexts) == 0
        for i in range(4):
            await m.get_task(f"t{i}")
        assert len(m._contexts) == 4
        for i in range(4, 8):
            await m.get_task(f"t{i}")
        assert len(m._contexts) <= 5
        assert [t.task_id for t in await m.get_tasks_by_state(TaskState.RUNNING)] == [f"t{i}" for i in range(8)]


async def test_an_observer_and_the_caller_are_handed_one_snapshot_and_nothing_more_is_kept(url: str) -> None:
    from hitl_core import hookimpl

    seen = []

    class Observer:
        @hookimpl
        def hitl_transition(self, event: object, task: object) -> None:
            seen.append(task)

    async with HITLStateMachine(url, plugins=[Observer()], load_entrypoints=False) as m:
        started = await m.start_task("a")
        asked = await m.request_approval("a", "ok?")
        assert seen == [started, asked] and seen[0] is started and seen[1] is asked
        assert m._contexts == {}  # no listing yet: a waiting task holds no extra snapshot
