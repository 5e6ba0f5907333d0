"""Deadlines: defaults by severity, the sweeper, warnings, escalation levels, and two sweeping processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hitl_core import (
    DecisionType,
    HITLStateMachine,
    InterruptPoint,
    InvalidTransitionError,
    NotAuthorizedError,
    TaskContext,
    TaskState,
    hookimpl,
)
from hitl_core.policies import escalation_level

from .conftest import MachineFactory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

ESCALATING = """
[deadlines]
sweep_interval = 0.02
warn_before = 0
[escalation]
severities = ["high", "critical"]
levels = [
  { assignees = ["oncall-2"], wait = 0.3 },
  { assignees = ["manager"], wait = 0.3 },
]
[authorization]
no_self_approval = true
"""


async def test_default_deadline_by_severity(configured: MachineFactory) -> None:
    m = configured("[deadlines]\nsweep = false\n[deadlines.default_timeout]\ncritical = 60\nlow = 3600\n")
    await m.start_task("c")
    before = datetime.now(UTC)
    critical = await m.request_approval("c", "why", severity="critical")
    deadline = critical.interrupt_point.deadline
    assert deadline is not None and timedelta(seconds=59) < deadline - before < timedelta(seconds=61)
    await m.start_task("m")
    medium = await m.request_approval("m", "why", severity="medium")
    assert medium.interrupt_point.deadline is None  # no default for medium: waits for a person
    await m.start_task("own")
    soon = datetime.now(UTC) + timedelta(seconds=5)
    own = await m.request_approval("own", "why", severity="critical", deadline=soon)
    assert own.interrupt_point.deadline == soon  # the caller's deadline stands


async def test_expired_deadline_applies_the_default_as_a_timeout_not_a_person(configured: MachineFactory) -> None:
    m = configured("[deadlines]\nsweep = false\nallow_default_approve = true\n")
    await m.start_task("t")
    await m.request_approval("t", "why", timeout=0.05)
    await m.start_task("yes")
    await m.request_approval("yes", "why", timeout=0.05, default_decision="approve")
    await m.start_task("later")
    await m.request_approval("later", "why", timeout=3600)
    await asyncio.sleep(0.1)
    from hitl_core.policies import DeadlineSweeper

    report = await DeadlineSweeper(m, m.policies.config.deadlines).sweep_once()
    assert sorted(report.expired) == ["t", "yes"]
    task = await m.get_task("t")
    assert task.state == TaskState.REJECTED and task.decision is not None
    assert (task.decision.type, task.decision.outcome, task.decision.actor.id) == (
        DecisionType.TIMEOUT,
        "reject",
        "hitl:timeout",
    )
    assert (await m.get_task("yes")).state == TaskState.APPROVED  # only because it was asked for
    assert (await m.get_task("later")).state == TaskState.AWAITING_APPROVAL


async def test_background_sweeper_expires_while_the_agent_waits(configured: MachineFactory) -> None:
    m = configured("[deadlines]\nsweep_interval = 0.02\n")
    await m.start_task("t")
    await m.request_approval("t", "why", timeout=0.1)
    decision = await m.wait_for_decision("t", timeout=5)  # no one calls expire: the sweeper does
    assert decision.type == DecisionType.TIMEOUT and decision.outcome == "reject"
    await m.close()
    assert m.policies is not None and m.policies.sweeper is not None and m.policies.sweeper._task is None


async def test_escalation_moves_up_each_level_then_applies_the_default(configured: MachineFactory) -> None:
    m = configured(ESCALATING)
    await m.start_task("t", agent="deploy-pilot")
    task = await m.request_approval("t", "deploy", severity="critical", timeout=0.2, assignees=["oncall-1"])
    interrupt_id = task.interrupt_point.interrupt_id
    decision = await m.wait_for_decision("t", timeout=10)
    assert decision.type == DecisionType.TIMEOUT and decision.outcome == "reject"
    events = await m.events(task_id="t")
    escalations = [e for e in events if e.action == "escalate"]
    assert [(e.data["level"], e.data["assignees"], e.actor.id) for e in escalations] == [
        (1, ["oncall-2"], "escalation:level-1"),
        (2, ["manager"], "escalation:level-2"),
    ]
    assert all(e.from_state == e.to_state == TaskState.AWAITING_APPROVAL for e in escalations)
    assert all(e.data["interrupt_id"] == interrupt_id for e in escalations)
    assert [e.action for e in events] == ["start", "request_approval", "escalate", "escalate", "reject"]
    assert (await m.verify()).ok


async def test_escalated_request_is_decided_by_the_new_level(configured: MachineFactory) -> None:
    m = configured(ESCALATING.replace("wait = 0.3 }", "wait = 60 }"))
    await m.start_task("t", agent="deploy-pilot")
    await m.request_approval(
        "t", "deploy", severity="high", deadline=datetime.now(UTC) - timedelta(seconds=1), assignees=["oncall-1"]
    )
    escalated = await m.expire("t")
    assert escalated.state == TaskState.AWAITING_APPROVAL and escalation_level(escalated) == 1
    assert escalated.interrupt_point.assignees == ["oncall-2"]
    assert escalated.interrupt_point.deadline > datetime.now(UTC) + timedelta(seconds=50)
    with pytest.raises(InvalidTransitionError, match="deadline has not passed"):
        await m.expire("t")
    with pytest.raises(NotAuthorizedError, match="only the assignees"):
        await m.approve("t", actor="oncall-1")
    done = await m.approve("t", actor="oncall-2")
    assert done.state == TaskState.APPROVED and done.decision.actor.id == "oncall-2"


async def test_low_severity_is_not_escalated(configured: MachineFactory) -> None:
    m = configured(ESCALATING)
    await m.start_task("t")
    await m.request_approval("t", "why", severity="low", timeout=0.05)
    decision = await m.wait_for_decision("t", timeout=5)
    assert decision.type == DecisionType.TIMEOUT
    assert [e.action for e in await m.events(task_id="t")] == ["start", "request_approval", "reject"]


async def test_deadline_warning_fires_once_per_deadline(configured: MachineFactory) -> None:
    warned: list[tuple[str, str]] = []

    class Watch:
        @hookimpl
        def hitl_deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
            warned.append((task.task_id, ",".join(interrupt.assignees)))

    toml = ESCALATING.replace("warn_before = 0", "warn_before = 0.25").replace("wait = 0.3 }", "wait = 0.4 }")
    m = configured(toml, plugins=(Watch(),))
    await m.start_task("t")
    await m.request_approval("t", "why", severity="critical", timeout=0.3, assignees=["oncall-1"])
    await m.wait_for_decision("t", timeout=10)
    # one warning for each deadline: the first, and each escalation's new one
    assert warned == [("t", "oncall-1"), ("t", "oncall-2"), ("t", "manager")]


@pytest.mark.processes
def test_two_processes_sweeping_one_sqlite_store_expire_each_deadline_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    config = tmp_path / "hitl.toml"
    config.write_text(ESCALATING.replace("wait = 0.3 }", "wait = 0.4 }"), encoding="utf-8")
    go = tmp_path / "go"
    n = 40

    async def prepare() -> None:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            for i in range(n):
                await m.start_task(f"t{i}")
                # half escalate twice before the default applies; half just expire
                await m.request_approval(f"t{i}", "why", severity="critical" if i % 2 else "medium", timeout=1.0)

    asyncio.run(prepare())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "proc_sweeper.py"), url, str(config), str(go), "3.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    go.touch()
    reports: list[dict[str, Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))

    async def audit() -> tuple[list[Any], list[TaskContext], bool]:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            return await m.events(), await m.get_all_tasks(), (await m.verify()).ok

    events, tasks, ok = asyncio.run(audit())
    assert ok
    assert all(t.state == TaskState.REJECTED and t.decision.type == DecisionType.TIMEOUT for t in tasks)
    for i in range(n):
        actions = [e.action for e in events if e.task_id == f"t{i}"]
        expected = ["escalate", "escalate", "reject"] if i % 2 else ["reject"]
        assert actions == ["start", "request_approval", *expected], (i, actions)
    expired = reports[0]["expired"] + reports[1]["expired"]
    assert sorted(expired) == sorted(f"t{i}" for i in range(n)), "each expiry is recorded by exactly one process"
    assert len(reports[0]["escalated"]) + len(reports[1]["escalated"]) == n  # 20 tasks x 2 levels
    assert reports[0]["errors"] == reports[1]["errors"] == 0


async def test_sweeper_reads_more_waiting_tasks_than_the_sqlite_cache_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full read of the waiting tasks larger than the store's snapshot cache (it used to raise KeyError)."""
    monkeypatch.setattr("hitl_core.stores.sqlite.CACHE_SIZE", 8)
    from hitl_core.policies import DeadlineSweeper
    from hitl_core.policies.config import DeadlinesConfig

    async with HITLStateMachine(f"sqlite:///{tmp_path / 'hitl.db'}", load_entrypoints=False) as m:
        for i in range(40):
            await m.start_task(f"t{i}")
            await m.request_approval(f"t{i}", "why", timeout=0.05 if i % 4 == 0 else 3600)
        await asyncio.sleep(0.1)
        report = await DeadlineSweeper(m, DeadlinesConfig(warn_before=0)).sweep_once()
        assert sorted(report.expired) == sorted(f"t{i}" for i in range(0, 40, 4))
        assert len(await m.get_pending_approvals()) == 30


def test_sync_facade_agent_gets_the_timeout_from_the_sweeper() -> None:
    """A non-async agent (``machine.sync``): the sweeper runs in the facade's own loop."""
    from hitl_core.policies import parse_config

    m = HITLStateMachine(
        "memory://", load_entrypoints=False, config=parse_config("[deadlines]\nsweep_interval = 0.02\n")
    )
    try:
        m.sync.start_task("t")
        m.sync.request_approval("t", "why", timeout=0.1)
        decision = m.sync.wait_for_decision("t", timeout=5)
        assert decision.type == DecisionType.TIMEOUT and decision.outcome == "reject"
        m.sync.run(m.close())
    finally:
        m.sync.close()


async def test_an_operators_pause_gets_no_default_deadline_unless_configured(tmp_path: Path) -> None:
    """Pausing is a person's review: the per-severity defaults (meant for agents' requests) would
    reject the run while the operator is still reading. ``pause_timeout`` sets one if wanted."""
    from hitl_core import HITLStateMachine
    from hitl_core.policies import parse_config

    base = "[deadlines]\nsweep = false\n[deadlines.default_timeout]\nmedium = 60\n"
    for text, expect_deadline in (
        (base, False),
        (base.replace("sweep = false", "sweep = false\npause_timeout = 120"), True),
    ):
        config = parse_config(text, tmp_path / "hitl.toml")
        async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as m:
            await m.start_task("agent-ask")
            asked = await m.request_approval("agent-ask", "may I?", severity="medium")
            assert asked.interrupt_point is not None and asked.interrupt_point.deadline is not None
            await m.start_task("run")
            paused = await m.pause("run", actor="alice", reason="let me look")
            assert paused.interrupt_point is not None
            assert (paused.interrupt_point.deadline is not None) is expect_deadline
