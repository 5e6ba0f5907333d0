"""``Store.append_many``: several transitions in one transaction, all or none, on every backend.

The machine commits what happens together (a task that starts and asks at once, a run's last
completions) with one ``append_many``; each event still gets its own sequence number, chain link
and history entry. These tests forge the failing cases an attacker or a race would produce: a
stale version in the middle of a group, an id that exists, a bad group beside good appends.
"""

from __future__ import annotations

import asyncio

import pytest
from test_store_contract import commit, interrupt, step

from hitl_core import ConflictError, DuplicateTaskError, HITLStateMachine, Store, TaskState

S = TaskState


async def test_append_many_commits_each_event_with_its_own_seq_and_link(store: Store) -> None:
    assert store.atomic_batches
    started_event, started = step("t1", None, "start", S.RUNNING)
    ask = interrupt()
    asked_event, asked = step(
        "t1", started, "request_approval", S.AWAITING_APPROVAL, data={"interrupt": ask}, interrupt=ask
    )
    other_event, other = step("t2", None, "start", S.RUNNING)
    await store.append_many([(started_event, started, None), (asked_event, asked, 1), (other_event, other, None)])

    events = await store.events()
    assert [(e.seq, e.task_id, e.version, e.action) for e in events] == [
        (1, "t1", 1, "start"),
        (2, "t1", 2, "request_approval"),
        (3, "t2", 1, "start"),
    ]
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    got = await store.get("t1")
    assert got is not None and got.state is S.AWAITING_APPROVAL and got.version == 2 and got.last_seq == 2
    assert [e.action for e in got.history] == ["start", "request_approval"]
    assert (await store.verify()).ok


async def test_append_many_with_a_stale_step_in_the_middle_writes_nothing(store: Store) -> None:
    existing = await commit(store, "t1", None, "start", S.RUNNING)
    new_event, new = step("t2", None, "start", S.RUNNING)
    # t1 is at version 1: a step that claims to have read version 5 is stale.
    stale_event, stale = step("t1", existing, "complete", S.COMPLETED)
    stale_event.version, stale.version = 6, 6
    with pytest.raises(ConflictError):
        await store.append_many([(new_event, new, None), (stale_event, stale, 5)])
    assert await store.get("t2") is None
    assert await store.last_seq() == 1
    assert [e.task_id for e in await store.events()] == ["t1"]
    assert (await store.verify()).ok


async def test_append_many_starting_an_existing_id_raises_duplicate_and_writes_nothing(store: Store) -> None:
    await commit(store, "t1", None, "start", S.RUNNING)
    again_event, again = step("t1", None, "start", S.RUNNING)
    ask = interrupt()
    asked_event, asked = step(
        "t1", again, "request_approval", S.AWAITING_APPROVAL, data={"interrupt": ask}, interrupt=ask
    )
    # The second step expects version 1 — which the *existing* task has: it must not apply alone.
    with pytest.raises(DuplicateTaskError):
        await store.append_many([(again_event, again, None), (asked_event, asked, 1)])
    got = await store.get("t1")
    assert got is not None and got.state is S.RUNNING and got.version == 1
    assert await store.last_seq() == 1


async def test_a_refused_group_does_not_fail_appends_committed_beside_it(store: Store) -> None:
    await commit(store, "taken", None, "start", S.RUNNING)
    dup_event, dup = step("taken", None, "start", S.RUNNING)
    fresh_event, fresh = step("fresh", None, "start", S.RUNNING)
    good_event, good = step("good", None, "start", S.RUNNING)
    good2_event, good2 = step("good", good, "complete", S.COMPLETED)
    results = await asyncio.gather(
        store.append_many([(fresh_event, fresh, None), (dup_event, dup, None)]),
        store.append(*step("alone", None, "start", S.RUNNING), None),
        store.append_many([(good_event, good, None), (good2_event, good2, 1)]),
        return_exceptions=True,
    )
    assert isinstance(results[0], DuplicateTaskError)
    assert results[1] is None and results[2] is None
    assert await store.get("fresh") is None
    assert {e.task_id for e in await store.events()} == {"taken", "alone", "good"}
    assert [e.seq for e in await store.events()] == [1, 2, 3, 4]
    assert (await store.verify()).ok


async def test_machine_start_and_request_is_two_events_every_observer_sees(store_url: str) -> None:
    seen: list[tuple[str, int]] = []
    machine = HITLStateMachine(store_url, load_entrypoints=False)
    machine.add_callback(lambda task, old, new: seen.append((new.value, task.version)))
    try:
        task = await machine._start_and_request(
            "t1", {"agent": "billing", "metadata": {"n": 1}}, "send it?", {"amount": 3}, step="send"
        )
        assert task.state is S.AWAITING_APPROVAL and task.version == 2 and task.current_step == "send"
        assert seen == [("running", 1), ("awaiting_approval", 2)]
        events = await machine.events(task_id="t1")
        assert [e.action for e in events] == ["start", "request_approval"]
        assert (await machine.verify()).ok
        # An id that exists is refused whole: nothing more is written.
        with pytest.raises(DuplicateTaskError):
            await machine._start_and_request("t1", {}, "again?")
        assert len(await machine.events()) == 2
    finally:
        await machine.close()
