"""Audit benchmark (not a test): how long ``hitl audit verify`` takes, and what it holds in memory.

Fills a SQLite store with N tasks (start, request approval, approve, resume, complete: five events
each) through the real machine, then times ``Store.verify`` with the chain walk alone
(``replay=False``), with replay (what ``hitl audit verify`` runs), and ``audit.verify`` against one
signed checkpoint; and reports the peak Python memory (tracemalloc) of the full verify, which
should stay flat as N grows (a page of 500 tasks at a time, events in batches of 5,000).

    python benchmarks/bench_audit.py [--tasks 2000 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hitl_core import HITLStateMachine, audit


async def fill(url: str, tasks: int) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for i in range(tasks):
            task_id = f"job-{i:06d}"
            await m.start_task(task_id, agent="bench", metadata={"i": i})
            await m.request_approval(task_id, "ship it?", args={"n": i})
            await m.approve(task_id, "alice")
            await m.resume(task_id)
            await m.complete(task_id, {"ok": True})


async def measure(url: str, keys: Path) -> tuple[float, float, float, float]:
    private, public, _ = audit.generate_keypair(keys)
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        store = m.store
        t0 = time.perf_counter()
        assert (await store.verify(replay=False)).ok
        chain = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert (await store.verify()).ok
        full = time.perf_counter() - t0
        tracemalloc.start()  # a second, traced run: tracemalloc slows allocation several-fold
        assert (await store.verify()).ok
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        await audit.checkpoint(store, audit.load_private_key(private))
        t0 = time.perf_counter()
        assert (await audit.verify(store, audit.load_public_key(public))).ok
        signed = time.perf_counter() - t0
    return chain, full, signed, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[2000, 10000])
    args = parser.parse_args()
    print(
        f"{'tasks':>7} {'events':>7} {'chain only s':>13} {'chain+replay s':>15} {'+checkpoint s':>14} {'peak MB':>8}"
    )
    for n in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            asyncio.run(fill(url, n))
            (Path(tmp) / "keys").mkdir()
            chain, full, signed, peak = asyncio.run(measure(url, Path(tmp) / "keys"))
            print(f"{n:>7} {n * 5:>7} {chain:>13.2f} {full:>15.2f} {signed:>14.2f} {peak:>8.1f}")


if __name__ == "__main__":
    main()
