"""Graphs for the LangGraph adapter tests: pure-Python nodes, SqliteSaver on a file.

Also imported by the helper scripts the cross-process tests run as separate OS processes, so it
builds everything from a checkpoint file path and keeps no state but module-level call logs.
"""

from __future__ import annotations

import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

# Before LangGraph is imported: no tracing, no network.
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from hitl_core import HITLStateMachine, TaskContext

#: What the nodes and tools really did, in order: tests check rejected steps never ran.
DONE: list[tuple[str, Any]] = []
#: How many times each node body started (LangGraph re-runs an interrupted node on resume).
STARTS: dict[str, int] = {}


def saver(path: str) -> SqliteSaver:
    """LangGraph's own durable checkpointer on a file, usable from the adapter's threads."""
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False))


class State(TypedDict):
    answers: Annotated[list[Any], operator.add]


def _guarded(name: str, action: str, args: dict[str, Any]) -> Any:
    def node(state: State) -> dict[str, Any]:
        STARTS[name] = STARTS.get(name, 0) + 1
        answer = interrupt({"reason": f"{action} {args}?", "action": action, "args": args})
        if answer["type"] in ("approve", "edit"):
            DONE.append((action, answer.get("args") or args))
        return {"answers": [answer]}

    return node


def two_step_graph(path: str) -> Any:
    """Two nodes that run in parallel and each pause for approval: two interrupts in one step."""
    builder = StateGraph(State)
    builder.add_node("migrate", _guarded("migrate", "migrate_db", {"version": 42}))
    builder.add_node("deploy", _guarded("deploy", "deploy", {"env": "prod", "replicas": 3}))
    builder.add_edge(START, "migrate")
    builder.add_edge(START, "deploy")
    builder.add_edge("migrate", END)
    builder.add_edge("deploy", END)
    return builder.compile(checkpointer=saver(path))


def one_step_graph(path: str) -> Any:
    """One node that pauses once: the benchmark's and the cross-process tests' graph."""
    builder = StateGraph(State)
    builder.add_node("deploy", _guarded("deploy", "deploy", {"env": "prod", "replicas": 3}))
    builder.add_edge(START, "deploy")
    builder.add_edge("deploy", END)
    return builder.compile(checkpointer=saver(path))


def flaky_graph(path: str) -> Any:
    """``one_step_graph`` whose node raises once after its interrupt is answered, while the file
    ``$LG_FAIL_FLAG`` exists (it is removed): a deploy target that is down for one attempt."""

    def node(state: State) -> dict[str, Any]:
        answer = interrupt({"reason": "deploy to prod?", "action": "deploy", "args": {"env": "prod"}})
        flag = os.environ.get("LG_FAIL_FLAG")
        if flag and os.path.exists(flag):
            os.remove(flag)
            raise RuntimeError("the deploy target is down")
        if answer["type"] in ("approve", "edit"):
            DONE.append(("deploy", answer.get("args") or {"env": "prod"}))
        return {"answers": [answer]}

    builder = StateGraph(State)
    builder.add_node("deploy", node)
    builder.add_edge(START, "deploy")
    builder.add_edge("deploy", END)
    return builder.compile(checkpointer=saver(path))


def question_graph(path: str, response_schema: dict[str, Any] | None = None) -> Any:
    """A node that asks a question (a plain string interrupt, or a typed one with a schema)."""

    def ask(state: State) -> dict[str, Any]:
        if response_schema is None:
            return {"answers": [interrupt("Which region should the canary go to?")]}
        return {"answers": [interrupt({"question": "Canary region?"}, response_schema=response_schema)]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver(path))


def odd_value_graph(path: str) -> Any:
    """A node whose interrupt value LangGraph can checkpoint but JSON can't hold: shown, not lost."""

    def node(state: State) -> dict[str, Any]:
        return {
            "answers": [
                interrupt({"reason": "ship it?", "tags": {"a"}, "when": datetime(2026, 1, 2, 3, 4, tzinfo=UTC)})
            ]
        }

    builder = StateGraph(State)
    builder.add_node("ship", node)
    builder.add_edge(START, "ship")
    builder.add_edge("ship", END)
    return builder.compile(checkpointer=saver(path))


class Person:
    """Decides in another thread, as someone at the console would, once ``count`` tasks wait."""

    def __init__(self, machine: HITLStateMachine) -> None:
        self.machine = machine
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.seen: list[TaskContext] = []

    def when_pending(self, count: int, decide: Callable[[list[TaskContext]], None], timeout: float = 30) -> None:
        def loop() -> None:
            try:
                end = time.monotonic() + timeout
                while True:
                    pending = self.machine.sync.get_pending_approvals()
                    if len(pending) >= count:
                        self.seen.extend(pending)
                        decide(pending)
                        return
                    if time.monotonic() > end:
                        raise AssertionError(f"expected {count} pending approvals, saw {len(pending)}")
                    time.sleep(0.01)
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]


def graph_from_env() -> Any:
    """The graph the cross-process tests' processes share: ``LG_GRAPH`` on the ``LG_CHECKPOINTS`` file."""
    builders = {"one_step": one_step_graph, "two_step": two_step_graph, "flaky": flaky_graph}
    return builders[os.environ.get("LG_GRAPH", "one_step")](os.environ["LG_CHECKPOINTS"])
