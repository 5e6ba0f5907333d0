"""What the console shows, kept apart from how it draws it: one ``Row`` per task, and the
``FleetView`` that filters, sorts and counts them.

Why not keep ``TaskContext``\\s? The table holds every task of the fleet (10,000 in the
benchmark) and re-sorts them several times a second; a slotted row of plain values sorts and
compares cheaply, and shares the immutable ``InterruptPoint`` instead of copying it. Rows are
reconciled by task id and version: an update older than what is shown is ignored, so the
in-process hook and the store follower may both deliver the same transition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hitl_core import InterruptPoint, Severity, TaskContext, TaskState
from hitl_core.records import TaskRecord

Clock = Callable[[], float]

S = TaskState
ACTIVE_STATES = frozenset({S.PENDING, S.RUNNING, S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED})
STATE_FILTERS = ("all", "pending", "active")
#: Seconds before a deadline at which its row turns red and the operator is told, once.
DEADLINE_WARNING = 30.0

_STATE_RANK = {
    S.AWAITING_APPROVAL: 0,
    S.APPROVED: 1,
    S.REJECTED: 1,
    S.RUNNING: 2,
    S.PENDING: 3,
    S.FAILED: 4,
    S.COMPLETED: 5,
}

STATE_LABEL = {
    S.PENDING: "pending",
    S.RUNNING: "running",
    S.AWAITING_APPROVAL: "WAITING",
    S.APPROVED: "approved",
    S.REJECTED: "rejected",
    S.COMPLETED: "done",
    S.FAILED: "failed",
}


@dataclass(slots=True, eq=False)
class Row:
    task_id: str
    state: TaskState
    version: int
    agent: str
    framework: str
    step: str
    updated_at: float  # seconds since the epoch
    interrupt: InterruptPoint | None
    error: str | None = None

    @property
    def severity(self) -> Severity | None:
        return self.interrupt.severity if self.interrupt is not None else None

    @property
    def reason(self) -> str:
        if self.interrupt is not None:
            return self.interrupt.reason
        return self.error or ""

    @property
    def deadline(self) -> float | None:
        interrupt = self.interrupt
        if interrupt is None or interrupt.deadline is None or self.state is not S.AWAITING_APPROVAL:
            return None
        return interrupt.deadline.timestamp()

    @property
    def waiting(self) -> bool:
        return self.state is S.AWAITING_APPROVAL

    @classmethod
    def from_record(cls, record: TaskRecord) -> Row:
        return cls(
            record.task_id,
            record.state,
            record.version,
            record.agent or "",
            record.framework or "",
            record.current_step or "",
            record.updated_at / 1_000_000,
            record.interrupt,
            record.error,
        )

    @classmethod
    def from_context(cls, task: TaskContext) -> Row:
        return cls(
            task.task_id,
            task.state,
            task.version,
            task.agent or "",
            task.framework or "",
            task.current_step or "",
            task.updated_at.timestamp(),
            task.interrupt_point,
            task.error,
        )


def format_duration(seconds: float) -> str:
    """Compact, fixed-ish width: 9s, 4m05s, 2h07m, 3d04h."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def countdown(row: Row, now: float) -> str:
    deadline = row.deadline
    if deadline is None:
        return ""
    left = deadline - now
    return "expired" if left <= 0 else format_duration(left)


def deadline_close(row: Row, now: float) -> bool:
    deadline = row.deadline
    return deadline is not None and deadline - now <= DEADLINE_WARNING


# Sort keys by column name; "attention" (the default) puts what needs a person first.
def _attention(row: Row) -> tuple[Any, ...]:
    sev = row.interrupt.severity.rank if row.interrupt is not None and row.waiting else -1
    return (_STATE_RANK[row.state], -sev, row.updated_at, row.task_id)


SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "attention": _attention,
    "id": lambda r: r.task_id,
    "agent": lambda r: (r.agent, r.task_id),
    "state": lambda r: (_STATE_RANK[r.state], r.task_id),
    "severity": lambda r: (-(r.severity.rank if r.severity is not None else -1), r.updated_at),
    "age": lambda r: (r.updated_at, r.task_id),
    "deadline": lambda r: (r.deadline is None, r.deadline or 0.0, r.task_id),
}
SORT_ORDER = tuple(SORT_KEYS)


class FleetView:
    """Every task the console knows, and the ordered, filtered list of ids the table shows."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        self.state_filter = "all"
        self.text_filter = ""
        self.sort_column = "attention"
        self.sort_reverse = False
        self.marked: set[str] = set()
        self.counts: Counter[TaskState] = Counter()
        self.waiting_by_severity: Counter[Severity] = Counter()

    # -- updates --------------------------------------------------------------------------

    def _count(self, row: Row, sign: int) -> None:
        self.counts[row.state] += sign
        if row.waiting and row.interrupt is not None:
            self.waiting_by_severity[row.interrupt.severity] += sign

    def load(self, rows: Iterable[Row]) -> None:
        self.rows = {r.task_id: r for r in rows}
        self.counts = Counter()
        self.waiting_by_severity = Counter()
        for row in self.rows.values():
            self._count(row, 1)
        self.marked &= self.rows.keys()
        self.reorder()

    def apply(self, rows: Iterable[Row]) -> list[tuple[Row | None, Row]]:
        """Reconcile rows by task id; returns (old, new) for each row that really changed."""
        changed: list[tuple[Row | None, Row]] = []
        current = self.rows
        for row in rows:
            old = current.get(row.task_id)
            if old is not None:
                if old.version >= row.version:
                    continue
                self._count(old, -1)
            current[row.task_id] = row
            self._count(row, 1)
            changed.append((old, row))
        return changed

    # -- what is shown --------------------------------------------------------------------

    def matches(self, row: Row) -> bool:
        f = self.state_filter
        if f == "pending" and row.state is not S.AWAITING_APPROVAL:
            return False
        if f == "active" and row.state not in ACTIVE_STATES:
            return False
        needle = self.text_filter
        if needle:
            needle = needle.lower()
            return needle in row.task_id.lower() or needle in row.agent.lower() or needle in row.reason.lower()
        return True

    def reorder(self) -> None:
        matches = self.matches
        shown = [r for r in self.rows.values() if matches(r)]
        shown.sort(key=SORT_KEYS[self.sort_column], reverse=self.sort_reverse)
        self.order = [r.task_id for r in shown]
        self.index = {task_id: i for i, task_id in enumerate(self.order)}

    def visible_marked(self) -> tuple[list[str], list[str]]:
        """Marked ids that are shown, and those hidden by the filter."""
        shown = [t for t in self.marked if t in self.index]
        hidden = [t for t in self.marked if t not in self.index]
        return sorted(shown), sorted(hidden)
