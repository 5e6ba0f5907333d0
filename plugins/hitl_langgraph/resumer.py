"""Resume LangGraph threads whose interrupts were decided, from any process: ``python -m hitl_langgraph.resumer``.

An agent process may exit once its graph has paused (``GraphApprovals.start``): the checkpoint
(a durable checkpointer such as ``SqliteSaver`` on a file) holds the graph's state and the hitl
store holds the questions and, later, the decisions. This command — or ``resume_decided`` from the
user's own code — finds the threads whose pending interrupts are all decided, resumes each from its
checkpoint with ``Command(resume={interrupt_id: value})``, runs it to its end or its next pause
(which it records, without waiting), and reports what happened::

    python -m hitl_langgraph.resumer --store sqlite:///hitl.db --graph myapp.graphs:deploy_graph
    python -m hitl_langgraph.resumer --store sqlite:///hitl.db --graph ./agent.py:build --follow

``--graph`` names a compiled graph, or a function without arguments that returns one, as
``module:attribute`` or ``path/to/file.py:attribute``; it must use the same checkpointer (file)
as the agent that paused. Run one resumer per store: two are safe (a step's tasks are claimed
through the store's compare-and-set, so only one resumes it) but pointless.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_core.adapters import resume_each

from . import FRAMEWORK
from .adapter import GraphApprovals, PausedRun


def load_graph(spec: str) -> Any:
    """The compiled graph that ``module:attr`` or ``file.py:attr`` names (calling ``attr`` if it's a function)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise HITLError(f"--graph {spec!r}: expected module:attribute or path/to/file.py:attribute")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise HITLError(f"--graph {spec!r}: no file {path}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise HITLError(f"--graph {spec!r}: cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.parent.resolve()))
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise HITLError(f"--graph {spec!r}: cannot import {target}: {exc}") from None
    try:
        graph = getattr(module, attr)
    except AttributeError:
        raise HITLError(f"--graph {spec!r}: {target} has no attribute {attr!r}") from None
    if callable(graph) and not hasattr(graph, "invoke"):
        graph = graph()
    if not hasattr(graph, "invoke") or not hasattr(graph, "get_state"):
        raise HITLError(f"--graph {spec!r} is not a compiled LangGraph graph ({type(graph).__name__})")
    return graph


def decided_threads(machine: HITLStateMachine) -> list[str]:
    """Threads with a decided interrupt that no process has delivered yet, oldest decision first."""
    threads: dict[str, None] = {}
    for task in machine.sync.get_tasks_by_state(TaskState.APPROVED) + machine.sync.get_tasks_by_state(
        TaskState.REJECTED
    ):
        if task.framework == FRAMEWORK and task.run_id is not None:
            threads.setdefault(task.run_id, None)
    return list(threads)


def resume_decided(
    graph: Any, adapter: GraphApprovals, threads: Iterable[str] | None = None, *, takeover: bool = False
) -> dict[str, PausedRun | BaseException]:
    """Resume every given (default: every decided) thread whose pending interrupts are all decided.

    A thread still waiting on some decision is left as it is (its result says so); one whose graph
    raises is reported (its result is the exception) and the others are still resumed.
    """

    def resume(thread_id: str) -> PausedRun:
        return adapter.resume(graph, {"configurable": {"thread_id": thread_id}}, wait=False, takeover=takeover)

    chosen = threads if threads is not None else decided_threads(adapter.machine)
    return resume_each(chosen, resume, name="thread")


def _report(results: dict[str, PausedRun | BaseException]) -> bool:
    """Print what happened to each thread; False if any failed."""
    ok = True
    for thread_id, run in results.items():
        if isinstance(run, BaseException):
            ok = False  # resume_each said why, on stderr
        elif run.done:
            print(f"thread {thread_id}: finished", flush=True)
        else:
            print(
                f"thread {thread_id}: paused, waiting on {len(run.task_ids)} task(s): {', '.join(run.task_ids)}",
                flush=True,
            )
    return ok


def _stop_on_signals() -> threading.Event:
    """Ctrl-C or SIGTERM ends ``--follow`` after the thread being resumed, never in the middle of it.

    Raised as KeyboardInterrupt, a Ctrl-C could land inside a graph's own code, which may catch it
    (the resumer then seemed to ignore it for good); a flag the loop reads cannot be lost that
    way. A second Ctrl-C interrupts at once, as usual.
    """
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hitl_langgraph.resumer", description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="the hitl store URL the agent used (sqlite:///…)")
    parser.add_argument("--graph", required=True, help="module:attr or file.py:attr of the compiled graph")
    parser.add_argument("--thread", action="append", help="only this thread id (repeatable)")
    parser.add_argument("--follow", action="store_true", help="keep going: resume threads as they are decided")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks when following")
    parser.add_argument(
        "--takeover",
        action="store_true",
        help="also re-deliver decisions claimed by a process that died before delivering",
    )
    args = parser.parse_args(argv)
    stop = _stop_on_signals() if args.follow else threading.Event()
    try:
        graph = load_graph(args.graph)
        machine = HITLStateMachine(args.store)
        adapter = GraphApprovals(machine, agent="hitl_langgraph.resumer")
        while not stop.is_set():
            ok = _report(resume_decided(graph, adapter, args.thread, takeover=args.takeover))
            if not args.follow:
                return 0 if ok else 1
            stop.wait(args.interval)
        return 0
    except HITLError as exc:
        print(f"hitl_langgraph.resumer: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
