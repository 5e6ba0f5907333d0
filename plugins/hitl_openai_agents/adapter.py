"""``ApprovalRunner``: ``Runner.run`` whose tool approvals are decided through hitl.

One hitl task per pending tool call, ``<run_id>:<call_id>``, with ``framework="openai-agents"``,
``run_id`` and the agent's name; its interrupt names the tool and carries the parsed arguments
(so a decision binds to exactly those arguments) and allows only approve and reject: the SDK can
neither run a tool with edited arguments nor hand a person's answer back as its result.

The serialised run state (``RunState.to_json()``) rides in each task's metadata together with the
turn number, so a process that has nothing but the store and the agent definition can
``resume(agent, run_id)``: it rebuilds the state with ``RunState.from_json`` (async in the SDK),
matches the pending items to the tasks by call id, waits for what is not yet decided, applies the
decisions and runs on.

Life of a call's task (``hitl_core.adapters.Adapter``, shared by every adapter): asked, decided,
claimed through the store's compare-and-set just before the run goes on (two processes never both
run a turn's tools), COMPLETED with the call's output — or, when the run raises, FAILED with the
error and asked again at once as a retry question ``…~1`` (approve: ``resume`` carries the same
decisions again; reject: the run is given up). ``resume(..., takeover=True)`` carries back a turn
claimed by a process that died before it finished.

Partial decisions: the SDK would run the approved calls at once and stop again on the rest; this
adapter instead waits until every call of the turn is decided and resumes once, so the model gets
the whole turn's results together, as it asked for them, and there is exactly one stored state
per turn to resume from.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Runner, RunResult, RunState
from agents.items import ToolApprovalItem, ToolCallOutputItem

from hitl_core import Action, HITLError, HITLStateMachine, Severity, TaskContext, TaskNotFoundError, TaskState
from hitl_core.adapters import Adapter, Request, tool_severity
from hitl_core.glossary import retired_names
from hitl_core.models import Decision

from . import CAPABILITIES, FRAMEWORK

#: Key in a task's metadata under which the adapter keeps what a resuming process needs.
META_KEY = "openai_agents"


@dataclass(slots=True)
class PausedRun:
    """A run stopped on tool approvals: its id and the hitl task of each pending call."""

    run_id: str
    turn: int
    task_ids: list[str] = field(default_factory=list)


def _parse_args(raw: str | None) -> dict[str, Any]:
    """The call's arguments as the person will see them; unparsable ones are shown verbatim."""
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"_raw_arguments": raw}
    return parsed if isinstance(parsed, dict) else {"_arguments": parsed}


class ApprovalRunner(Adapter):
    """Runs agents whose tool approvals go through ``machine``.

    ``severity`` (or a callable ``severity(tool_name, args)``) and ``timeout`` (seconds, after which
    the interrupt's default decision — reject — applies as a timeout) are set on every task.
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        severity: Severity | str | Callable[[str, dict[str, Any]], Severity | str] = Severity.MEDIUM,
        timeout: float | None = None,
    ) -> None:
        # Computed after each call's task exists, so that a rule that raises leaves it FAILED.
        super().__init__(machine, severity=tool_severity(severity), timeout=timeout)

    # -- running ------------------------------------------------------------------------------

    async def run(self, agent: Agent[Any], input: Any, *, run_id: str | None = None, **runner_kwargs: Any) -> RunResult:
        """``Runner.run`` until the agent finishes, asking hitl about every call that needs approval."""
        run_id = run_id or uuid.uuid4().hex[:12]
        result = await Runner.run(agent, input, **runner_kwargs)
        return await self._until_done(agent, result, run_id, 0, runner_kwargs)

    async def start(
        self, agent: Agent[Any], input: Any, *, run_id: str | None = None, **runner_kwargs: Any
    ) -> PausedRun | RunResult:
        """Run until the first approvals are needed, record them, and return without waiting.

        Returns the finished ``RunResult`` if no call needed approval. Any process with the same
        agent definition and store can then ``resume(agent, run_id)``.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        result = await Runner.run(agent, input, **runner_kwargs)
        if not result.interruptions:
            return result
        return await self._record(result, run_id, 1)

    async def resume(
        self, agent: Agent[Any], run_id: str, *, takeover: bool = False, **runner_kwargs: Any
    ) -> RunResult:
        """Continue a run paused by ``start`` (or by a process that died while waiting).

        ``takeover`` carries back decisions another process claimed but died before delivering.
        Raises ``TaskNotFoundError`` when the store holds no paused run ``run_id`` and
        ``HITLError`` when its stored state cannot be restored for ``agent``.
        """
        tasks = await self._open_tasks(run_id)
        if not tasks:
            raise TaskNotFoundError(f"{run_id} (no paused {FRAMEWORK} run with this run_id)")
        turn = max(t.metadata[META_KEY]["turn"] for t in tasks)
        tasks = [t for t in tasks if t.metadata[META_KEY]["turn"] == turn]
        raw_state = tasks[0].metadata[META_KEY]["run_state"]
        try:
            state = await RunState.from_json(agent, raw_state)
        except Exception as exc:
            raise HITLError(
                f"run {run_id!r}: the stored {FRAMEWORK} run state cannot be restored for agent {agent.name!r}: {exc}"
            ) from exc
        pending = PausedRun(run_id, turn, [t.task_id for t in tasks])
        result = await self._continue(agent, state, pending, runner_kwargs, takeover)
        return await self._until_done(agent, result, run_id, turn, runner_kwargs)

    async def _until_done(
        self, agent: Agent[Any], result: RunResult, run_id: str, turn: int, runner_kwargs: dict[str, Any]
    ) -> RunResult:
        """Ask, wait, apply and run on, turn after turn, until no call is pending."""
        while result.interruptions:
            turn += 1
            pending = await self._record(result, run_id, turn)
            result = await self._continue(agent, result.to_state(), pending, runner_kwargs)
        return result

    # -- one turn -----------------------------------------------------------------------------

    async def _record(self, result: RunResult, run_id: str, turn: int) -> PausedRun:
        """One waiting hitl task per pending call, each carrying the turn's serialised state."""
        run_state = result.to_state().to_json()
        pending = PausedRun(run_id, turn)
        tried: list[str] = []
        try:
            for item in result.interruptions:
                call_id = item.call_id or uuid.uuid4().hex[:8]
                tool = item.qualified_name or item.name or "tool"
                agent_name = item.agent.name
                request = Request(
                    reason=f"{agent_name} wants to call {tool}",
                    context={"tool": tool, "call_id": call_id, "agent": agent_name, "turn": turn},
                    allowed_decisions=CAPABILITIES.decisions,
                    action=Action(name=tool, args=_parse_args(item.arguments)),
                    step=f"approve {tool}",
                    agent=agent_name,
                )
                meta = {META_KEY: {"turn": turn, "call_id": call_id, "tool": tool, "run_state": run_state}}
                tried.append(f"{run_id}:{call_id}")
                pending.task_ids.append(await self.ask(tried[-1], run_id, request, meta, parent=False))
        except Exception as exc:
            # The run stops here (nothing ran): leave none of the turn's tasks waiting for a person
            # whose decision could no longer reach it.
            for task_id in tried:
                with contextlib.suppress(HITLError):
                    await self.machine.fail(
                        await self.latest_attempt(task_id), f"could not ask for every call of the turn: {exc}"
                    )
            raise
        return pending

    async def _continue(
        self,
        agent: Agent[Any],
        state: RunState[Any, Any],
        pending: PausedRun,
        runner_kwargs: dict[str, Any],
        takeover: bool = False,
    ) -> RunResult:
        """Apply the turn's decisions to ``state``, claim the turn, run on, and close its tasks."""
        decisions = await self.decisions(pending.task_ids)
        assert decisions is not None  # waited for
        items = {item.call_id: item for item in state.get_interruptions()}
        call_ids = {}
        for task_id, decision in zip(pending.task_ids, decisions, strict=True):
            task = await self.machine.get_task(task_id)
            call_id = call_ids[task_id] = task.metadata[META_KEY]["call_id"] if task else None
            item = items.get(call_id)
            if item is None:
                raise HITLError(f"task {task_id!r}: the run state has no pending call {call_id!r}")
            _apply(state, item, decision)
        if await self.claim(pending.task_ids, takeover=takeover) is None:
            raise HITLError(f"another process claimed the decisions of run {pending.run_id!r} and is continuing it")
        try:
            result = await Runner.run(agent, state, **runner_kwargs)
        except Exception as exc:
            await self.failed(pending.task_ids, exc)
            raise
        outputs = {
            _field(o.raw_item, "call_id"): o.output for o in result.new_items if isinstance(o, ToolCallOutputItem)
        }
        for task_id, decision in zip(pending.task_ids, decisions, strict=True):
            output = outputs.get(call_ids[task_id])
            await self.delivered(
                [task_id], {"approved": decision.approved, "output": None if output is None else str(output)}
            )
        return result

    async def _open_tasks(self, run_id: str) -> list[TaskContext]:
        """This run's tasks that are waiting, decided or claimed but not yet carried back (indexed queries)."""
        found: list[TaskContext] = []
        for state in (TaskState.AWAITING_APPROVAL, TaskState.APPROVED, TaskState.REJECTED, TaskState.RUNNING):
            found += [
                t
                for t in await self.machine.get_tasks_by_state(state)
                if t.run_id == run_id and t.framework == FRAMEWORK and META_KEY in t.metadata
            ]
        return found


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _apply(state: RunState[Any, Any], item: ToolApprovalItem, decision: Decision) -> None:
    if decision.approved:
        state.approve(item)
    else:
        state.reject(item, rejection_message=decision.rejection_text())


# The glossary's one word for a paused run (docs/glossary.md); the old name still works, and warns.
__getattr__ = retired_names(__name__, {"PendingRun": "PausedRun"}, globals())
