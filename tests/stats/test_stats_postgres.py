"""The stats on a PostgreSQL store (the generic path, through ``Store.events``) agree with the
SQLite fast path and the in-memory store, on a real throwaway server (tests/postgres/pg_cluster.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine
from hitl_core.stats import compute_stats

from .conftest import NOW_US, EventClock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "postgres"))

from pg_cluster import require_psycopg, shared_cluster, unavailable


@pytest.fixture
def pg_url() -> str:
    require_psycopg()  # under CI=true a missing driver or server fails, it does not skip
    try:
        return shared_cluster().create_database()
    except RuntimeError as exc:
        unavailable(str(exc))


async def test_postgres_sqlite_and_memory_stores_give_the_same_figures(
    clock: EventClock, pg_url: str, db_url: str
) -> None:
    results = []
    for url in ("memory://", db_url, pg_url):
        async with HITLStateMachine(url, load_entrypoints=False) as machine:
            clock.set(5000)
            await machine.start_task("a", agent="bot")
            await machine.request_approval("a", "deploy?", severity="critical", action="go", args={"x": "é" * 40})
            clock.set(4999)
            await machine.approve("a", "mallory")
            clock.set(4000)
            await machine.start_task("b", agent="bot")
            await machine.request_approval("b", "refund?", severity="low", context={"k": 1})
            clock.set(3000)
            await machine.start_task("c", agent="bot")
            await machine.request_approval("c", "mail?")
            clock.set(50)
            await machine.reject("b", "bob", "no")
            results.append((await compute_stats(machine.store, now=NOW_US)).to_dict())
    assert results[0] == results[1] == results[2]
    assert results[2]["waiting"] == 1 and results[2]["decisions"] == 2
    assert [r["actor"] for r in results[2]["rubber_stamps"]] == ["mallory"]
