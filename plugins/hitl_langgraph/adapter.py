"""``GraphApprovals``: run a LangGraph graph whose interrupts are decided through hitl.

Tasks. Each pending interrupt becomes the task ``langgraph:<thread_id>:<interrupt_id>`` (a batched
LangChain middleware interrupt: one task per tool call, ``…:<interrupt_id>:<n>``), with
``framework="langgraph"``, ``run_id=<thread_id>`` and ``parent_id="langgraph:<thread_id>"``, the
thread's own task, which is RUNNING while the graph is paused or running and COMPLETED when it
finishes. Interrupts of one step are therefore sibling tasks under one parent.

Life of an interrupt's task (``hitl_core.adapters.Adapter``, shared by every adapter): RUNNING →
AWAITING_APPROVAL (asked) → APPROVED / REJECTED (decided) → RUNNING (claimed through the store's
compare-and-set: this process is resuming the graph with it) → COMPLETED (the graph took the value)
or FAILED (the resumed graph raised; the error is kept, and a retry question ``…~1`` is asked at
once: approve resumes with the same decision — LangGraph keeps the value it was given before the
node raised, so a new decision could not apply — reject gives the thread up).

Idempotency. LangGraph re-runs an interrupted node from its start; a node interrupted again
before its interrupt was answered raises the same interrupt id. Because task ids derive from the
thread id and the interrupt id, a re-delivered interrupt finds its existing task: waiting, it is
waited on; decided, claimed or delivered, its decision is used again.

Sync and async. ``run``/``start``/``resume`` call ``graph.invoke`` in the caller's thread (what a
``SqliteSaver`` needs) and talk to hitl through the machine's sync facade; ``arun``/``astart``/
``aresume`` use ``graph.ainvoke`` (an async checkpointer) and await the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hitl_core import HITLError, Severity
from hitl_core.adapters import Adapter
from hitl_core.glossary import retired_names

from . import CAPABILITIES, FRAMEWORK
from .payloads import Ask, PendingInterrupt, read_interrupt

#: Severity for an ask: a fixed one, or a function of the ask (e.g. by tool name or args).
SeverityRule = Severity | str | Callable[[Ask], Severity | str]


def thread_id_of(config: dict[str, Any]) -> str:
    """The ``thread_id`` of a LangGraph run config, or a clear error (interrupts need one)."""
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if thread_id is None or str(thread_id) == "":
        raise HITLError(
            "the graph config has no configurable.thread_id: LangGraph needs one (and a "
            "checkpointer) to pause and resume"
        )
    return str(thread_id)


def parent_task_id(thread_id: str) -> str:
    return f"{FRAMEWORK}:{thread_id}"


def base_task_id(thread_id: str, interrupt_id: str, index: int | None = None) -> str:
    """The task id for one question of one interrupt (before any ``~n`` retry suffix)."""
    suffix = "" if index is None else f":{index}"
    return f"{FRAMEWORK}:{thread_id}:{interrupt_id}{suffix}"


@dataclass(slots=True)
class PausedRun:
    """Where a run stands: finished (``done``, ``value`` is the graph's output) or paused.

    When paused, ``task_ids`` are the hitl tasks of the pending interrupts; any process with the
    graph (same checkpointer) and the store can ``resume`` it once they are decided.
    """

    thread_id: str
    done: bool
    value: Any = None
    task_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Step:
    """What to do after one graph call: finished, paused (not all decided), or resume with values."""

    resume: dict[str, Any] | None
    task_ids: list[str]
    claimed: list[str] = field(default_factory=list)


class GraphApprovals(Adapter):
    """Runs LangGraph graphs whose interrupts are decided through ``machine``.

    ``agent`` names the agent on its tasks; ``severity`` is a severity or ``severity(ask)``;
    ``timeout`` (seconds) lets an interrupt's default decision (reject) apply if nobody decides;
    ``assignees`` limits who may decide (with an authorization plugin).
    """

    # The constructor is the base's: ``GraphApprovals(machine, agent=, severity=, timeout=, assignees=)``.
    capabilities = CAPABILITIES

    # -- sync: graph.invoke in the caller's thread ---------------------------------------------

    def run(self, graph: Any, input: Any, config: dict[str, Any], *, wait_timeout: float | None = None) -> Any:
        """``graph.invoke`` until the graph finishes, asking hitl at every interrupt. Returns its output.

        ``wait_timeout`` bounds each wait for decisions (``DecisionTimeoutError``; the tasks keep
        waiting and the run can be picked up later with ``resume``).
        """
        outcome = self._drive_sync(graph, input, config, wait=True, wait_timeout=wait_timeout)
        return outcome.value

    def start(self, graph: Any, input: Any, config: dict[str, Any]) -> PausedRun:
        """Run until the first pause, record its tasks, and return without waiting for decisions."""
        return self._drive_sync(graph, input, config, wait=False, wait_timeout=None)

    def resume(
        self,
        graph: Any,
        config: dict[str, Any],
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        takeover: bool = False,
    ) -> PausedRun:
        """Continue a paused thread — possibly paused by another process — from its checkpoint.

        With ``wait`` it blocks until the pending interrupts are decided and runs on to the end
        (asking again at every later pause); without, it resumes only if every pending interrupt
        is already decided, runs to the next pause, records it, and returns. ``takeover``
        re-delivers decisions that another process claimed but died before delivering.
        """
        return self._drive_sync(
            graph, None, config, wait=wait, wait_timeout=wait_timeout, resuming=True, takeover=takeover
        )

    def _drive_sync(
        self,
        graph: Any,
        input: Any,
        config: dict[str, Any],
        *,
        wait: bool,
        wait_timeout: float | None,
        resuming: bool = False,
        takeover: bool = False,
    ) -> PausedRun:
        from langgraph.types import Command

        thread_id = thread_id_of(config)
        run = self.run_sync
        if resuming:
            output = graph.get_state(config)
            interrupts, value = output.interrupts, output.values
            if not interrupts:
                run(self.finish_run(thread_id))
                return PausedRun(thread_id, True, value)
            nodes = _nodes_of(output)
        else:
            output = graph.invoke(input, config, version="v2")
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(graph.get_state(config)) if _needs_nodes(interrupts) else {}
        delivered: list[str] = []
        while True:
            step = run(self._after_call(thread_id, interrupts, nodes, delivered, wait, wait_timeout, takeover))
            if step.resume is None:
                return PausedRun(thread_id, not step.task_ids, value, step.task_ids)
            try:
                output = graph.invoke(Command(resume=step.resume), config, version="v2")
            except BaseException as exc:
                run(self.failed(step.claimed, exc))
                raise
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(graph.get_state(config)) if _needs_nodes(interrupts) else {}
            delivered = step.claimed

    # -- async: graph.ainvoke ------------------------------------------------------------------

    async def arun(self, graph: Any, input: Any, config: dict[str, Any], *, wait_timeout: float | None = None) -> Any:
        """``run`` for async graphs (an async checkpointer): ``graph.ainvoke`` until it finishes."""
        return (await self._drive_async(graph, input, config, wait=True, wait_timeout=wait_timeout)).value

    async def astart(self, graph: Any, input: Any, config: dict[str, Any]) -> PausedRun:
        return await self._drive_async(graph, input, config, wait=False, wait_timeout=None)

    async def aresume(
        self,
        graph: Any,
        config: dict[str, Any],
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        takeover: bool = False,
    ) -> PausedRun:
        return await self._drive_async(
            graph, None, config, wait=wait, wait_timeout=wait_timeout, resuming=True, takeover=takeover
        )

    async def _drive_async(
        self,
        graph: Any,
        input: Any,
        config: dict[str, Any],
        *,
        wait: bool,
        wait_timeout: float | None,
        resuming: bool = False,
        takeover: bool = False,
    ) -> PausedRun:
        from langgraph.types import Command

        thread_id = thread_id_of(config)
        if resuming:
            output = await graph.aget_state(config)
            interrupts, value = output.interrupts, output.values
            if not interrupts:
                await self.finish_run(thread_id)
                return PausedRun(thread_id, True, value)
            nodes = _nodes_of(output)
        else:
            output = await graph.ainvoke(input, config, version="v2")
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(await graph.aget_state(config)) if _needs_nodes(interrupts) else {}
        delivered: list[str] = []
        while True:
            step = await self._after_call(thread_id, interrupts, nodes, delivered, wait, wait_timeout, takeover)
            if step.resume is None:
                return PausedRun(thread_id, not step.task_ids, value, step.task_ids)
            try:
                output = await graph.ainvoke(Command(resume=step.resume), config, version="v2")
            except BaseException as exc:
                await self.failed(step.claimed, exc)
                raise
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(await graph.aget_state(config)) if _needs_nodes(interrupts) else {}
            delivered = step.claimed

    # -- the mapping (one coroutine per graph call, so the sync path makes one hop) -------------

    async def _after_call(
        self,
        thread_id: str,
        interrupts: Sequence[Any],
        nodes: dict[str, str],
        delivered: Sequence[str],
        wait: bool,
        wait_timeout: float | None,
        takeover: bool = False,
    ) -> _Step:
        if not interrupts:
            # The delivered tasks and the thread's task complete in one transaction.
            await self.delivered(delivered, finish_run=thread_id)
            return _Step(None, [])
        await self.delivered(delivered)
        pending = [read_interrupt(i.id, i.value, i.response_schema, nodes.get(i.id)) for i in interrupts]
        task_ids = await self.submit(thread_id, pending)
        decisions = await self.decisions(task_ids, wait=wait, wait_timeout=wait_timeout)
        if decisions is None:
            return _Step(None, task_ids)
        resume: dict[str, Any] = {}
        position = 0
        for interrupt in pending:  # before claiming: a decision that can't go back claims nothing
            count = len(interrupt.asks)
            resume[interrupt.interrupt_id] = interrupt.resume_value(decisions[position : position + count])
            position += count
        claimed = await self.claim(task_ids, takeover=takeover)
        if claimed is None:
            return _Step(None, task_ids)  # another process is resuming this step
        return _Step(resume, task_ids, claimed)

    async def submit(self, thread_id: str, pending: Sequence[PendingInterrupt]) -> list[str]:
        """Make sure every question of ``pending`` has its task (idempotent); their ids in order."""
        questions = []
        for interrupt in pending:
            batched = interrupt.shape == "batched"
            meta = {
                "langgraph": {"thread_id": thread_id, "interrupt_id": interrupt.interrupt_id, "shape": interrupt.shape}
            }
            for index, ask in enumerate(interrupt.asks):
                questions.append(
                    (base_task_id(thread_id, interrupt.interrupt_id, index if batched else None), ask, meta)
                )
        return await self.ask_batch(thread_id, questions)


def _needs_nodes(interrupts: Sequence[Any]) -> bool:
    """Does any interrupt lack a step name of its own? (Middleware ones and plain ones naming an action don't.)"""
    for interrupt in interrupts:
        value = interrupt.value
        if not isinstance(value, dict):
            return True
        if "action_requests" in value or value.get("type") == "tool_approval":
            continue
        if not any(isinstance(value.get(k), str) for k in ("action", "tool", "name")):
            return True
    return False


def _nodes_of(state: Any) -> dict[str, str]:
    """interrupt id → the name of the node that raised it, from a ``StateSnapshot``."""
    nodes = {}
    for task in getattr(state, "tasks", ()) or ():
        for interrupt in task.interrupts:
            nodes[interrupt.id] = task.name
    return nodes


# The glossary's one word for a paused run (docs/glossary.md); the old name still works, and warns.
__getattr__ = retired_names(__name__, {"GraphRun": "PausedRun"}, globals())
