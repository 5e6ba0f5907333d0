"""The ``Store`` contract, run on every backend in ``conftest.BACKENDS``.

Compare-and-set, ordering, follow, the hash chain, restart — and the same behaviour seen
through ``HITLStateMachine``, including two machines (as two processes would) on one store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest

from hitl_core import (
    AlreadyDecidedError,
    ConflictError,
    Decision,
    DuplicateTaskError,
    HITLStateMachine,
    InterruptPoint,
    MemoryStore,
    Store,
    TaskState,
)
from hitl_core.canonical import GENESIS_HASH, canonical_json, now_us
from hitl_core.models import Actor, DecisionType
from hitl_core.records import EventRecord, TaskRecord
from hitl_core.stores.base import StoredCheckpoint

S = TaskState
OpenUrl = Callable[[str], AbstractAsyncContextManager[Store]]
AT = 1_764_000_000_000_000  # a fixed instant, so two stores can be given identical events
WHEN = datetime(2025, 11, 24, 16, 0, 0, 123456, tzinfo=UTC)


def step(
    task_id: str,
    prev: TaskRecord | None,
    action: str,
    to_state: TaskState,
    *,
    data: dict[str, Any] | None = None,
    at: int | None = None,
    **changes: Any,
) -> tuple[EventRecord, TaskRecord]:
    """The event and new snapshot of one transition, built as the machine builds them."""
    at = now_us() if at is None else at
    version = prev.version + 1 if prev is not None else 1
    event = EventRecord(
        task_id=task_id,
        version=version,
        action=action,
        from_state=prev.state if prev is not None else None,
        to_state=to_state,
        actor_id="agent-1",
        actor_source="agent",
        at=at,
        data=data or {},
    )
    if prev is None:
        task = TaskRecord(
            task_id=task_id, state=to_state, version=1, created_at=at, updated_at=at, history=(event,), **changes
        )
    else:
        task = prev.evolve(state=to_state, version=version, updated_at=at, history=(*prev.history, event), **changes)
    return event, task


async def commit(
    store: Store, task_id: str, prev: TaskRecord | None, action: str, to_state: TaskState, **kwargs: Any
) -> TaskRecord:
    event, task = step(task_id, prev, action, to_state, **kwargs)
    await store.append(event, task, prev.version if prev is not None else None)
    return task


def interrupt(reason: str = "send the invoice?") -> InterruptPoint:
    return InterruptPoint(
        reason=reason,
        context={"amount": 12.5, "to": ["a@example.com"]},
        severity="high",
        interrupt_id="int-1",
        created_at=WHEN,
    )


def decision(who: str = "alice", kind: DecisionType = DecisionType.APPROVE) -> Decision:
    return Decision(
        type=kind, actor=Actor(id=who, source="cli"), message="looks right", interrupt_id="int-1", decided_at=WHEN
    )


async def waiting_task(store: Store, task_id: str = "t1", at: int | None = None) -> TaskRecord:
    """A task created, started and waiting on ``interrupt()``."""
    task = await commit(
        store,
        task_id,
        None,
        "start",
        S.RUNNING,
        data={"agent": "billing", "metadata": {"customer": 7}},
        at=at,
        metadata={"customer": 7},
        agent="billing",
    )
    ask = interrupt()
    return await commit(
        store, task_id, task, "request_approval", S.AWAITING_APPROVAL, data={"interrupt": ask}, at=at, interrupt=ask
    )


# -- basics ---------------------------------------------------------------------------------------


async def test_empty_store_has_no_tasks_and_no_events(store: Store) -> None:
    assert await store.last_seq() == 0
    assert await store.events() == []
    assert await store.query() == []
    assert await store.get("nope") is None
    assert not any((await store.count_by_state()).values())
    report = await store.verify()
    assert report.ok and report.checked == 0


async def test_append_then_get_returns_snapshot_and_history(store: Store) -> None:
    written = await waiting_task(store)
    got = await store.get("t1")
    assert got is not None
    assert (got.state, got.version, got.metadata, got.agent) == (S.AWAITING_APPROVAL, 2, {"customer": 7}, "billing")
    assert got.interrupt == written.interrupt
    assert [e.action for e in got.history] == ["start", "request_approval"]
    assert got.to_context().model_dump() == written.to_context().model_dump()


async def test_append_assigns_increasing_seq_and_last_seq(store: Store) -> None:
    a = await commit(store, "a", None, "start", S.RUNNING)
    b = await commit(store, "b", None, "start", S.RUNNING)
    a2 = await commit(store, "a", a, "complete", S.COMPLETED)
    assert [a.last_seq, b.last_seq, a2.last_seq] == [1, 2, 3]
    assert [e.seq for e in a2.history] == [1, 3]
    assert await store.last_seq() == 3


async def test_appending_a_new_task_whose_id_exists_raises_duplicate_and_writes_nothing(store: Store) -> None:
    await commit(store, "t1", None, "start", S.RUNNING)
    with pytest.raises(DuplicateTaskError, match="t1"):
        await commit(store, "t1", None, "start", S.RUNNING)
    assert await store.last_seq() == 1
    assert (await store.get("t1")).version == 1  # type: ignore[union-attr]


async def test_append_at_a_stale_version_raises_conflict_and_writes_nothing(store: Store) -> None:
    first = await commit(store, "t1", None, "start", S.RUNNING)
    await commit(store, "t1", first, "complete", S.COMPLETED)
    with pytest.raises(ConflictError) as caught:
        await commit(store, "t1", first, "fail", S.FAILED, data={"error": "late"})
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert await store.last_seq() == 2
    assert (await store.get("t1")).state is S.COMPLETED  # type: ignore[union-attr]


async def test_concurrent_appends_at_one_version_exactly_one_wins(store: Store) -> None:
    waiting = await waiting_task(store)
    attempts = [
        step("t1", waiting, "approve", S.APPROVED, data={"decision": decision(f"op{i}")}, decision=decision(f"op{i}"))
        for i in range(16)
    ]
    results = await asyncio.gather(*(store.append(e, t, waiting.version) for e, t in attempts), return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if r is not None)
    got = await store.get("t1")
    assert got is not None and got.decision is not None
    assert got.decision.actor.id == f"op{winners[0]}"
    assert await store.last_seq() == 3


async def test_concurrent_appends_on_different_tasks_all_commit_without_gaps(store: Store) -> None:
    tasks = await asyncio.gather(*(commit(store, f"t{i}", None, "start", S.RUNNING) for i in range(64)))
    assert sorted(t.last_seq for t in tasks) == list(range(1, 65))
    assert [e.seq for e in await store.events()] == list(range(1, 65))


# -- reading ---------------------------------------------------------------------------------------


async def test_events_are_ordered_and_filtered_by_after_limit_and_task(store: Store) -> None:
    a = await commit(store, "a", None, "start", S.RUNNING)
    await commit(store, "b", None, "start", S.RUNNING)
    await commit(store, "a", a, "complete", S.COMPLETED, data={"result": {"ok": True}})
    assert [(e.seq, e.task_id) for e in await store.events()] == [(1, "a"), (2, "b"), (3, "a")]
    assert [e.seq for e in await store.events(after_seq=1)] == [2, 3]
    assert [e.seq for e in await store.events(after_seq=1, limit=1)] == [2]
    assert [e.seq for e in await store.events(task_id="a")] == [1, 3]
    last = (await store.events(after_seq=2))[0]
    assert (last.action, last.from_state, last.to_state, last.data) == (
        "complete",
        S.RUNNING,
        S.COMPLETED,
        {"result": {"ok": True}},
    )


async def test_query_by_state_is_oldest_change_first_with_limit_and_after(store: Store) -> None:
    older = await waiting_task(store, "older")
    await commit(store, "busy", None, "start", S.RUNNING)
    newer = await waiting_task(store, "newer")
    waiting = await store.query(S.AWAITING_APPROVAL)
    assert [r.task_id for r in waiting] == ["older", "newer"]
    assert [r.task_id for r in await store.query(S.AWAITING_APPROVAL, limit=1)] == ["older"]
    assert [r.task_id for r in await store.query(S.AWAITING_APPROVAL, after=older.last_seq)] == ["newer"]
    assert [r.task_id for r in await store.query("running")] == ["busy"]  # type: ignore[arg-type]
    moved = await commit(store, "older", older, "approve", S.APPROVED, decision=decision())
    assert [r.task_id for r in await store.query(S.AWAITING_APPROVAL)] == ["newer"]
    both = await store.query([S.APPROVED, S.AWAITING_APPROVAL])
    assert [(r.task_id, r.last_seq) for r in both] == [("newer", newer.last_seq), ("older", moved.last_seq)]
    assert [r.task_id for r in await store.query()] == ["busy", "newer", "older"]


async def test_count_by_state_counts_each_task_once(store: Store) -> None:
    await waiting_task(store, "w1")
    await waiting_task(store, "w2")
    done = await commit(store, "d", None, "start", S.RUNNING)
    await commit(store, "d", done, "complete", S.COMPLETED)
    counts = {s: n for s, n in (await store.count_by_state()).items() if n}
    assert counts == {S.AWAITING_APPROVAL: 2, S.COMPLETED: 1}


# -- the hash chain --------------------------------------------------------------------------------


async def test_hash_chain_links_every_event_and_verifies(store: Store) -> None:
    waiting = await waiting_task(store)
    await commit(
        store,
        "t1",
        waiting,
        "approve",
        S.APPROVED,
        data={"decision": decision()},
        decision=decision(),
        approvals=(decision(),),
    )
    events = await store.events()
    prev = GENESIS_HASH
    for event in events:
        assert event.prev_hash == prev
        assert event.hash == event.compute_hash(prev)
        prev = event.hash
    report = await store.verify()
    assert report.ok and report.checked == 3


async def test_hashes_and_data_match_the_memory_store_for_the_same_events(store: Store) -> None:
    """What any backend stores hashes exactly as the reference does: the chain is portable."""
    reference = MemoryStore()
    for target in (store, reference):
        waiting = await waiting_task(target, at=AT)
        await commit(
            target,
            "t1",
            waiting,
            "reject",
            S.REJECTED,
            at=AT,
            data={"decision": decision("bob", DecisionType.REJECT)},
            decision=decision("bob", DecisionType.REJECT),
        )
    ours, theirs = await store.events(), await reference.events()
    assert [e.hash for e in ours] == [e.hash for e in theirs]
    assert [canonical_json(e.data) for e in ours] == [canonical_json(e.data) for e in theirs]
    assert [e.to_event().model_dump() for e in ours] == [e.to_event().model_dump() for e in theirs]


# -- follow ----------------------------------------------------------------------------------------


async def _take(follow: Any, n: int) -> list[EventRecord]:
    got: list[EventRecord] = []
    async for event in follow:
        got.append(event)
        if len(got) == n:
            return got
    return got


async def test_follow_yields_events_after_seq_then_new_ones_in_order(store: Store) -> None:
    a = await commit(store, "a", None, "start", S.RUNNING)
    await commit(store, "b", None, "start", S.RUNNING)
    follow = store.follow(after_seq=1)
    reader = asyncio.create_task(_take(follow, 3))
    await asyncio.sleep(0.05)
    await commit(store, "a", a, "complete", S.COMPLETED)
    await commit(store, "c", None, "start", S.RUNNING)
    got = await asyncio.wait_for(reader, 5)
    assert [(e.seq, e.task_id) for e in got] == [(2, "b"), (3, "a"), (4, "c")]
    assert all(e.hash for e in got)
    await follow.aclose()


async def test_follow_sees_appends_made_through_another_instance(shared_url: str, open_url: OpenUrl) -> None:
    async with open_url(shared_url) as follower_side, open_url(shared_url) as writer_side:
        follow = follower_side.follow(after_seq=await follower_side.last_seq())
        reader = asyncio.create_task(_take(follow, 2))
        await asyncio.sleep(0.05)
        waiting = await waiting_task(writer_side)
        got = await asyncio.wait_for(reader, 5)
        assert [e.action for e in got] == ["start", "request_approval"]
        assert got[-1].hash == waiting.history[-1].hash
        await follow.aclose()


async def test_a_second_instance_conflicts_with_the_first(shared_url: str, open_url: OpenUrl) -> None:
    async with open_url(shared_url) as one, open_url(shared_url) as two:
        waiting = await waiting_task(one)
        await commit(two, "t1", waiting, "approve", S.APPROVED, decision=decision("alice"))
        with pytest.raises(ConflictError):
            await commit(one, "t1", waiting, "reject", S.REJECTED, decision=decision("bob", DecisionType.REJECT))
        got = await one.get("t1")
        assert got is not None and got.state is S.APPROVED and got.decision is not None
        assert got.decision.actor.id == "alice"


# -- restart ---------------------------------------------------------------------------------------


async def test_restart_keeps_tasks_events_and_chain(durable_url: str, open_url: OpenUrl) -> None:
    async with open_url(durable_url) as before:
        waiting = await waiting_task(before)
        written = await commit(
            before,
            "t1",
            waiting,
            "approve",
            S.APPROVED,
            data={"decision": decision()},
            decision=decision(),
            approvals=(decision(),),
        )
        events = [(e.seq, e.hash) for e in await before.events()]
    async with open_url(durable_url) as after:
        got = await after.get("t1")
        assert got is not None
        assert got.to_context().model_dump() == written.to_context().model_dump()
        assert [(e.seq, e.hash) for e in await after.events()] == events
        assert [r.task_id for r in await after.query(S.APPROVED)] == ["t1"]
        assert (await after.verify()).ok
        again = await commit(after, "t1", got, "resume", S.RUNNING)
        assert again.last_seq == 4


# -- through the machine ---------------------------------------------------------------------------


async def test_machine_lifecycle_on_the_backend(store_url: str) -> None:
    async with HITLStateMachine(store_url, load_entrypoints=False) as machine:
        await machine.start_task("job", {"n": 1}, agent="billing")
        await machine.request_approval("job", "pay?", {"amount": 3}, action="pay", args={"to": "x"})
        assert [t.task_id for t in await machine.get_pending_approvals()] == ["job"]
        await machine.approve("job", "alice", message="fine")
        assert (await machine.wait_for_decision("job", timeout=5)).actor.id == "alice"
        await machine.resume("job")
        done = await machine.complete("job", {"paid": True})
        assert done.state is S.COMPLETED and done.result == {"paid": True}
        assert [h["action"] for h in done.history] == ["start", "request_approval", "approve", "resume", "complete"]
        assert (await machine.verify()).ok


async def test_get_tasks_lists_unfinished_tasks_and_only_the_recently_finished(store_url: str) -> None:
    """What the console loads on a store with a long history: every unfinished task, however old,
    and the finished tasks whose last event is after ``changed_after``."""
    async with HITLStateMachine(store_url, load_entrypoints=False) as machine:
        await machine.start_task("old-waiting")
        await machine.request_approval("old-waiting", "still needs a person")
        for i in range(6):
            await machine.start_task(f"done-{i}")
            await machine.complete(f"done-{i}")
        await machine.start_task("old-failed")
        await machine.fail("old-failed", "boom")
        cut = await machine.last_seq()
        await machine.start_task("recent-done")
        await machine.complete("recent-done")
        await machine.create_task("recent-pending")

        unfinished = [s for s in TaskState if not s.terminal]
        finished = [s for s in TaskState if s.terminal]
        assert {t.task_id for t in await machine.get_tasks(unfinished)} == {"old-waiting", "recent-pending"}
        assert [t.task_id for t in await machine.get_tasks(finished, changed_after=cut)] == ["recent-done"]
        assert {t.task_id for t in await machine.get_tasks(finished)} == {f"done-{i}" for i in range(6)} | {
            "old-failed",
            "recent-done",
        }
        every = await machine.get_tasks()
        assert len(every) == 10 and [t.task_id for t in every] == [t.task_id for t in await machine.get_all_tasks()]
        assert [t.task_id for t in await machine.get_tasks(None, changed_after=cut)] == [
            "recent-done",
            "recent-pending",
        ], "least recently changed first"
        assert await machine.get_tasks([]) == []
        with pytest.raises(ValueError):
            await machine.get_tasks(["no-such-state"])
        # the unfinished ones are listed from state whatever their age: a change moves them
        await machine.approve("old-waiting", "alice")
        assert {t.task_id: t.state for t in await machine.get_tasks(unfinished)} == {
            "old-waiting": S.APPROVED,
            "recent-pending": S.PENDING,
        }


async def test_history_read_back_equals_history_written(durable_url: str) -> None:
    async with HITLStateMachine(durable_url, load_entrypoints=False) as machine:
        await machine.start_task("job", agent="billing")
        await machine.request_approval("job", "pay?", {"amount": 3}, severity="critical")
        await machine.reject("job", "bob", "too much")
        written = await machine.resume("job")
    async with HITLStateMachine(durable_url, load_entrypoints=False) as machine:
        read = await machine.get_task("job")
        assert read is not None
        assert read.model_dump() == written.model_dump()


async def test_wait_for_decision_returns_when_another_machine_decides(shared_url: str) -> None:
    async with (
        HITLStateMachine(shared_url, load_entrypoints=False) as agent,
        HITLStateMachine(shared_url, load_entrypoints=False) as console,
    ):
        await agent.start_task("job")
        await agent.request_approval("job", "deploy?")
        waiter = asyncio.create_task(agent.wait_for_decision("job", timeout=10))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await console.approve("job", "carol", message="go")
        decided = await asyncio.wait_for(waiter, 5)
        assert (decided.type, decided.actor.id, decided.message) == (DecisionType.APPROVE, "carol", "go")


async def test_two_machines_deciding_at_once_exactly_one_wins_and_the_loser_names_the_winner(shared_url: str) -> None:
    async with (
        HITLStateMachine(shared_url, load_entrypoints=False) as one,
        HITLStateMachine(shared_url, load_entrypoints=False) as two,
    ):
        await one.start_task("job")
        await one.request_approval("job", "deploy?")
        results = await asyncio.gather(
            one.approve("job", "alice"), two.reject("job", "bob", "no"), return_exceptions=True
        )
        losers = [r for r in results if isinstance(r, BaseException)]
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1 and len(losers) == 1
        assert isinstance(losers[0], AlreadyDecidedError)
        winner = winners[0].decision
        assert winner is not None and losers[0].decided_by == winner.actor.id
        assert winner.actor.id in str(losers[0])
        decisions = [e for e in await one.events(task_id="job") if e.action in ("approve", "reject")]
        assert len(decisions) == 1


async def test_listed_tasks_give_their_full_history_when_asked(store: Store) -> None:
    """A store may read a listed task's history lazily; it must still be complete and in order."""
    m = HITLStateMachine(store, load_entrypoints=False)
    for i in range(3):
        await m.start_task(f"t{i}")
        await m.request_approval(f"t{i}", f"why {i}")
    await m.approve("t1", actor="alice")
    listed = {r.task_id: r for r in await store.query()}
    assert [e.action for e in listed["t1"].history] == ["start", "request_approval", "approve"]
    assert len(listed["t0"].history) == 2 and listed["t0"].history[-1].action == "request_approval"
    pending = await m.get_pending_approvals()
    assert [t.task_id for t in pending] == ["t0", "t2"]
    assert [h["action"] for h in pending[1].history] == ["start", "request_approval"]
    assert pending[1].history[1]["reason"] == "why 2"


async def test_a_snapshot_nested_in_another_model_or_dumped_by_a_type_adapter_keeps_its_history(store: Store) -> None:
    """The history a snapshot builds on first use must be there however pydantic serialises it.

    A snapshot's history is filled in when something reads it; pydantic's own serialiser (a model
    holding a ``TaskContext``, a ``TypeAdapter``, FastAPI's response encoding) reads the fields
    without asking. Before the fix the nested dump raised ``KeyError: 'history'`` and the type
    adapter left ``history`` out of its JSON without a word.
    """
    from pydantic import BaseModel, TypeAdapter

    from hitl_core import TaskContext

    class Envelope(BaseModel):
        task: TaskContext

    m = HITLStateMachine(store, load_entrypoints=False)
    await m.start_task("t1")
    returned = await m.request_approval("t1", "why?", {"n": 1})
    fetched = await m.get_task("t1")
    (listed,) = await m.get_pending_approvals()
    for snapshot in (returned, fetched, listed):
        assert [h["action"] for h in Envelope(task=snapshot).model_dump()["task"]["history"]] == [
            "start",
            "request_approval",
        ]
    for snapshot in (await m.get_task("t1"), (await m.get_pending_approvals())[0]):
        (dumped,) = json.loads(TypeAdapter(list[TaskContext]).dump_json([snapshot]))
        assert [h["action"] for h in dumped["history"]] == ["start", "request_approval"]
        assert dumped["history"][1]["reason"] == "why?"


# -- auditing: replay reads and checkpoints ---------------------------------------------------------


async def test_tasks_with_events_pages_by_task_id_each_with_its_events_in_order(store: Store) -> None:
    m = HITLStateMachine(store, load_entrypoints=False)
    for task_id in ("t3", "t1", "t2"):
        await m.start_task(task_id)
    await m.request_approval("t1", "ok?")
    await m.approve("t1", "alice")
    first = await store.tasks_with_events(None, 2)
    assert [row.task_id for row, _ in first] == ["t1", "t2"]
    row, events = first[0]
    assert (row.state, row.version, row.last_seq) == ("approved", 3, 5)
    assert [e.action for e in events] == ["start", "request_approval", "approve"]
    assert [e.seq for e in events] == [2, 4, 5]
    rest = await store.tasks_with_events("t2", 2)
    assert [(row.task_id, [e.seq for e in events]) for row, events in rest] == [("t3", [1])]
    assert await store.tasks_with_events("t3", 2) == []
    assert await store.tasks_without_snapshot() == []


async def test_verify_replays_every_task_the_machine_wrote(store: Store) -> None:
    m = HITLStateMachine(store, load_entrypoints=False)
    await m.create_task("t1", metadata={"a": 1}, step="plan")
    await m.start_task("t1", metadata={"b": 2})
    await m.request_approval("t1", "ok?", args={"n": 1}, required_approvals=2)
    await m.approve("t1", "alice")
    await m.approve("t1", "bob")
    await m.resume("t1", step="go")
    await m.complete("t1", {"done": True})
    report = await store.verify()
    assert report.ok and (report.events, report.tasks, report.last_seq) == (7, 1, 7)
    assert report.first_hash == (await store.events(limit=1))[0].hash


async def test_checkpoints_are_kept_in_seq_order(store: Store) -> None:
    assert await store.checkpoints() == []
    for seq in (5, 2, 5):
        await store.add_checkpoint(StoredCheckpoint(seq, f"body {seq}\n", "c2lnbmF0dXJl"))
    kept = await store.checkpoints()
    assert [c.seq for c in kept] == [2, 5, 5]
    assert kept[0] == StoredCheckpoint(2, "body 2\n", "c2lnbmF0dXJl")


async def test_checkpoints_survive_a_restart(durable_url: str, open_url: OpenUrl) -> None:
    async with open_url(durable_url) as before:
        await before.add_checkpoint(StoredCheckpoint(1, "body\n", "c2ln"))
    async with open_url(durable_url) as after:
        assert await after.checkpoints() == [StoredCheckpoint(1, "body\n", "c2ln")]


# -- a hand-edited database ---------------------------------------------------------------------


async def test_an_event_row_edited_into_invalid_json_and_state_still_reads_and_verify_names_it(
    durable_url: str, open_url: OpenUrl, edit_by_hand: Callable[..., None]
) -> None:
    """Someone with write access to the database turns an event's data into text that is not JSON
    and its state into a word that is no state: every reader still works (the row reads with its
    raw text kept), and ``verify`` reports that event instead of crashing."""
    async with open_url(durable_url) as store:
        await waiting_task(store, "t1")
        await waiting_task(store, "t2")
    await asyncio.to_thread(
        edit_by_hand, durable_url, "UPDATE {events} SET data = ?, to_state = ? WHERE seq = ?", ("{not json", "bogus", 2)
    )
    async with open_url(durable_url) as store:
        edited = (await store.events(after_seq=1, limit=1))[0]
        assert edited.seq == 2 and edited.data == {"unreadable_data": "{not json"} and edited.to_state == "bogus"
        assert [e.seq for e in await store.events()] == [1, 2, 3, 4]
        task = await store.get("t1")
        assert task is not None and [e.seq for e in task.history] == [1, 2]
        listed = await store.query()
        assert [t.task_id for t in listed] == ["t1", "t2"] and [e.seq for e in listed[0].history] == [1, 2]
        page = await store.tasks_with_events()
        assert [[e.seq for e in events] for _, events in page] == [[1, 2], [3, 4]]
        report = await store.verify()
    assert not report.ok and report.first_bad_seq == 2, report
    assert report.problem is not None and "2" in report.problem
