"""Connections come back without ``close()``, and a server that refuses them gives an error, not a hang."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg_cluster import LocalCluster, free_port, require_psycopg

from hitl_core import HITLStateMachine, StoreError, TaskState
from hitl_core.canonical import now_us
from hitl_core.records import EventRecord, TaskRecord
from hitl_core.stores.postgres import PostgresStore

psycopg = require_psycopg()

SCRIPTS = Path(__file__).with_name("pg_unclosed.py")


def new_task(task_id: str) -> tuple[EventRecord, TaskRecord]:
    at = now_us()
    event = EventRecord(task_id, 1, "start", None, TaskState.RUNNING, "agent", "agent", at, {})
    return event, TaskRecord(task_id=task_id, state=TaskState.RUNNING, version=1, created_at=at, updated_at=at)


def hitl_connections(admin_url: str) -> int:
    with psycopg.connect(admin_url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('hitl', 'hitl-follow')"
        ).fetchone()
    return int(row[0]) if row else -1


async def connections_once_settled(admin_url: str) -> int:
    """hitl's connections on the server, polled for up to 30 s until none are left (a backend
    told to close may take a moment to leave pg_stat_activity)."""
    left = -1
    for _ in range(300):
        left = await asyncio.to_thread(hitl_connections, admin_url)
        if left == 0:
            break
        await asyncio.sleep(0.1)
    return left


@pytest.mark.processes
@pytest.mark.timeout(400)
def test_thirty_unclosed_machines_in_short_asyncio_run_scripts_leave_no_connections(
    small_cluster: LocalCluster,
) -> None:
    """30 ``asyncio.run`` calls in one process, each leaving its machine unclosed, against a
    server that takes 10 connections: every run finishes, and none leaves a connection behind."""
    url = small_cluster.create_database()
    admin = small_cluster.url(url.rsplit("/", 1)[1])
    result = subprocess.run(
        [sys.executable, str(SCRIPTS), url, admin, "30"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines == [f"run {n}: 0 hitl connection(s) left" for n in range(30)], result.stdout
    assert hitl_connections(admin) == 0
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT count(*) FROM hitl_tasks WHERE state = 'awaiting_approval'").fetchone() == (30,)


async def test_a_machine_dropped_without_close_returns_its_connections_when_collected(pg_url: str) -> None:
    """The loop goes on; the machine is simply forgotten. Once collected, its connections are gone."""
    admin = pg_url
    machine = HITLStateMachine(pg_url, load_entrypoints=False)
    await asyncio.gather(*(machine.start_task(f"t{i}") for i in range(5)))  # several pooled connections
    assert await asyncio.to_thread(hitl_connections, admin) >= 1
    del machine
    gc.collect()
    assert await connections_once_settled(admin) == 0


async def test_close_returns_the_connections_of_every_loop(pg_url: str) -> None:
    """The caller's loop and the synchronous facade's loop each have a pool; close() empties both."""
    machine = HITLStateMachine(pg_url, load_entrypoints=False)
    await machine.start_task("a")
    await asyncio.to_thread(machine.sync.start_task, "b")
    assert await asyncio.to_thread(hitl_connections, pg_url) >= 2
    await machine.close()
    assert await connections_once_settled(pg_url) == 0


async def test_server_refusing_connections_gives_store_error_within_retry_for(small_cluster: LocalCluster) -> None:
    """Every connection slot is taken (``too many clients``): an append and a read of an open
    store retry for ``retry_for`` and then raise a ``StoreError`` saying why; nothing hangs."""
    url = small_cluster.create_database()
    store = PostgresStore(url, retry_for=3.0, connect_timeout=2.0)
    await store.open()  # opens, migrates and lets its connection go: the pool is empty
    hogs = []
    try:
        while True:  # the superuser may take every slot, reserved ones included
            try:
                hogs.append(await asyncio.to_thread(psycopg.connect, url, connect_timeout=5))
            except psycopg.OperationalError as exc:
                assert "too many clients" in str(exc) or "reserved" in str(exc)
                break
        machine = HITLStateMachine(store, load_entrypoints=False)
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await machine.start_task("t")
        elapsed = time.monotonic() - started
        assert "retried for 3s" in str(info.value) and "too many clients" in str(info.value)
        # It kept retrying (the backoff gives up when its next wait would pass retry_for), then
        # gave up; the upper bound has slack for a loaded VM.
        assert 0.5 <= elapsed < 3.0 + 10, elapsed
        started = time.monotonic()
        with pytest.raises(StoreError, match="too many clients"):
            await store.get("t")
        assert time.monotonic() - started < 3.0 + 10
    finally:
        for hog in hogs:
            hog.close()
    # The slots free up: the same store works again without being reopened.
    await machine.start_task("t")
    assert (await machine.get_task("t")).state is TaskState.RUNNING
    await machine.close()


async def test_server_down_gives_store_error_not_a_hang(own_cluster: LocalCluster) -> None:
    """The server stops under an open machine: its next append and read raise ``StoreError``
    naming the host after ``retry_for``; opening a store on a port where nothing listens fails at once."""
    url = own_cluster.create_database()
    machine = HITLStateMachine(PostgresStore(url, retry_for=3.0, connect_timeout=2.0), load_entrypoints=False)
    async with machine:
        await machine.start_task("before")
        await asyncio.to_thread(own_cluster.stop, "fast")
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await machine.start_task("after")
        assert time.monotonic() - started < 3.0 + 10
        assert f"127.0.0.1:{own_cluster.port}" in str(info.value) and "retried for 3s" in str(info.value)
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"127.0.0.1:{own_cluster.port}"):
            await machine.get_task("before")
        assert time.monotonic() - started < 3.0 + 10
    nowhere = f"postgresql://postgres:x@127.0.0.1:{free_port()}/hitl"
    started = time.monotonic()
    with pytest.raises(StoreError, match="connecting failed"):
        await PostgresStore(nowhere, retry_for=3.0, connect_timeout=2.0).open()
    assert time.monotonic() - started < 3.0 + 10


async def test_after_a_server_restart_one_failed_try_clears_the_pool(own_cluster: LocalCluster) -> None:
    """Every idle pooled connection dies with the server. The first read that finds one broken
    drops them all, so the next try connects afresh instead of finding the others one backoff
    at a time: a read right after the restart succeeds well within a short ``retry_for``."""
    url = own_cluster.create_database()
    store = PostgresStore(url, retry_for=2.0, pool_max=8)
    await store.open()
    try:
        await store.append(*new_task("t"), None)

        async def hold_a_connection() -> None:  # eight at once: eight idle connections afterwards
            pool = await store._pool()
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(0.2)")

        await asyncio.gather(*(hold_a_connection() for _ in range(8)))
        assert await asyncio.to_thread(hitl_connections, url) == 8
        await asyncio.to_thread(own_cluster.restart, "fast")
        record = await store.get("t")  # 0.05 + 0.1 + ... for eight dead connections would pass 2 s
        assert record is not None and record.version == 1
    finally:
        await store.close()


def sessions_named(admin_url: str, application_name: str) -> int:
    with psycopg.connect(admin_url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchone()
    return int(row[0]) if row else -1


async def test_a_connection_attempt_cancelled_after_the_server_started_the_session_closes_it_at_once(
    pg_cluster: LocalCluster, pg_url: str
) -> None:
    """A proxy holds back the server's last startup message (ReadyForQuery), so the session exists
    on the server while the attempt still waits; the attempt is cancelled (as the end of
    ``asyncio.run`` cancels a follower that is connecting) and its task kept (as the machine
    keeps its follower task). With garbage collection off, the session must still end."""
    held = asyncio.Event()
    pipes: list[asyncio.Task[None]] = []

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", pg_cluster.port)

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                server_writer.write(data)
                await server_writer.drain()
            server_writer.close()  # the client hung up: so does the session

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if b"Z\x00\x00\x00\x05" in data:  # ReadyForQuery: the session is up; never deliver it
                    held.set()
                    return
                client_writer.write(data)
                await client_writer.drain()

        pipes.extend([asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())])

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    store = PostgresStore(pg_url.replace(f":{pg_cluster.port}/", f":{port}/"), connect_timeout=60)
    gc.disable()
    try:
        attempt = asyncio.ensure_future(store._raw_connect("hitl-cut-short"))
        await asyncio.wait_for(held.wait(), 60)
        assert await asyncio.to_thread(sessions_named, pg_url, "hitl-cut-short") == 1
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        left = 1
        for _ in range(300):
            left = await asyncio.to_thread(sessions_named, pg_url, "hitl-cut-short")
            if left == 0:
                break
            await asyncio.sleep(0.1)
        assert left == 0 and attempt.cancelled()
    finally:
        gc.enable()
        for pipe in pipes:
            pipe.cancel()
        proxy.close()
