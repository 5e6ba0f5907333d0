"""One way to build an adapter: the lifecycle every framework shares, and the adapters' declarations.

An adapter maps one agent framework's pause onto hitl tasks and a person's decision back onto the
framework. Everything else is the same for every framework and lives here, in ``Adapter``:

* the run's parent task (``open_run`` / ``finish_run``): the tasks of one run are siblings;
* asking (``ask``, ``ask_batch``): idempotent — a task id derived from the framework's own ids
  finds its task again when the framework re-delivers a pause; a task that FAILED is asked again
  as ``<id>~1``, ``<id>~2`` …;
* waiting (``wait_for_decision``, ``decisions``): a passed deadline applies the interrupt's default
  (``expire``) instead of waiting forever; a decision the adapter cannot carry back is refused;
* claiming (``claim``): decided tasks move to RUNNING through the store's compare-and-set, in task
  id order, so of two processes exactly one carries a batch back;
* finishing (``delivered`` / ``failed``): a claimed task is COMPLETED once the framework took the
  decision, or FAILED with the error — and then asked again at once as a retry question.

A retry question (``<id>~n``) asks whether to carry the *same* decision back again: approve
re-delivers the failed attempt's decision, reject gives the run up (its tasks and parent fail,
``RetryDeclinedError``). It never takes a new decision, because a framework may keep the value it
was given before it failed (LangGraph re-runs the node with the first resume value) and a new one
would silently not apply.

``Capabilities`` says what an adapter can carry back; ``ask`` narrows every request's
``allowed_decisions`` to it, so the console and the CLI (which offer only an interrupt's
``allowed_decisions``) never offer what the framework cannot take. ``lazy_exports`` keeps an
adapter package importable without its framework (``docs/adapters.md`` shows a whole adapter).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

from .errors import (
    ConflictError,
    DecisionTimeoutError,
    DuplicateTaskError,
    HITLError,
    InvalidTransitionError,
    NotAuthorizedError,
    PayloadError,
    TaskNotFoundError,
)
from .hookspecs import hookimpl
from .models import Action, Actor, Decision, InterruptKind, InterruptPoint, Severity, TaskContext, TaskState
from .text import hitl_logger

if TYPE_CHECKING:
    from .machine import HITLStateMachine

log = hitl_logger("hitl.adapters")
S = TaskState
T = TypeVar("T")

#: Key in a retry task's metadata: the task whose attempt failed and the decision it carried.
RETRY_KEY = "hitl_retry"


class Capabilities(NamedTuple):
    """What an adapter can carry back into its framework (the README's capability table).

    A ``NamedTuple`` rather than a dataclass because every process that loads hitl's entry points
    builds the adapters' declarations: a frozen, slotted dataclass costs ten times as much.
    """

    framework: str
    #: the subset of {approve, reject, edit, respond} the framework can apply
    decisions: tuple[str, ...]
    #: does a rejection's reason reach the model (and how)
    rejection_reason: str
    #: what happens when only some of one step's pending requests are decided
    partial_decisions: str
    #: can another process resume the paused run from the store alone
    cross_process_resume: bool
    notes: str = ""


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[attr]`` (a submodule) on first use.

    Every adapter package is an entry-point plugin that each hitl process loads; its public classes
    live in submodules that import the framework, so they are loaded only when someone uses them.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__


class CapabilityGuard:
    """The entry-point plugin of an adapter: refuses a decision its framework cannot carry back.

    ``ask`` already narrows ``allowed_decisions`` to the adapter's capabilities, and the machine
    refuses what an interrupt does not allow. This ``hitl_authorize`` implementation is the second
    lock, for a task whose ``allowed_decisions`` were widened by hand in the store: an edit the
    framework would silently drop (running the call with its original arguments) is refused with
    ``NotAuthorizedError`` before anything is committed. Tasks of other frameworks are not its
    business. It imports nothing from the framework.
    """

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities

    @hookimpl
    def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> bool | None:
        if task.framework != self.capabilities.framework:
            return None
        kind = decision.effective_type.value
        if kind not in self.capabilities.decisions:
            raise NotAuthorizedError(
                task.task_id,
                actor.id,
                f"the {self.capabilities.framework} adapter cannot carry {kind!r} back "
                f"(it can carry {', '.join(self.capabilities.decisions)})",
            )
        return None


class RetryDeclinedError(HITLError):
    """A person declined to retry a run whose resume failed: its tasks and its parent are FAILED."""

    def __init__(self, task_id: str, actor: str, message: str | None) -> None:
        self.task_id = task_id
        self.actor = actor
        why = f": {message}" if message else ""
        super().__init__(f"task {task_id!r}: {actor} declined to retry the failed resume{why}")


@dataclass(slots=True)
class Request:
    """One question for a person; becomes one hitl task (``Adapter.ask``)."""

    reason: str
    context: dict[str, Any] = field(default_factory=dict)
    allowed_decisions: Sequence[str] = ("approve", "reject")
    kind: InterruptKind = InterruptKind.APPROVAL
    action: Action | None = None
    response_schema: dict[str, Any] | None = None
    step: str | None = None
    #: None: the adapter's ``severity`` (a level, or a function of the request)
    severity: Severity | str | None = None
    options: list[str] | None = None
    default_decision: str = "reject"
    #: None: the adapter's ``agent`` (a framework with several agents per run names each call's own)
    agent: str | None = None


@dataclass(slots=True)
class _Asked:
    base_id: str
    run_id: str | None
    request: Request
    metadata: dict[str, Any] | None
    parent: bool


def tool_severity(
    rule: Severity | str | Callable[[str, dict[str, Any]], Severity | str],
) -> Severity | str | Callable[[Request], Severity | str]:
    """An adapter's ``severity`` from a tool-call rule ``rule(tool_name, args)`` (or a level).

    The frameworks whose pauses are tool calls let their users write the rule over the call; the
    base asks it of the ``Request``, whose ``action`` is that call.
    """
    if not callable(rule):
        return rule

    def of_request(request: Request) -> Severity | str:
        action = request.action
        if action is None:
            raise HITLError("a tool-call severity rule was given a request without an action")
        return rule(action.name, action.args)

    return of_request


class Adapter:
    """The shared lifecycle of an adapter; a subclass is the framework's mapping and nothing else.

    Set ``capabilities`` on the subclass. ``agent`` names the agent on its tasks; ``severity`` is a
    level or ``severity(request)``; ``timeout`` (seconds) sets each request's deadline, after which
    its default decision (reject) applies as a timeout; ``assignees`` limits who may decide (with
    an authorization plugin). Every method is a coroutine on the machine's API; synchronous
    adapters call them through ``self.run_sync`` (the machine's thread-safe facade).
    """

    capabilities: ClassVar[Capabilities]

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        agent: str | None = None,
        severity: Severity | str | Callable[[Request], Severity | str] = Severity.MEDIUM,
        timeout: float | None = None,
        assignees: Iterable[str] | None = None,
    ) -> None:
        self.machine = machine
        self.agent = agent
        self.severity = severity
        self.timeout = timeout
        self.assignees = list(assignees) if assignees is not None else None
        self._open_parents: set[str] = set()
        # task id -> the version it had right after this adapter claimed it: a claim is ours only
        # if nobody moved the task since (no owner token in the task, nothing to forge or go stale)
        self._claims: dict[str, int] = {}

    @property
    def framework(self) -> str:
        return self.capabilities.framework

    def run_sync(self, coro: Any) -> Any:
        """Run one of these coroutines from synchronous code (any thread but the facade's own)."""
        return self.machine.sync.run(coro)

    # -- the run's parent task ------------------------------------------------------------------

    def parent_task_id(self, run_id: str) -> str:
        return f"{self.framework}:{run_id}"

    async def open_run(self, run_id: str, metadata: dict[str, Any] | None = None) -> None:
        """Start the run's parent task, once (a run started earlier, here or elsewhere, keeps its task)."""
        parent = self.parent_task_id(run_id)
        if parent in self._open_parents:
            return
        try:
            await self.machine.start_task(
                parent,
                metadata if metadata is not None else {"run_id": run_id},
                step="running",
                agent=self.agent,
                framework=self.framework,
                run_id=run_id,
            )
        except DuplicateTaskError:
            pass  # opened earlier, or by another process: it stays as it is
        self._open_parents.add(parent)

    async def finish_run(self, run_id: str) -> None:
        """The run finished: complete its parent task (if it has one and it is still running)."""
        parent = self.parent_task_id(run_id)
        self._open_parents.discard(parent)
        try:
            await self.machine.complete(parent)
        except (InvalidTransitionError, ConflictError, TaskNotFoundError):
            pass  # never opened (nothing was asked), or completed already

    # -- asking ---------------------------------------------------------------------------------

    async def ask(
        self,
        base_id: str,
        run_id: str | None,
        request: Request,
        metadata: dict[str, Any] | None = None,
        *,
        parent: bool = True,
    ) -> str:
        """Make sure ``request`` has a task waiting for (or holding) a decision; return its id.

        Idempotent: the task ``base_id`` (or its latest retry ``base_id~n``) is found again when it
        exists — waiting, it is waited on; decided, claimed or delivered, its decision is used
        again. Only a FAILED one is passed over: the next ``~n`` is asked, as a retry question if
        the failed attempt carried a decision (see the module docstring), else as it was.
        """
        asked = _Asked(base_id, run_id, request, metadata, parent)
        attempt = 0
        failed: TaskContext | None = None
        while True:
            task_id = base_id if attempt == 0 else f"{base_id}~{attempt}"
            task = await self.machine.get_task(task_id)
            if task is None:
                try:
                    if self._asks_at_once() and await self._start_and_ask(task_id, asked, failed):
                        return task_id
                    task = await self._create(task_id, asked, failed)
                except DuplicateTaskError:
                    continue  # created by another process a moment ago: read it again
            if task.state is S.FAILED:
                failed = task
                attempt += 1
                continue
            if task.state is S.RUNNING and task.decision is None:
                try:
                    await self._request(task_id, self._retry_request(asked, failed) if failed else request)
                except (PayloadError, NotAuthorizedError) as exc:
                    # Refused for what it asks (a default approve the config forbids, a payload
                    # over the limits, nothing the adapter can carry back): the task would stay
                    # RUNNING forever, a ghost on every console. Fail it with the reason, then
                    # tell the caller. A store outage (StoreError) is not a refusal: left as is.
                    with contextlib.suppress(HITLError):
                        await self.machine.fail(task_id, f"could not ask for approval: {exc}")
                    raise
            return task_id

    async def latest_attempt(self, base_id: str) -> str:
        """``base_id`` or its latest retry (``~n``): the id a question asked as ``base_id`` has now."""
        attempt = 0
        while True:
            task_id = base_id if attempt == 0 else f"{base_id}~{attempt}"
            task = await self.machine.get_task(task_id)
            if task is None or task.state is not S.FAILED:
                return task_id
            attempt += 1

    async def ask_batch(
        self, run_id: str, questions: Sequence[tuple[str, Request, dict[str, Any] | None]]
    ) -> list[str]:
        """``ask`` each (base id, request, metadata) under the run's parent; task ids in order.

        Concurrently: the store commits the transitions of one turn of the event loop together,
        so a batch costs a few commits, not one per transition.
        """
        _, *task_ids = await asyncio.gather(
            self.open_run(run_id), *(self.ask(b, run_id, r, m) for b, r, m in questions)
        )
        return list(task_ids)

    async def _start_and_ask(self, task_id: str, asked: _Asked, failed: TaskContext | None) -> bool:
        """Start ``task_id`` and ask in one transaction: never a task running without its question.

        False when the question cannot be asked (a severity rule raised, the request is refused):
        then nothing was written, and ``ask`` starts the task and asks in two steps as it always
        did, so that the error is raised with the task in place and the caller fails it — a
        question that could not be asked leaves a FAILED task behind, not nothing.
        """
        request = self._retry_request(asked, failed) if failed else asked.request
        try:
            fields = self._request_fields(task_id, request)
            await self.machine._start_and_request(  # type: ignore[union-attr]
                task_id, self._start_fields(asked, failed), **fields
            )
        except DuplicateTaskError:
            raise
        except Exception:
            if await self.machine.get_task(task_id) is not None:
                raise  # it was written (an observer or policy raised after the commit)
            return False
        return True

    def _asks_at_once(self) -> bool:
        """Can the machine start a task and ask in one transaction? (A server client asks in two.)"""
        return hasattr(self.machine, "_start_and_request")

    def _start_fields(self, asked: _Asked, failed: TaskContext | None) -> dict[str, Any]:
        """``start_task``'s arguments for ``asked`` (a retry of ``failed`` carries its decision)."""
        metadata = dict(asked.metadata or {})
        retried = _carried_decision(failed) if failed is not None else None
        if failed is not None and retried is not None:
            metadata[RETRY_KEY] = {"of": failed.task_id, "decision": retried.to_dict()}
        return {
            "metadata": metadata or None,
            "step": asked.request.step,
            "agent": asked.request.agent or self.agent,
            "framework": self.framework,
            "run_id": asked.run_id,
            "parent_id": self.parent_task_id(asked.run_id) if asked.parent and asked.run_id is not None else None,
        }

    async def _create(self, task_id: str, asked: _Asked, failed: TaskContext | None) -> TaskContext:
        fields = self._start_fields(asked, failed)
        metadata = fields.pop("metadata")
        task: TaskContext = await self.machine.start_task(task_id, metadata, **fields)
        return task

    def _retry_request(self, asked: _Asked, failed: TaskContext) -> Request:
        decision = _carried_decision(failed)
        if decision is None:
            return asked.request  # it failed before anyone decided: ask the question itself again
        what = asked.request.step or (asked.request.action.name if asked.request.action else "the run")
        error = (failed.error or "an error").strip()
        context = {
            **asked.request.context,
            "retry": {
                "failed_task": failed.task_id,
                "error": error,
                "decision": decision.effective_type.value,
                "decided_by": decision.actor.id,
            },
        }
        return replace(
            asked.request,
            reason=_short(
                f"Retry {what} with {decision.actor.id}'s {decision.effective_type.value}? The last attempt: {error}"
            ),
            context=context,
            allowed_decisions=("approve", "reject"),
            kind=InterruptKind.APPROVAL,
            response_schema=None,
            options=None,
        )

    def _request_fields(self, task_id: str, request: Request) -> dict[str, Any]:
        """``request_approval``'s arguments for ``request``, narrowed to what this adapter carries back."""
        severity = request.severity
        if severity is None:
            severity = self.severity(request) if callable(self.severity) else self.severity
        allowed = [d for d in request.allowed_decisions if d in self.capabilities.decisions]
        if not allowed:
            raise PayloadError(
                f"task {task_id!r}: the {self.framework} adapter can carry back none of "
                f"{list(request.allowed_decisions)} (only {', '.join(self.capabilities.decisions)})"
            )
        return {
            "reason": request.reason,
            "context": request.context,
            "options": request.options,
            "severity": severity,
            "kind": request.kind,
            "action": request.action,
            "allowed_decisions": allowed,
            "response_schema": request.response_schema,
            "timeout": self.timeout,
            "default_decision": request.default_decision,
            "assignees": self.assignees,
            "step": request.step,
            "requested_by": request.agent or self.agent,
        }

    async def _request(self, task_id: str, request: Request) -> None:
        fields = self._request_fields(task_id, request)
        try:
            # The call's shape as it always was (reason, context, options by position).
            await self.machine.request_approval(
                task_id, fields.pop("reason"), fields.pop("context"), fields.pop("options"), **fields
            )
        except (InvalidTransitionError, ConflictError):
            task = await self.machine.get_task(task_id)
            if task is None or task.state is S.RUNNING:
                raise  # not a race with another process asking the same thing

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for_decision(self, task_id: str, timeout: float | None = None) -> Decision:
        """The task's decision; a passed deadline applies the interrupt's default (``expire``).

        ``timeout`` bounds the whole wait (``DecisionTimeoutError``; the task keeps waiting).
        """
        loop = asyncio.get_running_loop()
        give_up = None if timeout is None else loop.time() + timeout
        while True:
            task = await self.machine.get_task(task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            wait = None if give_up is None else max(give_up - loop.time(), 0.0)
            deadline = task.interrupt_point.deadline if task.interrupt_point else None
            expires = deadline is not None and task.state is S.AWAITING_APPROVAL
            if expires:
                until = max((deadline - datetime.now(UTC)).total_seconds(), 0.0)  # type: ignore[operator]
                expires = wait is None or until < wait
                wait = until if expires else wait
            try:
                return await self.machine.wait_for_decision(task_id, timeout=wait)
            except DecisionTimeoutError:
                if not expires:
                    raise
            try:
                await self.machine.expire(task_id)
            except InvalidTransitionError:
                pass  # decided (or failed) meanwhile: read it again

    async def decisions(
        self, task_ids: Sequence[str], *, wait: bool = True, wait_timeout: float | None = None
    ) -> list[Decision] | None:
        """The decision to carry back for each task, in order; None if ``wait`` is off and one is open.

        Raises ``RetryDeclinedError`` when a person declined a retry question (the batch's tasks
        and the run's parent are failed first), and ``HITLError`` for a decision this adapter
        cannot carry back (a store edited by hand; the task is failed, nothing is carried).
        """
        if wait:
            await asyncio.gather(*(self.wait_for_decision(t, wait_timeout) for t in task_ids))
        tasks: list[TaskContext] = []
        for task_id in task_ids:
            task = await self.machine.get_task(task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            if task.decision is None or task.state is S.AWAITING_APPROVAL:
                if wait:
                    raise HITLError(f"task {task_id!r} has no decision after waiting for one ({task.state.value})")
                return None
            tasks.append(task)
        return [await self._carry(task, tasks) for task in tasks]

    async def _carry(self, task: TaskContext, batch: Sequence[TaskContext]) -> Decision:
        decision = task.decision
        assert decision is not None
        retry = task.metadata.get(RETRY_KEY)
        if isinstance(retry, dict):
            if not decision.approved:
                reason = f"{decision.actor.id} declined to retry: {decision.message or 'no reason given'}"
                await self._fail_quietly([t.task_id for t in batch], reason)
                if task.parent_id is not None:
                    await self._fail_quietly([task.parent_id], reason)
                raise RetryDeclinedError(task.task_id, decision.actor.id, decision.message)
            decision = Decision.model_validate(retry["decision"])
        kind = decision.effective_type.value
        if kind not in self.capabilities.decisions:
            error = f"the {self.framework} adapter cannot carry {kind!r} back; nothing was carried"
            await self._fail_quietly([task.task_id], error)
            raise HITLError(f"task {task.task_id!r}: {error}")
        return decision

    async def ask_and_claim(
        self,
        task_id: str,
        run_id: str | None,
        request: Request,
        metadata: dict[str, Any] | None = None,
        *,
        parent: bool = False,
        wait_timeout: float | None = None,
    ) -> Decision:
        """For a framework that blocks in place until decided (a tool hook, a feedback prompt).

        Asks, waits (deadlines apply), and claims the task for this caller; it then only needs
        ``delivered``. Anything that goes wrong fails the task (``could not ask for approval: …``)
        and raises: no task is left waiting for a person whose decision could not reach anyone.
        """
        try:
            task_id = await self.ask(task_id, run_id, request, metadata, parent=parent)
            decisions = await self.decisions([task_id], wait_timeout=wait_timeout)
            assert decisions is not None  # waited for
        except Exception as exc:
            await self._fail_quietly([task_id], f"could not ask for approval: {exc}")
            raise
        if await self.claim([task_id]) is None:  # not failed: it is the other process's to finish
            raise HITLError(f"task {task_id!r} was claimed by another process")
        return decisions[0]

    # -- claiming and finishing -----------------------------------------------------------------

    async def claim(self, task_ids: Sequence[str], *, takeover: bool = False) -> list[str] | None:
        """Move the decided tasks to RUNNING (this process carries them back); None if another did first.

        Claims go in task-id order, so two racing processes collide on the first task and exactly
        one goes on. A task this adapter claimed before (and nobody moved since) is still its own;
        one another adapter claimed is left to it — unless ``takeover``: that process died before
        delivering. A COMPLETED task is skipped (delivered before; its framework asks again).
        """
        claimed: list[str] = []
        for task_id in sorted(task_ids):
            try:
                task = await self.machine.resume(task_id)
            except (InvalidTransitionError, ConflictError) as exc:
                refused: Exception = exc
            else:
                self._claims[task_id] = task.version
                claimed.append(task_id)
                continue
            task = await self.machine.get_task(task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            ours = self._claims.get(task_id) == task.version
            if task.state is S.RUNNING and task.decision is not None and (ours or takeover):
                self._claims[task_id] = task.version
                claimed.append(task_id)
            elif task.state is S.COMPLETED:
                continue
            elif not claimed:
                return None  # another process claimed this batch first
            else:
                raise HITLError(
                    f"task {task_id!r} was claimed by another process while this one claimed its siblings"
                ) from refused
        return claimed

    async def delivered(self, claimed: Sequence[str], result: Any = None, *, finish_run: str | None = None) -> None:
        """The framework took the claimed decisions: complete those tasks (``result`` on each).

        ``finish_run``: the run ended too — its parent task completes with them (``finish_run``).
        Where the machine can, all of it is one transaction; if any of them was completed
        elsewhere meanwhile (a re-run delivered it too), they are completed one by one instead.
        """
        value = {"delivered": True} if result is None else result
        parent = self.parent_task_id(finish_run) if finish_run is not None else None
        together = getattr(self.machine, "_complete_together", None)
        pairs: list[tuple[str, Any]] = [(t, value) for t in claimed]
        if parent is not None and claimed:
            pairs.append((parent, None))
        if together is not None and len(pairs) > 1:
            try:
                await together(pairs)
            except (InvalidTransitionError, ConflictError, TaskNotFoundError):
                pass  # one of them was finished elsewhere: the one-by-one path below sorts it out
            else:
                for task_id in claimed:
                    self._claims.pop(task_id, None)
                if finish_run is not None and parent is not None:
                    self._open_parents.discard(parent)
                return

        async def complete(task_id: str) -> None:
            self._claims.pop(task_id, None)
            try:
                await self.machine.complete(task_id, value)
            except (InvalidTransitionError, ConflictError):
                pass  # completed by a process that delivered it too (a re-run): it stays done

        await asyncio.gather(*(complete(t) for t in claimed))
        if finish_run is not None:
            await self.finish_run(finish_run)

    async def failed(self, claimed: Sequence[str], error: BaseException | str) -> list[str]:
        """Carrying the claimed decisions back raised: fail those tasks and ask again at once.

        Each failed task keeps the error; its retry question (``~n``) is asked right away, so
        that a resumer finds it like any other question — nothing waits on a task nobody sees.
        Returns the retry tasks' ids.
        """
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        await self._fail_quietly(claimed, f"carrying the decision back raised {text}")
        retries = []
        for task_id in claimed:
            self._claims.pop(task_id, None)
            try:
                asked = await self._asked_from_store(task_id)
                if asked is not None:
                    retries.append(
                        await self.ask(asked.base_id, asked.run_id, asked.request, asked.metadata, parent=asked.parent)
                    )
            except HITLError:
                log.exception("could not ask to retry %s", task_id)
        return retries

    async def _asked_from_store(self, task_id: str) -> _Asked | None:
        """What ``task_id`` was asked, read back from its events: a process that resumes a run it
        did not ask (``resume`` in another process) retries it all the same."""
        task = await self.machine.get_task(task_id)
        if task is None:
            return None
        interrupt = None
        for event in reversed(await self.machine.events(task_id=task_id)):
            if event.action == "request_approval" and event.data.get("interrupt") is not None:
                interrupt = InterruptPoint.model_validate(event.data["interrupt"])
                break
        if interrupt is None:
            return None
        base_id = task_id
        stripped = re.sub(r"~\d+$", "", task_id)
        if stripped != task_id and (earlier := await self.machine.get_task(stripped)) is not None:
            base_id = stripped if earlier.state is S.FAILED else task_id
        request = Request(
            reason=interrupt.reason,
            context=interrupt.context,
            allowed_decisions=tuple(interrupt.allowed_decisions),
            kind=interrupt.kind,
            action=interrupt.action,
            response_schema=interrupt.response_schema,
            step=task.current_step,
            severity=interrupt.severity,
            default_decision=interrupt.default_decision,
            agent=task.agent,
        )
        metadata = {k: v for k, v in task.metadata.items() if k != RETRY_KEY} or None
        return _Asked(base_id, task.run_id, request, metadata, task.parent_id is not None)

    async def _fail_quietly(self, task_ids: Iterable[str], error: str) -> None:
        for task_id in task_ids:
            try:
                await self.machine.fail(task_id, error)
            except (InvalidTransitionError, ConflictError, TaskNotFoundError):
                pass  # finished or failed already


def _carried_decision(task: TaskContext) -> Decision | None:
    """The decision a (failed) task was carrying back: a retry carries its original's."""
    retry = task.metadata.get(RETRY_KEY)
    if isinstance(retry, dict):
        return Decision.model_validate(retry["decision"])
    return task.decision


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resume_each(runs: Iterable[str], resume: Callable[[str], T], *, name: str = "run") -> dict[str, T | BaseException]:
    """``resume(run)`` for each run; one that raises is logged and reported, and the rest go on.

    For resumers (``python -m hitl_langgraph.resumer --follow``): one run's failure (the graph
    raised; its tasks are FAILED and asked again by ``Adapter.failed``) never stops the others.
    KeyboardInterrupt and SystemExit still stop everything.
    """
    results: dict[str, T | BaseException] = {}
    for run in runs:
        try:
            results[run] = resume(run)
        except Exception as exc:
            print(f"{name} {run}: resuming failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            log.debug("resuming %s %s failed", name, run, exc_info=True)
            results[run] = exc
    return results
