"""Issue 14's table, every row beside its anchor and its target: ``python benchmarks/bench_issue14.py``.

Never pass/fail. Anchors run in the same process, interleaved or back to back, so that a busy
shared machine weighs on both sides alike: the seed design (``../shared/baselines``), bare
LangGraph, bare ``sqlite3`` and bare ``psycopg`` doing the same writes. CPU figures
(``time.process_time``, all threads of this process; the server's too for PostgreSQL) are printed
beside wall figures because other engineers' work skews wall time far more than CPU time. The
load average at the start and the end is printed: read the table with it.

The big-store rows use a 1,000,000-task, ~5,000,000-event SQLite store made once by
``benchmarks/make_big_store.py`` (about four minutes, ~4.6 GB under ``$HITL_BENCH_DIR``, default the
temp dir) and reused by later runs; ``HITL_BIG_STORE=path.db`` points them at another store.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "postgres"))
# The seed design lives beside the main checkout (../shared/baselines); a worktree under
# /work/wt/NAME finds it one level further up.
for _shared in (ROOT.parent / "shared" / "baselines", ROOT.parents[1] / "shared" / "baselines"):
    if "HITL_SEED_BASELINE" not in os.environ and _shared.is_dir():
        os.environ["HITL_SEED_BASELINE"] = str(_shared)

import bench_core  # noqa: E402
import bench_sqlite  # noqa: E402

from hitl_core import HITLStateMachine  # noqa: E402
from hitl_core.stores.sqlite import SqliteStore  # noqa: E402

ROWS: list[tuple[str, str, str, str]] = []  # (measure, hitl now, anchor, target)


def row(measure: str, now: str, anchor: str, target: str) -> None:
    ROWS.append((measure, now, anchor, target))
    print(f"  … {measure}: {now} | {anchor}", flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


# -- the machine in memory, against the seed design -------------------------------------------------


async def lifecycle_cpu(factory: Callable[[], Any], n: int) -> tuple[float, float]:
    """(tasks/s wall, CPU µs a transition) for n lifecycles, best of 3."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(3):
        machine = factory()
        gc.collect()
        cpu0 = time.process_time()
        wall = await bench_core.lifecycle(machine, n)
        best_cpu = min(best_cpu, (time.process_time() - cpu0) / n / 5 * 1e6)
        best_wall = min(best_wall, wall)
    return n / best_wall, best_cpu


async def pending_10k(factory: Callable[[], Any]) -> float:
    """ms for get_pending_approvals() with 10,000 tasks waiting (best of 5)."""
    machine = factory()
    for i in range(10_000):
        await machine.start_task(f"w-{i}")
        await machine.request_approval(f"w-{i}", "why?", {"i": i})
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        result = machine.get_pending_approvals()
        if asyncio.iscoroutine(result):
            result = await result
        best = min(best, time.perf_counter() - start)
    assert len(result) == 10_000
    return best * 1000


async def machine_rows(n: int) -> None:
    seed = bench_core.load_seed()
    hitl = bench_core.make_hitl(0)
    hitl_hooks = bench_core.make_hitl(3)
    rate, cpu = await lifecycle_cpu(hitl, n)
    rate_hooks, cpu_hooks = await lifecycle_cpu(hitl_hooks, n)
    seed_rate, seed_cpu = await lifecycle_cpu(seed.HITLStateMachine, n) if seed else (float("nan"), float("nan"))
    row(
        "in-memory lifecycle vs seed design",
        f"{rate:,.0f} tasks/s = {rate / seed_rate:.2f}x; {cpu:.1f} µs CPU/transition "
        f"(3 hooks: {rate_hooks / seed_rate:.2f}x, {cpu_hooks:.1f} µs)",
        f"seed {seed_rate:,.0f} tasks/s, {seed_cpu:.1f} µs CPU/transition",
        "≥ 1.0x with the event log and hooks",
    )
    memory = min([await bench_core.bytes_per_waiting_task(hitl, 5000) for _ in range(3)])
    seed_memory = (
        min([await bench_core.bytes_per_waiting_task(seed.HITLStateMachine, 5000) for _ in range(3)])
        if seed
        else float("nan")
    )
    row("bytes per task waiting for approval", f"{memory:,.0f} B", f"seed {seed_memory:,.0f} B", "≤ 1,400 B")
    with tempfile.TemporaryDirectory() as tmp:
        mem_ms = await pending_10k(hitl)
        sqlite_ms = await pending_10k(lambda: HITLStateMachine(f"sqlite:///{tmp}/p.db", load_entrypoints=False))
    seed_ms = await pending_10k(seed.HITLStateMachine) if seed else float("nan")
    row(
        "get_pending_approvals(), 10,000 waiting",
        f"memory {mem_ms:.1f} ms, SQLite {sqlite_ms:.1f} ms",
        f"seed {seed_ms:.1f} ms",
        "≤ 10 ms on both",
    )


# -- SQLite ------------------------------------------------------------------------------------------


async def sqlite_rate(url: str, agents: int, tasks: int) -> tuple[float, float, float]:
    """(transitions/s, CPU µs a transition, appends per transaction), best of 3 runs."""
    best = (0.0, 0.0, 0.0)
    for r in range(3):
        cpu0 = time.process_time()
        rate, batch = await bench_sqlite.throughput(f"{url}-{r}.db", agents, tasks)
        cpu = (time.process_time() - cpu0) / (tasks * 5) * 1e6
        if rate > best[0]:
            best = (rate, cpu, batch)
    return best


def bare_sqlite_16(path: Path, n: int = 4000) -> float:
    """Bare sqlite3, the same writes grouped 16 to a transaction (what 16 agents' group commit gives)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, task_id TEXT, version INT, data TEXT)")
    conn.execute("CREATE TABLE tasks (task_id TEXT PRIMARY KEY, state TEXT, version INT, last_seq INT, snapshot TEXT)")
    snapshot, data = "s" * 1000, "d" * 300
    start = time.perf_counter()
    for b in range(n // 16):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(b * 16, b * 16 + 16):
            conn.execute(
                "INSERT INTO tasks VALUES (?, 'running', ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET "
                "version = excluded.version, snapshot = excluded.snapshot",
                (f"t{i % 160}", i, i, snapshot),
            )
            conn.execute("INSERT INTO events (task_id, version, data) VALUES (?, ?, ?)", (f"t{i % 160}", i, data))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def sqlite_rows(tasks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        one, one_cpu, _ = await sqlite_rate(f"sqlite:///{tmp}/one", 1, tasks)
        many, many_cpu, batch = await sqlite_rate(f"sqlite:///{tmp}/many", 16, tasks)
        bare_one = max(bench_sqlite.raw_sqlite_ceiling(Path(tmp) / f"bare-{r}.db") for r in range(3))
        bare_many = max(bare_sqlite_16(Path(tmp) / f"bare16-{r}.db") for r in range(3))
    row(
        "SQLite, one sequential agent, each transition committed",
        f"{one:,.0f} transitions/s ({one_cpu:.0f} µs CPU each)",
        f"bare sqlite3, same writes, a commit each: {bare_one:,.0f}/s",
        "≥ 8,000/s",
    )
    row(
        "SQLite, 16 agents in one process (group commit)",
        f"{many:,.0f} transitions/s ({many_cpu:.0f} µs CPU each, {batch:.1f} per commit)",
        f"bare sqlite3, 16 a commit: {bare_many:,.0f}/s",
        "≥ 20,000/s",
    )


# -- PostgreSQL ----------------------------------------------------------------------------------------


async def bare_psycopg_16(url: str, seconds: float = 4.0) -> float:
    """Bare psycopg: 16 connections, each transition one transaction (update a snapshot, insert an
    event), durable commit: the writes hitl_append makes, without its checks and chain."""
    import psycopg

    setup = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await setup.execute("CREATE TABLE bare_events (seq bigserial PRIMARY KEY, task_id text, version int, data text)")
    await setup.execute("CREATE TABLE bare_tasks (task_id text PRIMARY KEY, version int, snapshot text)")
    await setup.close()
    done = [0]
    deadline = time.perf_counter() + seconds

    async def agent(n: int) -> None:
        conn = await psycopg.AsyncConnection.connect(url)
        i = 0
        while time.perf_counter() < deadline:
            tid = f"{n}-{i // 5}"
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO bare_tasks VALUES (%s, %s, %s) ON CONFLICT (task_id) DO UPDATE SET "
                    "version = excluded.version, snapshot = excluded.snapshot",
                    (tid, i, "s" * 1000),
                )
                await conn.execute(
                    "INSERT INTO bare_events (task_id, version, data) VALUES (%s, %s, %s)", (tid, i, "d" * 300)
                )
            i += 1
            done[0] += 1
        await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(agent(n) for n in range(16)))
    return done[0] / (time.perf_counter() - start)


async def postgres_rows() -> None:
    try:
        import bench_postgres
        from pg_cluster import LocalCluster
    except Exception as exc:  # no driver or no server binaries
        row("PostgreSQL, 16 agents, durable", f"not measured ({exc})", "-", "≥ 3,000/s")
        return
    cluster = LocalCluster(durable=True).start()
    try:
        url = cluster.create_database()
        cpu0, server0 = time.process_time(), bench_postgres.cluster_cpu_seconds(cluster)
        rate = await bench_postgres.transitions_per_second(url, 16)
        cpu = time.process_time() - cpu0 + bench_postgres.cluster_cpu_seconds(cluster) - server0
        cpu_ms = cpu * 1000 / (rate * bench_postgres.SECONDS)
        bare = await bare_psycopg_16(cluster.create_database())
    finally:
        cluster.destroy()
    row(
        "PostgreSQL, 16 agents, durable",
        f"{rate:,.0f} transitions/s ({cpu_ms:.2f} ms CPU each, client + server)",
        f"bare psycopg, same writes, a transaction each: {bare:,.0f}/s",
        "≥ 3,000/s",
    )


# -- LangGraph -----------------------------------------------------------------------------------------


def langgraph_rows(cycles: int) -> None:
    import bench_langgraph as lg

    rounds = 4
    per_round = max(cycles // rounds, 1)
    with tempfile.TemporaryDirectory() as tmp:
        bare_graph = lg.build_graph(str(Path(tmp) / "bare.db"))
        hitl_graph = lg.build_graph(str(Path(tmp) / "hitl-graph.db"))
        mem_graph = lg.build_graph(str(Path(tmp) / "mem-graph.db"))
        machine = HITLStateMachine(f"sqlite:///{tmp}/hitl.db", load_entrypoints=False)
        mem_machine = HITLStateMachine("memory://", load_entrypoints=False)
        lg.make_operator(machine)
        lg.make_operator(mem_machine)
        adapter = lg.GraphApprovals(machine, agent="bench")
        mem_adapter = lg.GraphApprovals(mem_machine, agent="bench")
        lg.timed(lambda t: lg.bare_cycle(bare_graph, t), 5, "warm-bare")
        lg.timed(lambda t: lg.adapter_cycle(adapter, hitl_graph, t), 5, "warm-hitl")
        lg.timed(lambda t: lg.adapter_cycle(mem_adapter, mem_graph, t), 5, "warm-mem")
        store = machine.store
        assert isinstance(store, SqliteStore)
        bare: list[float] = []
        hitl: list[float] = []
        mem: list[float] = []
        bare_cpu: list[float] = []
        hitl_cpu: list[float] = []
        mem_cpu: list[float] = []
        commits0, appends0 = store.commits, store.committed_appends
        for r in range(rounds):
            bare += lg.timed(lambda t: lg.bare_cycle(bare_graph, t), per_round, f"b{r}", bare_cpu)
            hitl += lg.timed(lambda t: lg.adapter_cycle(adapter, hitl_graph, t), per_round, f"h{r}", hitl_cpu)
            mem += lg.timed(lambda t: lg.adapter_cycle(mem_adapter, mem_graph, t), per_round, f"m{r}", mem_cpu)
        n = per_round * rounds
        transactions = (store.commits - commits0) / n
        events = (store.committed_appends - appends0) / n
        machine.sync.close()
        mem_machine.sync.close()

    def over(a: list[float], b: list[float]) -> float:
        return 100 * (statistics.median(a) - statistics.median(b)) / statistics.median(b)

    row(
        "LangGraph pause → decide → resume: hitl's extra cost",
        f"SQLite +{over(hitl, bare):.0f}% wall, +{over(hitl_cpu, bare_cpu):.0f}% CPU "
        f"({statistics.median(bare_cpu):.1f} → {statistics.median(hitl_cpu):.1f} ms CPU a cycle; "
        f"{events:.0f} events in {transactions:.1f} transactions); "
        f"memory:// +{over(mem, bare):.0f}% wall, +{over(mem_cpu, bare_cpu):.0f}% CPU",
        f"bare LangGraph {statistics.median(bare):.1f} ms wall, {statistics.median(bare_cpu):.1f} ms CPU",
        "≤ 10%",
    )


# -- the big store -------------------------------------------------------------------------------------


async def big_store_row(path: str) -> None:
    """Open, first pending list and pending lookup on the machine; then the console's first paint
    (beside the same console on a 100-task store), each against a store opened afresh."""
    store_url = f"sqlite:///{path}"
    cold = time.perf_counter()
    async with HITLStateMachine(store_url, load_entrypoints=False) as machine:
        pending = await machine.get_pending_approvals()
        first = (time.perf_counter() - cold) * 1000
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            await machine.get_pending_approvals()
            best = min(best, time.perf_counter() - start)
        info = await machine.store.info()  # type: ignore[attr-defined]
    row(
        f"big store ({info['tasks']:,} tasks, {info['events']:,} events): open + first pending list, pending lookup",
        f"{first:.0f} ms, {best * 1000:.2f} ms ({len(pending)} waiting)",
        "-",
        "≤ 1 s, ≤ 1 ms",
    )

    paints, rows_loaded = await console_first_paint(store_url)
    with tempfile.TemporaryDirectory() as tmp:
        small_url = f"sqlite:///{tmp}/small.db"
        async with HITLStateMachine(small_url, load_entrypoints=False) as machine:
            for i in range(100):
                await machine.start_task(f"t-{i}")
                await machine.request_approval(f"t-{i}", "why?")
                if i % 2:
                    await machine.approve(f"t-{i}", "bench")
                    await machine.resume(f"t-{i}")
                    await machine.complete(f"t-{i}")
        small, _ = await console_first_paint(small_url)
    row(
        "big store: console first paint (open, load, first row drawn; median of 3)",
        f"{statistics.median(paints) * 1000:.0f} ms ({rows_loaded:,} rows loaded)",
        f"100-task store {statistics.median(small) * 1000:.0f} ms",
        "≤ 1 s",
    )


async def console_first_paint(store_url: str) -> tuple[list[float], int]:
    """Seconds from opening the store to the console's first drawn row, three times; rows loaded."""
    from hitl_tui.app import ConsoleApp

    paints: list[float] = []
    rows_loaded = 0
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        async with HITLStateMachine(store_url, load_entrypoints=False) as machine:
            app = ConsoleApp(machine, actor="bench", follow=False)
            drawn: list[float] = []

            def mark(_row: Any, drawn: list[float] = drawn) -> None:
                if not drawn:
                    drawn.append(time.perf_counter())

            async with app.run_test(size=(160, 45)):
                app.table.on_row_drawn = mark
                await app.loaded.wait()
                while not drawn:  # noqa: ASYNC110 (polling the paint, not waiting for an event)
                    await asyncio.sleep(0.001)
                rows_loaded = len(app.view.rows)
            paints.append(drawn[0] - start)
    return paints, rows_loaded


def big_store_ls_row(path: str) -> None:
    """``hitl ls`` of the waiting tasks in a new process, beside the bare start of ``hitl``."""
    store_url = f"sqlite:///{path}"
    ls = []
    for _ in range(3):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "hitl_core.cli", "--store", store_url, "ls", "--state", "awaiting_approval"],
            capture_output=True,
            text=True,
            check=True,
        )
        ls.append(time.perf_counter() - start)
    startup = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hitl_core.cli", "--version"], capture_output=True, check=True)
        startup.append(time.perf_counter() - start)
    row(
        "big store: `hitl ls --state awaiting_approval`, a new process (median of 3)",
        f"{statistics.median(ls) * 1000:.0f} ms ({len(done.stdout.splitlines()) - 1} listed)",
        f"`hitl --version` {statistics.median(startup) * 1000:.0f} ms",
        "-",
    )


def big_store_path() -> str:
    """``$HITL_BIG_STORE``, or issue 14's store (``$HITL_BIG_STORE_TASKS`` tasks, default
    1,000,000, about 5,000,000 events), made once and reused."""
    given = os.environ.get("HITL_BIG_STORE")
    if given:
        return given
    from make_big_store import cached

    return str(cached(tasks=int(os.environ.get("HITL_BIG_STORE_TASKS", "1000000"))))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    started = load()
    print(f"issue 14 table — load average at start {started} ({os.cpu_count()} cores, shared)", flush=True)
    asyncio.run(machine_rows(n))
    asyncio.run(sqlite_rows(max(n // 5, 200)))
    asyncio.run(postgres_rows())
    langgraph_rows(max(n // 50, 40))
    big = big_store_path()
    asyncio.run(big_store_row(big))
    big_store_ls_row(big)
    print(f"\nload average at start {started}, at end {load()}")
    widths = [max(len(r[i]) for r in ROWS) for i in range(4)]
    header = ("measure", "hitl now", "anchor (same run)", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in ROWS:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
