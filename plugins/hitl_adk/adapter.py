"""``AdkApprovals``: Google ADK runs whose tool confirmations are decided through hitl.

Tasks. Every pending ``adk_request_confirmation`` call of a session becomes
``adk:<session_id>:<confirmation call id>`` with ``framework="adk"``, ``run_id=<session_id>`` and
``parent_id="adk:<session_id>"`` (the run's own task, RUNNING until the run ends): the
confirmations of one pause are siblings. ADK generates the confirmation call's id once and keeps
it in the session, so asking about the same pause again — here or in another process — finds the
same tasks (idempotent). The interrupt names the tool the model called and its args (what a
person approves is exactly what would run) and allows approve / edit / reject.

Nothing but ids rides in the tasks' metadata: the paused run is ADK's session, in ADK's session
service. A process with the same agent, a persistent session service (``DatabaseSessionService``)
and the hitl store continues it with ``resume(user_id, session_id)``.

Decisions go back as the ``adk_request_confirmation`` function responses, one user message for the
whole pause (ADK resolves every confirmation of the last user event together):
``ToolConfirmation(confirmed=approved, payload={"hitl": …})``. ``ConfirmationPlugin`` (a Runner
plugin; ``AdkApprovals`` refuses a Runner without it) reads that payload before the tool runs: an
edit's args replace the model's, and a rejection answers the call with the person's reason instead
of ADK's fixed ``"This tool call is rejected."``.

Life of a task (``hitl_core.adapters.Adapter``): asked, decided, claimed through the store's
compare-and-set just before the message is sent (two processes never both answer a pause),
COMPLETED once ADK took it — or FAILED with the error and asked again at once as ``…~1``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.adk.events.event import Event
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import Runner
from google.adk.sessions.session import Session
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from hitl_core import (
    Action,
    ConflictError,
    Decision,
    DecisionType,
    HITLError,
    HITLStateMachine,
    InvalidTransitionError,
    Severity,
    TaskNotFoundError,
    TaskState,
)
from hitl_core.adapters import Adapter, Request
from hitl_core.canonical import checked_copy, fingerprint
from hitl_core.glossary import retired_names

from . import CAPABILITIES, FRAMEWORK

#: The function ADK calls to ask the user for a ``ToolConfirmation``.
REQUEST_CONFIRMATION = "adk_request_confirmation"
#: Key in a task's metadata, and in a ``ToolConfirmation.payload``, that this adapter owns.
META_KEY = "adk"
PAYLOAD_KEY = "hitl"
#: The plugin's name on the Runner (ADK refuses two plugins of one name).
PLUGIN_NAME = "hitl"
#: Severity for a call: a fixed one, or a function of (tool name, args).
SeverityRule = Severity | str | Callable[[str, dict[str, Any]], Severity | str]


def parent_task_id(session_id: str) -> str:
    return f"{FRAMEWORK}:{session_id}"


def confirmation_task_id(session_id: str, confirmation_id: str) -> str:
    return f"{FRAMEWORK}:{session_id}:{confirmation_id}"


class ConfirmationPlugin(BasePlugin):
    """Carries a hitl decision into the confirmed tool call; add it to the Runner's plugins.

    ADK's own confirmation gate knows only confirmed or not: it would run an edited call with the
    model's args and tell the model ``"This tool call is rejected."`` without the reason. Before
    the gate, this plugin reads the decision ``AdkApprovals`` put in the confirmation's payload:
    an edit replaces the call's args (the dict the tool is then called with), a rejection answers
    the call with the person's reason. Calls without a hitl payload are left to ADK.
    """

    def __init__(self) -> None:
        super().__init__(name=PLUGIN_NAME)

    async def before_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        confirmation = tool_context.tool_confirmation
        payload = confirmation.payload if confirmation is not None else None
        note = payload.get(PAYLOAD_KEY) if isinstance(payload, dict) else None
        if confirmation is None or not isinstance(note, dict):
            return None
        if not confirmation.confirmed:
            return {"error": str(note.get("message") or f"The {tool.name} call was rejected.")}
        if note.get("decision") == DecisionType.EDIT.value:
            edited = note.get("args")
            if not isinstance(edited, dict):
                # Never run the model's args in place of an edit that did not arrive intact.
                return {"error": f"The {tool.name} call was not run: its edited arguments are missing."}
            tool_args.clear()
            tool_args.update(edited)
        return None


@dataclass(slots=True, frozen=True)
class PendingConfirmation:
    """One ``adk_request_confirmation`` call of a session that has no answer yet."""

    confirmation_id: str
    invocation_id: str
    function_call_id: str
    tool: str
    args: dict[str, Any]
    hint: str
    author: str


@dataclass(slots=True)
class PausedRun:
    """A run stopped on confirmations: any process with the agent and both stores can ``resume`` it."""

    run_id: str
    user_id: str
    task_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AdkRunResult:
    """A run that finished: the events of its last ``run_async`` and the agent's last text."""

    run_id: str
    user_id: str
    events: list[Event]

    @property
    def text(self) -> str:
        for event in reversed(self.events):
            if event.content is not None and event.content.parts:
                text = "".join(p.text for p in event.content.parts if p.text and not p.thought)
                if text:
                    return text
        return ""


def pending_confirmations(session: Session) -> list[PendingConfirmation]:
    """The session's unanswered confirmation requests, oldest first.

    ``HITLError`` for a session hitl cannot answer safely: a confirmation request without an id or
    without the call it is about, or two unanswered requests about one call (a session written by
    hand: answering both would run the call twice).
    """
    answered = _consumed_answers(session.events)
    pending: list[PendingConfirmation] = []
    seen_ids: set[str] = set()
    seen_calls: dict[str, str] = {}
    for event in session.events:
        for call in event.get_function_calls():
            if call.name != REQUEST_CONFIRMATION:
                continue
            where = f"session {session.id!r}"
            if not call.id:
                raise HITLError(f"{where}: an {REQUEST_CONFIRMATION} call without an id cannot be answered")
            if call.id in answered:
                continue
            if call.id in seen_ids:
                raise HITLError(f"{where}: confirmation {call.id!r} is requested twice")
            args = call.args or {}
            original = args.get("originalFunctionCall")
            if not isinstance(original, dict) or not original.get("id") or not original.get("name"):
                raise HITLError(f"{where}: confirmation {call.id!r} does not name the call it is about")
            if (other := seen_calls.get(original["id"])) is not None:
                raise HITLError(
                    f"{where}: confirmations {other!r} and {call.id!r} both wait on tool call "
                    f"{original['id']!r}; answering both would run it twice"
                )
            seen_ids.add(call.id)
            seen_calls[original["id"]] = call.id
            confirmation = args.get("toolConfirmation")
            hint = confirmation.get("hint", "") if isinstance(confirmation, dict) else ""
            pending.append(
                PendingConfirmation(
                    confirmation_id=call.id,
                    invocation_id=event.invocation_id,
                    function_call_id=str(original["id"]),
                    tool=str(original["name"]),
                    args=dict(original.get("args") or {}),
                    hint=str(hint or ""),
                    author=event.author,
                )
            )
    return pending


def _consumed_answers(events: Sequence[Event]) -> set[str]:
    """Confirmation ids whose answer ADK acted on: the confirmed call has a result after the answer.

    An answer alone is not enough. When the resumed call raises, the user's answer is already in
    the session but nothing ran; ADK takes the same answer again (a client retry), so such a
    confirmation is still pending — that is what lets ``Adapter.failed``'s retry question carry
    the decision back. The placeholder result ADK writes when it asks comes before the answer
    and does not count.
    """
    original_of: dict[str, str] = {}
    for event in events:
        for call in event.get_function_calls():
            original = (call.args or {}).get("originalFunctionCall") if call.name == REQUEST_CONFIRMATION else None
            if call.id and isinstance(original, dict) and original.get("id"):
                original_of[call.id] = str(original["id"])
    answered_at: dict[str, int] = {}  # confirmation id -> index of the first user answer to it
    results_at: dict[str, list[int]] = {}  # call id -> indexes of the results the agent wrote for it
    for index, event in enumerate(events):
        for response in event.get_function_responses():
            if response.id is None:
                continue
            if event.author == "user":
                answered_at.setdefault(response.id, index)
            else:
                results_at.setdefault(response.id, []).append(index)
    return {
        conf
        for conf, at in answered_at.items()
        if conf in original_of and any(i > at for i in results_at.get(original_of[conf], ()))
    }


def confirmation_message(
    pending: Sequence[PendingConfirmation], decisions: Mapping[str, Decision], task_ids: Mapping[str, str] | None = None
) -> types.Content:
    """The user message that answers every pending confirmation of a pause, from one decision each.

    ``decisions`` is keyed by confirmation id. ``HITLError`` for a decision about a confirmation
    that is not pending (unknown, or answered already) and for a pending one without a decision:
    ADK takes a pause's answers together, and a half-answered pause would be asked again.
    """
    by_id = {p.confirmation_id: p for p in pending}
    unknown = sorted(set(decisions) - set(by_id))
    if unknown:
        raise HITLError(
            f"no pending ADK tool confirmation {', '.join(map(repr, unknown))}: unknown or answered already"
        )
    missing = [p.confirmation_id for p in pending if p.confirmation_id not in decisions]
    if missing:
        raise HITLError(
            f"no decision for ADK tool confirmation {', '.join(map(repr, missing))}: every confirmation "
            "of a pause is answered together"
        )
    parts = []
    for p in pending:
        decision = decisions[p.confirmation_id]
        kind = decision.effective_type
        note: dict[str, Any] = {"decision": kind.value, "actor": decision.actor.id}
        if task_ids is not None and p.confirmation_id in task_ids:
            note["task_id"] = task_ids[p.confirmation_id]
        if kind is DecisionType.EDIT:
            if not isinstance(decision.edited_args, dict):
                raise HITLError(f"the edit of ADK tool confirmation {p.confirmation_id!r} carries no args")
            note["args"] = dict(decision.edited_args)
            note["original_args"] = p.args
        elif kind is DecisionType.REJECT:
            note["message"] = decision.rejection_text(f"The {p.tool} call was")
        elif kind is not DecisionType.APPROVE:
            raise HITLError(f"the ADK adapter cannot carry {kind.value!r} back to confirmation {p.confirmation_id!r}")
        confirmation = ToolConfirmation(hint=p.hint, confirmed=decision.approved, payload={PAYLOAD_KEY: note})
        parts.append(
            types.Part(
                function_response=types.FunctionResponse(
                    id=p.confirmation_id,
                    name=REQUEST_CONFIRMATION,
                    response=confirmation.model_dump(by_alias=True, exclude_none=True, mode="json"),
                )
            )
        )
    return types.Content(role="user", parts=parts)


class AdkApprovals(Adapter):
    """Runs an ADK ``Runner`` whose tool confirmations are decided through ``machine``.

    The Runner must carry ``ConfirmationPlugin`` (``HITLError`` otherwise: without it an edit would
    silently run the model's args). ``severity`` is a severity or ``severity(tool_name, args)``;
    ``timeout`` (seconds) lets the default decision (reject) apply if nobody decides.
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        machine: HITLStateMachine,
        runner: Runner,
        *,
        agent: str | None = None,
        severity: SeverityRule = Severity.MEDIUM,
        timeout: float | None = None,
        assignees: Iterable[str] | None = None,
    ) -> None:
        plugin = runner.plugin_manager.get_plugin(PLUGIN_NAME)
        if not isinstance(plugin, ConfirmationPlugin):
            raise HITLError(
                "the ADK Runner has no hitl_adk.ConfirmationPlugin: without it an edited call would run "
                "with the model's args and a rejection would not reach the model; pass "
                "plugins=[ConfirmationPlugin()] to its App"
            )
        super().__init__(machine, agent=agent, timeout=timeout, assignees=assignees)
        self.runner = runner
        self.tool_severity = severity

    # -- running --------------------------------------------------------------------------------

    async def run(
        self,
        user_id: str,
        message: str | types.Content,
        *,
        session_id: str | None = None,
        wait_timeout: float | None = None,
    ) -> AdkRunResult:
        """Send ``message`` and run on, asking hitl about every confirmation, until the agent is done.

        The session (created if missing) is the run: ``run_id`` is its id. ``wait_timeout`` bounds
        each wait for decisions (``DecisionTimeoutError``; ``resume`` can continue later).
        """
        session_id = await self._session_for(user_id, session_id)
        events = await self._send(user_id, session_id, _as_content(message))
        return await self._until_done(user_id, session_id, events, True, wait_timeout, False)

    async def start(
        self, user_id: str, message: str | types.Content, *, session_id: str | None = None
    ) -> PausedRun | AdkRunResult:
        """Run until the first confirmations are needed, record them, and return without waiting."""
        session_id = await self._session_for(user_id, session_id)
        events = await self._send(user_id, session_id, _as_content(message))
        pending = pending_confirmations(await self._session(user_id, session_id))
        if not pending:
            return AdkRunResult(session_id, user_id, events)
        task_ids = await self._record(user_id, session_id, pending)
        return PausedRun(session_id, user_id, list(task_ids.values()))

    async def resume(
        self,
        user_id: str,
        session_id: str,
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
        takeover: bool = False,
    ) -> PausedRun | AdkRunResult:
        """Continue a paused run — possibly paused by another process — from ADK's session service.

        With ``wait`` it blocks until the pause is decided and runs to the end (asking again at
        each later pause); without, it continues only if everything is decided and returns the
        next ``PausedRun`` (recorded, not waited for) or the result. ``takeover`` is for a
        process that died: a pause it claimed but did not answer is answered; one whose answer ADK
        already acted on is not sent again, its tasks are completed (and the run's events are not
        returned: they belong to the process that died).
        """
        session = await self._session(user_id, session_id)
        if not pending_confirmations(session):
            if takeover and await self._settle(session):
                await self.finish_run(session_id)
                return AdkRunResult(session_id, user_id, [])
            raise TaskNotFoundError(
                f"{parent_task_id(session_id)} (ADK session {session_id!r} waits on no confirmation)"
            )
        return await self._until_done(user_id, session_id, [], wait, wait_timeout, takeover)

    async def _settle(self, session: Session) -> list[str]:
        """Complete the claimed tasks whose answer ADK already acted on; their ids.

        A process that dies after ADK took its answer and before ``delivered`` leaves its tasks
        RUNNING: the session shows the confirmed calls' results, so the answer was delivered —
        whoever sent it — and sending it again is exactly what must not happen.
        """
        consumed = _consumed_answers(session.events)
        settled = []
        for task in await self.machine.get_tasks_by_state(TaskState.RUNNING):
            meta = task.metadata.get(META_KEY)
            if task.framework != FRAMEWORK or task.run_id != session.id or task.decision is None:
                continue
            if isinstance(meta, dict) and meta.get("confirmation_id") in consumed:
                try:
                    await self.machine.complete(task.task_id, {"delivered": True, "settled": "ADK had acted on it"})
                except (InvalidTransitionError, ConflictError):
                    continue  # its own process delivered it a moment ago
                settled.append(task.task_id)
        return settled

    async def _until_done(
        self,
        user_id: str,
        session_id: str,
        events: list[Event],
        wait: bool,
        wait_timeout: float | None,
        takeover: bool,
    ) -> PausedRun | AdkRunResult:
        while pending := pending_confirmations(await self._session(user_id, session_id)):
            task_ids = await self._record(user_id, session_id, pending)
            decided = await self.decisions(list(task_ids.values()), wait=wait, wait_timeout=wait_timeout)
            if decided is None:
                return PausedRun(session_id, user_id, list(task_ids.values()))
            await self._check_bound(session_id, pending, task_ids)
            message = confirmation_message(pending, dict(zip(task_ids, decided, strict=True)), task_ids)
            claimed = await self.claim(list(task_ids.values()), takeover=takeover)
            if claimed is None:
                raise HITLError(
                    f"another process claimed the decisions of ADK session {session_id!r} and is continuing it"
                )
            try:
                events = await self._send(user_id, session_id, message)
            except BaseException as exc:
                await self.failed(claimed, exc)
                raise
            await self.delivered(claimed)
            takeover = False
        await self.finish_run(session_id)
        return AdkRunResult(session_id, user_id, events)

    async def _send(self, user_id: str, session_id: str, message: types.Content) -> list[Event]:
        return [e async for e in self.runner.run_async(user_id=user_id, session_id=session_id, new_message=message)]

    # -- the hitl side --------------------------------------------------------------------------

    async def _record(self, user_id: str, session_id: str, pending: Sequence[PendingConfirmation]) -> dict[str, str]:
        """Make sure every pending confirmation has its task; confirmation id -> task id.

        Every call's args are checked first (JSON, within the store's payload limit): a pause with
        one call hitl cannot show a person asks nothing, rather than leave half of it waiting.
        """
        if len({p.invocation_id for p in pending}) > 1:
            raise HITLError(
                f"ADK session {session_id!r} waits on confirmations of more than one invocation; "
                "ADK takes one invocation's answers at a time"
            )
        for p in pending:
            checked_copy(
                p.args, f"the args of ADK tool call {p.tool} ({p.function_call_id})", self.machine.max_payload_bytes
            )
        questions = [
            (
                confirmation_task_id(session_id, p.confirmation_id),
                self._request_for(p),
                {
                    META_KEY: {
                        "app_name": self.runner.app_name,
                        "user_id": user_id,
                        "session_id": session_id,
                        "invocation_id": p.invocation_id,
                        "confirmation_id": p.confirmation_id,
                        "function_call_id": p.function_call_id,
                    }
                },
            )
            for p in pending
        ]
        task_ids = await self.ask_batch(session_id, questions)
        return {p.confirmation_id: t for p, t in zip(pending, task_ids, strict=True)}

    async def _check_bound(
        self, session_id: str, pending: Sequence[PendingConfirmation], task_ids: Mapping[str, str]
    ) -> None:
        """Refuse to answer a confirmation whose call is not the one a person decided on.

        The session is read again at every resume, from a store hitl does not guard: a call whose
        tool or args changed there since the question was asked (``DatabaseSessionService``'s file
        edited by hand) would have ADK run what nobody approved. Nothing is claimed or sent.
        """
        for p in pending:
            task = await self.machine.get_task(task_ids[p.confirmation_id])
            action = task.interrupt_point.action if task is not None and task.interrupt_point else None
            if action is None and task is not None:  # claimed (RUNNING): the question is in its events
                asked = await self._asked_from_store(task.task_id)
                action = asked.request.action if asked is not None else None
            if action is None or action.name != p.tool or fingerprint(action.args) != fingerprint(p.args):
                raise HITLError(
                    f"ADK session {session_id!r}: tool call {p.function_call_id!r} is now {p.tool} "
                    f"{_short_json(p.args)}, not what task {task_ids[p.confirmation_id]!r} was decided on "
                    f"({action.name if action else 'nothing'} {_short_json(action.args) if action else ''}); "
                    "nothing was sent to ADK"
                )

    def _request_for(self, p: PendingConfirmation) -> Request:
        rule = self.tool_severity
        context: dict[str, Any] = {"function_call_id": p.function_call_id, "confirmation_id": p.confirmation_id}
        if p.hint:
            context["hint"] = p.hint
        return Request(
            reason=f"{p.tool} needs confirmation",
            context=context,
            allowed_decisions=("approve", "reject", "edit"),
            action=Action(name=p.tool, args=p.args),
            step=p.tool,
            severity=rule(p.tool, p.args) if callable(rule) else rule,
            agent=p.author or None,
        )

    # -- ADK's session service ------------------------------------------------------------------

    async def _session(self, user_id: str, session_id: str) -> Session:
        session = await self.runner.session_service.get_session(
            app_name=self.runner.app_name, user_id=user_id, session_id=session_id
        )
        if session is None:
            raise TaskNotFoundError(
                f"{parent_task_id(session_id)} (no ADK session {session_id!r} of user {user_id!r} "
                f"in app {self.runner.app_name!r})"
            )
        return session

    async def _session_for(self, user_id: str, session_id: str | None) -> str:
        session_id = session_id or uuid.uuid4().hex[:12]
        service = self.runner.session_service
        if await service.get_session(app_name=self.runner.app_name, user_id=user_id, session_id=session_id) is None:
            await service.create_session(app_name=self.runner.app_name, user_id=user_id, session_id=session_id)
        return session_id


def _short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_content(message: str | types.Content) -> types.Content:
    return (
        message if isinstance(message, types.Content) else types.Content(role="user", parts=[types.Part(text=message)])
    )


# The glossary's one word for a paused run (docs/glossary.md); the old name still works, and warns.
__getattr__ = retired_names(__name__, {"AdkRunPaused": "PausedRun"}, globals())
