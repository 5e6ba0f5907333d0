"""The plugin manager and its typed facade: the rest of the code never spells ``pm.hook.x(...)``.

Every hook is called through pluggy's own caller (``pm.hook.<name>(...)``), so call order,
``tryfirst``/``trylast``, wrappers (``wrapper=True`` and old-style ``hookwrapper=True``) and
tracing are pluggy's. Pluggy is synchronous: an ``async def`` implementation returns a
coroutine, which the facade awaits (datasette's ``await_me_maybe``) in pluggy's call order —
after pluggy's call has returned, so a wrapper times only the synchronous part of a call.

Two kinds of hooks, two failure rules:

* observers (``hitl_transition``, ``hitl_approval_requested``, ``hitl_deadline_warning``): every
  implementation runs even if another raised; exceptions are logged and counted
  (``observer_errors``) and never undo the transition that was already committed. Pluggy stops
  a call at the first exception, so each observer implementation is guarded as it is registered
  (its function is wrapped to log and count instead of raising); a *wrapper* that raises ends the
  call, and is logged and counted the same way;
* policies (``hitl_assess``, ``hitl_auto_decide``, ``hitl_authorize``): fail closed — an
  implementation that raises makes the answer the safe one (critical, reject, refuse).
  ``hitl_assess`` implementations are guarded too, so one that raises makes the request critical
  while the others' answers (four eyes, deadlines) still count.

"Decide one thing" hooks (``hitl_auto_decide``, ``hitl_deadline_expired``) are not pluggy
``firstresult`` hooks: an async implementation's coroutine is not None, so it would win even when
it resolves to None. Every implementation is called; the facade awaits the answers in call order
and the first that is not None wins (coroutines after it are closed, never run).

Entry points in group ``hitl`` are loaded once per process; ``HITL_PLUGINS=a,b`` limits which,
``HITL_TRACE_PLUGINS=1`` logs every hook call (pluggy's tracing, on logger ``hitl.plugins``). A
plugin that fails to load stops the machine from starting, naming it: running without an
authorization plugin the user installed would silently fail open.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import HITLError, NotAuthorizedError
from .hookspecs import StoreFactory
from .models import (
    MACHINE_ACTOR_PREFIXES,
    MACHINE_SOURCES,
    Actor,
    Decision,
    DecisionType,
    Escalation,
    Event,
    InterruptPoint,
    Severity,
    TaskContext,
)

log = logging.getLogger("hitl.plugins")

_ENTRYPOINT_CACHE: dict[str, object] | None = None

#: Hooks whose implementations must all run, whatever one of them raises.
OBSERVER_HOOKS = ("hitl_transition", "hitl_approval_requested", "hitl_deadline_warning")
#: Marks a hook implementation's function as already guarded.
_GUARDED = "__hitl_guarded__"


async def await_me_maybe(value: Any) -> Any:
    """Accept a value, a callable or an awaitable (datasette's trick for a synchronous pluggy)."""
    if callable(value) and not isinstance(value, type):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


def entrypoint_plugins() -> dict[str, object]:
    """The installed plugins of entry-point group ``hitl`` (name -> loaded object), loaded once per
    process and limited by ``HITL_PLUGINS``; ``HITLError`` naming a plugin that fails to load."""
    global _ENTRYPOINT_CACHE
    if _ENTRYPOINT_CACHE is None:
        wanted = os.environ.get("HITL_PLUGINS")
        names = {n.strip() for n in wanted.split(",") if n.strip()} if wanted is not None else None
        loaded: dict[str, object] = {}
        for ep in entry_points(group=hookspecs.PROJECT):
            if names is not None and ep.name not in names:
                continue
            try:
                loaded[ep.name] = ep.load()
            except Exception as exc:
                raise HITLError(
                    f"hitl plugin {ep.name!r} ({ep.value}) failed to load: {exc}. Fix or uninstall "
                    "it, or leave it out with HITL_PLUGINS=<the plugins you want>"
                ) from exc
        _ENTRYPOINT_CACHE = loaded
    return _ENTRYPOINT_CACHE


_entrypoint_plugins = entrypoint_plugins  # the name the adapters' own tests use


def _tracing_enabled() -> bool:
    return os.environ.get("HITL_TRACE_PLUGINS", "").lower() not in ("", "0", "false", "no")


def trace_if_asked(pm: pluggy.PluginManager) -> bool:
    """With ``HITL_TRACE_PLUGINS`` set, log every hook call of ``pm`` on logger ``hitl.plugins``
    (to stderr unless the application configured a handler); whether it did."""
    if not _tracing_enabled():
        return False
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hitl.plugins: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    pm.trace.root.setwriter(lambda msg: log.debug("%s", msg.rstrip()))
    pm.enable_tracing()
    return True


class _Raised:
    """What a guarded ``hitl_assess`` implementation answers instead of raising."""

    __slots__ = ("error", "plugin")

    def __init__(self, error: Exception, plugin: str) -> None:
        self.error = error
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"<{self.plugin} raised {self.error!r}>"


class _Manager(pluggy.PluginManager):
    """pluggy's manager, telling the host whenever the set of implementations changes (so a
    plugin registered straight on ``pm`` is guarded and counted like any other)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__(hookspecs.PROJECT)
        self._on_change = on_change

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self._on_change()
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self._on_change()
        return removed


def _results(value: Any) -> list[Any]:
    # A hook call answers a list; a wrapper may have replaced it with a single value.
    return value if isinstance(value, list) else [value]


def _close_pending(results: list[Any]) -> None:
    for result in results:
        if inspect.iscoroutine(result):
            result.close()  # never awaited on purpose: an earlier answer won


class PluginHost:
    """One pluggy manager (per machine) and a typed method per hook."""

    def __init__(self, plugins: Iterable[object] = (), *, load_entrypoints: bool = True) -> None:
        self.observer_errors = 0
        self._ready = False
        # Per thread, while an observer hook is being called: the coroutines of its guarded async
        # implementations, so they run even if a wrapper raises and takes pluggy's results with it.
        self._calling = threading.local()
        self.pm = _Manager(self._refresh)
        self.pm.add_hookspecs(hookspecs)
        self._trace = trace_if_asked(self.pm)
        from .stores import builtin

        self.pm.register(builtin, name="hitl.builtin_stores")
        if load_entrypoints:
            for name, plugin in entrypoint_plugins().items():
                if self.pm.get_plugin(name) is None and not self.pm.is_registered(plugin):
                    self.pm.register(plugin, name=name)
        for plugin in plugins:
            self.pm.register(plugin)
        self._ready = True
        self._refresh()

    # -- registration ---------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)

    def _refresh(self) -> None:
        if not self._ready:
            return  # the constructor refreshes once, after its registrations
        hook = self.pm.hook
        for name in OBSERVER_HOOKS:
            self._guard(name, self._guard_observer)
        self._guard("hitl_assess", self._guard_assess)
        self.has_transition_observers = bool(hook.hitl_transition.get_hookimpls())
        self.has_request_observers = bool(hook.hitl_approval_requested.get_hookimpls())
        self.has_policies = bool(hook.hitl_assess.get_hookimpls() or hook.hitl_auto_decide.get_hookimpls())
        self.has_authorizers = bool(hook.hitl_authorize.get_hookimpls())

    def _guard(self, name: str, guard: Callable[[pluggy.HookImpl, str], Callable[..., Any]]) -> None:
        for impl in getattr(self.pm.hook, name).get_hookimpls():
            if impl.wrapper or impl.hookwrapper or getattr(impl.function, _GUARDED, False):
                continue
            guarded = guard(impl, name)
            setattr(guarded, _GUARDED, True)
            # pluggy calls ``impl.function`` with the arguments it computed from the original
            # signature; swapping the function keeps pluggy's order, wrappers and tracing.
            impl.function = guarded  # type: ignore[misc]

    # -- observers ------------------------------------------------------------------------

    def _observer_failed(self, plugin: str, name: str, exc: BaseException) -> None:
        errors = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
        for error in errors:
            self.observer_errors += 1
            log.error("hitl observer %s.%s raised; the transition stands: %r", plugin, name, error, exc_info=error)

    def _guard_observer(self, impl: pluggy.HookImpl, name: str) -> Callable[..., Any]:
        function, plugin = impl.function, impl.plugin_name

        async def awaited(result: Any) -> None:
            try:
                await result
            except Exception as exc:
                self._observer_failed(plugin, name, exc)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                self._observer_failed(plugin, name, exc)
                return None
            if not inspect.isawaitable(result):
                return result
            coroutine = awaited(result)
            pending = getattr(self._calling, "pending", None)
            if pending is not None:
                pending.append(coroutine)
            return coroutine

        return guarded

    async def _observe(self, name: str, kwargs: dict[str, Any]) -> None:
        outer = getattr(self._calling, "pending", None)
        self._calling.pending = pending = []
        results: list[Any] = []
        try:
            results = _results(getattr(self.pm.hook, name)(**kwargs))
        except Exception as exc:  # the implementations are guarded: a wrapper raised
            self._observer_failed("a wrapper", name, exc)
        finally:
            self._calling.pending = outer
        for coroutine in pending:  # guarded: they log and count their own errors
            await coroutine
        for result in results:
            if inspect.isawaitable(result) and not any(result is c for c in pending):
                try:
                    await result
                except Exception as exc:  # a wrapper put an unguarded awaitable in the results
                    self._observer_failed("a wrapper", name, exc)

    async def transition(self, event: Event, task: TaskContext) -> None:
        await self._observe("hitl_transition", {"event": event, "task": task})

    async def approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        await self._observe("hitl_approval_requested", {"task": task, "interrupt": interrupt})

    async def deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
        await self._observe(
            "hitl_deadline_warning", {"task": task, "interrupt": interrupt, "seconds_left": seconds_left}
        )

    # -- policies -------------------------------------------------------------------------

    @staticmethod
    def _guard_assess(impl: pluggy.HookImpl, name: str) -> Callable[..., Any]:
        function, plugin = impl.function, impl.plugin_name

        async def awaited(result: Any) -> Any:
            try:
                return await result
            except Exception as exc:
                return _Raised(exc, plugin)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                return _Raised(exc, plugin)
            return awaited(result) if inspect.isawaitable(result) else result

        return guarded

    async def assess(self, task: TaskContext, interrupt: InterruptPoint) -> InterruptPoint:
        """The interrupt after every ``hitl_assess`` answer, asked again while the severity rises.

        Each assessor sees the severity as it was when asked; one that asks for four eyes at
        ``critical`` must see a severity another assessor (or a crash) raised to critical, or a
        critical request would go through with one approval. Severity only rises, so this ends
        after at most one round per severity.
        """
        for _ in Severity:
            assessed = await self._assess_once(task, interrupt)
            if assessed.severity is interrupt.severity:
                return assessed
            interrupt = assessed
        return interrupt

    async def _assess_once(self, task: TaskContext, interrupt: InterruptPoint) -> InterruptPoint:
        severity = interrupt.severity
        deadline: datetime | None = interrupt.deadline
        required = interrupt.required_approvals
        try:
            answers = _results(self.pm.hook.hitl_assess(task=task, interrupt=interrupt))
        except Exception as exc:  # the implementations are guarded: a wrapper raised
            answers = [_Raised(exc, "a wrapper")]
        for pending in answers:
            try:
                answer = await await_me_maybe(pending)
            except Exception as exc:
                answer = _Raised(exc, "a wrapper")
            if isinstance(answer, _Raised):
                log.error(
                    "hitl_assess in %s raised; failing closed (critical): %r",
                    answer.plugin,
                    answer.error,
                    exc_info=answer.error,
                )
                severity = Severity.CRITICAL
                continue
            if not answer:
                continue
            if "severity" in answer:
                raised = Severity(str(answer["severity"]).lower())
                if raised.rank > severity.rank:
                    severity = raised
            if answer.get("deadline") is not None:
                new_deadline: datetime = answer["deadline"]
                if deadline is None or new_deadline < deadline:
                    deadline = new_deadline
            if answer.get("required_approvals") is not None:
                required = max(required, min(int(answer["required_approvals"]), 2))
        if (
            severity is interrupt.severity
            and deadline == interrupt.deadline
            and required == interrupt.required_approvals
        ):
            return interrupt
        return interrupt.model_copy(update={"severity": severity, "deadline": deadline, "required_approvals": required})

    async def _first_answer(self, name: str, kwargs: dict[str, Any]) -> Any:
        """The first answer that is not None, in pluggy's call order, awaiting async ones."""
        results = _results(getattr(self.pm.hook, name)(**kwargs))
        try:
            for index, result in enumerate(results):
                results[index] = None
                answer = await await_me_maybe(result)
                if answer is not None:
                    return answer
            return None
        finally:
            _close_pending(results)

    async def auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
        """A policy's decision, recorded as ``type="policy"`` by a ``policy:…`` actor; None for a person."""
        try:
            decision = await self._first_answer("hitl_auto_decide", {"task": task, "interrupt": interrupt})
            if decision is not None and not isinstance(decision, Decision):
                raise HITLError(f"hitl_auto_decide answered {type(decision).__name__}, not a Decision")
        except Exception as exc:
            log.error("hitl_auto_decide raised; failing closed (reject): %r", exc, exc_info=exc)
            return Decision(
                type=DecisionType.POLICY,
                outcome="reject",
                actor=Actor(id="policy:error", source="policy"),
                message=f"a policy raised {type(exc).__name__}: {exc}",
                interrupt_id=interrupt.interrupt_id,
            )
        if decision is None:
            return None
        return _as_machine_decision(decision, DecisionType.POLICY, "policy")

    async def authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> None:
        kwargs = {"actor": actor, "task": task, "decision": decision}
        results: list[Any] = []
        try:
            results = _results(self.pm.hook.hitl_authorize(**kwargs))
            for index, result in enumerate(results):
                results[index] = None
                if await await_me_maybe(result) is False:
                    raise NotAuthorizedError(task.task_id, actor.id, "refused by an authorization plugin")
        except NotAuthorizedError:
            raise
        except Exception as exc:
            raise NotAuthorizedError(task.task_id, actor.id, f"an authorization plugin refused ({exc})") from exc
        finally:
            _close_pending(results)

    async def deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | Escalation | None:
        """A plugin's answer at a deadline: a decision (recorded as ``type="timeout"``), an
        escalation for the machine to apply, or None (apply the default)."""
        decision = await self._first_answer("hitl_deadline_expired", {"task": task, "interrupt": interrupt})
        if decision is None or isinstance(decision, Escalation):
            return decision
        if not isinstance(decision, Decision):
            raise HITLError(
                f"hitl_deadline_expired answered {type(decision).__name__}, not a Decision or an Escalation"
            )
        return _as_machine_decision(decision, DecisionType.TIMEOUT, "timeout")

    # -- set-up ---------------------------------------------------------------------------

    def store_factories(self) -> dict[str, StoreFactory]:
        factories: dict[str, StoreFactory] = {}

        def register(scheme: str, factory: StoreFactory) -> None:
            # pluggy calls the last-registered plugin first: the first registration of a scheme
            # wins, so a plugin registered after the built-ins overrides them.
            factories.setdefault(scheme.lower(), factory)

        _close_pending(_results(self.pm.hook.hitl_register_stores(register=register)))
        return factories


def _as_machine_decision(decision: Decision, kind: DecisionType, source: str) -> Decision:
    """A plugin's answer as the machine records it: its type ``kind`` with the outcome it applies,
    by an actor that can't be mistaken for a person (``policy:<name>``, ``timeout:<name>``)."""
    actor = decision.actor
    if not actor.id.startswith(MACHINE_ACTOR_PREFIXES):
        actor = Actor(id=f"{source}:{actor.id}", source=source)
    elif actor.source not in MACHINE_SOURCES:
        actor = Actor(id=actor.id, source=source)
    outcome = "approve" if decision.approved else "reject"
    if decision.type is kind and decision.outcome == outcome and actor is decision.actor:
        return decision
    return decision.model_copy(update={"type": kind, "outcome": outcome, "actor": actor})
