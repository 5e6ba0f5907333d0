"""The PostgreSQL store: durable transitions/s under concurrency, cross-process decision latency.

Run with ``make bench`` (or ``python benchmarks/bench_postgres.py``). Prints tables; never
pass/fail. Starts its own throwaway cluster (tests/postgres/pg_cluster.py) with fsync ON and
synchronous_commit ON, so "durable" means what it says: a transition counts once its commit is
flushed to disk. The machine is a shared 2-core VM: the server, the agents and (in the latency
run) a second process share those cores with whatever else runs, so treat figures as rough.

Table 1, transitions/s: N agents are N asyncio tasks on one machine (one process, one pool), each
running its own tasks through start → request_approval → approve → resume → complete. Every
machine transition reads the task (2 queries) and appends (1 function call, group-committed).
The "store appends/s" column is the append alone (no reads), which is what group commit speeds.

Table 2, latency: an agent process waits in ``wait_for_decision``; this process approves; the
latency is from ``approve`` returning (the commit is acknowledged) to ``wait_for_decision``
returning in the other process (NOTIFY → follower reads the event → reads the task → wakes the
waiter), over 200 decisions, measured on the shared wall clock.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "postgres"))

from pg_cluster import LocalCluster, find_bin  # noqa: E402

from hitl_core import HITLStateMachine  # noqa: E402
from hitl_core.canonical import now_us  # noqa: E402
from hitl_core.models import TaskState  # noqa: E402
from hitl_core.records import EventRecord, TaskRecord  # noqa: E402
from hitl_core.stores.postgres import PostgresStore  # noqa: E402

AGENTS = (1, 4, 16)
SECONDS = 4.0  # per measurement
DECISIONS = 200


def machine(url: str, pool_max: int = 16) -> HITLStateMachine:
    return HITLStateMachine(PostgresStore(url, pool_max=pool_max), load_entrypoints=False)


def cluster_cpu_seconds(cluster: LocalCluster) -> float:
    """CPU time used so far by the cluster's server processes (postmaster, backends, and the
    backends that already exited, which the postmaster has reaped)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def transitions_per_second(url: str, agents: int) -> float:
    async with machine(url) as m:
        deadline = time.perf_counter() + SECONDS
        done = [0]

        async def agent(n: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                tid = f"a{agents}-{n}-{i}"
                i += 1
                await m.start_task(tid)
                await m.request_approval(tid, "deploy?", {"i": i})
                await m.approve(tid, "bench")
                await m.resume(tid)
                await m.complete(tid, {"ok": True})
                done[0] += 5

        start = time.perf_counter()
        await asyncio.gather(*(agent(n) for n in range(agents)))
        return done[0] / (time.perf_counter() - start)


async def appends_per_second(url: str, agents: int) -> float:
    """The store's append alone: each agent appends new tasks back to back."""
    store = PostgresStore(url, pool_max=16)
    await store.open()
    try:
        deadline = time.perf_counter() + SECONDS
        done = [0]

        async def agent(n: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                at = now_us()
                tid = f"s{agents}-{n}-{i}"
                i += 1
                event = EventRecord(tid, 1, "start", None, TaskState.RUNNING, "bench", "agent", at, {"i": i})
                await store.append(event, TaskRecord(tid, TaskState.RUNNING, 1, at, at), None)
                done[0] += 1

        start = time.perf_counter()
        await asyncio.gather(*(agent(n) for n in range(agents)))
        return done[0] / (time.perf_counter() - start)
    finally:
        await store.close()


# -- latency: the waiting agent runs in another process ------------------------------------------


async def waiting_agent(url: str) -> None:
    """Child process: per decision, ask, print "ready", wait, print the wall time it returned."""
    async with machine(url) as m:
        for i in range(DECISIONS):
            tid = f"lat-{i}"
            await m.start_task(tid)
            await m.request_approval(tid, "approve?")
            print(f"ready {tid}", flush=True)
            await m.wait_for_decision(tid, timeout=60)
            print(f"returned {tid} {time.time()}", flush=True)


async def decision_latency(url: str) -> list[float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--waiting-agent", url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    latencies = []
    async with machine(url) as m:
        for _ in range(DECISIONS):
            line = (await child.stdout.readline()).decode()
            kind, tid = line.split()[:2]
            assert kind == "ready", line
            await asyncio.sleep(0.005)  # the agent is parked in wait_for_decision by now
            await m.approve(tid, "operator")
            committed = time.time()
            returned = (await child.stdout.readline()).decode().split()
            assert returned[:2] == ["returned", tid], returned
            latencies.append((float(returned[2]) - committed) * 1000)
    await asyncio.wait_for(child.wait(), 30)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def throughput_rows(durable: bool) -> dict[int, tuple[float, float, float]]:
    """Per agent count: machine transitions/s, store appends/s, and the CPU milliseconds (this
    process + the server) one machine transition costs — the figure a busy machine can't skew."""
    cluster = LocalCluster(durable=durable).start()
    try:
        rows = {}
        for agents in AGENTS:
            url = cluster.create_database()
            cpu_before, server_before = time.process_time(), cluster_cpu_seconds(cluster)
            rate = await transitions_per_second(url, agents)
            cpu = time.process_time() - cpu_before + cluster_cpu_seconds(cluster) - server_before
            cpu_ms = cpu * 1000 / (rate * SECONDS)
            rows[agents] = (rate, await appends_per_second(url, agents), cpu_ms)
        return rows
    finally:
        cluster.destroy()


async def main() -> None:
    print(
        "PostgreSQL store benchmark — throwaway local cluster (PostgreSQL "
        f"{find_bin('initdb').split('/')[-3] if find_bin('initdb') else '?'}), "
        f"{os.cpu_count()} cores shared with other work: figures are noisy\n"
    )
    durable = await throughput_rows(durable=True)
    ceiling = await throughput_rows(durable=False)
    cores = os.cpu_count() or 1
    print("transitions/s; durable = fsync on + synchronous_commit on (acknowledged = flushed to disk).")
    print("fsync off = the same run without disk flushes. CPU ms = client + server CPU per machine")
    print(f"transition (fsync-off run); {cores} cores / that = the rate an otherwise idle machine could reach.")
    print(
        f"{'agents':>6} | {'transitions/s':>13} | {'appends/s':>9} | {'transitions/s fsync off':>23} | "
        f"{'CPU ms':>6} | {'idle-machine ceiling':>20}"
    )
    print(f"{'-' * 6}-+-{'-' * 13}-+-{'-' * 9}-+-{'-' * 23}-+-{'-' * 6}-+-{'-' * 20}")
    for agents in AGENTS:
        (rate, appends, _), (rate_off, _, cpu_ms) = durable[agents], ceiling[agents]
        print(
            f"{agents:>6} | {rate:>13,.0f} | {appends:>9,.0f} | {rate_off:>23,.0f} | {cpu_ms:>6.2f} | "
            f"{cores * 1000 / cpu_ms:>20,.0f}"
        )

    cluster = LocalCluster(durable=True).start()
    try:
        latencies = await decision_latency(cluster.create_database())
    finally:
        cluster.destroy()
    print(
        f"\ncross-process decision latency over {len(latencies)} decisions, durable cluster "
        "(approve committed → wait_for_decision returns in the agent process)"
    )
    print(
        f"  p50 {statistics.median(latencies):.1f} ms   p99 {percentile(latencies, 0.99):.1f} ms   "
        f"max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--waiting-agent":
        asyncio.run(waiting_agent(sys.argv[2]))
    else:
        asyncio.run(main())
