"""The other side of the process tests: run as its own OS process by tests/sqlite/test_sqlite_processes.py.

    python proc_agent.py ask URL TASK        ask (or, restarted, keep waiting), print the decision, finish
    python proc_agent.py decide URL N SEED   try to decide every task "race-0".."race-N-1" in a shuffled order
    python proc_agent.py churn URL PREFIX    run lifecycles forever, printing each acknowledged transition
    python proc_agent.py lock URL SECONDS    hold the database's write lock that long, or until-told (a stdin line)

Every line it prints is flushed at once: the test reads them while the process runs.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

from hitl_core import AlreadyDecidedError, HITLStateMachine, TaskState


def say(*parts: object) -> None:
    print(*parts, flush=True)


async def ask(url: str, task_id: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        task = await machine.get_task(task_id)
        if task is None:
            await machine.start_task(task_id, agent="proc-agent")
            await machine.request_approval(task_id, "delete the staging database?", {"rows": 1200}, severity="high")
            say("ASKED")
        else:
            say("RESTARTED", task.state.value)
        say("WAITING")
        decision = await machine.wait_for_decision(task_id, timeout=30)
        say("DECIDED", json.dumps({"type": decision.type.value, "by": decision.actor.id, "message": decision.message}))
        await machine.resume(task_id)
        await machine.complete(task_id, {"ok": decision.approved})
        say("DONE")


async def decide(url: str, count: int, seed: int) -> None:
    ids = [f"race-{i}" for i in range(count)]
    random.Random(seed).shuffle(ids)
    me = f"decider-{seed}"
    won: list[str] = []
    lost: dict[str, str | None] = {}
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        say("READY")
        for task_id in ids:
            try:
                if seed % 2:
                    await machine.reject(task_id, me, "raced")
                else:
                    await machine.approve(task_id, me)
                won.append(task_id)
            except AlreadyDecidedError as exc:
                lost[task_id] = exc.decided_by
    say("RESULT", json.dumps({"me": me, "won": won, "lost": lost}))


async def churn(url: str, prefix: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        i = 0
        while True:
            task_id = f"{prefix}-{i}"
            for action in ("start", "ask", "approve", "resume", "complete"):
                if action == "start":
                    task = await machine.start_task(task_id)
                elif action == "ask":
                    task = await machine.request_approval(task_id, "go on?", {"i": i})
                elif action == "approve":
                    task = await machine.approve(task_id, "churner")
                elif action == "resume":
                    task = await machine.resume(task_id)
                else:
                    task = await machine.complete(task_id, {"i": i})
                say("ACK", task_id, task.version)
            assert task.state is TaskState.COMPLETED
            i += 1


def hold_lock(url: str, seconds: str) -> None:
    """Hold the write lock for ``seconds``, or (``until-told``) until a line arrives on stdin."""
    import sqlite3
    import time

    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    say("LOCKED")
    if seconds == "until-told":
        sys.stdin.readline()
    else:
        time.sleep(float(seconds))
    conn.execute("COMMIT")
    say("RELEASED")


async def open_at(url: str, when: str, task_id: str) -> None:
    """Open (maybe create) the store at the wall-clock instant ``when``, with the other openers."""
    await asyncio.sleep(max(0.0, float(when) - time.time()))
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        await machine.start_task(task_id, agent="opener")
        await machine.request_approval(task_id, "opened with the others", {"at": when})
    say("OPENED")


def main() -> None:
    verb, url, *rest = sys.argv[1:]
    if verb == "ask":
        asyncio.run(ask(url, rest[0]))
    elif verb == "decide":
        asyncio.run(decide(url, int(rest[0]), int(rest[1])))
    elif verb == "churn":
        asyncio.run(churn(url, rest[0]))
    elif verb == "open-at":
        asyncio.run(open_at(url, rest[0], rest[1]))
    elif verb == "lock":
        hold_lock(url, rest[0])
    else:
        raise SystemExit(f"unknown verb {verb!r}")


if __name__ == "__main__":
    main()
