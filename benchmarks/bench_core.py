"""hitl_core against the seed design, in the same run: lifecycle throughput, memory, pending lookup.

Run with ``make bench`` (or ``python benchmarks/bench_core.py [N]``). Prints a table; never
pass/fail. Each figure is the best of ``REPEATS`` runs, because a shared 2-core machine is noisy.
The seed baseline is imported from ``../shared/baselines/seed_design`` (or ``$HITL_SEED_BASELINE``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hitl_core import HITLStateMachine, hookimpl

ROOT = Path(__file__).resolve().parents[1]
BASELINES = Path(os.environ.get("HITL_SEED_BASELINE", ROOT.parent / "shared" / "baselines"))
REPEATS = 3
CONTEXT = {"version": "1.2.3", "env": "prod", "replicas": 6}


def load_seed() -> Any:
    sys.path.insert(0, str(BASELINES))
    try:
        import seed_design
    except ImportError:
        return None
    return seed_design


class Observer:
    """A do-nothing observer: measures the cost of the hook path itself."""

    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def hitl_transition(self, event: Any, task: Any) -> None:
        self.count += 1


def make_hitl(observers: int) -> Callable[[], Any]:
    def factory() -> Any:
        return HITLStateMachine("memory://", plugins=[Observer() for _ in range(observers)], load_entrypoints=False)

    return factory


async def lifecycle(machine: Any, n: int) -> float:
    """Seconds for n tasks through start → request → approve → resume → complete."""
    gc.collect()
    start = time.perf_counter()
    for i in range(n):
        tid = f"task-{i}"
        await machine.start_task(tid)
        await machine.request_approval(tid, "Deploy v1.2.3", CONTEXT, ["approve", "reject"], "high")
        await machine.approve(tid, "alice")  # positional: the seed names it `approver`
        await machine.resume(tid)
        await machine.complete(tid)
    return time.perf_counter() - start


async def bytes_per_waiting_task(factory: Callable[[], Any], n: int) -> float:
    machine = factory()
    await machine.start_task("warm-up")  # open the store, register plugins, fill caches
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        tid = f"task-{i}"
        await machine.start_task(tid)
        await machine.request_approval(
            tid, "Deploy v1.2.3", {"version": "1.2.3", "env": "prod", "n": i}, ["approve", "reject"], "high"
        )
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


async def pending_lookup_ms(factory: Callable[[], Any], total: int, pending: int) -> float:
    machine = factory()
    for i in range(total):
        tid = f"task-{i}"
        await machine.start_task(tid)
        if i % (total // pending) == 0:
            await machine.request_approval(tid, "why", CONTEXT)
        else:
            await machine.complete(tid)
    call = machine.get_pending_approvals
    result = call()
    if asyncio.iscoroutine(result):
        result = await result
    assert len(result) == pending, len(result)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        result = call()
        if asyncio.iscoroutine(result):
            await result
        best = min(best, time.perf_counter() - start)
    return best * 1000


async def measure(name: str, factory: Callable[[], Any], n: int) -> dict[str, Any]:
    seconds = min([await lifecycle(factory(), n) for _ in range(REPEATS)])
    memory = min([await bytes_per_waiting_task(factory, n) for _ in range(REPEATS)])
    lookups = {total: await pending_lookup_ms(factory, total, 100) for total in (1_000, 10_000)}
    return {
        "name": name,
        "tasks_s": n / seconds,
        "us_transition": seconds / n / 5 * 1e6,
        "bytes": memory,
        "pending_1k": lookups[1_000],
        "pending_10k": lookups[10_000],
    }


async def main(n: int) -> None:
    seed = load_seed()
    rows = [
        await measure("hitl memory store, no observers", make_hitl(0), n),
        await measure("hitl memory store, 3 observers", make_hitl(3), n),
    ]
    base = None
    if seed is not None:
        base = await measure("seed design (baseline)", seed.HITLStateMachine, n)
        rows.append(base)
    print(
        f"\nhitl_core lifecycle benchmark — N={n:,} tasks, best of {REPEATS}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    header = (
        f"{'':34} {'tasks/s':>9} {'vs seed':>8} {'µs/transition':>14} {'B/waiting task':>15} "
        f"{'pending@1k ms':>14} {'pending@10k ms':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['tasks_s'] / base['tasks_s']:.2f}x" if base else "n/a"
        print(
            f"{r['name']:34} {r['tasks_s']:9,.0f} {ratio:>8} {r['us_transition']:14.1f} {r['bytes']:15,.0f} "
            f"{r['pending_1k']:14.3f} {r['pending_10k']:15.3f}"
        )
    if seed is None:
        print(f"(seed baseline not found under {BASELINES}: set HITL_SEED_BASELINE)")
    print("pending@K: get_pending_approvals() with 100 waiting among K tasks (the rest completed).")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
