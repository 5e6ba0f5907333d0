"""Real OS processes on one PostgreSQL database: 3 agents, 2 deciders, 500 tasks, and a server
crash-restart in the middle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pg_cluster import LocalCluster, require_psycopg

from hitl_core.stores.postgres import PostgresStore

psycopg = require_psycopg()

pytestmark = [pytest.mark.processes, pytest.mark.timeout(400)]

WORKERS = Path(__file__).with_name("pg_workers.py")
TASKS = 500


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def count_completed(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM hitl_tasks WHERE state = 'completed'").fetchone()
        return int(row[0]) if row else 0


async def _open_and(url: str, verify: bool) -> tuple[bool, int]:
    store = PostgresStore(url)
    await store.open()  # migrates a new database
    try:
        if not verify:
            return True, 0
        report = await store.verify()
        return report.ok, report.checked
    finally:
        await store.close()


def test_three_agents_two_deciders_500_tasks_and_a_server_restart_lose_nothing(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    url = own_cluster.create_database()
    asyncio.run(_open_and(url, verify=False))  # migrate once, so the five processes start on a ready schema

    # The deciders follow from seq 0, so they miss nothing whenever they get going.
    deciders = [spawn("decider", url, f"console{n}", str(tmp_path), str(TASKS)) for n in range(2)]
    ids = [f"task-{i:03d}" for i in range(TASKS)]
    agents = [spawn("agent", url, f"agent{n}", str(tmp_path), *ids[n::3]) for n in range(3)]

    # Crash the server (immediate shutdown: no checkpoint, WAL recovery on start) mid-run.
    deadline = time.monotonic() + 120
    done_at_restart = 0
    while time.monotonic() < deadline:
        done_at_restart = count_completed(url)
        if done_at_restart >= TASKS // 4:
            break
        time.sleep(0.05)
    own_cluster.restart(mode="immediate")

    outputs = []
    for proc in [*agents, *deciders]:
        out, _ = proc.communicate(timeout=300)
        outputs.append(out)
        assert proc.returncode == 0, out[-3000:]
    assert 0 < done_at_restart < TASKS, "the restart must happen while tasks are in flight"
    assert all("reconnecting" in out for out in outputs[3:]), "both deciders' followers rode the restart out"
    print(f"restart with {done_at_restart}/{TASKS} tasks completed; the processes logged:")
    print("\n".join(sorted({line for out in outputs for line in out.splitlines()})[:20]))

    with psycopg.connect(url) as conn:
        states = Counter(r[0] for r in conn.execute("SELECT state FROM hitl_tasks"))
        approvals = Counter(r[0] for r in conn.execute("SELECT task_id FROM hitl_events WHERE action = 'approve'"))
        logged = {(r[0], r[1]): r[2] for r in conn.execute("SELECT task_id, version, seq FROM hitl_events")}
        last_seq = conn.execute("SELECT seq FROM hitl_chain_head").fetchone()[0]  # type: ignore[index]
    assert states == {"completed": TASKS}
    assert set(approvals) == set(ids) and set(approvals.values()) == {1}, "every task decided exactly once"

    won = [set((tmp_path / f"won-console{n}.txt").read_text().split()) for n in range(2)]
    assert not won[0] & won[1] and won[0] | won[1] == set(ids)

    for n in range(2):  # every follower saw every event once, in order, across the restart
        seen = [int(s) for s in (tmp_path / f"seen-console{n}.txt").read_text().split()]
        assert seen == list(range(1, last_seq + 1))
    assert last_seq == len(logged)

    acked = 0
    for n in range(3):  # every transition an agent was told had committed is in the log, as told
        for line in (tmp_path / f"acks-agent{n}.txt").read_text().splitlines():
            task_id, version, seq = line.split()
            assert logged[(task_id, int(version))] == int(seq)
            acked += 1
    assert acked == TASKS * 4

    assert asyncio.run(_open_and(url, verify=True)) == (True, last_seq), "the chain verifies"
