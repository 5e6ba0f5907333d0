"""Asking from a caller that blocks until decided, and withdrawing when that caller goes away."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable
from typing import Any

from ..adapters import Adapter, Request
from ..canonical import fingerprint
from ..errors import ConflictError, HITLError, InvalidTransitionError, PayloadError, TaskNotFoundError
from ..models import Decision, DecisionType

#: What a withdrawn request's task records as its error (followed by who or what withdrew it).
WITHDRAWN = "withdrawn by the caller"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Withdrawn(HITLError):
    """The caller went away (a signal, a disconnected client) before the decision was carried back."""

    def __init__(self, task_id: str, why: str) -> None:
        self.task_id = task_id
        self.why = why
        super().__init__(f"task {task_id!r}: {WITHDRAWN} ({why})")


class ReusedIdError(PayloadError):
    """A request id was asked again about another action: the decision it holds is about what a
    person saw then, so it is never handed to a different call."""


async def check_same_action(adapter: Adapter, base_id: str, request: Request) -> None:
    """``ReusedIdError`` when ``base_id`` exists and was asked about another action than ``request``'s.

    The ids are the caller's (a Claude Code ``tool_use_id``, ``hitl ask --id``): a caller that
    reuses one, by mistake or on purpose, must not get an approval given for other arguments.
    """
    if request.action is None or await adapter.machine.get_task(base_id) is None:
        return
    wanted = fingerprint(request.action.model_dump())
    for event in await adapter.machine.events(task_id=base_id):
        asked = event.data.get("interrupt", {}).get("action") if event.action == "request_approval" else None
        if asked is not None and fingerprint(asked) != wanted:
            raise ReusedIdError(
                f"task {base_id!r} was asked about another action ({asked.get('name')!r} with other "
                "arguments); its decision is not reused for this one"
            )


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1h"``, ``"500ms"`` → seconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90, 90s, 10m, 1h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a timeout must be more than zero")
    return seconds


def timed_out(decision: Decision) -> bool:
    """Nobody decided before the deadline and the default that applied refuses the action."""
    return decision.type is DecisionType.TIMEOUT and not decision.approved


def effective_args(decision: Decision, args: dict[str, Any]) -> dict[str, Any]:
    """The args the action runs with: a person's edit, else the ones asked about."""
    if decision.effective_type is DecisionType.EDIT and isinstance(decision.edited_args, dict):
        return decision.edited_args
    return args


async def withdraw(adapter: Adapter, base_id: str, why: str) -> str:
    """Fail the request asked as ``base_id`` with "withdrawn by the caller (why)"; its task id.

    Any state but a finished one may be failed: waiting, decided, or claimed but not delivered.
    """
    task_id = await adapter.latest_attempt(base_id)
    try:
        await adapter.machine.fail(task_id, f"{WITHDRAWN} ({why})")
    except (InvalidTransitionError, ConflictError, TaskNotFoundError):
        pass  # finished already (delivered, or failed by the adapter), or never created
    return task_id


async def ask_in_place(
    adapter: Adapter,
    base_id: str,
    run_id: str | None,
    request: Request,
    *,
    metadata: dict[str, Any] | None = None,
    parent: bool = False,
    why_cancelled: Callable[[], str] = lambda: "cancelled",
    caller_ids: bool = True,
) -> tuple[str, Decision]:
    """``Adapter.ask_and_claim``, returning the task id, and withdrawing on cancellation.

    A cancelled wait (the caller's signal handler, a disconnected client) fails the task with
    ``WITHDRAWN`` and ``why_cancelled()`` and raises ``Withdrawn``; the store records who left,
    and a person looking at the console sees the request gone, not decided. ``caller_ids``: the
    id comes from the caller, so an existing task must be about the same action
    (``check_same_action``); an integration that makes fresh ids itself skips that read.
    """
    if caller_ids:
        await check_same_action(adapter, base_id, request)
    try:
        if parent and run_id is not None:
            await adapter.open_run(run_id)
        decision = await adapter.ask_and_claim(base_id, run_id, request, metadata, parent=parent)
    except asyncio.CancelledError:
        why = why_cancelled()
        withdrawal = asyncio.ensure_future(withdraw(adapter, base_id, why))
        while not withdrawal.done():
            # anyio (the MCP server's task groups) cancels again at every await of a cancelled
            # scope: keep waiting, so that the withdrawal is recorded before the caller goes
            try:
                await asyncio.shield(withdrawal)
            except asyncio.CancelledError:
                continue
        raise Withdrawn(withdrawal.result(), why) from None
    return await adapter.latest_attempt(base_id), decision


class SignalWithdrawal:
    """While active, SIGINT and SIGTERM cancel ``task`` (so ``ask_in_place`` withdraws) once.

    ``signal_number`` says which arrived (for the exit code, 128 + n, as a shell reports a
    killed process). Used as ``with SignalWithdrawal(asyncio.current_task()) as signals:``.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.signal_number: int | None = None

    def why(self) -> str:
        return signal.Signals(self.signal_number).name if self.signal_number else "cancelled"

    def _received(self, number: int) -> None:
        if self.signal_number is None and self.task is not None:
            self.signal_number = number
            self.task.cancel()

    def __enter__(self) -> SignalWithdrawal:
        loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            loop.add_signal_handler(sig, self._received, int(sig))
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            loop.remove_signal_handler(sig)
