"""``Task(human_input=True)`` asks through hitl instead of blocking on ``input()``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from crewai import Crew
from hitl_crewai import REVIEW_DECISIONS, HumanInputViaHITL

from hitl_core import HITLStateMachine, InvalidTransitionError, TaskContext, TaskState

MakeCrew = Callable[..., Crew]


@pytest.fixture(autouse=True)
def _no_terminal_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """CrewAI's default provider would block on input(): make sure nothing reaches it."""

    def refuse(*args: object) -> str:
        raise AssertionError("CrewAI asked on the terminal instead of through hitl")

    monkeypatch.setattr("builtins.input", refuse)


def test_approve_without_text_accepts_the_answer(machine: HITLStateMachine, make_crew: MakeCrew, person) -> None:
    crew = make_crew(human_input=True)
    person.when_pending(1, lambda pending: machine.sync.approve(pending[0].task_id, "alice"))
    with HumanInputViaHITL(machine, run_id="review-1"):
        output = crew.kickoff()
    person.join()
    assert output.raw == "nothing to report"
    question = person.seen[0]
    assert question.interrupt_point is not None
    assert question.interrupt_point.kind == "question"
    assert question.interrupt_point.allowed_decisions == list(REVIEW_DECISIONS)
    assert question.interrupt_point.context["answer"] == "nothing to report"
    assert question.interrupt_point.context["task"] == "publish the article"
    done = machine.sync.get_task(question.task_id)
    assert done is not None and done.state is TaskState.COMPLETED
    assert done.result == {"decision": "approve", "feedback": ""}


def test_the_persons_text_is_feedback_and_the_agent_tries_again(
    machine: HITLStateMachine, make_crew: MakeCrew, person
) -> None:
    crew = make_crew(human_input=True)
    person.when(
        lambda t: t.interrupt_point.context["round"] == 1,
        lambda t: machine.sync.respond(t.task_id, "add a headline", "alice"),
    )
    # The second round's question appears only after the agent has used the feedback.
    person.when(lambda t: t.interrupt_point.context["round"] == 2, lambda t: machine.sync.approve(t.task_id, "alice"))
    with HumanInputViaHITL(machine, run_id="review-2"):
        output = crew.kickoff()
    person.join()
    assert output.raw == "feedback: add a headline"
    rounds = sorted(machine.sync.get_tasks_by_state(TaskState.COMPLETED), key=lambda t: t.created_at)
    assert [t.result["feedback"] for t in rounds] == ["add a headline", ""]
    # The second question showed the answer the agent gave after reading the feedback.
    second = person.seen[1].interrupt_point
    assert second is not None and second.context["answer"] == "feedback: add a headline"


def test_reject_makes_its_reason_the_feedback(machine: HITLStateMachine, make_crew: MakeCrew, person) -> None:
    crew = make_crew(human_input=True)

    person.when(
        lambda t: t.interrupt_point.context["round"] == 1,
        lambda t: machine.sync.reject(t.task_id, "alice", "too short"),
    )
    person.when(lambda t: t.interrupt_point.context["round"] == 2, lambda t: machine.sync.approve(t.task_id, "bob"))
    with HumanInputViaHITL(machine):
        output = crew.kickoff()
    person.join()
    assert output.raw == "feedback: too short"


def test_edit_is_refused_for_a_review(machine: HITLStateMachine, make_crew: MakeCrew, person) -> None:
    crew = make_crew(human_input=True)
    refused: list[str] = []

    def try_edit(pending: list[TaskContext]) -> None:
        try:
            machine.sync.edit(pending[0].task_id, {"answer": "mine"}, "alice")
        except InvalidTransitionError as exc:
            refused.append(str(exc))
        machine.sync.approve(pending[0].task_id, "alice")

    person.when_pending(1, try_edit)
    with HumanInputViaHITL(machine):
        crew.kickoff()
    person.join()
    assert len(refused) == 1 and "allows only approve, reject, respond" in refused[0]


def test_an_async_kickoff_asks_through_hitl_too(machine: HITLStateMachine, make_crew: MakeCrew, person) -> None:
    crew = make_crew(human_input=True)
    person.when(
        lambda t: t.interrupt_point.context["round"] == 1,
        lambda t: machine.sync.respond(t.task_id, "cite a source", "alice"),
    )
    person.when(lambda t: t.interrupt_point.context["round"] == 2, lambda t: machine.sync.approve(t.task_id, "alice"))
    provider = HumanInputViaHITL(machine)
    used: list[str] = []
    async_path = provider.handle_feedback_async

    async def spy(*args: object) -> object:
        used.append("async")
        return await async_path(*args)  # type: ignore[arg-type]

    provider.handle_feedback_async = spy  # type: ignore[method-assign]
    with provider:
        output = asyncio.run(crew.akickoff())
    person.join()
    assert output.raw == "feedback: cite a source"
    assert used == ["async"]  # CrewAI's native async path, which must not block its event loop
