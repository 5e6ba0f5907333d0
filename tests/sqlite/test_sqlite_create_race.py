"""Many openers of one brand-new SQLite file at the same instant: each opens it, none is refused.

Found in CI: an agent's machine and a person's machine opened a new store together, and one of
them read the file's schema version before the other's creating transaction committed and its
tables after, called the new store "a SQLite database but not a hitl store" and gave up; the
agent's request was never recorded. Another opener got "locked" from the switch to WAL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hitl_core import HITLStateMachine
from hitl_core.stores.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore


def _open_and_close(url: str, start: threading.Barrier, errors: list[BaseException]) -> None:
    async def go() -> None:
        store = SqliteStore(url)
        start.wait()
        try:
            await store.open()
        except BaseException as exc:  # recorded for the assertion, with its text
            errors.append(exc)
        finally:
            await store.close()

    asyncio.run(go())


def test_eight_stores_opening_one_new_file_at_once_all_open_it_round_after_round(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(60):
        url = f"sqlite:///{tmp_path / f'r{round_}.db'}"
        start = threading.Barrier(8)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_open_and_close, args=(url, start, errors)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        failures += [f"round {round_}: {exc!r}" for exc in errors]
    assert failures == []


def test_processes_creating_one_store_at_the_same_instant_all_record_their_task(
    db_url: str, spawn: Callable[..., Any]
) -> None:
    when = time.time() + 3.0  # every child has started and imported hitl by then
    children = [spawn("open-at", db_url, repr(when), f"opener-{i}") for i in range(6)]
    for child in children:
        child.read_until("OPENED", timeout=60)
        assert child.wait() == 0

    async def tasks() -> list[str]:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return sorted(t.task_id for t in await machine.get_all_tasks())

    assert asyncio.run(tasks()) == [f"opener-{i}" for i in range(6)]
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
