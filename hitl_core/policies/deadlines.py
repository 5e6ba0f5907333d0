"""Deadlines and escalation: per-severity default deadlines, a sweeper, an escalation chain.

The sweeper runs in the machine's process and is safe to run in several processes on one
store: it only ever calls ``machine.expire`` and ``machine.escalate``, each a compare-and-set
append at the version it read, so of two sweepers racing for one deadline exactly one commits
and the other is told it lost. Each sweep is one indexed query of the waiting tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..canonical import datetime_to_us, now_us
from ..errors import HITLError
from ..hookspecs import hookimpl
from ..models import Decision, Escalation, InterruptKind, InterruptPoint, TaskContext, TaskState, escalation_level
from .config import DeadlinesConfig, EscalationConfig
from .host import PolicyHost

log = logging.getLogger("hitl.policies")


class DeadlinePlugin:
    """Default deadlines by severity (``hitl_assess``) and escalation (``hitl_deadline_expired``)."""

    def __init__(self, machine: PolicyHost, deadlines: DeadlinesConfig, escalation: EscalationConfig | None) -> None:
        self.machine = machine
        self.deadlines = deadlines
        self.escalation = escalation

    @hookimpl
    def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any] | None:
        if interrupt.deadline is not None:
            return None
        if interrupt.kind is InterruptKind.REVIEW:
            # A person's pause is theirs to lift: the per-severity defaults are for agents'
            # requests, and would reject the run while the operator is still looking.
            seconds = self.deadlines.pause_timeout
        else:
            seconds = self.deadlines.default_timeout.get(interrupt.severity)
        if seconds is None:
            return None
        return {"deadline": datetime.now(UTC) + timedelta(seconds=seconds)}

    @hookimpl
    async def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | Escalation | None:
        chain = self.escalation
        if chain is None or interrupt.severity not in chain.severities:
            return None
        level = escalation_level(task)
        if level >= len(chain.levels):
            return None  # the chain is exhausted: the default decision applies
        step = chain.levels[level]
        # The machine applies it (compare-and-set on the version it read): two sweepers never
        # escalate one deadline twice, and no caller of the public API can re-assign a request.
        return Escalation(
            assignees=list(step.assignees),
            deadline=datetime.now(UTC) + timedelta(seconds=step.wait),
            message=f"no decision by {', '.join(interrupt.assignees) or 'anyone'} before the deadline",
        )


@dataclass(slots=True)
class SweepReport:
    """What one sweep found: deadlines that passed and are now settled (expired or escalated —
    by this process or, when several sweep, by whichever won the compare-and-set), and warnings
    this process sent."""

    expired: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)


class DeadlineSweeper:
    """Expires waiting tasks whose deadline passed, and warns ``warn_before`` seconds ahead.

    Keeps an index of the deadlines of waiting tasks, fed by an incremental query (only tasks
    changed since the last sweep: one indexed range read) plus a full re-read every
    ``rescan_interval`` seconds (a store whose sequence numbers may become visible out of order,
    such as PostgreSQL, could otherwise hide a change from the incremental read). Each sweep then
    costs a pass over that index, not a read of every waiting task.
    """

    def __init__(self, machine: PolicyHost, config: DeadlinesConfig, *, rescan_interval: float = 60.0) -> None:
        self.machine = machine
        self.interval = config.sweep_interval
        self.warn_before_us = int(config.warn_before * 1_000_000)
        self.rescan_interval = rescan_interval
        # task id -> (deadline µs, interrupt id, version read)
        self._due: dict[str, tuple[int, str, int]] = {}
        self._after: int | None = None
        self._next_rescan = 0.0
        # (interrupt id, deadline µs) already warned about here: a warning fires once per deadline
        self._warned: set[tuple[str, int]] = set()
        self._task: asyncio.Task[None] | None = None
        self.errors = 0

    async def _refresh(self, store: Any) -> None:
        loop_now = time.monotonic()
        full = self._after is None or loop_now >= self._next_rescan
        records = await store.query(TaskState.AWAITING_APPROVAL, after=None if full else self._after)
        if full:
            self._due.clear()
            self._next_rescan = loop_now + self.rescan_interval
            self._after = await store.last_seq() if not records else None
        for record in records:
            interrupt = record.interrupt
            if interrupt is None or interrupt.deadline is None:
                self._due.pop(record.task_id, None)
            else:
                self._due[record.task_id] = (datetime_to_us(interrupt.deadline), interrupt.interrupt_id, record.version)
            if self._after is None or record.last_seq > self._after:
                self._after = record.last_seq
        if self._after is None:
            self._after = 0

    async def sweep_once(self) -> SweepReport:
        """One sweep. The machine's store must be open: the machine starts ``run`` only once it is
        (``Policies.start``); a caller of ``sweep_once`` itself uses an opened machine."""
        machine = self.machine
        report = SweepReport()
        store = machine.store
        await self._refresh(store)
        now = now_us()
        warn_from = now + self.warn_before_us if self.warn_before_us else None
        for task_id, (due, interrupt_id, version) in list(self._due.items()):
            if due <= now:
                try:
                    after = await machine.expire(task_id)
                except HITLError:
                    # decided, escalated or gone meanwhile (here or elsewhere); a new deadline comes
                    # back through the next incremental read
                    self._due.pop(task_id, None)
                    continue
                if after.state is not TaskState.AWAITING_APPROVAL:
                    report.expired.append(task_id)
                    self._due.pop(task_id, None)
                elif after.version > version:
                    report.escalated.append(task_id)
                    interrupt = after.interrupt_point
                    if interrupt is not None and interrupt.deadline is not None:
                        self._due[task_id] = (datetime_to_us(interrupt.deadline), interrupt.interrupt_id, after.version)
                    else:
                        self._due.pop(task_id, None)
                continue
            key = (interrupt_id, due)
            if warn_from is not None and due <= warn_from and key not in self._warned:
                record = await store.get(task_id)
                interrupt = record.interrupt if record is not None else None
                if (
                    record is None
                    or record.state is not TaskState.AWAITING_APPROVAL
                    or interrupt is None
                    or interrupt.deadline is None
                    or datetime_to_us(interrupt.deadline) != due
                ):
                    continue
                self._warned.add(key)
                report.warned.append(task_id)
                await machine.plugins.deadline_warning(record.to_context(), interrupt, (due - now) / 1_000_000)
        if len(self._warned) > 4 * len(self._due) + 1024:  # forget warnings of deadlines long gone
            live = {(i, d) for d, i, _ in self._due.values()}
            self._warned &= live
        return report

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failing sweep is logged, not fatal."""
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not stop deadlines for good
                self.errors += 1
                log.error("deadline sweep failed; retrying in %.1fs: %r", self.interval, exc, exc_info=exc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start sweeping in the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="hitl-deadline-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        loop = task.get_loop()
        if loop is not asyncio.get_running_loop():
            # started in another loop (the sync facade's thread): cancel it there, don't await it here
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
