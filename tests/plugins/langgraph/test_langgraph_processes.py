"""Cross-process LangGraph runs: real OS processes sharing a SqliteSaver file and the hitl SQLite store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lg_support import flaky_graph, two_step_graph

from hitl_core import HITLStateMachine, TaskState

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def _env(checkpoints: str, graph: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LG_CHECKPOINTS=checkpoints,
        LG_GRAPH=graph,
        LANGSMITH_TRACING="false",
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        **extra,
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


def _resumer_argv(store: str, *extra: str) -> list[str]:
    graph = f"{HERE / 'lg_support.py'}:graph_from_env"
    return [sys.executable, "-m", "hitl_langgraph.resumer", "--store", store, "--graph", graph, *extra]


def resumer(
    store: str, checkpoints: str, graph: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _resumer_argv(store, *extra),
        env=_env(checkpoints, graph, **(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


def started(store: str, thread: str, checkpoints: str, graph: str) -> list[str]:
    """Run an agent process to its first pause (it exits); the pending task ids."""
    proc = agent("start", store, thread, checkpoints, graph)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out)["task_ids"]


def poll(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None, timeout: float = 60
) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited early: {proc.communicate()}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def state_of(machine: HITLStateMachine, task_id: str) -> TaskState | None:
    task = machine.sync.get_task(task_id)
    return None if task is None else task.state


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


def test_resumer_retries_a_failed_resume(tmp_path: Path) -> None:
    store, checkpoints = f"sqlite:///{tmp_path / 'hitl.db'}", str(tmp_path / "checkpoints.db")
    flag = tmp_path / "target-down"
    flag.touch()
    [task_id] = started(store, "deploy-11", checkpoints, "flaky")
    machine = HITLStateMachine(store, load_entrypoints=False)
    machine.sync.approve(task_id, "alice", message="go")

    failed = resumer(store, checkpoints, "flaky", env={"LG_FAIL_FLAG": str(flag)})
    assert failed.returncode == 1
    assert "thread deploy-11: resuming failed: RuntimeError: the deploy target is down" in failed.stderr
    assert "Traceback" not in failed.stderr
    first = machine.sync.get_task(task_id)
    assert first.state is TaskState.FAILED and "the deploy target is down" in (first.error or "")
    retry = machine.sync.get_task(f"{task_id}~1")  # asked at once: a resumer finds it like any other
    assert retry.state is TaskState.AWAITING_APPROVAL
    assert retry.interrupt_point.allowed_decisions == ["approve", "reject"]
    assert retry.interrupt_point.context["retry"]["error"] == (
        "carrying the decision back raised RuntimeError: the deploy target is down"
    )
    assert retry.interrupt_point.context["retry"]["decided_by"] == "alice"

    machine.sync.approve(retry.task_id, "bob")
    finished = resumer(store, checkpoints, "flaky", env={"LG_FAIL_FLAG": str(flag)})
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "thread deploy-11: finished"
    state = flaky_graph(checkpoints).get_state({"configurable": {"thread_id": "deploy-11"}})
    assert state.values["answers"] == [{"type": "approve", "actor": "alice", "message": "go"}]  # alice's, again
    assert {t.task_id: t.state for t in machine.sync.get_all_tasks()} == {
        "langgraph:deploy-11": TaskState.COMPLETED,
        task_id: TaskState.FAILED,
        retry.task_id: TaskState.COMPLETED,
    }


def test_resumer_follow_survives_a_graph_exception_and_resumes_later_threads(tmp_path: Path) -> None:
    store, checkpoints = f"sqlite:///{tmp_path / 'hitl.db'}", str(tmp_path / "checkpoints.db")
    flag = tmp_path / "target-down"
    flag.touch()
    [first] = started(store, "a", checkpoints, "flaky")
    [second] = started(store, "b", checkpoints, "flaky")
    machine = HITLStateMachine(store, load_entrypoints=False)
    follower = subprocess.Popen(
        _resumer_argv(store, "--follow", "--interval", "0.1"),
        env=_env(checkpoints, "flaky", LG_FAIL_FLAG=str(flag)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        machine.sync.approve(first, "alice")
        poll(lambda: state_of(machine, f"{first}~1") is TaskState.AWAITING_APPROVAL, "the retry question", follower)
        assert state_of(machine, first) is TaskState.FAILED and not flag.exists()

        machine.sync.approve(second, "alice")  # decided after the first thread's graph raised
        poll(lambda: state_of(machine, "langgraph:b") is TaskState.COMPLETED, "thread b to finish", follower)

        machine.sync.approve(f"{first}~1", "bob")
        poll(lambda: state_of(machine, "langgraph:a") is TaskState.COMPLETED, "thread a to finish", follower)
        assert follower.poll() is None  # still following
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            out, err = follower.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            follower.kill()  # never leave it behind; the failure says what it had printed
            out, err = follower.communicate()
            raise AssertionError(f"the resumer ignored SIGINT for 60 s\nstdout: {out}\nstderr: {err[-3000:]}") from None
    assert "thread a: resuming failed: RuntimeError: the deploy target is down" in err
    assert "thread b: finished" in out and "thread a: finished" in out
    for thread in ("a", "b"):
        state = flaky_graph(checkpoints).get_state({"configurable": {"thread_id": thread}})
        assert state.values["answers"] == [{"type": "approve", "actor": "alice"}] and not state.interrupts
