"""``SmolagentsApprovals``: a person decides each smolagents tool call or code blob before it runs.

Where it hooks in (smolagents 1.26, ``agents.py``), and why there:

* ``ToolCallingAgent.execute_tool_call(tool_name, arguments)`` — the one call every tool and
  managed-agent call of a step goes through, on the thread that runs it (one thread per call when
  a step has several), with the arguments the model gave; what it returns becomes the call's
  observation. The guard replaces it on the agent instance: it asks, blocks until decided, then
  runs the original with the original or edited arguments, or returns the rejection's reason as
  the observation without running anything. ``process_tool_calls`` is wrapped only to learn each
  call's id and step number (it hands ``execute_tool_call`` the very arguments object of the
  model's call, which is how the two are matched).
* ``CodeAgent.python_executor`` — every code blob goes through ``python_executor(code)`` after
  smolagents parsed and fixed it, whatever the executor (local or a remote sandbox). The guard
  wraps the executor: approve executes the code, edit executes the edited code, reject executes
  nothing and returns the reason as the step's execution logs.

Not ``step_callbacks``: smolagents calls them once a step has finished, after its tools ran. Not
the ``Tool`` objects: a ``CodeAgent`` calls them from inside its code (one question per code blob
is what a person can judge), and tools may be shared between agents.

smolagents has no persistent pause (``agent.run`` is one in-memory loop), so the guard blocks the
agent's thread until a decision arrives, which any process on the same store may make. Each call
is its own task, ``<run_id>:<step>:<call id>-<random>`` (the random part keeps a second
``agent.run`` — smolagents restarts its step numbers and call ids — from finding the first run's
decisions): asked, waited for, claimed (``Adapter.ask_and_claim``) and COMPLETED once the call ran.
When hitl cannot ask (args over the payload limit, args that are not JSON, the store down), the
task is FAILED, nothing runs and the ``HITLError`` stops ``agent.run``: a guard that cannot ask a
person must not let the call through.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from smolagents import CodeAgent, MultiStepAgent, ToolCallingAgent
from smolagents.local_python_executor import CodeOutput, PythonExecutor

from hitl_core import Action, Decision, DecisionType, HITLError, HITLStateMachine, Severity
from hitl_core.adapters import Adapter, Request, tool_severity
from hitl_core.integrations.blocking import withdraw

from . import CAPABILITIES

#: The tool smolagents' agents end a run with: it only returns the answer, so it is not asked about.
FINAL_ANSWER = "final_answer"
#: The key of a non-JSON (string) tool argument in the task's args.
RAW_ARGUMENTS = "_arguments"
#: Longest observation kept in a task's result (the model gets it whole).
RESULT_CHARS = 2000


class SmolagentsApprovals(Adapter):
    """Guards smolagents agents: ``guard(agent)`` makes every tool call or code blob wait for a person.

    ``tools`` limits a ``ToolCallingAgent``'s guard to those tool (or managed agent) names; by
    default every call but ``final_answer`` is asked about. ``severity`` is a level or a callable
    ``severity(tool_name, args)`` (``"python_interpreter"`` and ``{"code": …}`` for a code blob);
    ``timeout`` (seconds) lets the interrupt's default — reject — apply as a timeout. ``run_id``
    groups the tasks (default: a new id per adapter).
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        tools: Iterable[str] | None = None,
        severity: Severity | str | Callable[[str, dict[str, Any]], Severity | str] = Severity.MEDIUM,
        timeout: float | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(machine, severity=tool_severity(severity), timeout=timeout)
        self.tools = frozenset(tools) if tools is not None else None
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        # id(arguments) -> (step number, call id): process_tool_calls hands execute_tool_call the
        # same arguments object the model's call holds, which is how a call finds its id.
        self._calls: dict[int, tuple[int, str]] = {}

    # -- installing -----------------------------------------------------------------------------

    def guard(self, agent: MultiStepAgent) -> MultiStepAgent:
        """Make ``agent`` (a ``ToolCallingAgent`` or ``CodeAgent``) ask before each call; returns it.

        Raises ``HITLError`` for another kind of agent or one that is guarded already.
        """
        if getattr(agent, "_hitl_guard", None) is not None:
            raise HITLError(f"smolagents agent {agent.name or type(agent).__name__!r} is guarded already")
        if isinstance(agent, CodeAgent):
            agent.python_executor = _GuardedExecutor(self, agent, agent.python_executor)
        elif isinstance(agent, ToolCallingAgent):
            original_process = agent.process_tool_calls
            original_execute = agent.execute_tool_call

            def process_tool_calls(chat_message: Any, memory_step: Any) -> Any:
                with self._lock:
                    for call in chat_message.tool_calls or ():
                        self._calls[id(call.function.arguments)] = (memory_step.step_number, str(call.id))
                try:
                    yield from original_process(chat_message, memory_step)
                finally:
                    with self._lock:
                        for call in chat_message.tool_calls or ():
                            self._calls.pop(id(call.function.arguments), None)

            def execute_tool_call(tool_name: str, arguments: dict[str, Any] | str) -> Any:
                return self._tool_call(agent, original_execute, tool_name, arguments)

            agent.process_tool_calls = process_tool_calls  # type: ignore[method-assign]
            agent.execute_tool_call = execute_tool_call  # type: ignore[method-assign]
        else:
            raise HITLError(
                f"cannot guard a {type(agent).__name__}: SmolagentsApprovals guards a ToolCallingAgent or a CodeAgent"
            )
        agent._hitl_guard = self  # type: ignore[attr-defined]
        return agent

    def unguard(self, agent: MultiStepAgent) -> None:
        """Take the guard off ``agent``: its calls run unasked again."""
        if getattr(agent, "_hitl_guard", None) is not self:
            raise HITLError("this agent is not guarded by this SmolagentsApprovals")
        if isinstance(agent, CodeAgent) and isinstance(agent.python_executor, _GuardedExecutor):
            agent.python_executor = agent.python_executor.inner
        else:
            del agent.process_tool_calls
            del agent.execute_tool_call
        del agent._hitl_guard

    # -- asking ---------------------------------------------------------------------------------

    def _decide(
        self, agent: MultiStepAgent, tool: str, args: dict[str, Any], step: int, call_id: str
    ) -> tuple[str, Decision]:
        """Ask about one call and block (this thread) until it is decided and claimed."""
        agent_name = agent.name or type(agent).__name__
        task_id = f"{self.run_id}:{step}:{call_id}-{uuid.uuid4().hex[:6]}"
        what = "execute code" if tool == CodeExecution.TOOL else f"call {tool}"
        request = Request(
            reason=f"{agent_name} wants to {what}",
            context={"tool": tool, "call_id": call_id, "step": step, "agent": agent_name},
            allowed_decisions=CAPABILITIES.decisions,
            action=Action(name=tool, args=args),
            step=f"approve {tool}",
            agent=agent_name,
        )
        try:
            return task_id, self.run_sync(self.ask_and_claim(task_id, self.run_id, request))
        except (KeyboardInterrupt, SystemExit):
            # The agent's process is going away while a person decides: a decision could reach
            # nobody, so the request is withdrawn (recorded as FAILED, never decided) on the way out.
            with contextlib.suppress(Exception):
                self.machine.sync.run(withdraw(self, task_id, "the smolagents run was interrupted"), timeout=10)
            raise

    def _finish(self, task_id: str, decision: Decision, observation: Any, error: str | None = None) -> None:
        result: dict[str, Any] = {"decision": decision.effective_type.value}
        if error is not None:
            result["error"] = error[:RESULT_CHARS]
        else:
            result["observation"] = str(observation)[:RESULT_CHARS]
        self.run_sync(self.delivered([task_id], result))

    def _refuse(self, task_id: str, error: str) -> HITLError:
        """A decision that cannot be carried back (checked after the claim): fail the task, run nothing."""
        self.run_sync(self._fail_quietly([task_id], error))
        return HITLError(f"task {task_id!r}: {error}")

    # -- ToolCallingAgent -----------------------------------------------------------------------

    def _tool_call(
        self,
        agent: ToolCallingAgent,
        execute: Callable[[str, Any], Any],
        tool: str,
        arguments: dict[str, Any] | str,
    ) -> Any:
        if tool == FINAL_ANSWER or (self.tools is not None and tool not in self.tools):
            return execute(tool, arguments)
        with self._lock:
            step, call_id = self._calls.get(id(arguments), (getattr(agent, "step_number", 0), "call"))
        args = arguments if isinstance(arguments, dict) else {RAW_ARGUMENTS: arguments}
        task_id, decision = self._decide(agent, tool, args, step, call_id)
        if not decision.approved:
            observation = decision.rejection_text()
            self._finish(task_id, decision, observation)
            return observation
        if decision.effective_type is DecisionType.EDIT:
            edited = decision.edited_args if decision.edited_args is not None else args
            if not isinstance(arguments, dict) and set(edited) == {RAW_ARGUMENTS}:
                arguments = edited[RAW_ARGUMENTS]
            else:
                arguments = dict(edited)
        try:
            output = execute(tool, arguments)
        except Exception as exc:
            # smolagents turns the tool's error into what the model reads next; the decision itself
            # was carried out, so the task completes and keeps the error.
            self._finish(task_id, decision, None, f"{type(exc).__name__}: {exc}")
            raise
        self._finish(task_id, decision, output)
        return output


class CodeExecution:
    """How a code blob is shown to a person: the tool name smolagents gives it, args ``{"code": …}``."""

    TOOL = "python_interpreter"


class _GuardedExecutor(PythonExecutor):
    """A ``CodeAgent``'s executor that asks before running each code blob; everything else is the inner one's."""

    def __init__(self, approvals: SmolagentsApprovals, agent: CodeAgent, inner: PythonExecutor) -> None:
        self.approvals = approvals
        self.agent = agent
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # state, cleanup, … : whatever smolagents or a user reads from the executor it wraps
        return getattr(self.inner, name)

    def send_tools(self, tools: dict[str, Any]) -> None:
        self.inner.send_tools(tools)

    def send_variables(self, variables: dict[str, Any]) -> None:
        self.inner.send_variables(variables)

    def __call__(self, code_action: str) -> CodeOutput:
        approvals = self.approvals
        step = getattr(self.agent, "step_number", 0)
        task_id, decision = approvals._decide(self.agent, CodeExecution.TOOL, {"code": code_action}, step, "code")
        if not decision.approved:
            text = f"{decision.rejection_text('Code execution')}\nThe code did not run."
            approvals._finish(task_id, decision, text)
            return CodeOutput(output=None, logs=text + "\n", is_final_answer=False)
        note = ""
        if decision.effective_type is DecisionType.EDIT:
            code = (decision.edited_args or {}).get("code")
            if not isinstance(code, str):
                raise approvals._refuse(
                    task_id,
                    f"the edit must give the code to run as a string under 'code' (got {json.dumps(decision.edited_args)[:200]}); nothing ran",
                )
            if code != code_action:
                note = f"(Note: {decision.actor.id} edited the code before it ran; it ran:\n{code}\n)\n"
            code_action = code
        try:
            output = self.inner(code_action)
        except Exception as exc:
            approvals._finish(task_id, decision, None, f"{type(exc).__name__}: {exc}")
            raise
        approvals._finish(task_id, decision, f"{output.logs}{output.output!r}")
        if note:
            output = CodeOutput(output=output.output, logs=note + output.logs, is_final_answer=output.is_final_answer)
        return output
