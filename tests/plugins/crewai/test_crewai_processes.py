"""The CrewAI adapter across real OS processes sharing one SQLite store (and one flow database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from crewai import Crew
from crewai.flow import flow_config
from crewai.flow.async_feedback import HumanFeedbackPending
from crewai.flow.persistence import SQLiteFlowPersistence
from hitl_crewai import FlowFeedbackViaHITL, ToolApprovals, pending_flow_feedback
from publish_flow import PublishFlow

from hitl_core import HITLStateMachine, TaskState

# The flow-resuming process imports CrewAI: on a loaded 2-core machine that alone can take a minute.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).with_name("crewai_processes.py")
MakeCrew = Callable[..., Crew]


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HITL_PLUGINS": ""},
        cwd=SCRIPT.parent,
    )


def outcome(process: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    """The JSON line the process printed; fails with its stderr if it did not succeed."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, HITLStateMachine]]:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    machine = HITLStateMachine(url, load_entrypoints=False)
    yield url, machine
    machine.sync.close()


@pytest.fixture
def flow_provider(store: tuple[str, HITLStateMachine]) -> Iterator[FlowFeedbackViaHITL]:
    provider = FlowFeedbackViaHITL(store[1])
    flow_config.hitl_provider = provider
    yield provider
    flow_config.hitl_provider = None


def test_a_rejection_from_another_process_reaches_the_agent(
    store: tuple[str, HITLStateMachine], make_crew: MakeCrew, published: list[str]
) -> None:
    url, machine = store
    crew = make_crew([("publish", {"title": "Hello"})])
    console = spawn("decide", url, "reject", "embargoed until Monday")
    with ToolApprovals(machine):
        output = crew.kickoff()
    decided = outcome(console)
    assert decided["pid"] != os.getpid()
    assert published == []
    assert output.raw == "tool: Tool call rejected by console-user: embargoed until Monday"


def test_an_edit_from_another_process_changes_the_call(
    store: tuple[str, HITLStateMachine], make_crew: MakeCrew, published: list[str]
) -> None:
    url, machine = store
    crew = make_crew([("publish", {"title": "Helo"})])
    console = spawn("decide", url, "edit", json.dumps({"title": "Hello"}))
    with ToolApprovals(machine):
        crew.kickoff()
    outcome(console)
    assert published == ["Hello"]


def test_a_paused_flow_is_resumed_by_another_process_with_the_feedback(
    store: tuple[str, HITLStateMachine], flow_provider: FlowFeedbackViaHITL, tmp_path: Path
) -> None:
    url, machine = store
    flow_db = str(tmp_path / "flows.db")
    flow = PublishFlow(persistence=SQLiteFlowPersistence(flow_db))
    paused = flow.kickoff()
    assert isinstance(paused, HumanFeedbackPending)
    flow_id = paused.context.flow_id
    (question,) = pending_flow_feedback(machine, flow_id)
    assert question.interrupt_point is not None
    assert question.interrupt_point.context["output"] == {"title": "Hello, world", "body": "A short article."}
    assert question.interrupt_point.reason == "Publish this draft?"
    # The resuming process waits for the decision, which this process then makes.
    resumer = spawn("resume-flow", url, flow_db, flow_id)
    machine.sync.respond(question.task_id, "say hello to Mars instead", "alice")
    finished = outcome(resumer)
    assert finished["pid"] != os.getpid()
    assert finished["result"] == "published 'Hello, world' after feedback 'say hello to Mars instead'"
    done = machine.sync.get_task(question.task_id)
    assert done is not None and done.state is TaskState.COMPLETED
    assert done.result["feedback"] == "say hello to Mars instead"
    assert pending_flow_feedback(machine, flow_id) == []
