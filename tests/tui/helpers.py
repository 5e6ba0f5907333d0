"""Helpers for the console tests (fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from textual.pilot import Pilot

from hitl_core import HITLStateMachine, TaskState
from hitl_core import machine as machine_module
from hitl_core.records import EventRecord, TaskRecord
from hitl_tui import ConsoleApp

#: 2027-01-15 08:00:00 UTC: "now" for the console in every test.
FROZEN_NOW = 1_800_000_000.0


def frozen_clock() -> float:
    return FROZEN_NOW


def deadline_in(seconds: float) -> datetime:
    return datetime.fromtimestamp(FROZEN_NOW, UTC) + timedelta(seconds=seconds)


async def waiting(
    machine: HITLStateMachine,
    task_id: str,
    reason: str = "Send the quote",
    *,
    severity: str = "medium",
    agent: str = "billing-bot",
    framework: str = "langgraph",
    step: str = "draft",
    action: str | None = "send_email",
    args: dict[str, Any] | None = None,
    older_version: bool = False,
    **kwargs: Any,
) -> None:
    """A task that has asked for approval (the usual case the operator sees).

    ``older_version``: started as a version without today's checks on names could have (an
    agent name with control characters is refused now, but may still be in a store).
    """
    if older_version:
        await start_as_older_version(machine, task_id, agent=agent, framework=framework, current_step=step)
    else:
        await machine.start_task(task_id, agent=agent, framework=framework, step=step)
    await machine.request_approval(
        task_id,
        reason,
        severity=severity,
        action=action,
        args=args if args is not None else {"to": "ops@acme.example", "cc": []},
        **kwargs,
    )


async def start_as_older_version(machine: HITLStateMachine, task_id: str, **fields: Any) -> None:
    """Append a task's ``start`` event straight to the store, unchecked, as an older version could have."""
    store = machine.store
    await store.open()
    at = machine_module.now_us()  # the machine's clock, which the snapshot tests freeze
    data = {k: v for k, v in fields.items() if k != "current_step"}
    if "current_step" in fields:
        data["step"] = fields["current_step"]
    event = EventRecord(task_id, 1, "start", None, TaskState.RUNNING, fields.get("agent") or "agent", "agent", at, data)
    record = TaskRecord(
        task_id=task_id, state=TaskState.RUNNING, version=1, created_at=at, updated_at=at, history=(event,), **fields
    )
    await store.append(event, record, None)


def make_app(machine: HITLStateMachine, **kwargs: Any) -> ConsoleApp:
    kwargs.setdefault("actor", "alice")
    kwargs.setdefault("clock", frozen_clock)
    kwargs.setdefault("tick_interval", None)
    kwargs.setdefault("detail_delay", 0)
    kwargs.setdefault("dwell", 0)  # tests of the dwell rule set it
    kwargs.setdefault("advance", True)  # as `hitl console` runs
    return ConsoleApp(machine, **kwargs)


async def settle(pilot: Pilot[Any], app: ConsoleApp) -> None:
    """Wait until everything the console was asked to do has reached the screen."""
    await app.loaded.wait()
    for _ in range(4):
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        following = app.follow is not False
        for worker in list(app.workers):
            startup = worker.name == "load" and not following  # otherwise it follows forever
            if (startup or worker.group in ("decide", "detail", "history")) and not worker.is_finished:
                await worker.wait()
        # the console's own 50 ms timer applies what is queued (no private call to hurry it)
        await poll(pilot, lambda: not app.plugin.queue)
        await pilot.pause()


async def select(pilot: Pilot[Any], app: ConsoleApp, task_id: str) -> None:
    await settle(pilot, app)
    app.table.select(task_id)
    await settle(pilot, app)


async def mixed_fleet(machine: HITLStateMachine) -> None:
    """A fleet with every state, every severity, deadlines and a question (for snapshots)."""
    await waiting(
        machine,
        "deploy-0007",
        "Delete 14,203 stale rows from the production orders table",
        severity="critical",
        agent="data-janitor",
        framework="crewai",
        step="execute",
        action="sql_execute",
        args={"database": "prod-orders", "statement": "DELETE FROM orders WHERE status = 'stale'"},
        context={"rows_affected_estimate": 14203, "backup": "snap-0412", "owner": "dba-oncall"},
        deadline=deadline_in(25),
        assignees=["dba-oncall", "alice"],
    )
    await waiting(
        machine,
        "billing-0003",
        "Refund order #88121 (duplicate charge)",
        severity="high",
        agent="billing-bot",
        framework="pydantic-ai",
        action="issue_refund",
        args={"order_id": 88121, "amount": 249.99},
        options=["approve", "reject", "escalate"],
        deadline=deadline_in(290),
    )
    await waiting(
        machine,
        "support-0012",
        "Send the renewal quote to the customer",
        severity="medium",
        agent="support-7",
        framework="openai-agents",
    )
    await waiting(
        machine,
        "research-0002",
        "Search the web for competitor pricing",
        severity="low",
        agent="research-1",
        framework="langgraph",
        action="web_search",
        args={"query": "competitor pricing"},
    )
    await waiting(
        machine,
        "crm-0009",
        "Which region should the new tenant live in?",
        kind="question",
        agent="crm-sync",
        framework="langgraph",
        action=None,
        args={},
        options=["us-east", "eu-west"],
        allowed_decisions=["respond", "reject"],
    )
    await machine.start_task("ops-0004", agent="ops-oncall", framework="crewai", step="gather")
    await waiting(
        machine,
        "deploy-0005",
        "Deploy 1.42.0 to eu-west",
        severity="high",
        agent="deploy-pilot",
        framework="openai-agents",
    )
    await machine.approve("deploy-0005", "bob", source="console")
    await waiting(machine, "triage-0006", "Close 40 duplicate tickets", agent="triage", framework="pydantic-ai")
    await machine.reject("triage-0006", "bob", "too many at once", source="console")
    await machine.start_task("qa-0001", agent="qa-runner", framework="langgraph", step="verify")
    await machine.complete("qa-0001", {"passed": 1280})
    await machine.start_task("doc-0008", agent="doc-writer", framework="crewai", step="draft")
    await machine.fail("doc-0008", "draft: tool raised TimeoutError after 30s")
    await machine.create_task("sales-0010", agent="sales-scout", framework="langgraph")


#: A reason an agent relayed from a web page: Rich markup and a terminal escape sequence.
HOSTILE_REASON = "Reply: [bold red]URGENT[/] [link=http://evil.example]click[/link] \x1b[2J\x1b[31mpwned\x07"


async def eventually(pilot: Pilot[Any], app: ConsoleApp, predicate: Any, seconds: float = 15.0) -> None:
    """Settle until ``predicate()`` holds (a loaded 2-core machine may need several rounds)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await settle(pilot, app)


#: Key names of the characters ``burst`` is given (Textual's own names for them).
_KEY_NAMES = {
    "/": "slash",
    ":": "colon",
    "?": "question_mark",
    " ": "space",
    "-": "minus",
    ".": "full_stop",
    ",": "comma",
    "[": "left_square_bracket",
    "]": "right_square_bracket",
    "#": "number_sign",
    "!": "exclamation_mark",
}


def burst(app: ConsoleApp, *keys: str) -> None:
    """Send keys the way a paste or an SSH connection bundling keystrokes does: all at once,
    without waiting for the app to handle one before the next arrives (``Pilot.press`` waits).
    Each goes into the app's message queue, where the terminal driver puts the keys it reads."""
    from textual import events

    for key in keys:
        name = _KEY_NAMES.get(key, key) if len(key) == 1 else key
        character = key if len(key) == 1 else {"space": " ", "enter": "\r"}.get(key)
        app.post_message(events.Key(name, character))


async def poll(pilot: Pilot[Any], predicate: Any, seconds: float = 20.0) -> None:
    """Let the app run (its real timers included) until ``predicate()`` holds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await pilot.pause(0.02)
