"""Cross-process LangGraph runs: real OS processes sharing a SqliteSaver file and the hitl SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lg_support import two_step_graph

from hitl_core import HITLStateMachine, TaskState

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def _env(checkpoints: str, graph: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LG_CHECKPOINTS=checkpoints,
        LG_GRAPH=graph,
        LANGSMITH_TRACING="false",
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
    )
    return env


def agent(mode: str, store: str, thread: str, checkpoints: str, graph: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "lg_agent_process.py"), mode, store, thread],
        env=_env(checkpoints, graph),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def resumer(store: str, checkpoints: str, graph: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_langgraph.resumer",
            "--store",
            store,
            "--graph",
            f"{HERE / 'lg_support.py'}:graph_from_env",
            *extra,
        ],
        env=_env(checkpoints, graph),
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_pending(
    machine: HITLStateMachine, count: int, proc: subprocess.Popen[str] | None = None, timeout: float = 60
) -> list:
    end = time.monotonic() + timeout
    while True:
        pending = machine.sync.get_pending_approvals()
        if len(pending) >= count:
            return pending
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the agent exited early: {proc.communicate()}")
        if time.monotonic() > end:
            raise AssertionError(f"expected {count} pending approvals, saw {len(pending)}")
        time.sleep(0.02)


def test_decisions_made_in_this_process_resume_the_agent_waiting_in_another(tmp_path: Path) -> None:
    store, checkpoints = f"sqlite:///{tmp_path / 'hitl.db'}", str(tmp_path / "checkpoints.db")
    proc = agent("run", store, "deploy-7", checkpoints, "two_step")
    try:
        machine = HITLStateMachine(store, load_entrypoints=False)
        pending = wait_pending(machine, 2, proc)
        assert {t.framework for t in pending} == {"langgraph"} and {t.run_id for t in pending} == {"deploy-7"}
        by_action = {t.interrupt_point.action.name: t.task_id for t in pending}
        machine.sync.edit(by_action["deploy"], {"env": "prod", "replicas": 5}, "alice")
        machine.sync.reject(by_action["migrate_db"], "bob", "take a backup first")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["done"] == [["deploy", {"env": "prod", "replicas": 5}]]
    assert {a["type"] for a in result["answers"]} == {"edit", "reject"}
    assert {t.state for t in machine.sync.get_all_tasks()} == {TaskState.COMPLETED}


def test_agent_exits_after_pausing_and_the_resumer_process_finishes_the_thread_once_fully_decided(
    tmp_path: Path,
) -> None:
    store, checkpoints = f"sqlite:///{tmp_path / 'hitl.db'}", str(tmp_path / "checkpoints.db")
    started = agent("start", store, "deploy-9", checkpoints, "two_step")
    out, err = started.communicate(timeout=60)
    assert started.returncode == 0, err
    task_ids = json.loads(out)["task_ids"]
    machine = HITLStateMachine(store, load_entrypoints=False)

    machine.sync.approve(task_ids[1], "alice")
    waiting = resumer(store, checkpoints, "two_step")
    assert waiting.returncode == 0, waiting.stderr
    assert waiting.stdout.startswith("thread deploy-9: paused, waiting on 2 task(s)")
    assert two_step_graph(checkpoints).get_state({"configurable": {"thread_id": "deploy-9"}}).interrupts

    machine.sync.reject(task_ids[0], "bob", "not before the backup")
    finished = resumer(store, checkpoints, "two_step", "--thread", "deploy-9")
    assert finished.stdout.strip() == "thread deploy-9: finished", finished.stderr
    state = two_step_graph(checkpoints).get_state({"configurable": {"thread_id": "deploy-9"}})
    assert sorted(a["type"] for a in state.values["answers"]) == ["approve", "reject"] and not state.interrupts
    tasks = {t.task_id: t.state for t in machine.sync.get_all_tasks()}
    assert tasks == {"langgraph:deploy-9": TaskState.COMPLETED, **dict.fromkeys(task_ids, TaskState.COMPLETED)}


def test_resumer_with_a_graph_it_cannot_load_is_a_clear_error(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "hitl_langgraph.resumer", "--store", store, "--graph", "no_such_module_here:graph"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no_such_module_here" in result.stderr and "Traceback" not in result.stderr
