"""The plugin manager and its typed facade: the rest of the code never spells ``pm.hook.x(...)``.

Two kinds of hooks, two failure rules:

* observers (``hitl_transition``, ``hitl_approval_requested``, ``hitl_deadline_warning``): every implementation runs even
  if another raised; exceptions are logged and counted (``observer_errors``) and never undo the
  transition that was already committed;
* policies (``hitl_assess``, ``hitl_auto_decide``, ``hitl_authorize``): fail closed — an
  implementation that raises makes the answer the safe one (critical, reject, refuse).

Entry points in group ``hitl`` are loaded once per process; ``HITL_PLUGINS=a,b`` limits which,
``HITL_TRACE_PLUGINS=1`` logs every hook call. A plugin that fails to load stops the machine
from starting, naming it: running without an authorization plugin the user installed would
silently fail open.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import HITLError, NotAuthorizedError
from .hookspecs import StoreFactory
from .models import Actor, Decision, DecisionType, Event, InterruptPoint, Severity, TaskContext

log = logging.getLogger("hitl.plugins")

_ENTRYPOINT_CACHE: dict[str, object] | None = None


async def await_me_maybe(value: Any) -> Any:
    """Accept a value, a callable or an awaitable (datasette's trick for a synchronous pluggy)."""
    if callable(value) and not isinstance(value, type):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


def _entrypoint_plugins() -> dict[str, object]:
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


def _tracing_enabled() -> bool:
    return os.environ.get("HITL_TRACE_PLUGINS", "").lower() not in ("", "0", "false", "no")


class PluginHost:
    """One pluggy manager (per machine) and a typed method per hook."""

    def __init__(self, plugins: Iterable[object] = (), *, load_entrypoints: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.observer_errors = 0
        self._trace = _tracing_enabled()
        if self._trace:
            if not log.handlers:
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("hitl.plugins: %(message)s"))
                log.addHandler(handler)
            log.setLevel(logging.DEBUG)
            self.pm.trace.root.setwriter(lambda msg: log.debug("%s", msg.rstrip()))
            self.pm.enable_tracing()
        from .stores import builtin

        self.pm.register(builtin, name="hitl.builtin_stores")
        if load_entrypoints:
            for name, plugin in _entrypoint_plugins().items():
                if self.pm.get_plugin(name) is None and not self.pm.is_registered(plugin):
                    self.pm.register(plugin, name=name)
        for plugin in plugins:
            self.register(plugin)
        self._refresh()

    # -- registration ---------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)
        self._refresh()

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)
        self._refresh()

    def _refresh(self) -> None:
        hook = self.pm.hook
        self.has_transition_observers = bool(hook.hitl_transition.get_hookimpls())
        self.has_request_observers = bool(hook.hitl_approval_requested.get_hookimpls())
        self.has_policies = bool(hook.hitl_assess.get_hookimpls() or hook.hitl_auto_decide.get_hookimpls())
        self.has_authorizers = bool(hook.hitl_authorize.get_hookimpls())

    def _impls(self, name: str) -> list[pluggy.HookImpl]:
        # pluggy returns them in registration order; calls go last-registered first.
        return list(reversed(getattr(self.pm.hook, name).get_hookimpls()))

    @staticmethod
    def _call(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        return impl.function(*[kwargs[a] for a in impl.argnames])

    # -- observers ------------------------------------------------------------------------

    async def _observe(self, name: str, kwargs: dict[str, Any]) -> None:
        for impl in self._impls(name):
            if self._trace:
                log.debug("%s -> %s", name, impl.plugin_name)
            try:
                result = self._call(impl, kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                errors = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
                for error in errors:
                    self.observer_errors += 1
                    log.error(
                        "hitl observer %s.%s raised; the transition stands: %r",
                        impl.plugin_name,
                        name,
                        error,
                        exc_info=error,
                    )

    async def transition(self, event: Event, task: TaskContext) -> None:
        await self._observe("hitl_transition", {"event": event, "task": task})

    async def approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        await self._observe("hitl_approval_requested", {"task": task, "interrupt": interrupt})

    async def deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
        await self._observe(
            "hitl_deadline_warning", {"task": task, "interrupt": interrupt, "seconds_left": seconds_left}
        )

    # -- policies -------------------------------------------------------------------------

    async def assess(self, task: TaskContext, interrupt: InterruptPoint) -> InterruptPoint:
        kwargs = {"task": task, "interrupt": interrupt}
        severity = interrupt.severity
        deadline: datetime | None = interrupt.deadline
        required = interrupt.required_approvals
        for impl in self._impls("hitl_assess"):
            try:
                answer = await await_me_maybe(self._call(impl, kwargs))
            except Exception as exc:
                log.error(
                    "hitl_assess in %s raised; failing closed (critical): %r", impl.plugin_name, exc, exc_info=exc
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

    async def _first_decision(self, name: str, kwargs: dict[str, Any]) -> tuple[Decision | None, str]:
        for impl in self._impls(name):
            answer = await await_me_maybe(self._call(impl, kwargs))
            if answer is not None:
                return answer, impl.plugin_name
        return None, ""

    async def auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
        try:
            decision, plugin = await self._first_decision("hitl_auto_decide", {"task": task, "interrupt": interrupt})
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
        if not isinstance(decision, Decision):
            raise HITLError(f"hitl_auto_decide in {plugin} returned {type(decision).__name__}, not a Decision")
        if decision.type is not DecisionType.POLICY:
            decision = decision.model_copy(
                update={"type": DecisionType.POLICY, "outcome": "approve" if decision.approved else "reject"}
            )
        if decision.outcome is None:
            decision = decision.model_copy(update={"outcome": "reject"})
        return decision

    async def authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> None:
        kwargs = {"actor": actor, "task": task, "decision": decision}
        for impl in self._impls("hitl_authorize"):
            try:
                answer = await await_me_maybe(self._call(impl, kwargs))
            except NotAuthorizedError:
                raise
            except Exception as exc:
                raise NotAuthorizedError(task.task_id, actor.id, f"{impl.plugin_name} refused ({exc})") from exc
            if answer is False:
                raise NotAuthorizedError(task.task_id, actor.id, f"refused by {impl.plugin_name}")

    async def deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
        decision, _ = await self._first_decision("hitl_deadline_expired", {"task": task, "interrupt": interrupt})
        return decision

    # -- set-up ---------------------------------------------------------------------------

    def store_factories(self) -> dict[str, StoreFactory]:
        factories: dict[str, StoreFactory] = {}

        def register(scheme: str, factory: StoreFactory) -> None:
            factories[scheme.lower()] = factory

        # Last-registered implementations run first; run them in registration order instead so
        # that a plugin registered after the built-ins overrides them.
        for impl in reversed(self._impls("hitl_register_stores")):
            self._call(impl, {"register": register})
        return factories
