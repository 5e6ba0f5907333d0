"""A deploy pipeline (LangGraph) whose risky steps wait for a person in ``hitl console``.

Offline: pure-Python nodes, no model, no key. The graph builds a release, then — in parallel —
asks to run the database migration and to deploy the canary, then asks to deploy to production
(with its args, so a person can edit the replica count), and finally asks for a release note
(a question: answer it with ``m`` in the console)::

    python examples/langgraph_deploy.py              # waits for your decisions
    hitl console                                      # in another terminal: a / r / e / m

The store is ``--store URL``, else ``$HITL_STORE``, else the ``hitl`` command's SQLite file, so the
console sees the tasks without a flag. LangGraph's checkpoints go to ``--checkpoints`` (a
``SqliteSaver`` file). ``--decide-for-me`` starts a stand-in reviewer in this process.

The agent need not stay up: ``--start-only`` pauses and exits; decide in the console; then
``python -m hitl_langgraph.resumer --store URL --graph examples/langgraph_deploy.py:graph_from_env``
(with ``LANGGRAPH_DEPLOY_CHECKPOINTS`` set to the same checkpoint file) resumes the thread.

Remember that LangGraph re-runs an interrupted node from its start when it resumes: the nodes
here do their work only after ``interrupt()`` returns.
"""

from __future__ import annotations

import argparse
import operator
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

os.environ.setdefault("LANGSMITH_TRACING", "false")  # offline: never export traces

from hitl_langgraph import GraphApprovals
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from platformdirs import user_data_dir

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url

CHECKPOINTS_ENV = "LANGGRAPH_DEPLOY_CHECKPOINTS"


class Release(TypedDict):
    version: str
    log: Annotated[list[str], operator.add]


def build(state: Release) -> dict[str, Any]:
    return {"log": [f"built {state['version']}"]}


def migrate_db(state: Release) -> dict[str, Any]:
    answer = interrupt(
        {
            "reason": f"Run database migration 0042 for {state['version']}",
            "action": "migrate_db",
            "args": {"migration": "0042_add_index", "lock_timeout_s": 30},
            "severity": "high",
        }
    )
    if answer["type"] in ("approve", "edit"):
        args = answer.get("args") or {"migration": "0042_add_index"}
        return {"log": [f"migrated {args['migration']} (by {answer['actor']})"]}
    return {"log": [f"migration skipped: {answer.get('message', 'rejected')} (by {answer['actor']})"]}


def deploy_canary(state: Release) -> dict[str, Any]:
    answer = interrupt(
        {
            "reason": f"Deploy {state['version']} to the canary",
            "action": "deploy",
            "args": {"env": "canary", "replicas": 1},
            "severity": "medium",
        }
    )
    verdict = "deployed" if answer["type"] in ("approve", "edit") else "not deployed"
    return {"log": [f"canary {verdict} (by {answer['actor']})"]}


def deploy_prod(state: Release) -> dict[str, Any]:
    answer = interrupt(
        {
            "reason": f"Deploy {state['version']} to production",
            "action": "deploy",
            "args": {"env": "prod", "replicas": 12},
            "severity": "critical",
        }
    )
    if answer["type"] in ("approve", "edit"):
        replicas = (answer.get("args") or {}).get("replicas", 12)
        return {"log": [f"prod deployed with {replicas} replicas (by {answer['actor']})"]}
    return {"log": [f"prod not deployed: {answer.get('message')} (by {answer['actor']})"]}


def release_note(state: Release) -> dict[str, Any]:
    answer = interrupt(f"One line for the release note of {state['version']}?")
    note = answer.get("response") if answer["type"] == "respond" else None
    return {"log": [f"release note: {note or '(none)'}"]}


def build_graph(checkpoints: str) -> Any:
    graph = StateGraph(Release)
    for name, node in [
        ("build", build),
        ("migrate_db", migrate_db),
        ("deploy_canary", deploy_canary),
        ("deploy_prod", deploy_prod),
        ("release_note", release_note),
    ]:
        graph.add_node(name, node)
    graph.add_edge(START, "build")
    graph.add_edge("build", "migrate_db")
    graph.add_edge("build", "deploy_canary")
    graph.add_edge(["migrate_db", "deploy_canary"], "deploy_prod")
    graph.add_edge("deploy_prod", "release_note")
    graph.add_edge("release_note", END)
    return graph.compile(checkpointer=SqliteSaver(sqlite3.connect(checkpoints, check_same_thread=False)))


def graph_from_env() -> Any:
    """For ``python -m hitl_langgraph.resumer --graph examples/langgraph_deploy.py:graph_from_env``."""
    return build_graph(os.environ.get(CHECKPOINTS_ENV) or default_checkpoints())


def default_checkpoints() -> str:
    folder = Path(user_data_dir("hitl", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / "langgraph-deploy-checkpoints.db")


def stand_in_reviewer(machine: HITLStateMachine, thread_id: str, stop: threading.Event) -> None:
    """Decides this thread's questions as a person at the console would."""
    while not stop.is_set():
        for task in machine.sync.get_pending_approvals():
            if task.run_id != thread_id or task.interrupt_point is None:
                continue
            action = task.interrupt_point.action
            if action is not None and action.args.get("env") == "prod":
                machine.sync.edit(
                    task.task_id,
                    {**action.args, "replicas": 6},
                    "stand-in-reviewer",
                    message="12 is more than we need tonight",
                )
            elif action is None:
                machine.sync.respond(task.task_id, "Faster search thanks to a new index.", "stand-in-reviewer")
            else:
                machine.sync.approve(task.task_id, "stand-in-reviewer")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument(
        "--checkpoints",
        help=f"LangGraph SqliteSaver file (default: ${CHECKPOINTS_ENV}, else one in the user data folder)",
    )
    parser.add_argument("--thread", help="LangGraph thread id (default: a new one)")
    parser.add_argument("--decide-for-me", action="store_true", help="a stand-in reviewer decides instead of you")
    parser.add_argument("--start-only", action="store_true", help="pause at the first questions and exit")
    args = parser.parse_args(argv)
    store = resolve_store_url(args.store)
    checkpoints = args.checkpoints or os.environ.get(CHECKPOINTS_ENV) or default_checkpoints()
    thread_id = args.thread or f"release-{uuid.uuid4().hex[:6]}"
    config = {"configurable": {"thread_id": thread_id}}
    machine = HITLStateMachine(store)
    adapter = GraphApprovals(machine, agent="deploy-pipeline")
    graph = build_graph(checkpoints)
    print(f"store: {store}\ncheckpoints: {checkpoints}")
    print(f"thread {thread_id}: decide its questions in `hitl console --store {store}`")
    stop = threading.Event()
    reviewer = threading.Thread(target=stand_in_reviewer, args=(machine, thread_id, stop), daemon=True)
    if args.decide_for_me:
        reviewer.start()
    try:
        if args.start_only:
            paused = adapter.start(graph, {"version": "v2.4.0", "log": []}, config)
            print(f"paused on {len(paused.task_ids)} task(s): {', '.join(paused.task_ids)}")
            print(
                f"resume later with: {CHECKPOINTS_ENV}={checkpoints} python -m hitl_langgraph.resumer "
                f"--store {store} --graph examples/langgraph_deploy.py:graph_from_env"
            )
            return
        out = adapter.run(graph, {"version": "v2.4.0", "log": []}, config)
        for line in out["log"]:
            print(f"  {line}")
    finally:
        stop.set()
        machine.sync.close()


if __name__ == "__main__":
    main()
