"""A 1,000,000-event SQLite store (``benchmarks/make_big_store.py``): the stats open on it.

The time is printed, not asserted (speed is measured in ``benchmarks/bench_stats.py``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from hitl_core.stats import compute_stats
from hitl_core.stores.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from make_big_store import generate


def test_the_generated_store_has_a_valid_hash_chain_and_readable_tasks(tmp_path: Path) -> None:
    path = tmp_path / "small.db"
    info = generate(path, events=5000, days=1.0)
    assert info["events"] == 5000

    async def check() -> None:
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        try:
            report = await store.verify()
            assert report.ok and report.checked == 5000, report.problem
            tasks = await store.query()
            assert len(tasks) == info["tasks"]
            assert all(t.to_context().task_id for t in tasks)  # every snapshot validates
        finally:
            await store.close()

    asyncio.run(check())


@pytest.mark.timeout(1200)  # making the store takes a minute of CPU; a loaded machine stretches it
def test_stats_open_on_a_million_event_store(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    info = generate(path, events=1_000_000, days=30.0)
    assert info["events"] == 1_000_000

    async def open_stats() -> tuple[float, float, object]:
        wall, cpu = time.perf_counter(), time.process_time()
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        try:
            stats = await compute_stats(store, since_seconds=24 * 3600)
        finally:
            await store.close()
        return time.perf_counter() - wall, time.process_time() - cpu, stats

    wall, cpu, stats = asyncio.run(open_stats())
    print(f"\nstats over 24h of a 1,000,000-event store opened in {wall:.3f}s wall, {cpu:.3f}s cpu")
    assert stats.waiting == info["waiting"]
    assert stats.decisions > 1000
    assert any(o.actor == "speedy" and o.rubber_stamps > 100 for o in stats.operators)
