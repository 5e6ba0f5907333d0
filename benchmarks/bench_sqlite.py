"""The SQLite store: durable lifecycle throughput, group commit, cross-process decision latency, idle follow.

Run with ``make bench`` or ``python benchmarks/bench_sqlite.py [TASKS]``. Prints a table; never
pass/fail. Throughput figures are the best of ``REPEATS`` runs because a shared 2-core machine is
noisy. Every transition is committed (WAL) before the machine's call returns; the table states the
``synchronous`` setting of each row. Files live in a temporary directory on the same disk as /tmp.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hitl_core import DecisionTimeoutError, HITLStateMachine
from hitl_core.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
DECISIONS = 200
TARGETS = {"sequential": 5000, "concurrent": 10000, "p99_ms": 50, "idle_cpu_pct": 1.0}


async def lifecycles(machine: HITLStateMachine, prefix: str, n: int) -> None:
    for i in range(n):
        tid = f"{prefix}-{i}"
        await machine.start_task(tid)
        await machine.request_approval(tid, "deploy?", {"replicas": 6})
        await machine.approve(tid, "alice")
        await machine.resume(tid)
        await machine.complete(tid)


async def throughput(url: str, agents: int, tasks: int) -> tuple[float, float]:
    """(transitions/s, appends per commit) for ``agents`` concurrent agents in one event loop."""
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        store = machine.store
        assert isinstance(store, SqliteStore)
        per_agent = max(tasks // agents, 1)
        gc.collect()
        commits0, appends0 = store.commits, store.committed_appends
        start = time.perf_counter()
        await asyncio.gather(*(lifecycles(machine, f"a{a}", per_agent) for a in range(agents)))
        elapsed = time.perf_counter() - start
        batch = (store.committed_appends - appends0) / max(store.commits - commits0, 1)
    return agents * per_agent * 5 / elapsed, batch


def best_throughput(directory: Path, agents: int, tasks: int, synchronous: str) -> tuple[float, float]:
    best = (0.0, 0.0)
    for r in range(REPEATS):
        url = f"sqlite:///{directory / f'tp-{agents}-{synchronous}-{r}.db'}?synchronous={synchronous}"
        result = asyncio.run(throughput(url, agents, tasks))
        best = max(best, result)
    return best


AGENT = """
import asyncio, sys, time
from hitl_core import HITLStateMachine
async def main(url, n):
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for i in range(n):
            tid = f"lat-{i}"
            await m.start_task(tid)
            await m.request_approval(tid, "go?")
            print("ASK", i, flush=True)
            await m.wait_for_decision(tid, timeout=30)
            print("GOT", i, time.time(), flush=True)
            await m.resume(tid)
            await m.complete(tid)
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def cross_process_latency(url: str, n: int) -> list[float]:
    """Milliseconds from ``approve`` returning (committed) in this process to ``wait_for_decision``
    returning in the agent process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    agent = subprocess.Popen([sys.executable, "-c", AGENT, url, str(n)],  # noqa: ASYNC220 (started once)
                             stdout=subprocess.PIPE, text=True, env=env)
    assert agent.stdout is not None
    latencies: list[float] = []
    async with HITLStateMachine(url, load_entrypoints=False) as operator:
        for i in range(n):
            line = await asyncio.to_thread(agent.stdout.readline)
            assert line.split()[:2] == ["ASK", str(i)], line
            await operator.approve(f"lat-{i}", "operator")
            committed = time.time()
            got = (await asyncio.to_thread(agent.stdout.readline)).split()
            assert got[:2] == ["GOT", str(i)], got
            latencies.append((float(got[2]) - committed) * 1000)
    agent.wait(30)
    return latencies


async def idle_follow_cpu(url: str, seconds: float) -> float:
    """Percent of one core this process spends while one waiter follows an idle store."""
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        await machine.start_task("idle")
        await machine.request_approval("idle", "nobody will answer")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            await machine.wait_for_decision("idle", timeout=seconds)
        except DecisionTimeoutError:
            pass
        return (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="hitl-bench-") as tmp:
        directory = Path(tmp)
        seq_normal, _ = best_throughput(directory, 1, tasks, "NORMAL")
        rows.append(("durable lifecycle, 1 sequential agent, synchronous=NORMAL",
                     f"{seq_normal:,.0f} transitions/s", f">= {TARGETS['sequential']:,}"))
        seq_full, _ = best_throughput(directory, 1, tasks // 2, "FULL")
        rows.append(("durable lifecycle, 1 sequential agent, synchronous=FULL",
                     f"{seq_full:,.0f} transitions/s", "(for comparison)"))
        conc, batch = best_throughput(directory, 16, tasks * 2, "NORMAL")
        rows.append(("16 concurrent agents, one process, synchronous=NORMAL",
                     f"{conc:,.0f} transitions/s", f">= {TARGETS['concurrent']:,}"))
        rows.append(("  group commit: appends per transaction (mean)", f"{batch:.1f}", ""))
        latencies = asyncio.run(cross_process_latency(f"sqlite:///{directory / 'latency.db'}", DECISIONS))
        rows.append((f"cross-process decision latency p50 ({DECISIONS} decisions, poll 10 ms)",
                     f"{statistics.median(latencies):.1f} ms", ""))
        rows.append(("cross-process decision latency p99", f"{pct(latencies, 0.99):.1f} ms",
                     f"<= {TARGETS['p99_ms']} ms"))
        rows.append(("cross-process decision latency max", f"{max(latencies):.1f} ms", ""))
        for poll in (10, 20):
            cpu = asyncio.run(idle_follow_cpu(f"sqlite:///{directory / f'idle-{poll}.db'}?poll_ms={poll}", 5.0))
            rows.append((f"idle follow, poll {poll} ms: CPU of this process over 5 s",
                         f"{cpu:.2f} % of a core", f"< {TARGETS['idle_cpu_pct']:g} %" if poll == 10 else ""))
    width = max(len(r[0]) for r in rows)
    print(f"\nhitl SQLite store — Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs (shared with other work: figures are noisy), {tasks} tasks per throughput run, "
          f"best of {REPEATS}")
    print(f"{'measure':<{width}}  {'result':>22}  target")
    print(f"{'-' * width}  {'-' * 22}  ------")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")


if __name__ == "__main__":
    main()
