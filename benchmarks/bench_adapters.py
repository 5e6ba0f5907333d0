"""hitl's extra cost on Pydantic AI's and the OpenAI Agents SDK's own pause, against the bare frameworks.

Run with ``python benchmarks/bench_adapters.py [CYCLES]`` (``make bench`` runs it). Prints a table;
never pass/fail. Offline models only (Pydantic AI's ``FunctionModel``, the OpenAI Agents adapter's
``OfflineToolModel``), one tool call that needs approval per cycle, interleaved in rounds so that
a shared machine's noise falls on both sides alike:

* bare: the framework pauses, the approval is given directly, the run continues;
* through the adapter: the pause becomes a hitl task, an in-process operator (a callback on
  AWAITING_APPROVAL) approves it, the adapter waits, claims, carries it back and completes.

CPU ms (``time.process_time``, all threads) is printed beside wall ms: it is what other engineers'
work on the machine disturbs least.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from hitl_core import HITLStateMachine, TaskContext, TaskState

ROUNDS = 4


def operator(machine: HITLStateMachine) -> None:
    async def approve(task: TaskContext, old: TaskState, new: TaskState) -> None:
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(machine.approve(task.task_id, "operator")))

    machine.add_callback(approve, state=TaskState.AWAITING_APPROVAL)


async def timed(fn: Callable[[int], Awaitable[None]], count: int, wall: list[float], cpu: list[float]) -> None:
    cpu0 = time.process_time()
    for i in range(count):
        start = time.perf_counter()
        await fn(i)
        wall.append((time.perf_counter() - start) * 1000)
    cpu.append((time.process_time() - cpu0) * 1000 / count)


# -- Pydantic AI ---------------------------------------------------------------------------------------


def pydantic_agent() -> Any:
    from pydantic_ai import Agent, DeferredToolRequests
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("refund", {"order": "A-1", "amount": 480}, tool_call_id="r1")])
        return ModelResponse(parts=[TextPart("done")])

    agent: Any = Agent(FunctionModel(model), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def refund(order: str, amount: int) -> str:
        return f"refunded {amount} on {order}"

    return agent


async def pydantic_bare(agent: Any) -> None:
    from pydantic_ai import DeferredToolRequests, DeferredToolResults

    result = await agent.run("refund A-1")
    assert isinstance(result.output, DeferredToolRequests)
    results = DeferredToolResults(approvals={call.tool_call_id: True for call in result.output.approvals})
    done = await agent.run(message_history=result.all_messages(), deferred_tool_results=results)
    assert done.output == "done"


async def pydantic_rows(cycles: int) -> list[tuple[str, list[float], list[float]]]:
    from hitl_pydantic_ai import AgentApprovals

    agent = pydantic_agent()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_machine = HITLStateMachine(f"sqlite:///{tmp}/hitl.db", load_entrypoints=False)
        memory_machine = HITLStateMachine("memory://", load_entrypoints=False)
        operator(sqlite_machine)
        operator(memory_machine)
        on_sqlite, on_memory = AgentApprovals(sqlite_machine), AgentApprovals(memory_machine)

        async def through(adapter: AgentApprovals, i: int) -> None:
            done = await adapter.run(agent, "refund A-1")
            assert done.output == "done"

        return await interleave(
            cycles,
            [
                ("bare Pydantic AI (approval given directly)", lambda i: pydantic_bare(agent)),
                ("through hitl_pydantic_ai + SQLite store", lambda i: through(on_sqlite, i)),
                ("  the same on memory://", lambda i: through(on_memory, i)),
            ],
            [sqlite_machine, memory_machine],
        )


# -- OpenAI Agents SDK ---------------------------------------------------------------------------------


def openai_agent() -> Any:
    from agents import Agent, function_tool
    from hitl_openai_agents.offline import OfflineToolModel

    @function_tool(needs_approval=True)
    def refund(order: str, amount: int) -> str:
        """Refund an order."""
        return f"refunded {amount} on {order}"

    model = OfflineToolModel([[("refund", {"order": "A-1", "amount": 480})]])
    return Agent(name="support", model=model, tools=[refund])


async def openai_bare(agent: Any) -> None:
    from agents import Runner

    result = await Runner.run(agent, "refund A-1")
    assert result.interruptions
    state = result.to_state()
    for item in result.interruptions:
        state.approve(item)
    done = await Runner.run(agent, state)
    assert not done.interruptions


async def openai_rows(cycles: int) -> list[tuple[str, list[float], list[float]]]:
    from hitl_openai_agents import ApprovalRunner

    agent = openai_agent()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_machine = HITLStateMachine(f"sqlite:///{tmp}/hitl.db", load_entrypoints=False)
        memory_machine = HITLStateMachine("memory://", load_entrypoints=False)
        operator(sqlite_machine)
        operator(memory_machine)
        on_sqlite, on_memory = ApprovalRunner(sqlite_machine), ApprovalRunner(memory_machine)

        async def through(adapter: Any, i: int) -> None:
            done = await adapter.run(agent, "refund A-1")
            assert not done.interruptions

        return await interleave(
            cycles,
            [
                ("bare OpenAI Agents SDK (approval given directly)", lambda i: openai_bare(agent)),
                ("through hitl_openai_agents + SQLite store", lambda i: through(on_sqlite, i)),
                ("  the same on memory://", lambda i: through(on_memory, i)),
            ],
            [sqlite_machine, memory_machine],
        )


async def interleave(
    cycles: int,
    paths: list[tuple[str, Callable[[int], Awaitable[None]]]],
    machines: list[HITLStateMachine],
) -> list[tuple[str, list[float], list[float]]]:
    per_round = max(cycles // ROUNDS, 1)
    samples: list[tuple[str, list[float], list[float]]] = [(name, [], []) for name, _ in paths]
    for _, fn in paths:  # warm up: imports, connections, caches
        for i in range(3):
            await fn(i)
    for _ in range(ROUNDS):
        for (_, fn), (_, wall, cpu) in zip(paths, samples, strict=True):
            await timed(fn, per_round, wall, cpu)
    for machine in machines:
        await machine.close()
    return samples


def report(title: str, rows: list[tuple[str, list[float], list[float]]]) -> None:
    print(title)
    print(f"{'path':<52}{'median ms':>10}{'CPU ms':>10}{'extra wall':>12}{'extra CPU':>11}")
    bare_wall, bare_cpu = statistics.median(rows[0][1]), statistics.median(rows[0][2])
    for name, wall, cpu in rows:
        w, c = statistics.median(wall), statistics.median(cpu)
        extra = "" if name == rows[0][0] else f"{100 * (w - bare_wall) / bare_wall:+.0f}%"
        extra_cpu = "" if name == rows[0][0] else f"{100 * (c - bare_cpu) / bare_cpu:+.0f}%"
        print(f"{name:<52}{w:>10.2f}{c:>10.2f}{extra:>12}{extra_cpu:>11}")
    print("(target: ≤ 10% extra)\n")


async def main(cycles: int) -> None:
    one, five, fifteen = os.getloadavg()
    print(
        f"adapter overhead, {cycles} cycles a path in {ROUNDS} rounds; load average {one:.2f} {five:.2f} {fifteen:.2f}\n"
    )
    report("Pydantic AI: deferred tool call → decide → continue", await pydantic_rows(cycles))
    try:
        rows = await openai_rows(cycles)
    except Exception as exc:  # the SDK's API moves; say so rather than hide the row
        print(f"OpenAI Agents SDK: not measured ({type(exc).__name__}: {exc})")
    else:
        report("OpenAI Agents SDK: tool approval → decide → continue", rows)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
