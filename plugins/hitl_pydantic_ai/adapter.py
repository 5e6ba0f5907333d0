"""``AgentApprovals``: Pydantic AI runs whose deferred tool calls are decided through hitl.

Tasks. Every pending call of a pause becomes ``pydantic-ai:<run_id>:<turn>:<tool_call_id>`` with
``framework="pydantic-ai"``, ``run_id`` and ``parent_id="pydantic-ai:<run_id>"`` (the run's own
task, RUNNING until the run ends): the calls of one batch are siblings. ``turn`` is the number of
model responses in the history at the pause, so re-recording the same pause finds the same tasks
(idempotent) while a later pause that reuses a call id gets new ones.

Each task's interrupt names the tool and its args; approval calls allow approve / edit / reject,
question and external calls (``CallDeferred``) respond / reject. Its metadata keeps what another
process needs to continue the run: the message history (``ModelMessagesTypeAdapter``) and the
pending requests (``DeferredToolRequests``), both as JSON.

Life of a call's task (``hitl_core.adapters.Adapter``, shared by every adapter): RUNNING →
AWAITING_APPROVAL → APPROVED / REJECTED → RUNNING (claimed through the store's compare-and-set:
this process continues the run) → COMPLETED (the run took the result) or FAILED (continuing
raised; a retry question ``…~1`` is asked at once: approve continues with the same decisions).

Decisions go back as ``DeferredToolResults``: approve → ``ToolApproved()``, edit →
``ToolApproved(override_args=...)``, reject → ``ToolDenied(message)`` (approval calls) or
``ToolFailed(message)`` (other calls) — both reach the model as the call's result — and respond →
the answer as the call's return value. Who decided, and the original args of an edit, are in the
call's ``ctx.tool_call_metadata["hitl"]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied
from pydantic_ai.exceptions import ToolFailed
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse, ToolCallPart

from hitl_core import (
    Action,
    Decision,
    HITLError,
    HITLStateMachine,
    InterruptKind,
    Severity,
    TaskContext,
    TaskNotFoundError,
    TaskState,
)
from hitl_core.adapters import Adapter, Request
from hitl_core.glossary import retired_names

from . import CAPABILITIES, FRAMEWORK

S = TaskState
#: Key in a task's metadata under which the adapter keeps what a resuming process needs.
META_KEY = "pydantic_ai"
_REQUESTS = TypeAdapter(DeferredToolRequests)
#: Severity for a call: a fixed one, or a function of (tool name, args).
SeverityRule = Severity | str | Callable[[str, dict[str, Any]], Severity | str]


def parent_task_id(run_id: str) -> str:
    return f"{FRAMEWORK}:{run_id}"


def call_task_id(run_id: str, turn: int, tool_call_id: str) -> str:
    return f"{FRAMEWORK}:{run_id}:{turn}:{tool_call_id}"


@dataclass(slots=True)
class PausedRun:
    """A run stopped on deferred calls: any process with the agent and the store can ``resume`` it."""

    run_id: str
    turn: int
    task_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Pause:
    run_id: str
    turn: int
    requests: DeferredToolRequests
    history: list[ModelMessage]
    task_ids: dict[str, str]  # tool_call_id -> task id


def _kind(requests: DeferredToolRequests, call: ToolCallPart) -> str:
    try:
        return requests.kind(call.tool_call_id)
    except ValueError:
        return "approval"


def _denial(decision: Decision, tool_name: str) -> str:
    """What the model reads for a refused call: who said no, and why."""
    return decision.rejection_text(f"The {tool_name} call was")


def results_for(requests: DeferredToolRequests, decisions: dict[str, Decision]) -> DeferredToolResults:
    """``DeferredToolResults`` for a whole batch from one decision per tool call id."""
    approvals: dict[str, Any] = {}
    calls: dict[str, Any] = {}
    metadata: dict[str, dict[str, Any]] = {}
    answered_by: dict[str, str] = {}
    approval_ids = {c.tool_call_id for c in requests.approvals}
    for call in [*requests.approvals, *requests.calls]:
        call_id = call.tool_call_id
        decision = decisions.get(call_id)
        if decision is None:
            raise HITLError(
                f"no decision for tool call {call_id} ({call.tool_name}): Pydantic AI needs "
                "every call of a batch decided before the run can continue"
            )
        outcome = decision.effective_type.value
        note: dict[str, Any] = {"decision": outcome, "actor": decision.actor.id}
        if decision.message:
            note["message"] = decision.message
        if call_id in approval_ids:
            if outcome == "edit":
                approvals[call_id] = ToolApproved(override_args=dict(decision.edited_args or {}))
                note["original_args"] = call.args_as_dict()
            elif outcome in ("approve", "respond"):
                approvals[call_id] = ToolApproved()
            else:
                approvals[call_id] = ToolDenied(_denial(decision, call.tool_name))
        elif outcome in ("respond", "approve", "edit"):
            calls[call_id] = decision.response if outcome == "respond" else decision.edited_args
        else:
            calls[call_id] = ToolFailed(_denial(decision, call.tool_name))
        metadata[call_id] = {"hitl": note}
        answered_by[call_id] = decision.actor.id
    return DeferredToolResults(approvals=approvals, calls=calls, metadata=metadata, answered_by=answered_by)


class AgentApprovals(Adapter):
    """Runs Pydantic AI agents whose deferred tool calls are decided through ``machine``.

    The agent's ``output_type`` must include ``DeferredToolRequests`` for ``run``/``start`` (a
    pause ends the run); ``capability()`` needs no such thing. ``severity`` is a severity or
    ``severity(tool_name, args)``; ``timeout`` (seconds) lets the default decision (reject) apply
    if nobody decides; ``assignees`` limits who may decide.
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        agent: str | None = None,
        severity: SeverityRule = Severity.MEDIUM,
        timeout: float | None = None,
        assignees: Iterable[str] | None = None,
    ) -> None:
        super().__init__(machine, agent=agent, timeout=timeout, assignees=assignees)
        self.tool_severity = severity

    # -- ending the run at each pause ----------------------------------------------------------

    async def run(
        self,
        agent: Any,
        prompt: Any = None,
        *,
        run_id: str | None = None,
        wait_timeout: float | None = None,
        **run_kwargs: Any,
    ) -> Any:
        """``agent.run`` until it finishes, asking hitl about every deferred call. Returns the result.

        ``run_kwargs`` go to every ``agent.run`` (deps, usage limits, …); ``wait_timeout`` bounds
        each wait for decisions (``DecisionTimeoutError``; the run can be resumed later).
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        result = await agent.run(prompt, **run_kwargs)
        while isinstance(result.output, DeferredToolRequests):
            pause = await self._record(run_id, result.output, result.all_messages())
            result = await self._continue(agent, pause, True, wait_timeout, run_kwargs)
            if result is None:
                raise HITLError(f"another process claimed the decisions of run {run_id!r} and is continuing it")
        await self.finish_run(run_id)
        return result

    def run_sync(self, agent: Any, prompt: Any = None, **kwargs: Any) -> Any:
        """``run`` for synchronous code (on the machine's own event-loop thread)."""
        return self.machine.sync.run(self.run(agent, prompt, **kwargs))

    async def start(
        self, agent: Any, prompt: Any = None, *, run_id: str | None = None, **run_kwargs: Any
    ) -> PausedRun | Any:
        """Run until the first pause, record it, and return without waiting for decisions.

        Returns the finished result if nothing was deferred.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        result = await agent.run(prompt, **run_kwargs)
        if not isinstance(result.output, DeferredToolRequests):
            return result
        pause = await self._record(run_id, result.output, result.all_messages())
        return PausedRun(run_id, pause.turn, list(pause.task_ids.values()))

    async def resume(
        self,
        agent: Any,
        run_id: str,
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        takeover: bool = False,
        **run_kwargs: Any,
    ) -> PausedRun | Any:
        """Continue a paused run — possibly paused by another process — from the store alone.

        With ``wait`` it blocks until the batch is decided and runs on to the end (asking again at
        every later pause); without, it continues only if every call is decided, and returns the
        next ``PausedRun`` (recorded, not waited for) or the result. ``takeover`` re-delivers
        decisions another process claimed but died before delivering.
        """
        pause = await self._load(run_id)
        while True:
            result = await self._continue(agent, pause, wait, wait_timeout, run_kwargs, takeover)
            if result is None:
                return PausedRun(run_id, pause.turn, list(pause.task_ids.values()))
            if not isinstance(result.output, DeferredToolRequests):
                await self.finish_run(run_id)
                return result
            pause = await self._record(run_id, result.output, result.all_messages())
            takeover = False

    async def _continue(
        self,
        agent: Any,
        pause: _Pause,
        wait: bool,
        wait_timeout: float | None,
        run_kwargs: dict[str, Any],
        takeover: bool = False,
    ) -> Any:
        decisions = await self._decisions(pause, wait, wait_timeout)
        if decisions is None:
            return None
        results = results_for(pause.requests, decisions)
        claimed = await self.claim(list(pause.task_ids.values()), takeover=takeover)
        if claimed is None:
            return None  # another process is continuing this batch
        kwargs = {k: v for k, v in run_kwargs.items() if k not in ("message_history", "deferred_tool_results")}
        try:
            result = await agent.run(message_history=pause.history, deferred_tool_results=results, **kwargs)
        except BaseException as exc:
            await self.failed(claimed, exc)
            raise
        await self.delivered(claimed)
        return result

    # -- deciding inside the run ---------------------------------------------------------------

    def capability(self, *, run_id: str | None = None, wait_timeout: float | None = None) -> Any:
        """A ``HandleDeferredToolCalls`` capability that waits for hitl decisions inside the run.

        The run does not end at a pause: the handler records the batch, waits for every decision
        (made anywhere on the store) and hands Pydantic AI the results. The waiting process must
        stay alive; use ``run``/``resume`` when it may not.
        """
        from pydantic_ai.capabilities import HandleDeferredToolCalls

        async def handler(ctx: Any, requests: DeferredToolRequests) -> DeferredToolResults:
            rid = run_id or str(getattr(ctx, "run_id", None) or uuid.uuid4().hex[:12])
            pause = await self._record(rid, requests, list(ctx.messages))
            decisions = await self._decisions(pause, True, wait_timeout)
            assert decisions is not None
            results = results_for(requests, decisions)
            await self.delivered(await self.claim(list(pause.task_ids.values())) or [])
            return results

        return HandleDeferredToolCalls(handler=handler)

    # -- the hitl side -------------------------------------------------------------------------

    async def _record(self, run_id: str, requests: DeferredToolRequests, history: Sequence[ModelMessage]) -> _Pause:
        """Make sure every pending call has its task (idempotent: same pause, same tasks)."""
        history = list(history)
        turn = sum(1 for m in history if isinstance(m, ModelResponse))
        state = {
            "turn": turn,
            "history": ModelMessagesTypeAdapter.dump_python(history, mode="json"),
            "requests": _REQUESTS.dump_python(requests, mode="json"),
        }
        calls = [*requests.approvals, *requests.calls]
        questions = [
            (
                call_task_id(run_id, turn, call.tool_call_id),
                self._request_for(call, requests),
                {META_KEY: {**state, "tool_call_id": call.tool_call_id}},
            )
            for call in calls
        ]
        task_ids = await self.ask_batch(run_id, questions)
        return _Pause(
            run_id, turn, requests, history, {c.tool_call_id: t for c, t in zip(calls, task_ids, strict=True)}
        )

    def _request_for(self, call: ToolCallPart, requests: DeferredToolRequests) -> Request:
        """What a person is asked about one deferred call."""
        kind = _kind(requests, call)
        args = call.args_as_dict()
        meta = requests.metadata.get(call.tool_call_id) or {}
        if kind == "approval":
            allowed = ("approve", "reject", "edit")
            reason = meta.get("reason") if isinstance(meta.get("reason"), str) else f"{call.tool_name} needs approval"
        else:
            allowed = ("respond", "reject")
            question = meta.get("question") or args.get("question")
            reason = question if isinstance(question, str) else f"{call.tool_name} waits for an answer"
        rule = self.tool_severity
        context: dict[str, Any] = {"tool_call_id": call.tool_call_id, "deferred_kind": kind}
        if meta:
            context["metadata"] = meta
        return Request(
            reason=reason,
            context=context,
            allowed_decisions=allowed,
            kind=InterruptKind.APPROVAL if kind == "approval" else InterruptKind.QUESTION,
            action=Action(name=call.tool_name, args=args),
            step=call.tool_name,
            severity=rule(call.tool_name, args) if callable(rule) else rule,
        )

    async def _decisions(self, pause: _Pause, wait: bool, wait_timeout: float | None) -> dict[str, Decision] | None:
        decided = await self.decisions(list(pause.task_ids.values()), wait=wait, wait_timeout=wait_timeout)
        return None if decided is None else dict(zip(pause.task_ids, decided, strict=True))

    async def _load(self, run_id: str) -> _Pause:
        """The latest recorded pause of ``run_id``, rebuilt from its tasks' metadata."""
        latest: TaskContext | None = None
        for state in (S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED, S.RUNNING):
            for task in await self.machine.get_tasks_by_state(state):
                if task.framework != FRAMEWORK or task.run_id != run_id or META_KEY not in task.metadata:
                    continue
                if latest is None or task.metadata[META_KEY]["turn"] > latest.metadata[META_KEY]["turn"]:
                    latest = task
        if latest is None:
            raise TaskNotFoundError(f"{parent_task_id(run_id)} (no paused Pydantic AI run {run_id!r} in the store)")
        state = latest.metadata[META_KEY]
        try:
            history = ModelMessagesTypeAdapter.validate_python(state["history"])
            requests = _REQUESTS.validate_python(state["requests"])
        except Exception as exc:
            raise HITLError(
                f"the paused run {run_id!r} cannot be restored from task {latest.task_id!r}: {exc}"
            ) from exc
        turn = int(state["turn"])
        task_ids = {
            c.tool_call_id: await self.latest_attempt(call_task_id(run_id, turn, c.tool_call_id))
            for c in [*requests.approvals, *requests.calls]
        }
        return _Pause(run_id, turn, requests, list(history), task_ids)


# The glossary's one word for a paused run (docs/glossary.md); the old name still works, and warns.
__getattr__ = retired_names(__name__, {"AgentRunPaused": "PausedRun"}, globals())
