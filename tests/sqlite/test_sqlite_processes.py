"""Real OS processes on one SQLite file: deciding from elsewhere, racing, and kill -9."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState

pytestmark = pytest.mark.processes


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def test_agent_waiting_in_one_process_continues_when_the_cli_approves_in_another(
    db_url: str, spawn: Callable[..., Any], hitl_cli: Callable[..., Any]
) -> None:
    agent = spawn("ask", db_url, "job-a")
    agent.read_until("WAITING")
    approved = hitl_cli("--store", db_url, "approve", "job-a", "--as", "operator-7", "--message", "go ahead")
    assert approved.returncode == 0, approved.stderr
    decided = json.loads(agent.read_until("DECIDED").split(" ", 1)[1])
    assert decided == {"type": "approve", "by": "operator-7", "message": "go ahead"}
    agent.read_until("DONE")
    assert agent.wait() == 0

    async def final() -> Any:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return await machine.get_task("job-a")

    task = asyncio.run(final())
    assert task.state is TaskState.COMPLETED and task.result == {"ok": True}


def test_eight_processes_racing_on_200_tasks_decide_each_exactly_once(db_url: str, spawn: Callable[..., Any]) -> None:
    count = 200

    async def prepare() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            for i in range(count):
                await machine.start_task(f"race-{i}")
                await machine.request_approval(f"race-{i}", "which process wins?")

    asyncio.run(prepare())
    deciders = [spawn("decide", db_url, str(count), str(seed)) for seed in range(8)]
    results = [json.loads(d.read_until("RESULT", timeout=90).split(" ", 1)[1]) for d in deciders]
    assert all(d.wait() == 0 for d in deciders)

    winner_of: dict[str, str] = {}
    for result in results:
        for task_id in result["won"]:
            assert task_id not in winner_of, f"{task_id} won twice"
            winner_of[task_id] = result["me"]
    assert len(winner_of) == count
    for result in results:
        for task_id, named in result["lost"].items():
            assert named == winner_of[task_id], f"{result['me']} was told {named} won {task_id}"
        assert len(result["won"]) + len(result["lost"]) == count

    async def audit() -> tuple[list[Any], Any, list[Any]]:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return await machine.events(), await machine.verify(), await machine.get_all_tasks()

    events, report, tasks = asyncio.run(audit())
    decisions = Counter(e.task_id for e in events if e.action in ("approve", "reject"))
    assert decisions == Counter({f"race-{i}": 1 for i in range(count)})
    assert [e.seq for e in events] == list(range(1, 3 * count + 1))  # no event lost, none duplicated
    assert report.ok and report.checked == 3 * count
    for task in tasks:
        assert task.decision is not None and task.decision.actor.id == winner_of[task.task_id]


def test_agent_killed_while_waiting_resumes_with_the_decision_made_meanwhile(
    db_url: str, spawn: Callable[..., Any]
) -> None:
    first = spawn("ask", db_url, "job-c")
    first.read_until("WAITING")
    first.kill()  # SIGKILL: no cleanup, no goodbye

    async def approve() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            assert (await machine.get_task("job-c")).state is TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]
            await machine.approve("job-c", "night-shift", message="approved while the agent was down")

    asyncio.run(approve())
    second = spawn("ask", db_url, "job-c")
    assert second.read_until("RESTARTED") == "RESTARTED approved"
    decided = json.loads(second.read_until("DECIDED").split(" ", 1)[1])
    assert decided["by"] == "night-shift"
    second.read_until("DONE")
    assert second.wait() == 0

    async def history() -> list[str]:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return [e.action for e in await machine.events(task_id="job-c")]

    assert asyncio.run(history()) == ["start", "request_approval", "approve", "resume", "complete"]


def test_acknowledged_transitions_survive_kill_9_and_no_torn_write_is_visible(
    db_url: str, spawn: Callable[..., Any]
) -> None:
    acknowledged: dict[str, int] = {}
    for round_ in range(3):
        churner = spawn("churn", db_url, f"r{round_}")
        target = 150 + 70 * round_  # kill at a different point each round
        for _ in range(target):
            _, task_id, version = churner.read_until("ACK").split()
            acknowledged[task_id] = int(version)
        churner.kill()

    conn = sqlite3.connect(_path(db_url))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = {
        task_id: (version, snapshot)
        for task_id, version, snapshot in conn.execute("SELECT task_id, version, snapshot FROM tasks")
    }
    per_task = Counter(task_id for (task_id,) in conn.execute("SELECT task_id FROM events"))
    conn.close()
    for task_id, version in acknowledged.items():
        assert task_id in rows, f"acknowledged task {task_id} is gone"
        assert rows[task_id][0] >= version, f"{task_id}: acknowledged v{version}, stored v{rows[task_id][0]}"
    for task_id, (version, snapshot) in rows.items():
        assert per_task[task_id] == version, f"{task_id}: snapshot v{version} but {per_task[task_id]} events"
        assert json.loads(snapshot)["version"] == version

    async def check() -> Any:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return await machine.verify()

    report = asyncio.run(check())
    assert report.ok, report.problem
