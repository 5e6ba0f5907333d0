"""The cost of hitl on LangGraph's own pause: pause → decide → resume, bare against through the adapter.

Run with ``make bench`` (or ``python benchmarks/bench_langgraph.py [CYCLES]``). Prints a table;
never pass/fail. Both sides use the same one-interrupt graph on a ``SqliteSaver`` file, in the
same process, interleaved in rounds so that the noise of a shared machine falls on both alike:

* bare LangGraph: ``invoke`` → pending interrupt → ``invoke(Command(resume={id: value}))`` with
  the value supplied directly;
* through ``GraphApprovals.run`` on the hitl SQLite store: the interrupt becomes a task, an
  in-process operator (a callback on AWAITING_APPROVAL) approves it, the adapter waits for the
  decision, resumes by interrupt id, and completes the tasks: seven committed transitions (the
  thread's task: start, complete; the interrupt's: start, ask, approve, claim, complete);
* the same on the ``memory://`` store, to tell the adapter's and the machine's cost from the store's.

Also the import-time cost each adapter adds to a process that loads hitl's entry points but does
not use the framework (the plugin modules import nothing from it).
"""

from __future__ import annotations

import asyncio
import operator
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

os.environ.setdefault("LANGSMITH_TRACING", "false")

from hitl_langgraph import GraphApprovals
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from hitl_core import HITLStateMachine, TaskContext, TaskState

ROUNDS = 6


class State(TypedDict):
    answers: Annotated[list[Any], operator.add]


def deploy(state: State) -> dict[str, Any]:
    answer = interrupt({"reason": "deploy to prod?", "action": "deploy", "args": {"env": "prod"}})
    return {"answers": [answer["type"]]}


def build_graph(path: str) -> Any:
    builder = StateGraph(State)
    builder.add_node("deploy", deploy)
    builder.add_edge(START, "deploy")
    builder.add_edge("deploy", END)
    return builder.compile(checkpointer=SqliteSaver(sqlite3.connect(path, check_same_thread=False)))


def bare_cycle(graph: Any, thread: str) -> None:
    config = {"configurable": {"thread_id": thread}}
    out = graph.invoke({"answers": []}, config, version="v2")
    resume = {i.id: {"type": "approve", "actor": "operator"} for i in out.interrupts}
    done = graph.invoke(Command(resume=resume), config, version="v2")
    assert done.value["answers"] == ["approve"]


def adapter_cycle(adapter: GraphApprovals, graph: Any, thread: str) -> None:
    out = adapter.run(graph, {"answers": []}, {"configurable": {"thread_id": thread}})
    assert out["answers"] == ["approve"]


def make_operator(machine: HITLStateMachine) -> None:
    async def approve(task: TaskContext, old: TaskState, new: TaskState) -> None:
        # A person at a console in this process: decides as soon as the question is committed.
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(machine.approve(task.task_id, "operator")))

    machine.add_callback(approve, state=TaskState.AWAITING_APPROVAL)


def timed(fn: Any, count: int, prefix: str, cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds per cycle; appends the process's CPU milliseconds per cycle to ``cpu``."""
    samples = []
    cpu_start = time.process_time()
    for i in range(count):
        start = time.perf_counter()
        fn(f"{prefix}-{i}")
        samples.append((time.perf_counter() - start) * 1000)
    if cpu is not None:
        cpu.append((time.process_time() - cpu_start) * 1000 / count)
    return samples


def import_cost(module: str) -> tuple[float, list[str]]:
    """Microseconds ``import module`` adds on top of hitl_core, and which frameworks it loaded."""
    code = (
        "import time, sys, hitl_core\n"
        f"t = time.perf_counter(); import {module}; dt = time.perf_counter() - t\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'langgraph', 'langchain', 'pydantic_ai'})\n"
        "print(dt * 1e6, ','.join(bad))\n"
    )
    best = float("inf")
    loaded: list[str] = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        best = min(best, float(out[0]))
        loaded = out[1].split(",") if len(out) > 1 else []
    return best, loaded


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    per_round = max(cycles // ROUNDS, 1)
    with tempfile.TemporaryDirectory() as tmp:
        bare_graph = build_graph(str(Path(tmp) / "bare.db"))
        hitl_graph = build_graph(str(Path(tmp) / "hitl-graph.db"))
        machine = HITLStateMachine(f"sqlite:///{tmp}/hitl.db", load_entrypoints=False)
        make_operator(machine)
        adapter = GraphApprovals(machine, agent="bench")
        # The same adapter on the in-memory store: what the adapter and the machine cost without SQLite.
        mem_graph = build_graph(str(Path(tmp) / "mem-graph.db"))
        mem_machine = HITLStateMachine("memory://", load_entrypoints=False)
        make_operator(mem_machine)
        mem_adapter = GraphApprovals(mem_machine, agent="bench")
        # Warm both paths (imports, prepared statements, the sync facade's thread).
        timed(lambda t: bare_cycle(bare_graph, t), 10, "warm-bare")
        timed(lambda t: adapter_cycle(adapter, hitl_graph, t), 10, "warm-hitl")
        timed(lambda t: adapter_cycle(mem_adapter, mem_graph, t), 10, "warm-mem")
        bare: list[float] = []
        through: list[float] = []
        bare_cpu: list[float] = []
        through_cpu: list[float] = []
        memory: list[float] = []
        memory_cpu: list[float] = []
        for r in range(ROUNDS):
            bare += timed(lambda t: bare_cycle(bare_graph, t), per_round, f"bare-{r}", bare_cpu)
            through += timed(lambda t: adapter_cycle(adapter, hitl_graph, t), per_round, f"hitl-{r}", through_cpu)
            memory += timed(lambda t: adapter_cycle(mem_adapter, mem_graph, t), per_round, f"mem-{r}", memory_cpu)
        # (Not machine.sync.run(machine.close()): closing the facade from its own loop never returns.)
        machine.sync.close()
        mem_machine.sync.close()
        tasks = per_round * ROUNDS

    print(
        f"LangGraph pause → decide → resume, {tasks} cycles each, SqliteSaver on a file, "
        f"interleaved in {ROUNDS} rounds (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        "shared machine: noisy)"
    )
    print(f"{'path':<44}{'median ms':>10}{'mean ms':>10}{'p90 ms':>10}{'CPU ms':>10}")
    rows = [
        ("bare LangGraph (resume value given directly)", bare, bare_cpu),
        ("through hitl_langgraph + hitl SQLite store", through, through_cpu),
        ("  the same on the memory:// store", memory, memory_cpu),
    ]
    for name, samples, cpu in rows:
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(
            f"{name:<44}{statistics.median(samples):>10.2f}{statistics.mean(samples):>10.2f}{p90:>10.2f}"
            f"{statistics.median(cpu):>10.2f}"
        )
    added = statistics.median(through) - statistics.median(bare)
    added_cpu = statistics.median(through_cpu) - statistics.median(bare_cpu)
    print(
        f"hitl adds {added:.2f} ms wall a cycle at the median = {100 * added / statistics.median(bare):.1f}%, "
        f"{added_cpu:.2f} ms CPU = {100 * added_cpu / statistics.median(bare_cpu):.1f}% (target ≤ 10%)"
    )
    print("(CPU ms: the process's CPU time per cycle, all threads; less disturbed by other processes than wall time)")
    print()
    print(f"{'import on top of hitl_core':<44}{'µs (best of 5)':>16}  frameworks loaded")
    for module in ("hitl_langgraph.plugin", "hitl_pydantic_ai.plugin"):
        cost, loaded = import_cost(module)
        print(f"{module:<44}{cost:>16.0f}  {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
