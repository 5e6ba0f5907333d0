"""The server's audit chain (``Store.append_audit`` / ``audit_records``) on every backend: its own
gap-free, hash-chained sequence; never an event (no task, no seq of the log moves); kept across a
restart; walked by ``verify``, so a record edited or removed by hand is named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from test_store_contract import waiting_task

from hitl_core import Store
from hitl_core.canonical import GENESIS_HASH
from hitl_core.stores.base import audit_hash

OpenUrl = Callable[[str], AbstractAsyncContextManager[Store]]


async def test_audit_records_form_their_own_chain(store: Store) -> None:
    assert await store.audit_records() == []
    first = await store.append_audit("refused", "bob", {"status": 403, "why": "not an assignee"}, 1)
    second = await store.append_audit("policy_applied", "root", {"version": 1, "hash": "ab"}, 2)
    third = await store.append_audit("refused", None, {"status": 401}, 3)
    assert [r.seq for r in (first, second, third)] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.hash == audit_hash(GENESIS_HASH, 1, "refused", "bob", 1, {"status": 403, "why": "not an assignee"})
    assert await store.audit_records() == [first, second, third]
    assert await store.audit_records(kind="refused") == [first, third]
    assert await store.audit_records(after_seq=1, limit=1) == [second]
    assert await store.last_audit_record("policy_applied") == second
    assert await store.last_audit_record("nothing") is None


async def test_an_audit_record_is_not_an_event(store: Store) -> None:
    await waiting_task(store, "t1")
    seq, events = await store.last_seq(), [e.hash for e in await store.events()]
    task = await store.get("t1")
    await store.append_audit("refused", "bob", {"task_id": "t1"}, 1)
    assert await store.last_seq() == seq and [e.hash for e in await store.events()] == events
    after = await store.get("t1")
    assert after is not None and task is not None and after.version == task.version
    report = await store.verify()
    assert report.ok and report.audit_records == 1 and report.events == seq


async def test_concurrent_audit_appends_stay_one_chain(shared_url: str, open_url: OpenUrl) -> None:
    async with open_url(shared_url) as one, open_url(shared_url) as two:
        await asyncio.gather(*(s.append_audit("refused", f"p{i}", {"i": i}, i) for i in range(20) for s in (one, two)))
        records = await one.audit_records()
        assert [r.seq for r in records] == list(range(1, 41))
        assert (await two.verify()).ok


async def test_audit_records_survive_a_restart(durable_url: str, open_url: OpenUrl) -> None:
    async with open_url(durable_url) as before:
        made = await before.append_audit("policy_applied", "root", {"text": "[deadlines]\n", "version": 1}, 7)
    async with open_url(durable_url) as after:
        assert await after.audit_records() == [made]
        assert (await after.append_audit("refused", None, {}, 8)).prev_hash == made.hash


async def test_an_audit_record_edited_or_removed_by_hand_fails_verify(
    durable_url: str, open_url: OpenUrl, edit_by_hand: Callable[..., None]
) -> None:
    async with open_url(durable_url) as store:
        for i in range(3):
            await store.append_audit("refused", "mallory", {"path": "/v1/tasks/x/approve", "i": i}, i)
    await asyncio.to_thread(edit_by_hand, durable_url, "UPDATE {audit} SET actor = ? WHERE seq = ?", ("alice", 1))
    async with open_url(durable_url) as store:
        report = await store.verify()
        assert not report.ok and "audit record 1 (refused) was altered" in report.problems[0]
    await asyncio.to_thread(edit_by_hand, durable_url, "UPDATE {audit} SET actor = ? WHERE seq = ?", ("mallory", 1))
    await asyncio.to_thread(edit_by_hand, durable_url, "DELETE FROM {audit} WHERE seq = ?", (2,))
    async with open_url(durable_url) as store:
        report = await store.verify()
        assert (
            not report.ok and "audit record 3 (refused) does not point at the audit record before it" in report.problem
        )
