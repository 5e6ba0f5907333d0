"""``@requires_approval`` and ``@interruptible``: put a person in front of any function.

Both work on sync and async functions. Async ones use the machine directly; sync ones go
through its thread-safe facade (``machine.sync``), so they may be called from any thread.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from .errors import DecisionTimeoutError, HITLError, InvalidTransitionError, PayloadError
from .machine import HITLStateMachine
from .models import Action, Decision, Severity, TaskState

P = ParamSpec("P")
R = TypeVar("R")

_default_machine: HITLStateMachine | None = None


def default_machine() -> HITLStateMachine:
    """The machine decorators use when given none: ``HITL_STORE`` if set, else in-memory."""
    global _default_machine
    if _default_machine is None:
        _default_machine = HITLStateMachine()
    return _default_machine


def set_default_machine(machine: HITLStateMachine | None) -> None:
    global _default_machine
    _default_machine = machine


class ApprovalRejected(HITLError):
    """A person (or a timeout, or a policy) said no. The function did not run (or was stopped)."""

    def __init__(self, task_id: str, decision: Decision) -> None:
        self.task_id = task_id
        self.decision = decision
        self.reason = decision.message
        self.actor = decision.actor.id
        what = decision.type.value if decision.type.value in ("timeout", "policy") else "rejected"
        super().__init__(f"task {task_id!r} {what} by {self.actor}" + (f": {self.reason}" if self.reason else ""))


def _task_id_for(
    func: Callable[..., Any], task_id: str | Callable[..., str] | None, bound: inspect.BoundArguments | None
) -> str:
    if callable(task_id):
        return task_id(**(bound.arguments if bound else {}))
    return f"{task_id or func.__name__}-{uuid.uuid4().hex[:12]}"


def _call_args(bound: inspect.BoundArguments) -> dict[str, Any]:
    """The call's arguments as the approval's context, leaving out ``self``/``cls``."""
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


def _apply_edit(func: Callable[..., Any], bound: inspect.BoundArguments, edited: dict[str, Any]) -> None:
    unknown = sorted(set(edited) - set(inspect.signature(func).parameters))
    if unknown:
        raise PayloadError(f"edited args name parameters {func.__qualname__} does not have: {unknown}")
    bound.arguments.update(edited)


async def _expire(m: HITLStateMachine, tid: str) -> Decision:
    """Our own ``timeout`` ran out: apply the deadline's outcome and return the decision.

    The request's deadline is the same ``timeout`` from when it was asked, so it has passed,
    or nearly (the wall clock and the event loop's clock differ a little). A rejecting outcome
    may be applied a little early (``force``); an approving one only once the deadline has
    really passed, so we wait out the difference.
    """
    while True:
        try:
            await m.expire(tid, force=True)
        except InvalidTransitionError:
            task = await m.get_task(tid)
            interrupt = task.interrupt_point if task is not None else None
            if task is None or interrupt is None or interrupt.deadline is None:
                raise
            left = (interrupt.deadline - datetime.now(UTC)).total_seconds()
            try:
                return await m.wait_for_decision(tid, max(left, 0.001))
            except DecisionTimeoutError:
                continue
        return await m.wait_for_decision(tid)


def _result_for_record(result: Any) -> Any:
    try:
        import json

        json.dumps(result)
        return result
    except (TypeError, ValueError):
        return {"type": type(result).__name__}


def requires_approval(
    reason: str | None = None,
    *,
    options: list[str] | None = None,
    severity: Severity | str = Severity.MEDIUM,
    machine: HITLStateMachine | None = None,
    timeout: float | None = None,
    default_decision: str = "reject",
    task_id: str | Callable[..., str] | None = None,
    allowed_decisions: Iterable[str] | None = None,
    assignees: Iterable[str] | None = None,
    required_approvals: int = 1,
    agent: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Each call becomes a task waiting for a person; the function runs only if approved.

    The call's arguments are the approval's context and the action's args (they must be
    JSON-serialisable: ``PayloadError`` otherwise, before anything runs). ``reason`` may use
    ``{arg}`` placeholders. Approve runs the function (an ``edit`` decision runs it with the
    edited args); reject raises ``ApprovalRejected`` carrying the reason and the actor. After
    ``timeout`` seconds with no decision the ``default_decision`` applies — reject unless set —
    recorded as a timeout. ``default_decision="approve"`` is refused with ``PayloadError`` at
    each call, before anything is recorded, unless the machine's ``hitl.toml`` allows it
    (``[deadlines] allow_default_approve = true``). With a stable ``task_id`` (a callable of the call's arguments), a
    restarted process that makes the same call adopts the task still waiting (or already decided)
    instead of asking again.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)
        name = func.__qualname__

        async def ask(m: HITLStateMachine, tid: str, text: str, args: dict[str, Any]) -> None:
            await m.start_task(tid, step=name, agent=agent)
            try:
                await m.request_approval(
                    tid,
                    text,
                    context=args,
                    options=options,
                    severity=severity,
                    action=Action.model_construct(name=name, args=args),
                    timeout=timeout,
                    default_decision=default_decision,
                    allowed_decisions=allowed_decisions,
                    assignees=assignees,
                    required_approvals=required_approvals,
                )
            except Exception as exc:
                await m.fail(tid, f"could not ask for approval: {exc}")
                raise

        async def gate(m: HITLStateMachine, bound: inspect.BoundArguments) -> tuple[str, Decision]:
            args = _call_args(bound)
            text = reason or f"{name} needs approval"
            if "{" in text:
                try:
                    text = text.format(**args)
                except (KeyError, IndexError, ValueError):
                    pass
            m._check_default_decision(default_decision)  # refused before a task exists
            tid = _task_id_for(func, task_id, bound)
            existing = await m.get_task(tid) if task_id is not None else None
            if existing is None or existing.state not in _STOPPED:
                await ask(m, tid, text, args)
            # else: the same call, restarted (the agent process was killed while it waited):
            # adopt the waiting or already-decided task instead of asking twice.
            try:
                decision = await m.wait_for_decision(tid, timeout)
            except DecisionTimeoutError:
                decision = await _expire(m, tid)
            await m.resume(tid)
            if not decision.approved:
                await m.fail(tid, str(ApprovalRejected(tid, decision)))
                raise ApprovalRejected(tid, decision)
            if decision.edited_args is not None:
                try:
                    _apply_edit(func, bound, decision.edited_args)
                except PayloadError as exc:
                    await m.fail(tid, str(exc))
                    raise
            return tid, decision

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*a: P.args, **kw: P.kwargs) -> Any:
                m = machine or default_machine()
                bound = signature.bind(*a, **kw)
                bound.apply_defaults()
                tid, _ = await gate(m, bound)
                try:
                    result = await func(*bound.args, **bound.kwargs)  # type: ignore[misc]
                except BaseException as exc:
                    await m.fail(tid, f"{type(exc).__name__}: {exc}")
                    raise
                await m.complete(tid, _result_for_record(result))
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*a: P.args, **kw: P.kwargs) -> R:
            m = machine or default_machine()
            bound = signature.bind(*a, **kw)
            bound.apply_defaults()
            tid, _ = m.sync.run(gate(m, bound))
            try:
                result = func(*bound.args, **bound.kwargs)
            except BaseException as exc:
                m.sync.fail(tid, f"{type(exc).__name__}: {exc}")
                raise
            m.sync.complete(tid, _result_for_record(result))
            return result

        return sync_wrapper

    return decorate


# -- @interruptible -----------------------------------------------------------------------------

_STOPPED = (TaskState.AWAITING_APPROVAL, TaskState.APPROVED, TaskState.REJECTED)


class Checkpointer:
    """Per-call state of an ``@interruptible`` function: notices a pause, waits, resumes.

    The machine keeps a flag current from the transitions themselves (``watch_pause``), so a
    checkpoint costs one ``Event.is_set()`` — no store read — until a person pauses the task.
    Sync code additionally re-reads the task at most every ``check_interval`` seconds, as a
    safety net should the flag's follower have fallen behind.
    """

    def __init__(self, machine: HITLStateMachine, task_id: str, check_interval: float) -> None:
        self.machine = machine
        self.task_id = task_id
        self.check_interval = check_interval
        self._paused: threading.Event | None = None
        self._last_look = time.monotonic()

    async def arm(self) -> None:
        self._paused = await self.machine.watch_pause(self.task_id)

    def disarm(self) -> None:
        self.machine.unwatch_pause(self.task_id)

    async def _handle_pause(self) -> None:
        decision = await self.machine.wait_for_decision(self.task_id)
        await self.machine.resume(self.task_id)
        if not decision.approved:
            raise ApprovalRejected(self.task_id, decision)

    async def check(self) -> None:
        if self._paused is not None and self._paused.is_set():
            await self._handle_pause()

    def check_sync(self, final: bool = False) -> None:
        paused = self._paused is not None and self._paused.is_set()
        now = time.monotonic()
        if not paused and (final or now - self._last_look >= self.check_interval):
            self._last_look = now
            task = self.machine.sync.get_task(self.task_id)
            paused = task is not None and task.state in _STOPPED
        if paused:
            self.machine.sync.run(self._handle_pause())


_current: contextvars.ContextVar[Checkpointer | None] = contextvars.ContextVar("hitl_checkpoint", default=None)


async def acheckpoint() -> None:
    """Inside an async ``@interruptible`` function: if a person paused this task, wait here.

    Continues when the pause is approved; raises ``ApprovalRejected`` when it is rejected
    (the task then fails as stopped). Outside an interruptible function it does nothing.
    """
    cp = _current.get()
    if cp is not None:
        await cp.check()


def checkpoint() -> None:
    """The sync twin of ``acheckpoint``, for sync ``@interruptible`` functions."""
    cp = _current.get()
    if cp is not None:
        cp.check_sync()


def interruptible(
    check_interval: float = 1.0,
    *,
    machine: HITLStateMachine | None = None,
    task_id: str | Callable[..., str] | None = None,
    agent: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function as a task a person can pause (``machine.pause``) at its checkpoints.

    Inside, call ``checkpoint()`` (sync) or ``await acheckpoint()`` (async) between steps. A pause
    is noticed at the next checkpoint, which waits — woken by the decision itself, not polling —
    and continues on approve, or raises ``ApprovalRejected`` on reject. The function's return is
    a checkpoint too: a pause that arrives after the last one still waits for its decision. The task completes with
    the function's return value or fails with its exception.
    """
    if check_interval <= 0:
        raise ValueError("check_interval must be positive")

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*a: P.args, **kw: P.kwargs) -> Any:
                m = machine or default_machine()
                bound = signature.bind(*a, **kw)
                tid = _task_id_for(func, task_id, bound)
                await m.start_task(tid, step=func.__qualname__, agent=agent)
                cp = Checkpointer(m, tid, check_interval)
                await cp.arm()
                token = _current.set(cp)
                try:
                    result = await func(*a, **kw)  # type: ignore[misc]
                    await cp.check()  # the end is a checkpoint too: a late pause is honoured
                except BaseException as exc:
                    await m.fail(tid, str(exc) if isinstance(exc, ApprovalRejected) else f"{type(exc).__name__}: {exc}")
                    raise
                finally:
                    _current.reset(token)
                    cp.disarm()
                await m.complete(tid, _result_for_record(result))
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def sync_wrapper(*a: P.args, **kw: P.kwargs) -> R:
            m = machine or default_machine()
            bound = signature.bind(*a, **kw)
            tid = _task_id_for(func, task_id, bound)
            m.sync.start_task(tid, step=func.__qualname__, agent=agent)
            cp = Checkpointer(m, tid, check_interval)
            m.sync.run(cp.arm())
            token = _current.set(cp)
            try:
                result = func(*a, **kw)
                cp.check_sync(final=True)  # the end is a checkpoint too: a late pause is honoured
            except BaseException as exc:
                m.sync.fail(tid, str(exc) if isinstance(exc, ApprovalRejected) else f"{type(exc).__name__}: {exc}")
                raise
            finally:
                _current.reset(token)
                cp.disarm()
            m.sync.complete(tid, _result_for_record(result))
            return result

        return sync_wrapper

    return decorate
