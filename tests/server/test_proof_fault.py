"""``hitl serve`` SIGKILLed and restarted under three waiting agent processes and two following
consoles: nothing is lost, every agent gets its decision, every follower sees every event once
and in order.

The agents are tests/server/proc_agent.py (a plain ``HITLStateMachine()`` that is a
``RemoteMachine`` because ``HITL_STORE`` names the server). The followers are
tests/server/proof_follower.py: the console's own follow path (``machine.store.follow`` and a
``store.get`` per event, as ``ConsoleApp._follow_store`` does) in its own process, through
``RemoteMachine``. The decisions are made by the real ``hitl`` command through the restarted server.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine

from .conftest import ServerFactory, child_env

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


class Child:
    """A script in its own process; its stdout lines collected by a thread, awaited with deadlines."""

    def __init__(self, script: Path, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**env),
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def _drain(self, timeout: float) -> bool:
        """Move waiting lines into ``lines``; False once the process has closed its stdout."""
        try:
            line = self._new.get(timeout=timeout)
        except queue.Empty:
            return True
        while True:
            if line is None:
                return False
            self.lines.append(line)
            try:
                line = self._new.get_nowait()
            except queue.Empty:
                return True

    def wait_for(self, check: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check(self.lines):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout}s; saw {self.lines[-20:]}")
            if not self._drain(0.1) and not check(self.lines):
                self.proc.wait(10)
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"exited ({self.proc.returncode}) before {what}: {err[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def children() -> Any:
    started: list[Child] = []

    def start(script: Path, *args: str, **env: str) -> Child:
        child = Child(script, *args, **env)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_three_waiting_agents_and_two_followers_survive_a_server_sigkill(
    start_server: ServerFactory, children: Any, hitl_cli: Any
) -> None:
    server = start_server()
    env = {"HITL_STORE": server.unix_url}
    followers = [children(HERE / "proof_follower.py", **env) for _ in range(2)]
    for follower in followers:
        follower.wait_for(lambda lines: "machine RemoteMachine" in lines, "the follower's start")
    task_ids = [f"fault-{i}" for i in range(3)]
    agents = {task_id: children(HERE / "proc_agent.py", task_id, **env) for task_id in task_ids}
    for agent in agents.values():
        agent.wait_for(lambda lines: "waiting" in lines, "'waiting'")
    for follower in followers:  # both followers are live on the first server: 3 starts, 3 requests
        follower.wait_for(lambda lines: len(_events(lines)) >= 6, "the six events before the kill")

    server.kill()  # SIGKILL: no goodbye to any stream, no flush
    server.start()

    verdicts = {"fault-0": "approve", "fault-1": "reject", "fault-2": "approve"}
    for task_id, verb in verdicts.items():
        extra = ["--reason", "not this one"] if verb == "reject" else []
        decided = hitl_cli("--store", server.unix_url, verb, task_id, *extra)
        assert decided.returncode == 0, decided.stderr
    for task_id, agent in agents.items():
        agent.wait_for(lambda lines: "done" in lines, f"{task_id}'s 'done'")
        assert f"decided {verdicts[task_id]} root | unix" in agent.lines
        assert agent.proc.wait(30) == 0

    async def the_log() -> list[dict[str, Any]]:
        async with HITLStateMachine(server.store_url, load_entrypoints=False) as local:
            return [
                {"seq": e.seq, "task_id": e.task_id, "action": e.action, "version": e.version}
                for e in await local.store.events()
            ]

    log = asyncio.run(the_log())
    # Nothing lost: each task's whole life is in the log, in order.
    for task_id, verb in verdicts.items():
        actions = [e["action"] for e in log if e["task_id"] == task_id]
        assert actions == ["start", "request_approval", verb, "resume", "complete"], (task_id, actions)
    assert [e["seq"] for e in log] == list(range(1, 16))
    for follower in followers:
        follower.wait_for(lambda lines: len(_events(lines)) >= len(log), "every event")
        seen = _events(follower.lines)
        # Once each and in order: exactly the log, no duplicate across the reconnect, no gap.
        assert [{k: e[k] for k in ("seq", "task_id", "action", "version")} for e in seen] == log
        # The console's read after each event finds the task at least at that event's version.
        assert all(e["read_version"] is not None and e["read_version"] >= e["version"] for e in seen)
