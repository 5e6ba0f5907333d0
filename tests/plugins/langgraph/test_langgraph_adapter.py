"""The LangGraph adapter in one process: real graphs, SqliteSaver on a file, LangChain's middleware."""

from __future__ import annotations

import asyncio

import pytest
from hitl_langgraph import CAPABILITIES, GraphApprovals
from hitl_langgraph.adapter import base_task_id, parent_task_id
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from lg_agents import mail_agent
from lg_support import DONE, STARTS, Person, odd_value_graph, one_step_graph, question_graph, two_step_graph

from hitl_core import HITLError, HITLStateMachine, InvalidTransitionError, PayloadError, TaskContext, TaskState


def config(thread: str = "t1") -> dict:
    return {"configurable": {"thread_id": thread}}


# -- plain interrupt(value) ---------------------------------------------------------------------


def test_approve_runs_the_step_and_completes_the_tasks(
    machine: HITLStateMachine, person: Person, checkpoints: str
) -> None:
    person.when_pending(1, lambda p: machine.sync.approve(p[0].task_id, "alice"))
    out = GraphApprovals(machine, agent="deployer").run(one_step_graph(checkpoints), {"answers": []}, config())
    person.join()
    assert out["answers"] == [{"type": "approve", "actor": "alice"}]
    assert DONE == [("deploy", {"env": "prod", "replicas": 3})]
    task = person.seen[0]
    assert task.framework == "langgraph" and task.run_id == "t1" and task.parent_id == parent_task_id("t1")
    assert task.agent == "deployer" and task.current_step == "deploy"
    assert task.interrupt_point.action.name == "deploy"
    assert task.interrupt_point.action.args == {"env": "prod", "replicas": 3}
    states = {t.task_id: t.state for t in machine.sync.get_all_tasks()}
    assert states == {parent_task_id("t1"): TaskState.COMPLETED, task.task_id: TaskState.COMPLETED}


def test_reject_reason_is_the_resume_value_and_the_step_does_not_run(
    machine: HITLStateMachine, person: Person, checkpoints: str
) -> None:
    person.when_pending(1, lambda p: machine.sync.reject(p[0].task_id, "bob", "freeze until Monday"))
    out = GraphApprovals(machine).run(one_step_graph(checkpoints), {"answers": []}, config())
    assert out["answers"] == [{"type": "reject", "actor": "bob", "message": "freeze until Monday"}]
    assert DONE == []


def test_edit_runs_the_step_with_the_edited_args(machine: HITLStateMachine, person: Person, checkpoints: str) -> None:
    person.when_pending(1, lambda p: machine.sync.edit(p[0].task_id, {"env": "staging", "replicas": 1}, "alice"))
    GraphApprovals(machine).run(one_step_graph(checkpoints), {"answers": []}, config())
    assert DONE == [("deploy", {"env": "staging", "replicas": 1})]


def test_respond_answers_a_question(machine: HITLStateMachine, person: Person, checkpoints: str) -> None:
    person.when_pending(1, lambda p: machine.sync.respond(p[0].task_id, "eu-west-1", "carol"))
    out = GraphApprovals(machine).run(question_graph(checkpoints), {"answers": []}, config())
    assert out["answers"] == [{"type": "respond", "actor": "carol", "response": "eu-west-1"}]
    task = person.seen[0]
    assert task.interrupt_point.reason == "Which region should the canary go to?"
    # No action to edit: the console is not offered an edit it could not apply.
    assert task.interrupt_point.allowed_decisions == ["approve", "reject", "respond"]


def test_typed_interrupt_takes_only_a_response_checked_against_its_schema(
    machine: HITLStateMachine, person: Person, checkpoints: str
) -> None:
    schema = {"type": "object", "properties": {"region": {"type": "string"}}, "required": ["region"]}

    def decide(pending: list) -> None:
        task_id = pending[0].task_id
        with pytest.raises(InvalidTransitionError):
            machine.sync.approve(task_id, "carol")
        with pytest.raises(PayloadError):
            machine.sync.respond(task_id, {"zone": 3}, "carol")
        machine.sync.respond(task_id, {"region": "eu-west-1"}, "carol")

    person.when_pending(1, decide)
    out = GraphApprovals(machine).run(question_graph(checkpoints, schema), {"answers": []}, config())
    assert out["answers"] == [{"region": "eu-west-1"}]
    assert person.seen[0].interrupt_point.allowed_decisions == ["respond"]
    assert person.seen[0].interrupt_point.response_schema == schema


@pytest.mark.parametrize(
    "order", [("deploy", "migrate_db"), ("migrate_db", "deploy")], ids=["deploy-first", "migrate-first"]
)
def test_two_parallel_interrupts_resume_once_whatever_order_they_are_decided(
    machine: HITLStateMachine, person: Person, checkpoints: str, order: tuple[str, str]
) -> None:
    def decide(pending: list) -> None:
        by_action = {t.interrupt_point.action.name: t.task_id for t in pending}
        first, second = order
        machine.sync.approve(by_action[first], "alice")
        # The graph must not resume on one decision: it still waits for the other.
        assert machine.sync.get_task(by_action[second]).state is TaskState.AWAITING_APPROVAL
        assert machine.sync.get_task(by_action[first]).state is TaskState.APPROVED
        machine.sync.reject(by_action[second], "bob", "not now")

    person.when_pending(2, decide)
    out = GraphApprovals(machine).run(two_step_graph(checkpoints), {"answers": []}, config())
    person.join()
    assert sorted(a["type"] for a in out["answers"]) == ["approve", "reject"]
    assert [d[0] for d in DONE] == [order[0]]
    siblings = [t for t in person.seen]
    assert len({t.parent_id for t in siblings}) == 1 and siblings[0].parent_id == parent_task_id("t1")
    assert len({t.interrupt_point.interrupt_id for t in siblings}) == 2


def test_reasked_interrupt_on_node_rerun_makes_no_duplicate_task(
    machine: HITLStateMachine, person: Person, checkpoints: str
) -> None:
    graph = two_step_graph(checkpoints)
    adapter = GraphApprovals(machine)
    paused = adapter.start(graph, {"answers": []}, config())
    assert not paused.done and len(paused.task_ids) == 2
    # Re-running the paused thread re-runs both nodes from their start: LangGraph raises the same
    # interrupts again (same ids). The adapter must find the tasks it made, not make new ones.
    again = adapter.start(graph, None, config())
    assert sorted(again.task_ids) == sorted(paused.task_ids)
    assert STARTS == {"migrate": 2, "deploy": 2}
    assert len(machine.sync.get_pending_approvals()) == 2

    person.when_pending(2, lambda p: [machine.sync.approve(t.task_id, "alice") for t in p])
    out = adapter.resume(graph, config())
    assert out.done and len(out.value["answers"]) == 2
    assert len(machine.sync.get_all_tasks()) == 3  # the parent and one task per interrupt, ever


def test_resume_without_waiting_only_resumes_a_fully_decided_step(machine: HITLStateMachine, checkpoints: str) -> None:
    graph = two_step_graph(checkpoints)
    adapter = GraphApprovals(machine)
    paused = adapter.start(graph, {"answers": []}, config())
    machine.sync.approve(paused.task_ids[0], "alice")
    still = adapter.resume(graph, config(), wait=False)
    assert not still.done and sorted(still.task_ids) == sorted(paused.task_ids)
    assert DONE == []
    machine.sync.approve(paused.task_ids[1], "alice")
    done = adapter.resume(graph, config(), wait=False)
    assert done.done and len(DONE) == 2


def test_async_graph_runs_through_arun(machine: HITLStateMachine) -> None:
    from langgraph.graph import END, START, StateGraph
    from lg_support import State, _guarded

    builder = StateGraph(State)
    builder.add_node("deploy", _guarded("deploy", "deploy", {"env": "prod"}))
    builder.add_edge(START, "deploy")
    builder.add_edge("deploy", END)
    graph = builder.compile(checkpointer=InMemorySaver())

    async def scenario() -> dict:
        async def edit(task: TaskContext, old: TaskState, new: TaskState) -> None:
            # Decided from a callback after the request commits, as a policy-free bot would.
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(machine.edit(task.task_id, {"env": "canary"}, "alice"))
            )

        machine.add_callback(edit, state=TaskState.AWAITING_APPROVAL)
        return await GraphApprovals(machine).arun(graph, {"answers": []}, config("async"))

    out = asyncio.run(scenario())
    assert out["answers"][0]["args"] == {"env": "canary"}
    assert DONE == [("deploy", {"env": "canary"})]


# -- LangChain HumanInTheLoopMiddleware ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["batched", "per_call"])
def test_middleware_edit_runs_the_tool_with_the_edited_args(
    machine: HITLStateMachine, person: Person, checkpoints: str, mode: str
) -> None:
    agent, _ = mail_agent(checkpoints, mode, ("send_email", {"to": "all@corp", "body": "hi"}))
    person.when_pending(1, lambda p: machine.sync.edit(p[0].task_id, {"to": "team@corp", "body": "hi"}, "alice"))
    out = GraphApprovals(machine).run(agent, {"messages": [{"role": "user", "content": "mail"}]}, config())
    assert DONE == [("send_email", {"to": "team@corp", "body": "hi"})]
    assert out["messages"][-1].content == "done"
    task = person.seen[0]
    assert task.interrupt_point.action.name == "send_email"
    assert task.interrupt_point.action.args == {"to": "all@corp", "body": "hi"}
    assert task.current_step == "send_email"


@pytest.mark.parametrize("mode", ["batched", "per_call"])
def test_middleware_rejection_reason_reaches_the_model_as_an_error_tool_result(
    machine: HITLStateMachine, person: Person, checkpoints: str, mode: str
) -> None:
    agent, model = mail_agent(checkpoints, mode, ("delete_file", {"path": "/reports/q3.pdf"}))
    person.when_pending(1, lambda p: machine.sync.reject(p[0].task_id, "bob", "we still need the Q3 report"))
    GraphApprovals(machine).run(agent, {"messages": [{"role": "user", "content": "clean up"}]}, config())
    assert DONE == []
    last_input = model.seen[-1]
    results = [m for m in last_input if isinstance(m, ToolMessage)]
    assert len(results) == 1 and results[0].status == "error"
    assert "we still need the Q3 report" in results[0].content


@pytest.mark.parametrize("mode", ["batched", "per_call"])
def test_middleware_respond_is_the_tool_result_the_model_reads(
    machine: HITLStateMachine, person: Person, checkpoints: str, mode: str
) -> None:
    agent, model = mail_agent(checkpoints, mode, ("send_email", {"to": "ceo@corp", "body": "?"}))
    person.when_pending(1, lambda p: machine.sync.respond(p[0].task_id, "I told the CEO myself", "carol"))
    GraphApprovals(machine).run(agent, {"messages": [{"role": "user", "content": "mail"}]}, config())
    assert DONE == []
    results = [m for m in model.seen[-1] if isinstance(m, ToolMessage)]
    assert results[0].status == "success" and results[0].content == "I told the CEO myself"


@pytest.mark.parametrize("mode", ["batched", "per_call"])
@pytest.mark.parametrize("first", ["send_email", "delete_file"])
def test_middleware_two_calls_decided_in_either_order_each_get_their_decision(
    machine: HITLStateMachine, person: Person, checkpoints: str, mode: str, first: str
) -> None:
    agent, model = mail_agent(
        checkpoints, mode, ("send_email", {"to": "a@corp", "body": "hi"}), ("delete_file", {"path": "/tmp/x"})
    )

    def decide(pending: list) -> None:
        by_tool = {t.interrupt_point.action.name: t.task_id for t in pending}
        decisions = {
            "send_email": lambda t: machine.sync.approve(t, "alice"),
            "delete_file": lambda t: machine.sync.reject(t, "bob", "keep x"),
        }
        second = "delete_file" if first == "send_email" else "send_email"
        decisions[first](by_tool[first])
        decisions[second](by_tool[second])

    person.when_pending(2, decide)
    GraphApprovals(machine).run(agent, {"messages": [{"role": "user", "content": "go"}]}, config())
    assert DONE == [("send_email", {"to": "a@corp", "body": "hi"})]
    results = {m.name: m for m in model.seen[-1] if isinstance(m, ToolMessage)}
    assert results["delete_file"].status == "error" and "keep x" in results["delete_file"].content
    assert results["send_email"].status == "success"
    tasks = {t.interrupt_point.action.name: t for t in person.seen}
    # Each tool's review config narrows what the console offers.
    assert tasks["send_email"].interrupt_point.allowed_decisions == ["approve", "reject", "edit", "respond"]
    assert tasks["delete_file"].interrupt_point.allowed_decisions == ["approve", "reject"]
    assert tasks["send_email"].parent_id == tasks["delete_file"].parent_id == parent_task_id("t1")


def test_batched_middleware_tasks_are_numbered_by_position(machine: HITLStateMachine, checkpoints: str) -> None:
    agent, _ = mail_agent(
        checkpoints, "batched", ("send_email", {"to": "a@corp", "body": "hi"}), ("delete_file", {"path": "/tmp/x"})
    )
    paused = GraphApprovals(machine).start(agent, {"messages": [{"role": "user", "content": "go"}]}, config())
    interrupt_id = agent.get_state(config()).interrupts[0].id
    assert paused.task_ids == [base_task_id("t1", interrupt_id, 0), base_task_id("t1", interrupt_id, 1)]


def test_edit_outside_the_tools_review_config_is_refused(machine: HITLStateMachine, checkpoints: str) -> None:
    agent, _ = mail_agent(checkpoints, "per_call", ("delete_file", {"path": "/tmp/x"}))
    paused = GraphApprovals(machine).start(agent, {"messages": [{"role": "user", "content": "go"}]}, config())
    with pytest.raises(InvalidTransitionError, match="allows only approve, reject"):
        machine.sync.edit(paused.task_ids[0], {"path": "/"}, "mallory")
    assert machine.sync.get_task(paused.task_ids[0]).state is TaskState.AWAITING_APPROVAL


# -- bad input ----------------------------------------------------------------------------------


def test_config_without_thread_id_is_a_clear_error(machine: HITLStateMachine, checkpoints: str) -> None:
    with pytest.raises(HITLError, match="thread_id"):
        GraphApprovals(machine).run(one_step_graph(checkpoints), {"answers": []}, {"configurable": {}})
    assert machine.sync.get_all_tasks() == []


def test_interrupt_value_that_is_not_json_is_shown_not_lost(
    machine: HITLStateMachine, person: Person, checkpoints: str
) -> None:
    person.when_pending(1, lambda p: machine.sync.approve(p[0].task_id, "alice"))
    GraphApprovals(machine).run(odd_value_graph(checkpoints), {"answers": []}, config())
    context = person.seen[0].interrupt_point.context
    assert context["value"]["tags"] == "{'a'}"
    assert context["value"]["when"] == "datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)"
    assert person.seen[0].interrupt_point.reason == "ship it?"


def test_timeout_on_a_typed_interrupt_is_a_clear_error(machine: HITLStateMachine, checkpoints: str) -> None:
    schema = {"type": "object", "properties": {"region": {"type": "string"}}}
    graph = question_graph(checkpoints, schema)
    adapter = GraphApprovals(machine)
    paused = adapter.start(graph, {"answers": []}, config())
    machine.sync.expire(paused.task_ids[0], force=True)
    with pytest.raises(HITLError, match="only a response can resume it"):
        adapter.resume(graph, config())
    # Nothing was delivered: the thread still waits on its interrupt.
    assert graph.get_state(config()).interrupts


def test_capabilities_allow_every_decision() -> None:
    assert CAPABILITIES.decisions == ("approve", "reject", "edit", "respond")
    assert CAPABILITIES.cross_process_resume
