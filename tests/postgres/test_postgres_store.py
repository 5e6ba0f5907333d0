"""The PostgreSQL store on a real server: its contract, its concurrency, and each bad input."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pg_cluster import PASSWORD, LocalCluster, free_port, require_psycopg

from hitl_core import (
    AlreadyDecidedError,
    ConflictError,
    DuplicateTaskError,
    HITLStateMachine,
    StoreError,
    TaskState,
)
from hitl_core.canonical import now_us
from hitl_core.records import EventRecord, TaskRecord
from hitl_core.stores.postgres import SCHEMA_VERSION, PostgresStore

psycopg = require_psycopg()


def machine(url: str) -> HITLStateMachine:
    return HITLStateMachine(url, load_entrypoints=False)


def new_task(
    task_id: str,
    version: int = 1,
    state: TaskState = TaskState.RUNNING,
    from_state: TaskState | None = None,
    action: str = "start",
) -> tuple[EventRecord, TaskRecord]:
    at = now_us()
    event = EventRecord(task_id, version, action, from_state, state, "agent", "agent", at, {"n": version})
    return event, TaskRecord(task_id=task_id, state=state, version=version, created_at=at, updated_at=at)


async def collect(store: PostgresStore, after: int, count: int, timeout: float = 20) -> list[EventRecord]:
    seen: list[EventRecord] = []

    async def run() -> None:
        async for event in store.follow(after):
            seen.append(event)
            if len(seen) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return seen


async def test_open_creates_the_schema_and_records_its_version(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.open()  # idempotent
    await store.close()
    again = PostgresStore(pg_url)
    await again.open()  # a second process finds the schema current and migrates nothing
    await again.close()
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM hitl_schema_version")]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'hitl_%'")}
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"hitl_tasks_state_last_seq", "hitl_events_task_version"} <= indexes


async def test_info_reports_schema_version_and_counts_without_the_password(pg_url: str) -> None:
    async with machine(pg_url) as m:
        await m.start_task("t")
        info = await m.store.info()  # type: ignore[attr-defined]
    assert info["schema_version"] == SCHEMA_VERSION and info["tasks"] == 1 and info["last_seq"] == 1
    assert info["by_state"] == {"running": 1} and PASSWORD not in str(info)


async def test_postgres_scheme_is_an_alias_and_the_store_is_shared_and_durable(pg_url: str) -> None:
    m = machine(pg_url.replace("postgresql://", "postgres://", 1))
    assert isinstance(m.store, PostgresStore)
    assert m.store.shared and m.store.durable
    async with m:
        await m.start_task("t")
        assert (await m.get_task("t")).state is TaskState.RUNNING


def test_the_url_shown_to_people_has_no_password(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    assert PASSWORD not in store.url and PASSWORD not in repr(store)
    assert store.url.startswith("postgresql://postgres@127.0.0.1:")


async def test_append_is_compare_and_set(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        event, task = new_task("t")
        await store.append(event, task, None)
        assert event.seq == task.last_seq == 1 and event.hash and event.prev_hash == "0" * 64
        dup_event, dup_task = new_task("t")
        with pytest.raises(DuplicateTaskError, match="'t' already exists"):
            await store.append(dup_event, dup_task, None)
        stale_event, stale_task = new_task(
            "t", version=2, state=TaskState.AWAITING_APPROVAL, from_state=TaskState.RUNNING, action="request_approval"
        )
        ahead_event, ahead_task = new_task(
            "t", version=6, state=TaskState.AWAITING_APPROVAL, from_state=TaskState.RUNNING, action="request_approval"
        )
        with pytest.raises(ConflictError, match="expected version 5, found 1"):
            await store.append(ahead_event, ahead_task, 5)
        assert await store.last_seq() == 1  # nothing written by the losers
        await store.append(stale_event, stale_task, 1)
        assert stale_event.seq == 2 and stale_event.prev_hash == event.hash
        got = await store.get("t")
        assert got is not None and got.version == 2 and got.last_seq == 2
        assert [e.seq for e in got.history] == [1, 2]
        assert (await store.verify(replay=False)).ok  # the chain; "start" twice is no legal history to replay
    finally:
        await store.close()


async def test_concurrent_deciders_on_separate_connections_decide_exactly_once(pg_url: str) -> None:
    """Ten machines (ten pools) race to approve each of 30 tasks: exactly one wins each."""
    agent = machine(pg_url)
    deciders = [machine(pg_url) for _ in range(10)]
    async with agent:
        for i in range(30):
            await agent.start_task(f"t{i}")
            await agent.request_approval(f"t{i}", "go?")
        for d in deciders:
            await d._ready()

        async def approve(d: HITLStateMachine, task_id: str, who: str) -> bool:
            try:
                await d.approve(task_id, who)
                return True
            except (AlreadyDecidedError, ConflictError):
                return False

        results = await asyncio.gather(
            *(approve(d, f"t{i}", f"op{n}") for i in range(30) for n, d in enumerate(deciders))
        )
        assert sum(results) == 30
        for i in range(30):
            approvals = [e for e in await agent.events(task_id=f"t{i}") if e.action == "approve"]
            assert len(approvals) == 1
        assert (await agent.verify()).ok
    for d in deciders:
        await d.close()


async def test_group_commit_keeps_each_append_independent(pg_url: str) -> None:
    """Appends queued together commit together, but one's conflict doesn't fail its neighbours."""
    store = PostgresStore(pg_url)
    await store.open()
    try:
        pairs = [new_task(f"t{i}") for i in range(50)]
        clash = new_task("t7")
        results = await asyncio.gather(*(store.append(e, t, None) for e, t in [*pairs, clash]), return_exceptions=True)
        assert [r for r in results if r is not None] and isinstance(results[-1], DuplicateTaskError)
        assert results[:50] == [None] * 50
        assert sorted(e.seq for e, _ in pairs) == list(range(1, 51))
        assert (await store.verify()).checked == 50
    finally:
        await store.close()


async def test_an_append_the_database_rejects_fails_alone_in_its_batch(pg_url: str) -> None:
    """One append in a group commit breaks a database rule (version beyond integer range): it
    fails with a StoreError saying so, and the appends queued with it still commit."""
    store = PostgresStore(pg_url)
    await store.open()
    try:
        pairs = [new_task(f"t{i}") for i in range(20)]
        bad_event, bad_task = new_task("bad", version=2**40)
        results = await asyncio.gather(
            *(store.append(e, t, None) for e, t in [*pairs[:10], (bad_event, bad_task), *pairs[10:]]),
            return_exceptions=True,
        )
        assert isinstance(results[10], StoreError) and "out of range" in str(results[10])
        assert "'bad'" in str(results[10])
        assert [r for i, r in enumerate(results) if i != 10] == [None] * 20
        assert await store.get("bad") is None and await store.last_seq() == 20
        assert (await store.verify()).ok
    finally:
        await store.close()


@pytest.mark.parametrize("lost", ["before the commit", "after the commit"])
async def test_a_connection_lost_around_a_commit_neither_loses_nor_doubles_the_append(
    pg_url: str, lost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops once, before or after the server committed: the append is retried
    or found already committed, and the log holds it exactly once."""
    store = PostgresStore(pg_url)
    await store.open()
    try:
        original = store._run_batch
        failures = []

        async def flaky(conn: object, batch: list[object]) -> list[tuple[object, ...]]:
            if not failures and lost == "before the commit":
                failures.append(1)
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            rows = await original(conn, batch)  # type: ignore[arg-type]
            if not failures:
                failures.append(1)
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return rows

        monkeypatch.setattr(store, "_run_batch", flaky)
        event, task = new_task("t")
        await store.append(event, task, None)
        assert failures and event.seq == 1 and event.hash
        assert [e.seq for e in await store.events()] == [1]
        assert (await store.get("t")).version == 1  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_query_uses_state_and_returns_oldest_change_first(pg_url: str) -> None:
    async with machine(pg_url) as m:
        for i in range(5):
            await m.start_task(f"t{i}")
        await m.request_approval("t3", "?")
        await m.request_approval("t1", "?")
        waiting = await m.store.query(TaskState.AWAITING_APPROVAL)
        assert [r.task_id for r in waiting] == ["t3", "t1"]
        assert [r.task_id for r in await m.store.query(TaskState.RUNNING, limit=2)] == ["t0", "t2"]
        assert await m.store.count_by_state() == {TaskState.RUNNING: 3, TaskState.AWAITING_APPROVAL: 2}
        with psycopg.connect(pg_url) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN SELECT task_id FROM hitl_tasks WHERE state = ANY(ARRAY['awaiting_approval']) "
                    "ORDER BY last_seq"
                )
            )
        assert "hitl_tasks_state_last_seq" in plan


async def test_follow_sees_commits_from_another_process_in_order(pg_url: str) -> None:
    async with machine(pg_url) as writer, machine(pg_url) as reader:
        follower = asyncio.ensure_future(collect(reader.store, 0, 40))
        await asyncio.sleep(0.2)
        await asyncio.gather(*(writer.start_task(f"t{i}") for i in range(40)))
        seen = await follower
        assert [e.seq for e in seen] == list(range(1, 41))
        assert all(e.hash for e in seen)


async def test_a_notify_lost_during_a_reconnect_is_caught_up_by_sequence(pg_url: str) -> None:
    """The follower's connection is killed; what commits meanwhile (its NOTIFYs go nowhere) is
    still delivered, once each, in order, when it reconnects."""
    async with machine(pg_url) as writer:
        reader = PostgresStore(pg_url, poll_interval=30)  # only a notification or a reconnect wakes it
        await reader.open()
        seen: list[int] = []
        first_ten, done = asyncio.Event(), asyncio.Event()

        async def run() -> None:
            async for event in reader.follow(0):
                seen.append(event.seq)
                if len(seen) == 10:
                    first_ten.set()
                if len(seen) == 30:
                    done.set()
                    return

        follower = asyncio.ensure_future(run())
        for i in range(10):
            await writer.start_task(f"a{i}")
        await asyncio.wait_for(first_ten.wait(), 20)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'hitl-follow' AND datname = current_database()"
            ).fetchone()
            assert killed is not None and killed[0] == 1
        for i in range(20):  # committed while the follower has no connection
            await writer.start_task(f"b{i}")
        await asyncio.wait_for(done.wait(), 20)
        await follower
        assert seen == list(range(1, 31))
        await reader.close()


async def test_while_the_server_is_down_the_store_says_so_and_the_follower_resumes_after(
    own_cluster: LocalCluster,
) -> None:
    """Server stopped: ``store.problem`` names the host (for the console's banner) and the follower
    waits; server back: the problem clears and events committed since are delivered, none twice."""
    url = own_cluster.create_database()
    async with machine(url) as writer:
        reader = PostgresStore(url, poll_interval=0.2)
        await reader.open()
        seen: list[int] = []
        got = asyncio.Event()

        async def run() -> None:
            async for event in reader.follow(0):
                seen.append(event.seq)
                got.set()

        follower = asyncio.ensure_future(run())
        await writer.start_task("before")
        await asyncio.wait_for(got.wait(), 10)
        await asyncio.to_thread(own_cluster.stop, "fast")
        for _ in range(100):
            if reader.problem:
                break
            await asyncio.sleep(0.1)
        assert reader.problem and f"127.0.0.1:{own_cluster.port}" in reader.problem
        assert "hitl-test-secret" not in reader.problem
        await asyncio.to_thread(own_cluster.restart)
        got.clear()
        await writer.start_task("after")  # the writer's pool reconnects by itself
        await asyncio.wait_for(got.wait(), 20)
        assert seen == [1, 2] and reader.problem is None
        follower.cancel()
        await reader.close()


async def test_follow_falls_back_to_polling_when_notifications_never_come(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower listens on a channel nobody notifies (every notification lost): the periodic
    read still delivers every event, in order."""
    store = PostgresStore(pg_url, poll_interval=0.1)
    await store.open()
    try:
        monkeypatch.setattr("hitl_core.stores.postgres.CHANNEL", "hitl_nobody_notifies_this")
        follower = asyncio.ensure_future(collect(store, 0, 3, timeout=10))
        await asyncio.sleep(0.3)
        for i in range(3):
            await store.append(*new_task(f"t{i}"), None)
        assert [e.seq for e in await follower] == [1, 2, 3]
    finally:
        await store.close()


async def test_sync_facade_and_caller_loop_share_one_store(pg_url: str) -> None:
    """The store keeps a pool per event loop: the sync facade's loop and ours both work."""
    m = machine(pg_url)
    async with m:
        await m.start_task("a")
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(m.sync.start_task("b")))
        thread.start()
        await asyncio.to_thread(thread.join)
        assert result and (await m.get_task("b")).state is TaskState.RUNNING


# -- bad input ------------------------------------------------------------------------------


async def test_wrong_password_is_a_clear_error_naming_the_host_without_the_password(pg_url: str) -> None:
    url = pg_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(StoreError) as info:
        await PostgresStore(url).open()
    message = str(info.value)
    host = url.split("@", 1)[1].split("/", 1)[0]
    assert host in message and "password authentication failed" in message
    assert "not-the-password" not in message and PASSWORD not in message


async def test_unreachable_host_is_a_clear_error_naming_the_host(pg_url: str) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://hitl:sekrit@127.0.0.1:{port}/hitl"
    with pytest.raises(StoreError) as info:
        await PostgresStore(url, connect_timeout=2).open()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "connecting failed" in message
    assert "sekrit" not in message


async def test_invalid_url_is_a_clear_error() -> None:
    require_psycopg()
    with pytest.raises(StoreError, match="not a valid PostgreSQL URL"):
        PostgresStore("postgresql://user:pw@host:notaport:/x?bogus_option=1")


async def test_database_with_a_newer_schema_is_a_clear_error(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO hitl_schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this hitl"):
        await PostgresStore(pg_url).open()


async def test_statement_timeout_is_a_clear_error_and_writes_nothing(pg_url: str) -> None:
    """A DBA's session holds the log's head lock; our append gives up after statement_timeout."""
    store = PostgresStore(pg_url, statement_timeout=0.3)
    await store.open()
    try:
        blocker = psycopg.connect(pg_url)
        blocker.execute("SELECT * FROM hitl_chain_head FOR UPDATE")  # open transaction holds the lock
        event, task = new_task("t")
        with pytest.raises(StoreError, match="statement timeout"):
            await store.append(event, task, None)
        blocker.rollback()
        blocker.close()
        assert await store.get("t") is None and await store.last_seq() == 0
        await store.append(*new_task("t"), None)  # and the store works again
        assert await store.last_seq() == 1
    finally:
        await store.close()
