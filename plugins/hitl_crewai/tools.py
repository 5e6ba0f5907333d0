"""``ToolApprovals``: CrewAI's before/after tool-call hooks, deciding through hitl.

CrewAI calls the before hook on the thread that runs the tool (one thread per call when a turn
has several: CrewAI runs native tool calls in parallel), so the hook simply blocks on the
machine's thread-safe synchronous facade until a decision arrives — from the console, another
process on the same store, or a deadline.

What each decision does to the call:

* approve — the call runs as the model made it;
* edit — ``tool_input`` is changed in place (CrewAI reads that same dict), the call runs, and the
  model is told that a person changed the arguments;
* reject — the hook returns False, CrewAI skips the tool and would hand the model a fixed
  "Tool execution blocked by hook" text; the after hook replaces it with who refused and why;
* respond — the tool is skipped and the person's answer becomes its result.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from crewai.hooks import (
    ToolCallHookContext,
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)

from hitl_core import Action, Decision, DecisionType, HITLStateMachine, Severity
from hitl_core.adapters import Adapter, Request
from hitl_core.text import hitl_logger

from . import CAPABILITIES, TOOL_DECISIONS

log = hitl_logger("hitl.crewai")

#: The text CrewAI gives the model for a call a before hook blocked (crewai 1.15).
BLOCKED_PREFIX = "Tool execution blocked by hook"


class CrewAIApprovals(Adapter):
    """The shared lifecycle for CrewAI's three waits: each blocks the crew's own thread until decided."""

    capabilities = CAPABILITIES


class ToolApprovals:
    """Asks hitl before CrewAI runs a tool. Use as a context manager, or ``install``/``uninstall``.

    ``tools`` limits it to those tool names (default: every tool). ``severity`` is a level or a
    callable ``severity(tool_name, args)``; ``timeout`` (seconds) lets the interrupt's default —
    reject — apply as a timeout. ``run_id`` groups the tasks (default: the crew's id).
    CrewAI's hooks are process-global, so an installed instance sees every crew in the process.
    """

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        tools: Iterable[str] | None = None,
        severity: Severity | str | Callable[[str, dict[str, Any]], Any] = Severity.MEDIUM,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> None:
        self.machine = machine
        self.tools = frozenset(tools) if tools is not None else None
        self.severity = severity
        self.timeout = timeout
        self.run_id = run_id
        self._lifecycle = CrewAIApprovals(machine, timeout=timeout)
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        # id(tool_input) -> (task id, decision): CrewAI hands the before and after hooks the very
        # same tool_input dict, which is how the after hook finds the call's decision.
        self._decided: dict[int, tuple[str, Decision]] = {}
        self._failed: dict[int, str] = {}

    # -- installing -----------------------------------------------------------------------------

    def install(self) -> ToolApprovals:
        register_before_tool_call_hook(self.before_tool_call)
        register_after_tool_call_hook(self.after_tool_call)
        return self

    def uninstall(self) -> None:
        unregister_before_tool_call_hook(self.before_tool_call)
        unregister_after_tool_call_hook(self.after_tool_call)

    def __enter__(self) -> ToolApprovals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- the hooks ------------------------------------------------------------------------------

    def before_tool_call(self, context: ToolCallHookContext) -> bool | None:
        """Block until decided; False skips the call (reject, respond, or no decision to be had).

        Fails closed: CrewAI swallows a hook's exception and runs the tool anyway, so any error
        while asking (store unreachable, payload refused, …) blocks the call instead, and the
        model is told why.
        """
        tool = context.tool_name
        if self.tools is not None and tool not in self.tools:
            return None
        try:
            return self._ask(context, tool)
        except Exception as exc:
            log.exception("hitl could not ask about %s; the call is blocked", tool)
            with self._lock:
                self._failed[id(context.tool_input)] = (
                    f"Tool call blocked: hitl could not ask a person for approval ({type(exc).__name__}: {exc})"
                )
            return False

    def _ask(self, context: ToolCallHookContext, tool: str) -> bool | None:
        args = dict(context.tool_input)
        agent = getattr(context.agent, "role", None) or "agent"
        crew_id = getattr(context.crew, "id", None)
        run_id = self.run_id or (str(crew_id) if crew_id is not None else uuid.uuid4().hex[:12])
        task_description = getattr(context.task, "description", None)
        with self._lock:
            number = next(self._numbers)
        task_id = f"{run_id}:{tool}-{number}-{uuid.uuid4().hex[:6]}"
        request = Request(
            reason=f"{agent} wants to call {tool}",
            context={"tool": tool, "agent": agent, "task": task_description},
            allowed_decisions=TOOL_DECISIONS,
            action=Action(name=tool, args=args),
            step=f"approve {tool}",
            severity=self.severity(tool, args) if callable(self.severity) else self.severity,
            agent=agent,
        )
        decision = self._lifecycle.run_sync(self._lifecycle.ask_and_claim(task_id, run_id, request))
        with self._lock:
            self._decided[id(context.tool_input)] = (task_id, decision)
        if decision.type is DecisionType.EDIT and decision.edited_args is not None:
            # In place: CrewAI calls the tool with this same dict (replacing it would do nothing).
            context.tool_input.clear()
            context.tool_input.update(decision.edited_args)
            return None
        if decision.type is DecisionType.RESPOND:
            return False
        return None if decision.approved else False

    def after_tool_call(self, context: ToolCallHookContext) -> str | None:
        """Say what the person decided in the result the model reads; close the call's task."""
        with self._lock:
            entry = self._decided.pop(id(context.tool_input), None)
            failure = self._failed.pop(id(context.tool_input), None)
        if failure is not None:
            return failure
        if entry is None:
            return None
        task_id, decision = entry
        result = context.tool_result
        blocked = isinstance(result, str) and result.startswith(BLOCKED_PREFIX)
        replaced: str | None = None
        if decision.type is DecisionType.RESPOND and blocked:
            replaced = decision.response if isinstance(decision.response, str) else json.dumps(decision.response)
        elif not decision.approved and blocked:
            replaced = decision.rejection_text()
        elif decision.type is DecisionType.EDIT:
            replaced = (
                f"{result}\n(Note: {decision.actor.id} edited the arguments before the call: "
                f"{json.dumps(decision.edited_args, sort_keys=True)})"
            )
        output = replaced if replaced is not None else result
        try:
            self._lifecycle.run_sync(
                self._lifecycle.delivered([task_id], {"decision": decision.type.value, "output": output})
            )
        except Exception:
            # The model must still read the decision: CrewAI would drop this hook's result on a raise.
            log.exception("hitl could not record the outcome of %s", task_id)
        return replaced
