"""Flows with ``@human_feedback``: the provider pauses the flow durably; ``resume_flow`` carries the decision back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from crewai.flow import flow_config
from crewai.flow.async_feedback import HumanFeedbackPending
from crewai.flow.human_feedback import HumanFeedbackCollapseError
from crewai.flow.persistence import SQLiteFlowPersistence
from hitl_crewai import FRAMEWORK, REVIEW_DECISIONS, FlowFeedbackViaHITL, pending_flow_feedback, resume_flow
from publish_flow import PublishFlow, RoutedPublishFlow

from hitl_core import HITLError, HITLStateMachine, InvalidTransitionError, TaskNotFoundError, TaskState


@pytest.fixture
def persistence(tmp_path: Path) -> SQLiteFlowPersistence:
    return SQLiteFlowPersistence(str(tmp_path / "flows.db"))


@pytest.fixture(autouse=True)
def provider(machine: HITLStateMachine) -> Iterator[FlowFeedbackViaHITL]:
    provider = FlowFeedbackViaHITL(machine, severity="high")
    flow_config.hitl_provider = provider
    yield provider
    flow_config.hitl_provider = None


def pause(persistence: SQLiteFlowPersistence) -> str:
    paused = PublishFlow(persistence=persistence).kickoff()
    assert isinstance(paused, HumanFeedbackPending)  # returned, not raised, and nothing blocked
    return paused.context.flow_id


def test_the_flow_pauses_as_a_hitl_question_and_approve_accepts(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence
) -> None:
    flow_id = pause(persistence)
    (question,) = pending_flow_feedback(machine, flow_id)
    interrupt = question.interrupt_point
    assert interrupt is not None
    assert (question.framework, question.run_id, question.agent) == (FRAMEWORK, flow_id, "PublishFlow")
    assert (interrupt.kind, interrupt.severity) == ("question", "high")
    assert interrupt.allowed_decisions == list(REVIEW_DECISIONS)
    assert persistence.load_pending_feedback(flow_id) is not None  # CrewAI persisted the paused flow
    machine.sync.approve(question.task_id, "alice")
    assert resume_flow(PublishFlow, machine, flow_id, persistence) == "published 'Hello, world'"
    assert persistence.load_pending_feedback(flow_id) is None
    done = machine.sync.get_task(question.task_id)
    assert done is not None and done.state is TaskState.COMPLETED


def test_a_rejection_reason_is_the_flows_feedback(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence
) -> None:
    flow_id = pause(persistence)
    (question,) = pending_flow_feedback(machine, flow_id)
    machine.sync.reject(question.task_id, "alice", "the title is too generic")
    result = resume_flow(PublishFlow, machine, flow_id, persistence)
    assert result == "published 'Hello, world' after feedback 'the title is too generic'"


def test_edit_is_refused_for_a_flow_question(machine: HITLStateMachine, persistence: SQLiteFlowPersistence) -> None:
    flow_id = pause(persistence)
    (question,) = pending_flow_feedback(machine, flow_id)
    with pytest.raises(InvalidTransitionError, match="allows only approve, reject, respond"):
        machine.sync.edit(question.task_id, {"title": "x"}, "alice")


def test_resuming_an_unknown_flow_is_a_clear_error(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence
) -> None:
    with pytest.raises(TaskNotFoundError, match="no paused crewai flow with this id"):
        resume_flow(PublishFlow, machine, "no-such-flow", persistence)


def test_resuming_from_the_wrong_flow_database_is_a_clear_error_and_the_question_stays(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence, tmp_path: Path
) -> None:
    flow_id = pause(persistence)
    (question,) = pending_flow_feedback(machine, flow_id)
    machine.sync.approve(question.task_id, "alice")
    elsewhere = SQLiteFlowPersistence(str(tmp_path / "another.db"))
    with pytest.raises(HITLError, match="is it the same database the flow was started with"):
        resume_flow(PublishFlow, machine, flow_id, elsewhere)
    # Nothing lost: the decision waits, and the right database resumes the flow.
    assert [t.task_id for t in pending_flow_feedback(machine, flow_id)] == [question.task_id]
    assert resume_flow(PublishFlow, machine, flow_id, persistence) == "published 'Hello, world'"


def test_with_emit_approve_routes_to_the_default_outcome_and_the_options_are_shown(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence
) -> None:
    paused = RoutedPublishFlow(persistence=persistence).kickoff()
    assert isinstance(paused, HumanFeedbackPending)
    (question,) = pending_flow_feedback(machine, paused.context.flow_id)
    assert question.interrupt_point is not None
    assert question.interrupt_point.options == ["publish", "revise"]
    assert question.interrupt_point.context["default_outcome"] == "publish"
    machine.sync.approve(question.task_id, "alice")
    # No text: CrewAI takes the default outcome without asking an LLM to classify anything.
    assert resume_flow(RoutedPublishFlow, machine, paused.context.flow_id, persistence) == "published"


def test_picking_another_outcome_needs_the_flows_llm_and_without_one_is_a_clear_error(
    machine: HITLStateMachine, persistence: SQLiteFlowPersistence, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # offline: CrewAI's default LLM must not be reachable
    paused = RoutedPublishFlow(persistence=persistence).kickoff()
    assert isinstance(paused, HumanFeedbackPending)
    (question,) = pending_flow_feedback(machine, paused.context.flow_id)
    machine.sync.approve(question.task_id, "alice", option="revise")
    # CrewAI takes feedback text only and classifies it with the flow's LLM; this flow has none usable.
    with pytest.raises(
        HumanFeedbackCollapseError, match=r"Could not classify human feedback into \['publish', 'revise'\]"
    ):
        resume_flow(RoutedPublishFlow, machine, paused.context.flow_id, persistence)
    # Nothing lost: the decision still waits to be carried back, and CrewAI still holds the pause.
    assert [t.task_id for t in pending_flow_feedback(machine, paused.context.flow_id)] == [question.task_id]
    assert persistence.load_pending_feedback(paused.context.flow_id) is not None
