"""A store made before checkpoints existed (schema 1) gains the checkpoints table when a newer hitl
opens it, keeping its tasks and its chain — by each backend's own migration convention."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import make_history, postgres_target

import hitl_core.stores.postgres as postgres_store
import hitl_core.stores.sqlite as sqlite_store
from hitl_core import HITLStateMachine, audit


async def _checkpoint_and_verify(url: str, private: Path, public: Path) -> Any:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        await audit.checkpoint(m.store, audit.load_private_key(private))
        return await audit.verify(m.store, audit.load_public_key(public))


def test_schema_1_sqlite_file_gains_checkpoints(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    with monkeypatch.context() as old:
        old.setattr(sqlite_store, "SCHEMA_VERSION", 1)
        asyncio.run(make_history(url))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'checkpoints'").fetchone() is None
    conn.close()
    report = asyncio.run(_checkpoint_and_verify(url, *keys))
    assert report.ok and report.valid_checkpoints == 1 and report.chain.events == 12
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION >= 2
    conn.close()


def test_schema_2_postgresql_database_gains_checkpoints(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = postgres_target(tmp_path)
    with monkeypatch.context() as old:
        old.setattr(postgres_store, "SCHEMA_VERSION", 2)  # least privilege, before checkpoints
        asyncio.run(make_history(target.url))
    with target.open_db() as db:
        assert db.rows("SELECT version FROM hitl_schema_version ORDER BY version") == [(1,), (2,)]
    report = asyncio.run(_checkpoint_and_verify(target.url, *keys))
    assert report.ok and report.valid_checkpoints == 1 and report.chain.events == 12
    with target.open_db() as db:
        assert db.rows("SELECT version FROM hitl_schema_version ORDER BY version") == [
            (v,) for v in range(1, postgres_store.SCHEMA_VERSION + 1)
        ]
