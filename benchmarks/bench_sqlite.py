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


async def memory_throughput(tasks: int) -> float:
    """The same lifecycle on the in-memory store: the machine's own cost, to read the rows above by."""
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        start = time.perf_counter()
        await lifecycles(machine, "m", tasks)
        return tasks * 5 / (time.perf_counter() - start)


def raw_sqlite_ceiling(path: Path, n: int = 2000) -> float:
    """Transactions/s of bare sqlite3 doing what one transition does (BEGIN IMMEDIATE, read the chain
    head, update a ~1 KB snapshot, insert an event, COMMIT) with no hitl at all: the ceiling this
    machine allows at this moment."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, task_id TEXT, version INT, data TEXT, UNIQUE (task_id, version))"
    )
    conn.execute("CREATE TABLE tasks (task_id TEXT PRIMARY KEY, state TEXT, version INT, last_seq INT, snapshot TEXT)")
    conn.execute("CREATE INDEX tasks_by_state ON tasks (state, last_seq)")
    snapshot, data = "s" * 1000, "d" * 300
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT seq FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO tasks VALUES (?, 'running', ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET "
            "version = excluded.version, snapshot = excluded.snapshot",
            (f"t{i // 5}", i, i, snapshot),
        )
        conn.execute("INSERT INTO events (task_id, version, data) VALUES (?, ?, ?)", (f"t{i // 5}", i, data))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


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
    agent = subprocess.Popen(  # noqa: ASYNC220 (started once)
        [sys.executable, "-c", AGENT, url, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
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


async def latency_after_idle(url: str, n: int, idle: float) -> list[float]:
    """Like ``cross_process_latency`` but the operator lets the agent's follower go idle first
    (backed off to its slowest poll), as when a person takes a while to decide."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    agent = subprocess.Popen(  # noqa: ASYNC220 (started once)
        [sys.executable, "-c", AGENT, url, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert agent.stdout is not None
    latencies: list[float] = []
    async with HITLStateMachine(url, load_entrypoints=False) as operator:
        for i in range(n):
            line = await asyncio.to_thread(agent.stdout.readline)
            assert line.split()[:2] == ["ASK", str(i)], line
            await asyncio.sleep(idle)
            await operator.approve(f"lat-{i}", "operator")
            committed = time.time()
            got = (await asyncio.to_thread(agent.stdout.readline)).split()
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
        memory = max(asyncio.run(memory_throughput(tasks)) for _ in range(REPEATS))
        rows.append(("calibration: same lifecycle on the memory store", f"{memory:,.0f} transitions/s", ""))
        ceiling = max(raw_sqlite_ceiling(directory / f"raw-{r}.db") for r in range(REPEATS))
        rows.append(("calibration: bare sqlite3, one transition's writes per txn", f"{ceiling:,.0f} txn/s", ""))
        seq_normal, _ = best_throughput(directory, 1, tasks, "NORMAL")
        rows.append(
            (
                "durable lifecycle, 1 sequential agent, synchronous=NORMAL",
                f"{seq_normal:,.0f} transitions/s",
                f">= {TARGETS['sequential']:,}",
            )
        )
        seq_full, _ = best_throughput(directory, 1, tasks // 2, "FULL")
        rows.append(
            (
                "durable lifecycle, 1 sequential agent, synchronous=FULL",
                f"{seq_full:,.0f} transitions/s",
                "(for comparison)",
            )
        )
        conc, batch = best_throughput(directory, 16, tasks * 2, "NORMAL")
        rows.append(
            (
                "16 concurrent agents, one process, synchronous=NORMAL",
                f"{conc:,.0f} transitions/s",
                f">= {TARGETS['concurrent']:,}",
            )
        )
        rows.append(("  group commit: appends per transaction (mean)", f"{batch:.1f}", ""))
        latencies = asyncio.run(cross_process_latency(f"sqlite:///{directory / 'latency.db'}", DECISIONS))
        rows.append(
            (
                f"cross-process decision latency p50 ({DECISIONS} decisions in a row)",
                f"{statistics.median(latencies):.1f} ms",
                "",
            )
        )
        rows.append(
            ("cross-process decision latency p99", f"{pct(latencies, 0.99):.1f} ms", f"<= {TARGETS['p99_ms']} ms")
        )
        rows.append(("cross-process decision latency max", f"{max(latencies):.1f} ms", ""))
        idle_latencies = asyncio.run(latency_after_idle(f"sqlite:///{directory / 'latency-idle.db'}", 20, 1.0))
        rows.append(
            (
                "  same, decided after 1 s idle (follower backed off to 40 ms), p50 of 20",
                f"{statistics.median(idle_latencies):.1f} ms",
                "",
            )
        )
        rows.append(("  same, decided after 1 s idle, max of 20", f"{max(idle_latencies):.1f} ms", "<= 50 ms"))
        for query, label in (
            ("", "default (10 ms backing off to 40 ms)"),
            ("?poll_ms=10&max_poll_ms=10", "fixed 10 ms"),
        ):
            cpu = asyncio.run(idle_follow_cpu(f"sqlite:///{directory / f'idle-{len(query)}.db'}{query}", 5.0))
            rows.append(
                (
                    f"idle follow, poll {label}: CPU of the process over 5 s",
                    f"{cpu:.2f} % of a core",
                    f"< {TARGETS['idle_cpu_pct']:g} %" if not query else "",
                )
            )
    width = max(len(r[0]) for r in rows)
    print(
        f"\nhitl SQLite store — Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs (shared with other work: figures are noisy), {tasks} tasks per throughput run, "
        f"best of {REPEATS}"
    )
    print(f"{'measure':<{width}}  {'result':>22}  target")
    print(f"{'-' * width}  {'-' * 22}  ------")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")


if __name__ == "__main__":
    main()
