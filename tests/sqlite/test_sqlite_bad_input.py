"""Each bad input the SQLite store can meet: a clear error naming the file, and nothing lost or overwritten."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, StoreError, TaskState
from hitl_core.stores.sqlite import SCHEMA_VERSION, SQL_PENDING, SqliteStore


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _open(url: str) -> None:
    store = SqliteStore(url)
    try:
        await store.open()
        await store.query()
    finally:
        await store.close()


async def _waiting(url: str, *task_ids: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        for task_id in task_ids:
            await machine.start_task(task_id, agent="billing")
            await machine.request_approval(task_id, "pay the invoice?", {"amount": 40})


def _one_line_error(result: Any, code: int, *needles: str) -> None:
    """The CLI failed with ``code`` and one readable line naming ``needles``, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hitl: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0]


# -- where the file is ------------------------------------------------------------------------------


def test_directory_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"{tmp_path} is a directory"):
        asyncio.run(_open(f"sqlite:///{tmp_path}"))


def test_missing_directory_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(StoreError, match="does not exist"):
        asyncio.run(_open(f"sqlite:///{missing / 'hitl.db'}"))
    assert not missing.exists()


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes through file modes; /proc refuses new files to everybody.
        target = Path("/proc/hitl-test.db")
    else:
        locked = tmp_path / "readonly"
        locked.mkdir(mode=0o500)
        target = locked / "hitl.db"
    with pytest.raises(StoreError, match=str(target)):
        asyncio.run(_open(f"sqlite:///{target}"))
    assert not target.exists()


def test_bad_store_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown option"):
        SqliteStore(f"sqlite:///{tmp_path / 'x.db'}?busy=1")
    with pytest.raises(StoreError, match="in-memory"):
        SqliteStore("sqlite:///:memory:")
    with pytest.raises(StoreError, match="three slashes"):
        SqliteStore("sqlite://hitl.db")
    with pytest.raises(StoreError, match="busy_timeout"):
        SqliteStore(f"sqlite:///{tmp_path / 'x.db'}?busy_timeout=soon")


# -- what the file holds ----------------------------------------------------------------------------


def test_file_that_is_not_a_database_is_a_clear_error_and_left_untouched(
    tmp_path: Path, hitl_cli: Callable[..., Any]
) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n" * 100)
    before = _digest(notes)
    with pytest.raises(StoreError, match=f"{notes} is not a usable SQLite database"):
        asyncio.run(_open(f"sqlite:///{notes}"))
    _one_line_error(hitl_cli("--store", f"sqlite:///{notes}", "ls"), 6, str(notes))
    assert _digest(notes) == before


def test_corrupt_database_file_is_a_clear_error(tmp_path: Path, hitl_cli: Callable[..., Any]) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    asyncio.run(_waiting(url, *(f"t{i}" for i in range(300))))
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : len(data) - page] = b"\xa5" * (len(data) - 2 * page)  # every page but the first and last
    path.write_bytes(bytes(data))
    before = _digest(path)
    result = hitl_cli("--store", url, "ls")
    _one_line_error(result, 6, str(path))
    assert "malformed" in result.stderr or "not a usable" in result.stderr
    assert _digest(path) == before


def test_sqlite_database_of_another_application_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreError, match=r"not a hitl store \(tables: invoices\)"):
        asyncio.run(_open(f"sqlite:///{path}"))
    assert _digest(path) == before


def test_newer_schema_is_a_clear_error_naming_file_and_versions(tmp_path: Path, hitl_cli: Callable[..., Any]) -> None:
    path = tmp_path / "hitl.db"
    asyncio.run(_waiting(f"sqlite:///{path}", "t1"))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(
        StoreError,
        match=f"{path} has hitl schema version 99, newer than this hitl understands "
        rf"\({SCHEMA_VERSION}\)",
    ):
        asyncio.run(_open(f"sqlite:///{path}"))
    _one_line_error(hitl_cli("--store", f"sqlite:///{path}", "ls"), 6, str(path), "99")


def test_empty_file_becomes_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "hitl.db"
    path.touch()
    asyncio.run(_waiting(f"sqlite:///{path}", "t1"))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_pending_lookup_uses_the_state_index_not_a_scan(db_url: str) -> None:
    asyncio.run(_waiting(db_url, "t1"))
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    plan = " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {SQL_PENDING}", ("awaiting_approval",)))
    conn.close()
    assert "tasks_by_state" in plan and "TEMP B-TREE" not in plan, plan


# -- other writers ----------------------------------------------------------------------------------


@pytest.mark.processes
def test_database_locked_longer_than_busy_timeout_is_a_clear_error_and_no_event_is_lost(
    db_url: str, spawn: Callable[..., Any]
) -> None:
    asyncio.run(_waiting(db_url, "t1"))
    impatient = f"{db_url}?busy_timeout=300"
    holder = spawn("lock", db_url, "until-told")
    holder.read_until("LOCKED")

    async def approve() -> Any:
        async with HITLStateMachine(impatient, load_entrypoints=False) as machine:
            return await machine.approve("t1", "alice")

    with pytest.raises(StoreError, match=r"locked by another writer for more than 0.3s.*nothing was written"):
        asyncio.run(approve())
    holder.tell("release")
    holder.read_until("RELEASED")
    assert holder.wait() == 0
    assert asyncio.run(approve()).state is TaskState.APPROVED  # the retry after the lock is gone

    async def audit() -> Any:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return [e.action for e in await machine.events()], await machine.verify()

    actions, report = asyncio.run(audit())
    assert actions == ["start", "request_approval", "approve"] and report.ok


@pytest.mark.processes
def test_lock_shorter_than_busy_timeout_is_waited_out(db_url: str, spawn: Callable[..., Any]) -> None:
    asyncio.run(_waiting(db_url, "t1"))
    holder = spawn("lock", db_url, "0.5")
    holder.read_until("LOCKED")

    async def approve() -> Any:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return await machine.approve("t1", "alice")

    assert asyncio.run(approve()).state is TaskState.APPROVED
    assert holder.wait() == 0


# -- tampering --------------------------------------------------------------------------------------


def test_edited_event_row_fails_audit_verify_naming_it(db_url: str, hitl_cli: Callable[..., Any]) -> None:
    asyncio.run(_waiting(db_url, "t1", "t2"))
    assert hitl_cli("--store", db_url, "approve", "t1", "--as", "alice").returncode == 0
    ok = hitl_cli("--store", db_url, "audit", "verify")
    assert ok.returncode == 0 and "5 events" in ok.stdout
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    conn.execute("UPDATE events SET actor_id = 'mallory' WHERE seq = 5")
    conn.commit()
    conn.close()
    result = hitl_cli("--store", db_url, "audit", "verify")
    assert result.returncode == 8, result.stderr
    assert "event 5 (task 't1', approve) was altered" in result.stderr and "Traceback" not in result.stderr


def test_event_data_edited_into_garbage_fails_audit_verify_naming_it(db_url: str, hitl_cli: Callable[..., Any]) -> None:
    asyncio.run(_waiting(db_url, "t1"))
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    conn.execute("UPDATE events SET data = '{not json' WHERE seq = 2")
    conn.commit()
    conn.close()
    result = hitl_cli("--store", db_url, "audit", "verify")
    assert result.returncode == 8 and "event 2" in result.stderr, result.stderr


def test_deleted_event_row_fails_audit_verify_naming_the_next(db_url: str, hitl_cli: Callable[..., Any]) -> None:
    asyncio.run(_waiting(db_url, "t1", "t2"))
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    conn.execute("DELETE FROM events WHERE seq = 2")
    conn.commit()
    conn.close()
    result = hitl_cli("--store", db_url, "audit", "verify")
    assert result.returncode == 8 and "event 3" in result.stderr and "removed or reordered" in result.stderr


def test_older_schema_is_migrated_forward_keeping_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written by this version opens under a (simulated) next version: migrated in place."""
    import hitl_core.stores.sqlite as sqlite_store

    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    asyncio.run(_waiting(url, "t1"))
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(sqlite_store.MIGRATIONS, SCHEMA_VERSION + 1, ("CREATE INDEX events_by_time ON events (at)",))

    async def reopen() -> Any:
        async with HITLStateMachine(url, load_entrypoints=False) as machine:
            return await machine.get_task("t1"), await machine.verify()

    task, report = asyncio.run(reopen())
    assert task.state is TaskState.AWAITING_APPROVAL and report.ok
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'events_by_time'").fetchone()
    conn.close()


def test_a_new_store_and_its_wal_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """Anyone who can write the file can decide anything: a new store is created 0600, WAL files too."""
    db = tmp_path / "hitl.db"

    async def use() -> None:
        async with HITLStateMachine(f"sqlite:///{db}", load_entrypoints=False) as m:
            await m.start_task("t")
            await m.request_approval("t", "why")
            for path in (db, db.with_name("hitl.db-wal"), db.with_name("hitl.db-shm")):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    old = os.umask(0o000)  # even with the most permissive umask
    try:
        asyncio.run(use())
    finally:
        os.umask(old)
