"""A simulated agent fleet for ``hitl demo`` and the console benchmark.

Each task lives the life a real agent's would, through the machine's public API: start, work,
ask for approval (varied reasons, contexts, severities, deadlines, actions, options, questions),
wait for the decision (made by the operator, or by the deadline), resume, then complete or
fail. Some reasons carry Rich markup and escape sequences on purpose: the console must show them
literally. ``random.Random(seed)`` makes a run repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hitl_core import DecisionTimeoutError, HITLError, HITLStateMachine, TaskState

FRAMEWORKS = ("langgraph", "pydantic-ai", "openai-agents", "crewai")
AGENT_NAMES = (
    "billing-bot",
    "deploy-pilot",
    "support-7",
    "research-1",
    "crm-sync",
    "triage",
    "data-janitor",
    "ops-oncall",
    "sales-scout",
    "infra-guard",
    "qa-runner",
    "doc-writer",
)
STEPS = ("plan", "gather", "draft", "execute", "verify", "report")


@dataclass(frozen=True, slots=True)
class Request:
    """One kind of thing an agent may ask a person about."""

    reason: str
    severity: str
    action: str | None = None
    args: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    kind: str = "approval"
    options: tuple[str, ...] | None = None
    allowed: tuple[str, ...] | None = None
    deadline_s: float | None = None


REQUESTS: tuple[Request, ...] = (
    Request(
        "Send the renewal quote to the customer",
        "medium",
        "send_email",
        {"to": "ops@acme.example", "subject": "Your renewal quote", "attachments": ["quote-2291.pdf"]},
        {"customer": "ACME Corp", "quote_total": 18250.0, "currency": "EUR"},
    ),
    Request(
        "Delete 14,203 stale rows from the production orders table",
        "critical",
        "sql_execute",
        {"database": "prod-orders", "statement": "DELETE FROM orders WHERE status = 'stale'"},
        {"rows_affected_estimate": 14203, "backup": "snap-0412"},
        deadline_s=240,
    ),
    Request(
        "Refund order #88121 (duplicate charge)",
        "high",
        "issue_refund",
        {"order_id": 88121, "amount": 249.99, "currency": "USD"},
        {"customer_tier": "gold", "previous_refunds": 0},
        options=("approve", "reject", "escalate"),
    ),
    Request(
        "Deploy build 1.42.0 to the eu-west cluster",
        "high",
        "deploy",
        {"service": "checkout", "version": "1.42.0", "region": "eu-west", "canary": True},
        {"tests_passed": 1280, "tests_failed": 0},
        deadline_s=120,
    ),
    Request(
        "Search the web for competitor pricing",
        "low",
        "web_search",
        {"query": "competitor enterprise pricing 2026", "max_results": 10},
    ),
    Request(
        "Which region should the new tenant live in?",
        "medium",
        kind="question",
        options=("us-east", "eu-west", "ap-south"),
        allowed=("respond", "reject"),
        context={"tenant": "globex", "data_residency": "unknown"},
    ),
    Request(
        "Post the incident summary to #status",
        "medium",
        "post_message",
        {"channel": "#status", "text": "Checkout latency back to normal."},
    ),
    Request(
        "Rotate the API key used by the billing integration",
        "high",
        "rotate_secret",
        {"secret": "billing/api-key", "notify": ["finance-oncall"]},
        deadline_s=300,
    ),
    Request(
        "Reply to ticket: [bold red]URGENT[/] customer says \x1b[31mrefund now\x1b[0m",
        "medium",
        "reply_ticket",
        {"ticket": 4471, "body": "We are looking into it. [link=http://evil]click[/link]"},
        {"ticket_subject": "[blink]help[/blink]\x07"},
    ),
    Request(
        "Grant admin role to contractor account",
        "critical",
        "grant_role",
        {"user": "c.doe@contractor.example", "role": "admin", "duration_days": 7},
        {"requested_in": "JIRA-2210"},
        deadline_s=600,
    ),
)


class Fleet:
    """``agents`` simulated agents starting about ``rate`` tasks a second on ``machine``."""

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        agents: int = 8,
        rate: float = 1.0,
        seed: int = 7,
        work_seconds: float = 2.0,
        max_live: int | None = None,
    ) -> None:
        self.machine = machine
        self.rng = random.Random(seed)
        self.agents = [
            (
                AGENT_NAMES[i % len(AGENT_NAMES)] + (f"-{i // len(AGENT_NAMES)}" if i >= len(AGENT_NAMES) else ""),
                FRAMEWORKS[i % len(FRAMEWORKS)],
            )
            for i in range(max(agents, 1))
        ]
        self.rate = max(rate, 0.01)
        self.work_seconds = work_seconds
        self.max_live = max_live or agents * 4
        self.live: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self.errors = 0
        #: A simulated colleague who gives one of the two approvals a four-eyes request needs
        #: (only when a policy asks for four eyes; see ``hitl_core.policies.demo``).
        self.colleague: str | None = None
        self.colleague_delay = (4.0, 12.0)
        self.helpers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Start tasks forever (cancel to stop; live tasks are cancelled too)."""
        try:
            while True:
                if len(self.live) < self.max_live:
                    task = asyncio.create_task(self.one_task())
                    self.live.add(task)
                    task.add_done_callback(self.live.discard)
                await asyncio.sleep(self.rng.expovariate(self.rate))
        finally:
            for task in [*self.live, *self.helpers]:
                task.cancel()

    async def _work(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.3, 1.0) * self.work_seconds)

    async def one_task(self) -> None:
        rng = self.rng
        machine = self.machine
        agent, framework = rng.choice(self.agents)
        task_id = f"{agent.split('-')[0]}-{next(self._ids):04d}"
        try:
            await machine.start_task(
                task_id,
                {"attempt": 1},
                step=STEPS[0],
                agent=agent,
                framework=framework,
                run_id=f"run-{rng.randrange(1000, 9999)}",
            )
            for step in STEPS[1:]:
                await self._work()
                await self._obey_pause(task_id)
                if rng.random() < 0.35:
                    await self._ask(task_id, step, rng.choice(REQUESTS))
                if rng.random() < 0.04:
                    await machine.fail(task_id, f"{step}: tool raised TimeoutError after 30s")
                    return
                if rng.random() < 0.3:
                    break
            await self._obey_pause(task_id)
            await machine.complete(task_id, {"summary": f"{agent} finished {task_id}"})
        except asyncio.CancelledError:
            raise
        except HITLError:
            # The operator may legitimately change a task under us (pause, reject); a real agent
            # would stop here too.
            self.errors += 1

    async def _obey_pause(self, task_id: str) -> None:
        """The checkpoint: if a person paused the task, wait for their decision and go on."""
        task = await self.machine.get_task(task_id)
        if task is not None and task.state is TaskState.AWAITING_APPROVAL:
            await self._wait_and_resume(task_id, None)

    async def _ask(self, task_id: str, step: str, request: Request) -> None:
        deadline = None
        if request.deadline_s is not None:
            deadline = datetime.now(UTC) + timedelta(seconds=request.deadline_s * self.rng.uniform(0.5, 1.0))
        asked = await self.machine.request_approval(
            task_id,
            request.reason,
            request.context,
            list(request.options) if request.options else None,
            request.severity,
            kind=request.kind,
            action=request.action,
            args=request.args,
            allowed_decisions=request.allowed,
            deadline=deadline,
            step=step,
        )
        interrupt = asked.interrupt_point
        if (
            self.colleague
            and interrupt is not None
            and interrupt.required_approvals > 1
            and asked.state is TaskState.AWAITING_APPROVAL
        ):
            helper = asyncio.create_task(self._second_approval(task_id, interrupt.interrupt_id))
            self.helpers.add(helper)
            helper.add_done_callback(self.helpers.discard)
        await self._wait_and_resume(task_id, deadline)

    async def _second_approval(self, task_id: str, interrupt_id: str) -> None:
        """The colleague looks a few seconds later and approves: the console shows "1 of 2"."""
        await asyncio.sleep(self.rng.uniform(*self.colleague_delay))
        with contextlib.suppress(HITLError):
            await self.machine.approve(
                task_id,
                self.colleague,
                interrupt_id=interrupt_id,
                source="demo",
                message="looks right to me (simulated colleague)",
            )

    async def _wait_and_resume(self, task_id: str, deadline: datetime | None) -> None:
        machine = self.machine
        while True:
            # An escalation (hitl.toml) moves the deadline on; a policy may have set one.
            task = await machine.get_task(task_id)
            if task is not None and task.state is TaskState.AWAITING_APPROVAL and task.interrupt_point is not None:
                deadline = task.interrupt_point.deadline
            timeout = None if deadline is None else max((deadline - datetime.now(UTC)).total_seconds(), 0.01)
            try:
                await machine.wait_for_decision(task_id, timeout=timeout)
                break
            except DecisionTimeoutError:
                with contextlib.suppress(HITLError):
                    await machine.expire(task_id)
        await asyncio.sleep(self.rng.uniform(0.2, 1.5))
        task = await machine.get_task(task_id)
        if task is not None and task.state in (TaskState.APPROVED, TaskState.REJECTED):
            await machine.resume(task_id)
