"""What the console shows, kept apart from how it draws it: one ``Row`` per task, and the
``FleetView`` that filters, sorts and counts them.

Why not keep ``TaskContext``\\s? The table holds every task of the fleet (10,000 in the
benchmark) and re-sorts them several times a second; a slotted row of plain values sorts and
compares cheaply, and shares the immutable ``InterruptPoint`` instead of copying it. Rows are
reconciled by task id and version: an update older than what is shown is ignored, so the
in-process hook and the store follower may both deliver the same transition.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hitl_core import Decision, InterruptPoint, Severity, TaskContext, TaskState

Clock = Callable[[], float]

S = TaskState
ACTIVE_STATES = frozenset({S.PENDING, S.RUNNING, S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED})
STATE_FILTERS = ("all", "waiting", "active")
#: Seconds before a deadline at which its row turns red and the operator is told, once.
DEADLINE_WARNING = 30.0
#: A waiting task whose deadline is at most this far away sorts before every task without one
#: (the "attention" order): 28 s left on a high request outranks 8 minutes left on a critical.
TRIAGE_HORIZON = 120.0

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
    S.PENDING: "created",  # created, not started: "waiting" is only for a task awaiting a person
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
    #: "who (type)" of the last decision, e.g. "hitl:timeout (timeout)"; "" when none
    decided_by: str = ""
    #: When the current request was committed (seconds since the epoch), from the task's history.
    asked_at: float | None = None

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

    @property
    def requested_at(self) -> float:
        """When the current request was made (seconds since the epoch): a waiting task's age
        counts from here, so a colleague's partial approval or an escalation does not reset it."""
        if self.waiting and self.asked_at is not None:
            return self.asked_at
        return self.updated_at

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
            _decided_by(task.decision),
            _asked_at_iso(task),
        )


_ASKING = ("request_approval", "pause")


def _asked_at_iso(task: TaskContext) -> float | None:
    if task.state is not S.AWAITING_APPROVAL:
        return None
    for entry in reversed(task.history[-32:]):
        if entry.get("action") in _ASKING and isinstance(entry.get("at"), str):
            return datetime.fromisoformat(entry["at"]).timestamp()
    return task.interrupt_point.created_at.timestamp() if task.interrupt_point is not None else None


def _decided_by(decision: Decision | None) -> str:
    if decision is None:
        return ""
    return f"{decision.actor.id} ({decision.type.value}{', ' + decision.outcome if decision.outcome else ''})"


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


def attention_key(now: float, horizon: float) -> Callable[[Row], tuple[Any, ...]]:
    """The default order: waiting first; among waiting, a deadline within ``horizon`` seconds
    first (soonest first), then severity, then the longest wait."""
    limit = now + horizon

    def key(row: Row) -> tuple[Any, ...]:
        waiting = row.waiting and row.interrupt is not None
        sev = row.interrupt.severity.rank if waiting and row.interrupt is not None else -1
        deadline = row.deadline if waiting else None
        soon = deadline is not None and deadline <= limit
        return (_STATE_RANK[row.state], not soon, deadline if soon else 0.0, -sev, row.requested_at, row.task_id)

    return key


_STATIC_SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "id": lambda r: r.task_id,
    "agent": lambda r: (r.agent, r.task_id),
    "state": lambda r: (_STATE_RANK[r.state], r.task_id),
    "severity": lambda r: (-(r.severity.rank if r.severity is not None else -1), r.requested_at),
    "age": lambda r: (r.requested_at, r.task_id),
    "deadline": lambda r: (r.deadline is None, r.deadline or 0.0, r.task_id),
}
SORT_ORDER = ("attention", *_STATIC_SORT_KEYS)


class FilterError(ValueError):
    """A filter term that can't be used (a bad regex); the message says which term and why."""


#: Field names a filter term may use, and the aliases an operator types.
_FIELDS = {
    "sev": "severity",
    "severity": "severity",
    "state": "state",
    "agent": "agent",
    "framework": "framework",
    "fw": "framework",
    "id": "id",
    "step": "step",
    "reason": "reason",
    "kind": "kind",
}


def _field_values(row: Row, name: str) -> tuple[str, ...]:
    if name == "severity":
        return (row.severity.value,) if row.severity is not None and row.waiting else ()
    if name == "state":
        return (row.state.value.lower(), STATE_LABEL[row.state].lower())
    if name == "kind":
        return (row.interrupt.kind.value,) if row.interrupt is not None and row.waiting else ()
    return (
        {"agent": row.agent, "framework": row.framework, "id": row.task_id, "step": row.step, "reason": row.reason}[
            name
        ].lower(),
    )


def parse_filter(text: str) -> Callable[[Row], bool]:
    """A predicate for the filter box: space-separated terms, all of which must hold.

    ``word`` matches id, agent, framework, reason, severity or state; ``field:value`` matches
    one field (sev, state, agent, framework, id, step, reason, kind) — severity, state and kind
    exactly, the others as a substring; ``-term`` or ``!term`` negates; a value written
    ``/regex/`` is a case-insensitive regular expression. Raises ``FilterError`` for a bad regex.
    """
    tests: list[tuple[bool, Callable[[Row], bool]]] = []
    for term in text.split():
        negate = term[0] in "-!" and len(term) > 1
        if negate:
            term = term[1:]
        name, sep, value = term.partition(":")
        field_name = _FIELDS.get(name.lower()) if sep else None
        if field_name is None:
            value = term
        if len(value) >= 2 and value.startswith("/") and value.endswith("/"):
            try:
                pattern = re.compile(value[1:-1], re.IGNORECASE)
            except re.error as exc:
                raise FilterError(f"filter term {term!r}: not a valid regular expression ({exc})") from None

            def match(candidate: str, pattern: re.Pattern[str] = pattern) -> bool:
                return pattern.search(candidate) is not None

        else:
            needle = value.lower()
            exact = field_name in ("severity", "state", "kind")

            def match(candidate: str, needle: str = needle, exact: bool = exact) -> bool:
                return candidate == needle if exact else needle in candidate

        if field_name is not None:

            def test(row: Row, f: str = field_name, match: Callable[[str], bool] = match) -> bool:
                return any(match(v) for v in _field_values(row, f))

        else:

            def test(row: Row, match: Callable[[str], bool] = match) -> bool:
                return any(
                    match(v)
                    for f in ("id", "agent", "framework", "reason", "severity", "state")
                    for v in _field_values(row, f)
                )

        tests.append((negate, test))

    def predicate(row: Row) -> bool:
        return all(test(row) != negate for negate, test in tests)

    return predicate


class FleetView:
    """Every task the console knows, and the ordered, filtered list of ids the table shows."""

    def __init__(self, clock: Clock = time.time, horizon: float = TRIAGE_HORIZON) -> None:
        self.clock = clock
        self.horizon = horizon
        self.rows: dict[str, Row] = {}
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        self.state_filter = "all"
        self._text_filter = ""
        self._text_match: Callable[[Row], bool] | None = None
        #: While frozen, rows keep their places (new ones go to the end) so nothing moves under the reader.
        self.frozen = False
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

    @property
    def text_filter(self) -> str:
        return self._text_filter

    @text_filter.setter
    def text_filter(self, text: str) -> None:
        """Set the filter box's text; raises ``FilterError`` (and keeps the old filter) when it is bad."""
        match = parse_filter(text) if text.strip() else None
        self._text_filter = text
        self._text_match = match

    def matches(self, row: Row) -> bool:
        f = self.state_filter
        if f == "waiting" and row.state is not S.AWAITING_APPROVAL:
            return False
        if f == "active" and row.state not in ACTIVE_STATES:
            return False
        match = self._text_match
        return match is None or match(row)

    def sort_key(self) -> Callable[[Row], Any]:
        if self.sort_column == "attention":
            return attention_key(self.clock(), self.horizon)
        return _STATIC_SORT_KEYS[self.sort_column]

    def reorder(self, *, force: bool = False) -> None:
        """Filter and sort. While ``frozen`` (and not ``force``), shown rows keep their places and
        new matching rows are added at the end."""
        matches = self.matches
        if self.frozen and not force:
            rows = self.rows
            kept = [t for t in self.order if t in rows]
            known = set(kept)
            kept.extend(r.task_id for r in rows.values() if r.task_id not in known and matches(r))
            self.order = kept
        else:
            shown = [r for r in self.rows.values() if matches(r)]
            shown.sort(key=self.sort_key(), reverse=self.sort_reverse)
            self.order = [r.task_id for r in shown]
        self.index = {task_id: i for i, task_id in enumerate(self.order)}

    def visible_marked(self) -> tuple[list[str], list[str]]:
        """Marked ids that are shown, and those hidden by the filter."""
        shown = [t for t in self.marked if t in self.index]
        hidden = [t for t in self.marked if t not in self.index]
        return sorted(shown), sorted(hidden)
