"""Least privilege on PostgreSQL, tested as an attacker would: log in as a role with exactly the
README's grants (``grant_sql``) and try to write around ``hitl_append``, forge what it is given,
and hijack its search path."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_cluster import LocalCluster, require_psycopg

from hitl_core import HITLStateMachine, StoreError, TaskState
from hitl_core.canonical import canonical_json, now_us
from hitl_core.records import EventRecord, TaskRecord
from hitl_core.stores.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore, grant_sql, transition_rows
from hitl_core.transitions import TRANSITIONS

psycopg = require_psycopg()

README = Path(__file__).parents[2] / "README.md"
APPEND = "SELECT * FROM public.hitl_append(%s::text, %s::integer, %s::integer, %s::text, %s::text, %s::text, %s::text, %s::text, %s::bigint, %s::text, %s::text)"


def machine(url: str) -> HITLStateMachine:
    return HITLStateMachine(url, load_entrypoints=False)


def new_role(cluster: LocalCluster, dbname: str) -> tuple[str, str]:
    """A login role given exactly ``grant_sql``'s grants on ``dbname``; returns (name, url)."""
    role = f"agent_{uuid.uuid4().hex[:10]}"
    cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'agentpw'")
    cluster.psql(grant_sql(role), dbname=dbname)
    return role, cluster.url(dbname, user=role, password="agentpw")


@pytest.fixture
def migrated(pg_cluster: LocalCluster, pg_url: str) -> str:
    """A database migrated by its owner (the first open), with one running task ``t`` (v1)."""

    async def setup() -> None:
        async with machine(pg_url) as m:
            await m.start_task("t")

    asyncio.run(setup())
    return pg_url


@pytest.fixture
def agent(pg_cluster: LocalCluster, migrated: str) -> Iterator[tuple[str, str]]:
    """(role, url) of a role with exactly the README's grants on the ``migrated`` database."""
    yield new_role(pg_cluster, migrated.rsplit("/", 1)[1])


def forged(
    task_id: str = "t",
    expected: int | None = 1,
    version: int = 2,
    action: str = "request_approval",
    from_state: str | None = "running",
    to_state: str = "awaiting_approval",
    snapshot: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Parameters for a direct ``hitl_append`` call; by default a legal request_approval of ``t``."""
    at = now_us()
    full = json.loads(
        TaskRecord(
            task_id=task_id, state=TaskState(to_state), version=version, created_at=at, updated_at=at
        ).snapshot_json()
    )
    snap = full if snapshot is None else {**full, **snapshot}
    return (
        task_id,
        expected,
        version,
        action,
        from_state,
        to_state,
        "mallory",
        "agent",
        now_us(),
        "{}",
        json.dumps(snap),
    )


def unchanged(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT state, version, last_seq FROM hitl_tasks WHERE task_id = 't'").fetchone(),
            conn.execute("SELECT seq FROM hitl_chain_head").fetchone(),
            conn.execute("SELECT count(*) FROM hitl_events").fetchone(),
        )


def refused(url: str, sql: str, params: tuple[Any, ...] = ()) -> str:
    """Run ``sql`` as the role at ``url``; it must fail. Returns the server's message."""
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params)
    return str(info.value)


def test_least_privilege_role_cannot_update_or_delete_events(migrated: str, agent: tuple[str, str]) -> None:
    _, url = agent
    before = unchanged(migrated)
    for sql in (
        "UPDATE hitl_events SET actor_id = 'someone else'",
        'UPDATE hitl_events SET data = \'{"decision": "approve"}\' WHERE seq = 1',
        "DELETE FROM hitl_events",
        "TRUNCATE hitl_events",
    ):
        assert "permission denied" in refused(url, sql), sql
    assert unchanged(migrated) == before


def test_least_privilege_role_cannot_update_or_delete_tasks(migrated: str, agent: tuple[str, str]) -> None:
    _, url = agent
    before = unchanged(migrated)
    for sql in (
        "UPDATE hitl_tasks SET state = 'approved'",
        "DELETE FROM hitl_tasks",
        "UPDATE hitl_chain_head SET seq = 0",
        "INSERT INTO hitl_transitions VALUES ('approve', 'running', 'approved')",
        "DELETE FROM hitl_transitions",
        "DELETE FROM hitl_schema_version",
    ):
        assert "permission denied" in refused(url, sql), sql
    assert unchanged(migrated) == before


def test_least_privilege_role_cannot_insert_events_directly(migrated: str, agent: tuple[str, str]) -> None:
    _, url = agent
    before = unchanged(migrated)
    assert "permission denied" in refused(
        url,
        "INSERT INTO hitl_events (seq, task_id, version, action, from_state, to_state, actor_id, actor_source, "
        "at, data, prev_hash, hash) VALUES (2, 't', 2, 'approve', 'awaiting_approval', 'approved', 'alice', "
        "'console', 0, '{}', '', '')",
    )
    assert "permission denied" in refused(
        url, "INSERT INTO hitl_tasks (task_id, state, version, last_seq, snapshot) VALUES ('x', 'approved', 1, 1, '{}')"
    )
    assert unchanged(migrated) == before


def test_least_privilege_role_can_run_the_whole_lifecycle(agent: tuple[str, str]) -> None:
    _, url = agent

    async def lifecycle() -> None:
        async with machine(url) as agent_side, machine(url) as console:
            await agent_side.start_task("job")
            await agent_side.request_approval("job", "deploy?", {"env": "prod"})
            waiting = asyncio.ensure_future(agent_side.wait_for_decision("job", timeout=60))
            assert [t.task_id for t in await console.get_pending_approvals()] == ["job"]
            await console.approve("job", "alice")
            assert (await waiting).approved
            await agent_side.resume("job")
            done = await agent_side.complete("job", {"ok": True})
            assert done.state is TaskState.COMPLETED
            assert (await agent_side.verify()).ok
            assert (await agent_side.store.info())["schema_version"] == SCHEMA_VERSION  # type: ignore[attr-defined]

    asyncio.run(lifecycle())


def test_a_role_without_the_grants_cannot_append(pg_cluster: LocalCluster, migrated: str) -> None:
    """PostgreSQL lets PUBLIC execute every new function; the migration takes that back."""
    role = f"nobody_{uuid.uuid4().hex[:10]}"
    pg_cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'nobodypw'")
    url = pg_cluster.url(migrated.rsplit("/", 1)[1], user=role, password="nobodypw")
    before = unchanged(migrated)
    assert "permission denied for function hitl_append" in refused(url, APPEND, forged())
    assert unchanged(migrated) == before


def test_append_refuses_an_illegal_transition_server_side(migrated: str, agent: tuple[str, str]) -> None:
    """Called directly with forged events and snapshots, the function writes nothing."""
    _, url = agent
    before = unchanged(migrated)
    cases = {
        "illegal move (approve a running task)": (
            forged(action="approve", to_state="approved"),
            "approve from running to approved is not a legal transition",
        ),
        "illegal move (request_approval straight to approved)": (
            forged(to_state="approved"),
            "is not a legal transition",
        ),
        "wrong from-state (claims the task is waiting)": (
            forged(action="approve", from_state="awaiting_approval", to_state="approved"),
            "task t is running, not awaiting_approval",
        ),
        "a new task's start for an existing id with a from-state": (
            forged(expected=None, version=1, action="start", from_state="pending", to_state="running"),
            "a new task has no from-state",
        ),
        "snapshot state does not match the event": (
            forged(snapshot={"task_id": "t", "state": "approved", "version": 2}),
            "the snapshot (task t, state approved, version 2) does not match the event",
        ),
        "snapshot of another task": (
            forged(snapshot={"task_id": "other", "state": "awaiting_approval", "version": 2}),
            "does not match the event",
        ),
        "snapshot version does not match the event": (
            forged(snapshot={"task_id": "t", "state": "awaiting_approval", "version": 7}),
            "does not match the event",
        ),
        "snapshot that is not JSON": ((*forged()[:10], "not json"), "invalid input syntax for type json"),
        "event data that is a JSON list": ((*forged()[:9], "[]", forged()[10]), "the event data is not a JSON object"),
        "skipped version": (
            forged(version=3, snapshot={"task_id": "t", "state": "awaiting_approval", "version": 3}),
            "version 3 does not follow version 1",
        ),
    }
    for name, (params, message) in cases.items():
        assert message in refused(url, APPEND, params), name
    assert unchanged(migrated) == before
    # A stale expected version is no forgery, just a lost race: reported as such, nothing written.
    with psycopg.connect(url, autocommit=True) as conn:
        status = conn.execute(
            APPEND, forged(expected=5, version=6, snapshot={"task_id": "t", "state": "awaiting_approval", "version": 6})
        ).fetchone()
    assert status is not None and status[0] == 2 and status[4] == 1
    assert unchanged(migrated) == before


def test_the_chain_hash_is_computed_server_side_from_the_stored_columns(agent: tuple[str, str]) -> None:
    """The client sends no hash material: the server hashes what it stores, including text that
    JSON must escape, and the Python verifier agrees."""
    _, url = agent
    odd = 'quote " backslash \\ newline \n tab \t nul-ish \x01 \x1f unicode é ✓ 🙂 \u2028'
    name = 'quote " backslash \\ unicode é ✓ 🙂'  # ids and actors must be printable (hitl_core.limits)

    async def run() -> None:
        async with machine(url) as m:
            await m.start_task(name)
            await m.request_approval(name, odd, {odd: [odd]})
            await m.approve(name, name, message=odd)
            report = await m.verify()
            assert report.ok and report.checked == 4

    asyncio.run(run())


def test_search_path_hijack_does_not_reach_the_definer_function(
    pg_cluster: LocalCluster, migrated: str, agent: tuple[str, str]
) -> None:
    """The role fills a schema of its own, first on its search_path, with look-alike tables (a
    transition table that allows approving a running task) and functions the append uses; the
    function still reads hitl's tables and PostgreSQL's own functions."""
    role, url = agent
    dbname = migrated.rsplit("/", 1)[1]
    pg_cluster.psql(f"CREATE SCHEMA evil AUTHORIZATION {role}", dbname=dbname)
    # It may not plant anything in hitl's own schema: the grants take CREATE from PUBLIC.
    assert "permission denied for schema public" in refused(url, "CREATE TABLE public.hitl_planted (x int)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = evil, public")
        for table in ("hitl_tasks", "hitl_events", "hitl_chain_head", "hitl_transitions"):
            conn.execute(f"CREATE TABLE evil.{table} (LIKE public.{table})")
        conn.execute("INSERT INTO evil.hitl_transitions SELECT * FROM public.hitl_transitions")
        conn.execute("INSERT INTO evil.hitl_transitions VALUES ('approve', 'running', 'approved')")
        conn.execute("INSERT INTO evil.hitl_chain_head VALUES (true, 0, repeat('0', 64))")
        conn.execute("CREATE TABLE evil.called (what text)")
        for signature, returns, body in (
            ("sha256(bytea)", "bytea", "'\\x00'::bytea"),
            ("encode(bytea, text)", "text", "'forged'"),
            ("convert_to(text, name)", "bytea", "'\\x00'::bytea"),
            ("to_json(text)", "json", "'\"forged\"'::json"),
            ("jsonb_typeof(jsonb)", "text", "'object'"),
            ("pg_notify(text, text)", "void", "NULL"),
        ):
            conn.execute(
                f"CREATE FUNCTION evil.{signature} RETURNS {returns} LANGUAGE sql AS "
                f"$$ INSERT INTO evil.called VALUES ('{signature}'); SELECT {body} $$"
            )
        # Even with the look-alikes first on its path, the role's forged move is refused ...
        with pytest.raises(psycopg.Error, match="approve from running to approved is not a legal transition"):
            conn.execute(APPEND, forged(action="approve", to_state="approved"))
        # ... and a legal one lands in hitl's tables, hashed by PostgreSQL's sha256.
        row = conn.execute(APPEND, forged()).fetchone()
        assert row is not None and row[0] == 0 and row[1] == 2 and len(row[3]) == 64
        assert conn.execute("SELECT count(*) FROM evil.called").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM evil.hitl_events").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM evil.hitl_tasks").fetchone() == (0,)

    async def verify() -> None:
        async with machine(migrated) as owner:
            # The chain: the forged-but-legal append's snapshot is hand-made, so only the hashes
            # are this test's to check (replay names such snapshots: tests/audit).
            report = await owner.store.verify(replay=False)
            assert report.ok and report.checked == 2
            assert (await owner.get_task("t")).state is TaskState.AWAITING_APPROVAL

    asyncio.run(verify())


def test_database_transition_table_equals_the_python_one(migrated: str) -> None:
    with psycopg.connect(migrated) as conn:
        rows = conn.execute("SELECT action, from_state, to_state FROM hitl_transitions").fetchall()
    in_database: dict[str, dict[str | None, str]] = {}
    for action, from_state, to_state in rows:
        assert from_state not in in_database.setdefault(action, {}), "one move per (action, from-state)"
        in_database[action][from_state] = to_state
    in_python = {
        action: {None if s is None else s.value: d.value for s, d in moves.items()}
        for action, moves in TRANSITIONS.items()
    }
    assert in_database == in_python
    assert sorted(rows, key=lambda r: (r[0], r[1] or "")) == transition_rows()


async def test_open_refuses_a_database_whose_transition_table_differs(migrated: str) -> None:
    """A hitl whose TRANSITIONS changed without a migration must not run against a database that
    would check appends against the old table."""
    with psycopg.connect(migrated) as conn:
        conn.execute("DELETE FROM hitl_transitions WHERE action = 'pause'")
    with pytest.raises(StoreError, match=r"transition table \(hitl_transitions\) differs"):
        await PostgresStore(migrated).open()


def test_the_readme_grants_are_grant_sql() -> None:
    """The README's least-privilege SQL is generated, not written by hand: it must be exactly
    ``grant_sql('hitl_agent')``, the grants the tests above log in with."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), re.S)
    assert grant_sql("hitl_agent") in blocks


def test_grant_sql_refuses_a_name_that_is_not_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        grant_sql("agent; DROP TABLE hitl_events")


# -- migrating an existing database --------------------------------------------------------------


def v1_append(conn: Any, event: EventRecord, task: TaskRecord, expected: int | None) -> None:
    """An append exactly as hitl with schema version 1 made it (the hash prefix came from the client)."""
    from_state = event.from_state.value if event.from_state is not None else None
    prefix = canonical_json(
        [
            event.task_id,
            event.version,
            event.action,
            from_state,
            event.to_state.value,
            event.actor_id,
            event.actor_source,
            event.at,
        ]
    )[1:-1]
    row = conn.execute(
        "SELECT status FROM hitl_append(%s::text, %s::integer, %s::text, %s::integer, %s::text, %s::text, "
        "%s::text, %s::text, %s::text, %s::bigint, %s::text, %s::text)",
        (
            task.task_id,
            expected,
            task.state.value,
            task.version,
            task.snapshot_json(),
            event.action,
            from_state,
            event.actor_id,
            event.actor_source,
            event.at,
            event.data_json(),
            prefix,
        ),
    ).fetchone()
    assert row == (0,)


def test_a_version_1_database_migrates_forward_keeping_its_data_and_its_roles(
    pg_cluster: LocalCluster, pg_url: str
) -> None:
    """A database made by the previous hitl, used by a role with the previous README's grants
    (SELECT, INSERT, UPDATE on the tables, EXECUTE on the function): after the owner's next open
    its events and chain are intact, the role can still work, and can no longer write the tables."""
    dbname = pg_url.rsplit("/", 1)[1]
    role = f"old_agent_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE hitl_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(MIGRATIONS[1][0])
        conn.execute("INSERT INTO hitl_schema_version (version) VALUES (1)")
        at = now_us()
        for task_id in ("old-1", "old-2"):
            start = EventRecord(task_id, 1, "start", None, TaskState.RUNNING, "agent", "agent", at, {})
            v1_append(
                conn,
                start,
                TaskRecord(task_id=task_id, state=TaskState.RUNNING, version=1, created_at=at, updated_at=at),
                None,
            )
        ask = EventRecord(
            "old-1", 2, "request_approval", TaskState.RUNNING, TaskState.AWAITING_APPROVAL, "agent", "agent", at, {}
        )
        v1_append(
            conn,
            ask,
            TaskRecord(task_id="old-1", state=TaskState.AWAITING_APPROVAL, version=2, created_at=at, updated_at=at),
            1,
        )
    pg_cluster.psql(
        f"CREATE ROLE {role} LOGIN PASSWORD 'oldpw'; "
        f"GRANT SELECT, INSERT, UPDATE ON hitl_tasks, hitl_events, hitl_chain_head, hitl_schema_version TO {role}; "
        f"GRANT EXECUTE ON FUNCTION hitl_append TO {role}",
        dbname=dbname,
    )
    role_url = pg_cluster.url(dbname, user=role, password="oldpw")

    async def upgrade_then_work() -> None:
        async with machine(pg_url) as owner:  # the owner's open migrates
            assert (await owner.store.info())["schema_version"] == SCHEMA_VERSION  # type: ignore[attr-defined]
            assert [(e.seq, e.task_id, e.action) for e in await owner.events()] == [
                (1, "old-1", "start"),
                (2, "old-2", "start"),
                (3, "old-1", "request_approval"),
            ]
        async with machine(role_url) as m:
            await m.fail("old-1", "given up across the upgrade")
            await m.request_approval("old-2", "ok?")
            await m.approve("old-2", "alice")
            await m.resume("old-2")
            await m.complete("old-2")
            assert (await m.get_task("old-2")).state is TaskState.COMPLETED
            report = await m.store.verify(replay=False)  # version-1 rows were hand-made snapshots
            assert report.ok and report.checked == 8

    asyncio.run(upgrade_then_work())
    with psycopg.connect(pg_url) as conn:
        privileges = conn.execute(
            "SELECT has_table_privilege(%(r)s, 'hitl_events', 'INSERT'), has_table_privilege(%(r)s, 'hitl_events', 'UPDATE'), "
            "has_table_privilege(%(r)s, 'hitl_tasks', 'UPDATE'), has_table_privilege(%(r)s, 'hitl_chain_head', 'UPDATE'), "
            "has_function_privilege('public', %(f)s, 'EXECUTE')",
            {"r": role, "f": "hitl_append(text, integer, integer, text, text, text, text, text, bigint, text, text)"},
        ).fetchone()
    assert privileges == (False, False, False, False, False)
    assert "permission denied" in refused(role_url, "UPDATE hitl_events SET actor_id = 'x'")


def test_a_role_granted_before_the_audit_chain_can_read_it_but_not_write_it(
    pg_cluster: LocalCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version 3 database (before ``hitl_audit``) with a role given that version's grants: after
    the owner's open migrates it, the role can read the server's audit chain (so ``hitl audit
    verify`` works with its grants) and cannot write it; only the owner (``hitl serve``) appends."""
    from hitl_core.stores import postgres as postgres_store

    dbname = pg_url.rsplit("/", 1)[1]

    async def owner_open() -> None:
        async with machine(pg_url) as m:
            await m.start_task("before")

    with monkeypatch.context() as old:
        old.setattr(postgres_store, "SCHEMA_VERSION", 3)
        asyncio.run(owner_open())
    role = f"v3_agent_{uuid.uuid4().hex[:8]}"
    old_tables = ", ".join(f"public.{t}" for t in postgres_store.TABLES if t != "hitl_audit")
    pg_cluster.psql(
        f"CREATE ROLE {role} LOGIN PASSWORD 'v3pw'; GRANT USAGE ON SCHEMA public TO {role}; "
        f"GRANT SELECT ON {old_tables} TO {role}; "
        f"GRANT EXECUTE ON FUNCTION public.{postgres_store.APPEND_SIGNATURE} TO {role}",
        dbname=dbname,
    )
    role_url = pg_cluster.url(dbname, user=role, password="v3pw")

    async def migrate_and_audit() -> None:
        async with machine(pg_url) as owner:
            await owner.store.append_audit("refused", "mallory", {"status": 403}, now_us())
        async with machine(role_url) as reader:
            assert [r.actor for r in await reader.store.audit_records()] == ["mallory"]
            report = await reader.store.verify()
            assert report.ok and report.audit_records == 1
            with pytest.raises(StoreError):
                await reader.store.append_audit("refused", "cover-up", {}, now_us())

    asyncio.run(migrate_and_audit())
    with psycopg.connect(role_url, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM hitl_audit")
