"""Run as its own OS process by test_sqlite_kill_mid_batch.py: commit some transitions, then SIGKILL
itself in the middle of writing an ``append_many`` — after some of its events were inserted in the
open transaction, before the commit.

    python kill_mid_batch.py URL ask        a task that starts and asks at once (two events), killed after the first
    python kill_mid_batch.py URL many N K   one append_many of N tasks x (start, complete), killed at the K-th insert

Prints COMMITTED once the transitions before the batch are acknowledged, then KILLING; it never
prints anything after that (the kill comes first).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from hitl_core import HITLStateMachine, TaskState
from hitl_core.canonical import now_us
from hitl_core.records import EventRecord, TaskRecord

S = TaskState


def say(*parts: object) -> None:
    print(*parts, flush=True)


def kill_at_insert(store: object, nth: int) -> None:
    """SIGKILL this process when the write connection starts its ``nth`` event insert from now."""
    conn = store._inline_writer()  # type: ignore[attr-defined]
    count = 0

    def trace(statement: str) -> None:
        nonlocal count
        if statement.startswith("INSERT INTO events"):
            count += 1
            if count == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    conn.set_trace_callback(trace)


def started_and_done(task_id: str) -> list[tuple[EventRecord, TaskRecord, int | None]]:
    at = now_us()
    start = EventRecord(task_id, 1, "start", None, S.RUNNING, "agent", "agent", at, {})
    running = TaskRecord(task_id=task_id, state=S.RUNNING, version=1, created_at=at, updated_at=at, history=(start,))
    done = EventRecord(task_id, 2, "complete", S.RUNNING, S.COMPLETED, None, None, at, {"result": {"n": 1}})
    completed = running.evolve(state=S.COMPLETED, version=2, history=(start, done), result={"n": 1})
    return [(start, running, None), (done, completed, 1)]


async def main(url: str, mode: str, *rest: str) -> None:
    machine = HITLStateMachine(url, load_entrypoints=False)
    for i in range(3):
        await machine._start_and_request(f"before-{i}", {"agent": "proc"}, "ship it?", {"i": i})
    say("COMMITTED")
    store = machine.store
    if mode == "ask":
        kill_at_insert(store, 2)
        say("KILLING")
        await machine._start_and_request("killed", {"agent": "proc"}, "ship it?", {"i": 99})
    else:
        tasks, nth = int(rest[0]), int(rest[1])
        steps = [s for i in range(tasks) for s in started_and_done(f"killed-{i}")]
        kill_at_insert(store, nth)
        say("KILLING")
        await store.append_many(steps)
    say("SURVIVED")  # never reached: the test fails if it is printed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
