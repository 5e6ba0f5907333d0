"""Short scripts that never close their machine, one ``asyncio.run`` after another, in one process.

    python pg_unclosed.py URL ADMIN_URL RUNS

Each run opens a machine on URL (without ``async with`` or ``close()``), starts a task, asks for
approval and waits briefly for a decision (so the machine has pooled connections and a follower),
then lets ``asyncio.run`` end. After each run it prints how many of hitl's connections
(application_name hitl or hitl-follow) the server still has, counted over ADMIN_URL. No explicit
garbage collection: what is returned is returned by the loop's end, not by luck.
"""

from __future__ import annotations

import asyncio
import sys
import time

import psycopg

from hitl_core import HITLStateMachine


async def script(url: str, n: int) -> None:
    machine = HITLStateMachine(url, load_entrypoints=False)
    await machine.start_task(f"run-{n}")
    await machine.request_approval(f"run-{n}", "ok?")
    try:
        await machine.wait_for_decision(f"run-{n}", timeout=0.2)
    except TimeoutError:
        pass


def hitl_connections(admin_url: str) -> int:
    with psycopg.connect(admin_url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('hitl', 'hitl-follow')"
        ).fetchone()
    return int(row[0]) if row else -1


def describe(admin_url: str) -> str:
    """What the connections left are (for the test's failure message)."""
    with psycopg.connect(admin_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT application_name, state, query FROM pg_stat_activity "
            "WHERE application_name IN ('hitl', 'hitl-follow')"
        ).fetchall()
    return f" {rows}"


def main(url: str, admin_url: str, runs: int) -> None:
    for n in range(runs):
        asyncio.run(script(url, n))
        # A backend that was told to close may take a moment to leave pg_stat_activity.
        for _ in range(100):
            left = hitl_connections(admin_url)
            if left == 0:
                break
            time.sleep(0.05)
        print(f"run {n}: {left} hitl connection(s) left{describe(admin_url) if left else ''}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
