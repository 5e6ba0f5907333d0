"""Tool approval through CrewAI's before/after tool-call hooks: the real crew, an offline LLM."""

from __future__ import annotations

from collections.abc import Callable

from crewai import Crew
from hitl_crewai import CAPABILITIES, FRAMEWORK, ToolApprovals

from hitl_core import HITLStateMachine, TaskContext, TaskState

PUBLISH_HELLO = ("publish", {"title": "Hello"})
PUBLISH_DRAFT = ("publish", {"title": "Half-written draft"})

MakeCrew = Callable[..., Crew]


def tool_results(crew: Crew) -> list[str]:
    """The tool results the (offline) model read in its last call."""
    return list(crew.agents[0].llm.seen_tool_results)


def test_approved_call_runs_and_the_agent_sees_its_result(
    machine: HITLStateMachine, make_crew: MakeCrew, person, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_HELLO])

    def approve(pending: list[TaskContext]) -> None:
        assert published == []  # the tool waits for the decision
        machine.sync.approve(pending[0].task_id, "alice")

    person.when_pending(1, approve)
    with ToolApprovals(machine, run_id="crew-1"):
        output = crew.kickoff()
    person.join()
    assert published == ["Hello"]
    assert tool_results(crew) == ["published Hello"]
    assert output.raw == "tool: published Hello"
    task = machine.sync.get_task(person.seen[0].task_id)
    assert task is not None and task.state is TaskState.COMPLETED
    assert task.result == {"decision": "approve", "output": "published Hello"}


def test_task_names_the_tool_args_agent_and_framework(machine: HITLStateMachine, make_crew: MakeCrew, person) -> None:
    crew = make_crew([PUBLISH_HELLO])
    person.when_pending(1, lambda pending: machine.sync.approve(pending[0].task_id, "alice"))
    with ToolApprovals(machine, severity="high"):
        crew.kickoff()
    person.join()
    task = person.seen[0]
    interrupt = task.interrupt_point
    assert interrupt is not None and interrupt.action is not None
    assert (task.framework, task.agent, task.run_id) == (FRAMEWORK, "editor", str(crew.id))
    assert (interrupt.action.name, interrupt.action.args) == ("publish", {"title": "Hello"})
    assert interrupt.reason == "editor wants to call publish"
    assert interrupt.severity == "high"
    assert interrupt.allowed_decisions == list(CAPABILITIES.decisions)


def test_rejected_call_never_runs_and_the_agent_reads_the_reason(
    machine: HITLStateMachine, make_crew: MakeCrew, person, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_DRAFT])
    person.when_pending(
        1, lambda pending: machine.sync.reject(pending[0].task_id, "alice", "the draft is not finished")
    )
    with ToolApprovals(machine):
        output = crew.kickoff()
    person.join()
    assert published == []
    # CrewAI itself would say only "Tool execution blocked by hook. Tool: publish".
    assert tool_results(crew) == ["Tool call rejected by alice: the draft is not finished"]
    assert output.raw == "tool: Tool call rejected by alice: the draft is not finished"


def test_edited_args_replace_the_call_args_and_the_agent_is_told(
    machine: HITLStateMachine, make_crew: MakeCrew, person, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_DRAFT])
    person.when_pending(1, lambda pending: machine.sync.edit(pending[0].task_id, {"title": "Final title"}, "alice"))
    with ToolApprovals(machine):
        crew.kickoff()
    person.join()
    assert published == ["Final title"]
    assert tool_results(crew) == [
        'published Final title\n(Note: alice edited the arguments before the call: {"title": "Final title"})'
    ]


def test_respond_skips_the_tool_and_the_answer_is_its_result(
    machine: HITLStateMachine, make_crew: MakeCrew, person, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_HELLO])
    person.when_pending(
        1, lambda pending: machine.sync.respond(pending[0].task_id, "already published last week", "alice")
    )
    with ToolApprovals(machine):
        crew.kickoff()
    person.join()
    assert published == []
    assert tool_results(crew) == ["already published last week"]


def test_two_pending_approvals_in_one_turn_wait_side_by_side(
    machine: HITLStateMachine, make_crew: MakeCrew, person, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_HELLO, PUBLISH_DRAFT])

    def decide_both(pending: list[TaskContext]) -> None:
        # Both calls of the turn wait at once (CrewAI runs them on parallel threads).
        by_title = {
            t.interrupt_point.action.args["title"]: t.task_id
            for t in pending
            if t.interrupt_point and t.interrupt_point.action
        }
        machine.sync.reject(by_title["Half-written draft"], "bob", "not ready")
        machine.sync.approve(by_title["Hello"], "alice")

    person.when_pending(2, decide_both)
    with ToolApprovals(machine):
        crew.kickoff()
    person.join()
    assert published == ["Hello"]
    assert tool_results(crew) == ["published Hello", "Tool call rejected by bob: not ready"]


def test_tools_not_listed_run_without_asking(machine: HITLStateMachine, make_crew: MakeCrew) -> None:
    crew = make_crew([("word_count", {"text": "one two three"})])
    with ToolApprovals(machine, tools=["publish"]):
        output = crew.kickoff()
    assert output.raw == "tool: 3 words"
    assert machine.sync.get_all_tasks() == []


def test_no_decision_before_the_deadline_blocks_the_call(
    machine: HITLStateMachine, make_crew: MakeCrew, published: list[str]
) -> None:
    crew = make_crew([PUBLISH_HELLO])
    with ToolApprovals(machine, timeout=0.3):
        crew.kickoff()
    assert published == []
    assert tool_results(crew) == ["Tool call rejected by hitl:timeout: no decision before the deadline"]


def test_uninstalled_hooks_ask_nothing(machine: HITLStateMachine, make_crew: MakeCrew, published: list[str]) -> None:
    approvals = ToolApprovals(machine).install()
    approvals.uninstall()
    make_crew([PUBLISH_HELLO]).kickoff()
    assert published == ["Hello"]
    assert machine.sync.get_all_tasks() == []


def test_a_failure_to_ask_blocks_the_call_instead_of_running_it(make_crew: MakeCrew, published: list[str]) -> None:
    # CrewAI runs the tool anyway when a hook raises; the adapter must fail closed. Here the request
    # is refused (its args exceed the payload limit), so no person can be asked.
    tiny = HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=8)
    crew = make_crew([PUBLISH_HELLO])
    with ToolApprovals(tiny):
        crew.kickoff()
    assert published == []
    (result,) = tool_results(crew)
    assert result.startswith("Tool call blocked: hitl could not ask a person for approval (PayloadError:")
    (task,) = tiny.sync.get_all_tasks()
    assert task.state is TaskState.FAILED and "could not ask for approval" in (task.error or "")
