"""A big SQLite store (``benchmarks/make_big_store.py``): the stats open on it, reading only their window.

200,000 events over six days: the same density as ``make bench``'s 1,000,000 events over a
month (about 33,000 a day), so the default 24-hour window holds as much as there, while the
store takes seconds to make instead of a minute. The time is printed, not asserted (speed is
measured in ``benchmarks/bench_stats.py``, on the 1,000,000-event store).
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


@pytest.mark.timeout(600)  # making the store takes ten seconds of CPU; a loaded machine stretches it
def test_stats_open_on_a_big_store_reading_only_their_window(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    info = generate(path, events=200_000, days=6.0)
    assert info["events"] == 200_000

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
    print(f"\nstats over 24h of a 200,000-event store (six days) opened in {wall:.3f}s wall, {cpu:.3f}s cpu")
    assert stats.waiting == info["waiting"]
    assert stats.decisions > 1000
    assert any(o.actor == "speedy" and o.rubber_stamps > 100 for o in stats.operators)
