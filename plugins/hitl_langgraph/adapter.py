"""``GraphApprovals``: run a LangGraph graph whose interrupts are decided through hitl.

Tasks. Each pending interrupt becomes the task ``langgraph:<thread_id>:<interrupt_id>`` (a batched
LangChain middleware interrupt: one task per tool call, ``…:<interrupt_id>:<n>``), with
``framework="langgraph"``, ``run_id=<thread_id>`` and ``parent_id="langgraph:<thread_id>"``, the
thread's own task, which is RUNNING while the graph is paused or running and COMPLETED when it
finishes. Interrupts of one step are therefore sibling tasks under one parent.

Life of an interrupt's task: RUNNING → AWAITING_APPROVAL (asked) → APPROVED / REJECTED (decided)
→ RUNNING (claimed: this process is resuming the graph with it) → COMPLETED (delivered: the graph
took the value) or FAILED (the resumed graph raised; the error is kept). Claiming goes through the
store's compare-and-set, so two processes never both resume the graph with the same decisions.

Idempotency. LangGraph re-runs an interrupted node from its start; a node interrupted again
before its interrupt was answered raises the same interrupt id. Because task ids derive from the
thread id and the interrupt id, a re-delivered interrupt finds its existing task: waiting, it is
waited on; decided, claimed or delivered, its decision is used again. Only an interrupt whose task
FAILED is asked again, as ``…~1``, ``…~2``: the person sees that the first attempt failed.

Sync and async. ``run``/``start``/``resume`` call ``graph.invoke`` in the caller's thread (what a
``SqliteSaver`` needs) and talk to hitl through the machine's sync facade; ``arun``/``astart``/
``aresume`` use ``graph.ainvoke`` (an async checkpointer) and await the machine.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hitl_core import (
    ConflictError,
    Decision,
    DuplicateTaskError,
    HITLError,
    HITLStateMachine,
    InvalidTransitionError,
    Severity,
    TaskNotFoundError,
    TaskState,
)

from . import FRAMEWORK
from .payloads import Ask, PendingInterrupt, read_interrupt

S = TaskState
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
class GraphRun:
    """Where a run stands: finished (``done``, ``value`` is the graph's output) or paused.

    When paused, ``task_ids`` are the hitl tasks of the pending interrupts; any process with the
    graph (same checkpointer) and the store can ``resume`` it once they are decided.
    """

    thread_id: str
    done: bool
    value: Any = None
    task_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Question:
    task_id: str
    ask: Ask


@dataclass(slots=True)
class _Step:
    """What to do after one graph call: finished, paused (not all decided), or resume with values."""

    resume: dict[str, Any] | None
    task_ids: list[str]
    claimed: list[str] = field(default_factory=list)


class GraphApprovals:
    """Runs LangGraph graphs whose interrupts are decided through ``machine``.

    ``agent`` names the agent on its tasks; ``severity`` is a severity or ``severity(ask)``;
    ``timeout`` (seconds) lets an interrupt's default decision (reject) apply if nobody decides;
    ``assignees`` limits who may decide (with an authorization plugin).
    """

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        agent: str | None = None,
        severity: SeverityRule = Severity.MEDIUM,
        timeout: float | None = None,
        assignees: Iterable[str] | None = None,
    ) -> None:
        self.machine = machine
        self.agent = agent
        self.severity = severity
        self.timeout = timeout
        self.assignees = list(assignees) if assignees is not None else None
        self._open_parents: set[str] = set()
        #: Written as the claimed tasks' step: tells this adapter's claims from another process's.
        self.claim_step = f"resuming the graph (pid {os.getpid()}, {uuid.uuid4().hex[:6]})"

    # -- sync: graph.invoke in the caller's thread ---------------------------------------------

    def run(self, graph: Any, input: Any, config: dict[str, Any], *, wait_timeout: float | None = None) -> Any:
        """``graph.invoke`` until the graph finishes, asking hitl at every interrupt. Returns its output.

        ``wait_timeout`` bounds each wait for decisions (``DecisionTimeoutError``; the tasks keep
        waiting and the run can be picked up later with ``resume``).
        """
        outcome = self._drive_sync(graph, input, config, wait=True, wait_timeout=wait_timeout)
        return outcome.value

    def start(self, graph: Any, input: Any, config: dict[str, Any]) -> GraphRun:
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
    ) -> GraphRun:
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
    ) -> GraphRun:
        from langgraph.types import Command

        thread_id = thread_id_of(config)
        run = self.machine.sync.run
        if resuming:
            output = graph.get_state(config)
            interrupts, value = output.interrupts, output.values
            if not interrupts:
                run(self._finish(thread_id, []))
                return GraphRun(thread_id, True, value)
            nodes = _nodes_of(output)
        else:
            output = graph.invoke(input, config, version="v2")
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(graph.get_state(config)) if _needs_nodes(interrupts) else {}
        delivered: list[str] = []
        while True:
            step = run(self._after_call(thread_id, interrupts, nodes, delivered, wait, wait_timeout, takeover))
            if step.resume is None:
                return GraphRun(thread_id, not step.task_ids, value, step.task_ids)
            try:
                output = graph.invoke(Command(resume=step.resume), config, version="v2")
            except BaseException as exc:
                run(self._failed(step.claimed, exc))
                raise
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(graph.get_state(config)) if _needs_nodes(interrupts) else {}
            delivered = step.claimed

    # -- async: graph.ainvoke ------------------------------------------------------------------

    async def arun(self, graph: Any, input: Any, config: dict[str, Any], *, wait_timeout: float | None = None) -> Any:
        """``run`` for async graphs (an async checkpointer): ``graph.ainvoke`` until it finishes."""
        return (await self._drive_async(graph, input, config, wait=True, wait_timeout=wait_timeout)).value

    async def astart(self, graph: Any, input: Any, config: dict[str, Any]) -> GraphRun:
        return await self._drive_async(graph, input, config, wait=False, wait_timeout=None)

    async def aresume(
        self,
        graph: Any,
        config: dict[str, Any],
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        takeover: bool = False,
    ) -> GraphRun:
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
    ) -> GraphRun:
        from langgraph.types import Command

        thread_id = thread_id_of(config)
        if resuming:
            output = await graph.aget_state(config)
            interrupts, value = output.interrupts, output.values
            if not interrupts:
                await self._finish(thread_id, [])
                return GraphRun(thread_id, True, value)
            nodes = _nodes_of(output)
        else:
            output = await graph.ainvoke(input, config, version="v2")
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(await graph.aget_state(config)) if _needs_nodes(interrupts) else {}
        delivered: list[str] = []
        while True:
            step = await self._after_call(thread_id, interrupts, nodes, delivered, wait, wait_timeout, takeover)
            if step.resume is None:
                return GraphRun(thread_id, not step.task_ids, value, step.task_ids)
            try:
                output = await graph.ainvoke(Command(resume=step.resume), config, version="v2")
            except BaseException as exc:
                await self._failed(step.claimed, exc)
                raise
            interrupts, value = output.interrupts, output.value
            nodes = _nodes_of(await graph.aget_state(config)) if _needs_nodes(interrupts) else {}
            delivered = step.claimed

    # -- the hitl side (one coroutine per graph call, so the sync path makes one hop) ------------

    async def _open(self, thread_id: str) -> None:
        """Start the thread's parent task (once: a thread run again keeps its task)."""
        parent = parent_task_id(thread_id)
        if parent in self._open_parents:
            return
        try:
            await self.machine.start_task(
                parent,
                {"thread_id": thread_id},
                step="running",
                agent=self.agent,
                framework=FRAMEWORK,
                run_id=thread_id,
            )
        except DuplicateTaskError:
            pass  # opened earlier, or by another process: it stays as it is
        self._open_parents.add(parent)

    async def _complete(self, task_ids: Sequence[str]) -> None:
        async def complete(task_id: str) -> None:
            try:
                await self.machine.complete(task_id, {"delivered": True})
            except (InvalidTransitionError, ConflictError):
                pass  # completed by a process that delivered it too (a re-run): it stays done

        await asyncio.gather(*(complete(t) for t in task_ids))

    async def _finish(self, thread_id: str, delivered: Sequence[str]) -> None:
        """The graph took the claimed values: complete those tasks, and the parent: the graph finished."""
        parent = parent_task_id(thread_id)
        self._open_parents.discard(parent)

        async def complete_parent() -> None:
            try:
                await self.machine.complete(parent)
            except (InvalidTransitionError, ConflictError, TaskNotFoundError):
                pass  # never opened (no interrupt), or already completed

        await asyncio.gather(self._complete(delivered), complete_parent())

    async def _failed(self, claimed: Sequence[str], exc: BaseException) -> None:
        error = f"resuming the graph raised {type(exc).__name__}: {exc}"
        for task_id in claimed:
            try:
                await self.machine.fail(task_id, error)
            except (InvalidTransitionError, ConflictError):
                pass

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
            await self._finish(thread_id, delivered)
            return _Step(None, [])
        await self._complete(delivered)
        pending = [read_interrupt(i.id, i.value, i.response_schema, nodes.get(i.id)) for i in interrupts]
        questions = await self.submit(thread_id, pending)
        task_ids = [q.task_id for q in questions]
        decisions = await self._decisions(task_ids, wait, wait_timeout)
        if decisions is None:
            return _Step(None, task_ids)
        resume: dict[str, Any] = {}
        position = 0
        for interrupt in pending:  # before claiming: a decision that can't go back claims nothing
            count = len(interrupt.asks)
            resume[interrupt.interrupt_id] = interrupt.resume_value(decisions[position : position + count])
            position += count
        claimed = await self._claim(task_ids, takeover)
        if claimed is None:
            return _Step(None, task_ids)  # another process is resuming this step
        return _Step(resume, task_ids, claimed)

    async def submit(self, thread_id: str, pending: Sequence[PendingInterrupt]) -> list[_Question]:
        """Make sure every question of ``pending`` has its task; idempotent (see the module doc).

        The parent and the questions are made concurrently: the store commits the transitions
        made in one turn of the event loop together, so a step costs a few commits, not one per
        transition.
        """
        jobs = []
        asks = []
        for interrupt in pending:
            batched = interrupt.shape == "batched"
            for index, ask in enumerate(interrupt.asks):
                base = base_task_id(thread_id, interrupt.interrupt_id, index if batched else None)
                jobs.append(self._ensure_task(base, thread_id, interrupt, ask))
                asks.append(ask)
        _, *task_ids = await asyncio.gather(self._open(thread_id), *jobs)
        return [_Question(task_id, ask) for task_id, ask in zip(task_ids, asks, strict=True)]

    async def _ensure_task(self, base: str, thread_id: str, interrupt: PendingInterrupt, ask: Ask) -> str:
        attempt = 0
        while True:
            task_id = base if attempt == 0 else f"{base}~{attempt}"
            task = await self.machine.get_task(task_id)
            if task is None:
                try:
                    task = await self.machine.start_task(
                        task_id,
                        {
                            "langgraph": {
                                "thread_id": thread_id,
                                "interrupt_id": interrupt.interrupt_id,
                                "shape": interrupt.shape,
                            }
                        },
                        step=ask.step,
                        agent=self.agent,
                        framework=FRAMEWORK,
                        run_id=thread_id,
                        parent_id=parent_task_id(thread_id),
                    )
                except DuplicateTaskError:
                    continue  # created by another process a moment ago: read it again
            if task.state is S.FAILED:
                attempt += 1
                continue
            if task.state is S.RUNNING and task.decision is None:
                await self._ask(task_id, ask)
            return task_id

    async def _ask(self, task_id: str, ask: Ask) -> None:
        severity = ask.severity or (self.severity(ask) if callable(self.severity) else self.severity)
        try:
            await self.machine.request_approval(
                task_id,
                ask.reason,
                ask.context,
                severity=severity,
                kind=ask.kind,
                action=ask.action,
                allowed_decisions=ask.allowed_decisions,
                response_schema=ask.response_schema,
                timeout=self.timeout,
                assignees=self.assignees,
                step=ask.step,
                requested_by=self.agent,
            )
        except (InvalidTransitionError, ConflictError):
            task = await self.machine.get_task(task_id)
            if task is None or task.state is S.RUNNING:
                raise  # not a race with another process asking the same thing

    async def _decisions(
        self, task_ids: Sequence[str], wait: bool, wait_timeout: float | None
    ) -> list[Decision] | None:
        """Every task's decision, in order; None if not all are decided and ``wait`` is off."""
        if not wait:
            decisions = []
            for task_id in task_ids:
                task = await self.machine.get_task(task_id)
                if task is None or task.decision is None or task.state is S.AWAITING_APPROVAL:
                    return None
                decisions.append(task.decision)
            return decisions
        waits = [self.machine.wait_for_decision(t, wait_timeout) for t in task_ids]
        return list(await asyncio.gather(*waits))

    async def _claim(self, task_ids: Sequence[str], takeover: bool) -> list[str] | None:
        """Move the decided tasks to RUNNING (this process delivers them); None if another did first.

        Claims go in task-id order, so two racing processes collide on the first task and exactly
        one goes on. A task another adapter claimed (RUNNING with its decision) is left to it —
        unless ``takeover``: that process died before the graph took the value. A COMPLETED task
        whose interrupt is pending again is delivered again, unclaimed.
        """
        claimed = []
        for task_id in sorted(task_ids):
            try:
                await self.machine.resume(task_id, self.claim_step)
                claimed.append(task_id)
                continue
            except (InvalidTransitionError, ConflictError) as exc:
                refused: Exception = exc
            task = await self.machine.get_task(task_id)
            if task is None:
                raise HITLError(f"task {task_id!r} vanished from the store while resuming")
            if task.state is S.RUNNING and (task.current_step == self.claim_step or takeover):
                claimed.append(task_id)  # ours already (a re-run), or taken over from a dead process
            elif task.state is S.COMPLETED:
                continue  # delivered before, and its interrupt is pending again: deliver it again
            elif not claimed:
                return None  # another process claimed this step first
            else:
                raise HITLError(
                    f"task {task_id!r} was claimed by another process ({task.current_step}) "
                    "while this one claimed its siblings"
                ) from refused
        return claimed


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
