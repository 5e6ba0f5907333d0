"""How the queue and the people who drain it are doing, computed from the audit trail.

Everything here is derived from the store's event log (the facts ``hitl audit export`` shows), so
the figures can be checked against the trail and need no second bookkeeping:

- ``StatsFold`` folds events one at a time. The console feeds it the events it already receives
  (``hitl_transition``) and so keeps the figures live from the same stream as its task table.
- ``load_stats(store, since=…)`` builds a fold for a window without reading the whole log: the
  waiting tasks come from the store's state index, and the events of the window are read by
  walking back from the newest event (``seq`` order) until a whole chunk is older than the window.
  Opening therefore costs what the window holds, not what the store holds
  (``benchmarks/bench_stats.py`` measures it on a 1,000,000-event store).
- ``Stats`` is a point-in-time snapshot of the figures; ``to_dict`` is what ``hitl stats --json``
  prints and ``render_prometheus`` turns it into Prometheus text.

Time is the wall clock the events were stamped with (``Event.at``). A clock that jumped backwards
can make a decision look older than its request: such a duration is *not* counted (neither as
negative nor as zero, which would look like a rubber stamp); it is counted under
``clock_skew_decisions`` instead. A waiting task whose request is stamped in the future shows an
age of 0.

Rubber stamps: a person's decision made faster than the request could be read — faster than the
severity's floor plus the text shown (reason, action, args, context) at a reading speed — is
flagged. Flagging never blocks a decision; it only shows up here and in ``hitl audit export``.

This module imports no UI: the console and the CLI render the same ``Stats``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .canonical import now_us
from .errors import StoreError
from .models import PERSON_DECISIONS, Event, Severity, TaskState
from .records import EventRecord
from .stores.base import Store
from .text import visible

SEVERITIES: tuple[Severity, ...] = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
#: Upper bounds (seconds) of the time-to-decision histogram's buckets; the last bucket is open.
HISTOGRAM_BOUNDS: tuple[float, ...] = (5, 15, 30, 60, 120, 300, 900, 1800, 3600)
#: Points in the "waiting over the last hour" series: one per minute.
SERIES_MINUTES = 60
#: Events read per step when walking back to the start of the window.
CHUNK = 4096
US = 1_000_000


def inert(value: object, limit: int = 80) -> str:
    """An operator or task id as it may be shown: ``hitl_core.text.visible`` (control, escape,
    bidi and invisible characters as ``\\x1b``-style escapes), cut to ``limit`` characters."""
    return visible(value, limit=limit)


@dataclass(frozen=True, slots=True)
class StatsSettings:
    """How fast a person can read a request (``[stats]`` in ``hitl.toml``).

    A decision is a rubber stamp when it came sooner than ``floor[severity] + chars / chars_per_second``
    after the request, where ``chars`` is the length of what the console shows about the request.
    """

    chars_per_second: float = 40.0
    floor: Mapping[Severity, float] = field(
        default_factory=lambda: {Severity.LOW: 1.0, Severity.MEDIUM: 2.0, Severity.HIGH: 4.0, Severity.CRITICAL: 8.0}
    )

    def min_read_seconds(self, severity: Severity, chars: int) -> float:
        return float(self.floor.get(severity, 0.0)) + chars / self.chars_per_second

    @classmethod
    def from_config(cls, config: Any) -> StatsSettings:
        """From a loaded ``PolicyConfig`` (its ``stats`` section), or the defaults for None."""
        section = getattr(config, "stats", None)
        if section is None:
            return cls()
        defaults = cls()
        return cls(
            chars_per_second=section.chars_per_second,
            floor={**defaults.floor, **section.floor},
        )


def _part(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def shown_chars(interrupt: Any) -> int:
    """How many characters of a request a person has to read: reason, action name and args, context.

    Works on an ``InterruptPoint`` and on its JSON (as read back from a store).
    """
    if interrupt is None:
        return 0
    total = len(str(_part(interrupt, "reason") or ""))
    action = _part(interrupt, "action")
    if action is not None:
        total += len(str(_part(action, "name") or ""))
        args = _part(action, "args")
        if args is not None:
            total += len(json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str))
    context = _part(interrupt, "context")
    if context is not None:
        total += len(json.dumps(context, ensure_ascii=False, separators=(",", ":"), default=str))
    return total


def _severity(interrupt: Any) -> Severity:
    try:
        return Severity(_plain(_part(interrupt, "severity")) or "medium")
    except ValueError:
        return Severity.MEDIUM


@dataclass(slots=True)
class _Request:
    """A request a person may be reading: when it was asked, how urgent, how long to read."""

    at: int
    severity: Severity
    chars: int


@dataclass(slots=True)
class DecisionRecord:
    """One decision in the trail, with what the stats need to know about it."""

    seq: int
    task_id: str
    at: int
    actor: str
    #: person, policy or timeout
    kind: str
    type: str
    approved: bool
    final: bool
    severity: Severity | None
    #: Seconds from the request to this decision; None when the request is not in the window read
    #: or the clock went backwards between the two (see ``clock_skew``).
    seconds: float | None
    clock_skew: bool = False
    rubber_stamp: bool = False
    min_read_seconds: float | None = None


def decision_kind(decision: Any) -> str:
    kind = str(_plain(_part(decision, "type")) or "")
    if kind in PERSON_DECISIONS:
        return "person"
    return "timeout" if kind == "timeout" else "policy"


def rubber_stamp_of(
    request_at: int, severity: Severity, chars: int, decided_at: int, settings: StatsSettings
) -> tuple[bool, float, float | None]:
    """(flagged, threshold seconds, seconds taken or None when the clock went backwards)."""
    threshold = settings.min_read_seconds(severity, chars)
    took = (decided_at - request_at) / US
    if took < 0:
        return False, threshold, None
    return took < threshold, threshold, took


#: One event as the fold needs it: (seq, task_id, version, action, to_state, at, actor_id,
#: request's interrupt_id, severity, chars shown, decision type, decided by, decision's
#: interrupt_id, outcome, from_state). ``fact_of`` makes it from an event; the SQLite fast path from SQL.
Fact = tuple[Any, ...]


def fact_of(event: EventRecord) -> Fact:
    data = event.data if isinstance(event.data, dict) else {}
    interrupt = data.get("interrupt")
    decision = data.get("decision")
    request_id = severity = None
    chars = 0
    if interrupt is not None and event.action in ("request_approval", "pause"):
        request_id = _part(interrupt, "interrupt_id")
        severity = _plain(_part(interrupt, "severity"))
        chars = shown_chars(interrupt)
    dtype = decided_by = decision_id = outcome = None
    if decision is not None:
        dtype = _plain(_part(decision, "type"))
        decided_by = _part(_part(decision, "actor"), "id")
        decision_id = _part(decision, "interrupt_id")
        outcome = _part(decision, "outcome")
    to_state = _plain(event.to_state)
    return (
        event.seq,
        event.task_id,
        event.version,
        event.action,
        to_state,
        event.at,
        event.actor_id,
        request_id,
        severity,
        chars,
        dtype,
        decided_by,
        decision_id,
        outcome,
        _plain(event.from_state),
    )


def _severity_of(value: Any) -> Severity:
    try:
        return Severity(value or "medium")
    except ValueError:
        return Severity.MEDIUM


class StatsFold:
    """The figures, kept up to date one event at a time.

    Feed events in ``seq`` order where possible; a repeated event (same ``seq``) is ignored, and a
    task's waiting state follows its highest version seen, so the console's two sources (its own
    commits and the store follower) may both deliver one transition.
    """

    def __init__(self, settings: StatsSettings | None = None, *, keep_us: int = 24 * 3600 * US) -> None:
        self.settings = settings or StatsSettings()
        #: Decisions older than this (before the newest event) are dropped from memory.
        self.keep_us = keep_us
        self.waiting: dict[str, _Request] = {}
        self._versions: dict[str, int] = {}
        self._requests: dict[str, _Request] = {}  # by interrupt id
        self.decisions: deque[DecisionRecord] = deque()
        self.escalations: deque[int] = deque()  # their times
        self._changes: deque[tuple[int, int]] = deque()  # (at, waiting count after)
        self._base_waiting = 0  # the waiting count before the first kept change
        self.last_seq = 0
        self._seen: set[int] = set()
        self.events_folded = 0

    # -- seeding -----------------------------------------------------------------------------

    def seed_waiting(self, task_id: str, version: int, interrupt: Any, asked_at: int) -> None:
        """A task already waiting when the fold starts (its request was before the window)."""
        request = _Request(asked_at, _severity(interrupt), shown_chars(interrupt))
        self.waiting[task_id] = request
        self._versions[task_id] = version
        interrupt_id = _part(interrupt, "interrupt_id")
        if interrupt_id:
            self._requests[interrupt_id] = request
        self._base_waiting = len(self.waiting)

    # -- folding -----------------------------------------------------------------------------

    def apply_event(self, event: Event) -> None:
        """Fold a public ``Event`` (what ``hitl_transition`` hands the console)."""
        self.apply(EventRecord.from_event(event))

    def apply(self, event: EventRecord) -> None:
        self.apply_fact(fact_of(event))

    def apply_fact(self, fact: Fact) -> None:
        """Fold one event, as the few fields the figures need (``fact_of``; or straight from SQL)."""
        (seq, task_id, version, action, to_state, at, _, request_id, severity, chars) = fact[:10]
        if seq:
            if seq <= self.last_seq and (seq in self._seen or not self._seen or seq < min(self._seen)):
                return
            self._seen.add(seq)
            if len(self._seen) > 4096:
                # Only recent seqs can arrive again (the follower trails the hook by moments).
                self._seen = set(sorted(self._seen)[-2048:])
            if seq > self.last_seq:
                self.last_seq = seq
        self.events_folded += 1
        request: _Request | None = None
        if action == "request_approval" or action == "pause":
            request = _Request(at, _severity_of(severity), chars)
            if request_id:
                self._requests[request_id] = request
        elif action == "approve" or action == "reject" or action == "approve_partial":
            if fact[10] is not None:
                self._decided(fact)
        elif action == "escalate":
            self.escalations.append(at)
        # Waiting or not follows the task's newest version (a late duplicate changes nothing).
        if version > self._versions.get(task_id, 0):
            self._versions[task_id] = version
            waiting = self.waiting
            was = task_id in waiting
            now = to_state == "awaiting_approval"
            if now and request is not None:
                waiting[task_id] = request
            elif now and not was:
                # A waiting task whose request we did not see: count it from this event.
                waiting[task_id] = _Request(at, _severity_of(severity), chars)
            elif not now and was:
                del waiting[task_id]
            if was != now or request is not None:
                self._changes.append((at, len(waiting)))
        self._prune(at)

    def _decided(self, fact: Fact) -> None:
        seq, task_id, _, action, _, at, actor_id = fact[:7]
        dtype, decided_by, interrupt_id, outcome = fact[10:14]
        request = self._requests.get(interrupt_id) if interrupt_id else None
        kind = "person" if dtype in PERSON_DECISIONS else ("timeout" if dtype == "timeout" else "policy")
        approved = outcome == "approve" if kind != "person" else dtype != "reject"
        final = action != "approve_partial"
        record = DecisionRecord(
            seq=seq,
            task_id=task_id,
            at=at,
            actor=str(decided_by or actor_id or "?"),
            kind=kind,
            type=str(dtype),
            approved=approved,
            final=final,
            severity=request.severity if request is not None else None,
            seconds=None,
        )
        if request is not None:
            flagged, threshold, took = rubber_stamp_of(request.at, request.severity, request.chars, at, self.settings)
            record.seconds = took
            record.clock_skew = took is None
            if kind == "person":
                record.rubber_stamp = flagged
                record.min_read_seconds = threshold
        if final and interrupt_id:
            self._requests.pop(interrupt_id, None)
        self.decisions.append(record)

    def _prune(self, newest: int) -> None:
        horizon = newest - self.keep_us
        decisions = self.decisions
        while decisions and decisions[0].at < horizon:
            decisions.popleft()
        while self.escalations and self.escalations[0] < horizon:
            self.escalations.popleft()
        series_horizon = newest - (SERIES_MINUTES + 1) * 60 * US
        changes = self._changes
        while len(changes) > 1 and changes[0][0] < series_horizon:
            self._base_waiting = changes.popleft()[1]

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self, now: int | None = None, since_us: int | None = None) -> Stats:
        """The figures as of ``now`` (µs since the epoch) over decisions since ``since_us``."""
        now = now_us() if now is None else now
        since = now - self.keep_us if since_us is None else since_us
        return _summarise(self, now, since)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    # nearest-rank: an observed value, never an interpolation between two people
    index = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass(slots=True)
class SeverityTimes:
    count: int
    p50: float | None
    p90: float | None
    histogram: list[int]


@dataclass(slots=True)
class OperatorFigures:
    actor: str
    decisions: int
    approved: int
    rejected: int
    p50_seconds: float | None
    rubber_stamps: int


@dataclass(slots=True)
class Stats:
    """One snapshot of the figures. ``to_dict`` is the JSON and Prometheus source."""

    now: int
    since: int
    waiting: int
    waiting_by_severity: dict[str, int]
    #: Waiting tasks at the end of each of the last 60 minutes, oldest first.
    waiting_series: list[int]
    oldest_waiting_task: str | None
    oldest_waiting_seconds: float | None
    decisions: int
    by_kind: dict[str, int]
    expiries: int
    escalations: int
    time_to_decision: dict[str, SeverityTimes]
    operators: list[OperatorFigures]
    rubber_stamps: list[DecisionRecord]
    clock_skew_decisions: int
    unmatched_decisions: int
    histogram_bounds: tuple[float, ...] = HISTOGRAM_BOUNDS

    @property
    def has_decisions(self) -> bool:
        return self.decisions > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now / US,
            "since": self.since / US,
            "waiting": self.waiting,
            "waiting_by_severity": self.waiting_by_severity,
            "waiting_series_per_minute": self.waiting_series,
            "oldest_waiting": {"task_id": self.oldest_waiting_task, "seconds": self.oldest_waiting_seconds},
            "decisions": self.decisions,
            "decisions_by_kind": self.by_kind,
            "expiries": self.expiries,
            "escalations": self.escalations,
            "time_to_decision_seconds": {
                sev: {"count": t.count, "p50": t.p50, "p90": t.p90, "histogram": t.histogram}
                for sev, t in self.time_to_decision.items()
            },
            "histogram_bounds_seconds": list(self.histogram_bounds),
            "operators": [
                {
                    "actor": o.actor,
                    "decisions": o.decisions,
                    "approved": o.approved,
                    "rejected": o.rejected,
                    "p50_seconds": o.p50_seconds,
                    "rubber_stamps": o.rubber_stamps,
                }
                for o in self.operators
            ],
            "rubber_stamps": [
                {
                    "seq": r.seq,
                    "task_id": r.task_id,
                    "actor": r.actor,
                    "severity": r.severity.value if r.severity else None,
                    "seconds": r.seconds,
                    "min_read_seconds": r.min_read_seconds,
                }
                for r in self.rubber_stamps
            ],
            "clock_skew_decisions": self.clock_skew_decisions,
            "unmatched_decisions": self.unmatched_decisions,
        }


def _summarise(fold: StatsFold, now: int, since: int) -> Stats:
    decisions = [d for d in fold.decisions if d.at >= since and d.at <= now]
    by_kind: Counter[str] = Counter()
    times: dict[Severity, list[float]] = {s: [] for s in SEVERITIES}
    per_actor: dict[str, list[DecisionRecord]] = {}
    stamps: list[DecisionRecord] = []
    skew = unmatched = expiries = 0
    finals = 0
    for d in decisions:
        if d.final:
            finals += 1
            by_kind[d.kind] += 1
            if d.kind == "timeout":
                expiries += 1
        if d.clock_skew:
            skew += 1
        elif d.seconds is None:
            unmatched += 1
        if d.kind == "person":
            per_actor.setdefault(d.actor, []).append(d)
            if d.final and d.seconds is not None and d.severity is not None:
                times[d.severity].append(d.seconds)
            if d.rubber_stamp:
                stamps.append(d)
    time_to_decision: dict[str, SeverityTimes] = {}
    for sev, values in times.items():
        values.sort()
        histogram = [0] * (len(HISTOGRAM_BOUNDS) + 1)
        for v in values:
            histogram[bisect_left(HISTOGRAM_BOUNDS, v)] += 1
        time_to_decision[sev.value] = SeverityTimes(
            len(values), _percentile(values, 0.5), _percentile(values, 0.9), histogram
        )
    operators = []
    for actor, made in per_actor.items():
        took = sorted(d.seconds for d in made if d.seconds is not None)
        operators.append(
            OperatorFigures(
                actor=actor,
                decisions=len(made),
                approved=sum(1 for d in made if d.approved),
                rejected=sum(1 for d in made if not d.approved),
                p50_seconds=_percentile(took, 0.5),
                rubber_stamps=sum(1 for d in made if d.rubber_stamp),
            )
        )
    operators.sort(key=lambda o: (-o.decisions, o.actor))
    waiting_by_severity = {s.value: 0 for s in SEVERITIES}
    oldest_id: str | None = None
    oldest_at: int | None = None
    for task_id, request in fold.waiting.items():
        waiting_by_severity[request.severity.value] += 1
        if oldest_at is None or request.at < oldest_at or (request.at == oldest_at and task_id < (oldest_id or "")):
            oldest_id, oldest_at = task_id, request.at
    return Stats(
        now=now,
        since=since,
        waiting=len(fold.waiting),
        waiting_by_severity=waiting_by_severity,
        waiting_series=_series(fold, now),
        oldest_waiting_task=oldest_id,
        oldest_waiting_seconds=max((now - oldest_at) / US, 0.0) if oldest_at is not None else None,
        decisions=finals,
        by_kind={k: by_kind.get(k, 0) for k in ("person", "policy", "timeout")},
        expiries=expiries,
        escalations=sum(1 for at in fold.escalations if since <= at <= now),
        time_to_decision=time_to_decision,
        operators=operators,
        rubber_stamps=stamps,
        clock_skew_decisions=skew,
        unmatched_decisions=unmatched,
    )


def _series(fold: StatsFold, now: int) -> list[int]:
    """The waiting count at the end of each of the last ``SERIES_MINUTES`` minutes (oldest first).

    Changes are taken in fold (``seq``) order; one stamped after a minute's end does not count
    for that minute, even if an earlier-committed one was stamped later (a clock jump).
    """
    ends = [now - (SERIES_MINUTES - 1 - i) * 60 * US for i in range(SERIES_MINUTES)]
    out: list[int] = []
    count = fold._base_waiting
    changes = list(fold._changes)
    index = 0
    for end in ends:
        while index < len(changes) and changes[index][0] <= end:
            count = changes[index][1]
            index += 1
        out.append(count)
    return out


# -- loading from a store -----------------------------------------------------------------------


async def _window_facts(store: Store, last: int, since_us: int) -> list[Fact]:
    """The window's events as facts, oldest first.

    Walks back from ``last`` in chunks of ``CHUNK`` until a whole chunk is stamped before
    ``since_us`` (a chunk is judged whole, so a small backward clock jump inside it does not end
    the walk early). A SQLite store is read with SQL (``json_extract`` picks the few fields needed
    out of each event, on a read-only connection of its own); any other store through ``events``.
    """
    from .stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return await asyncio.to_thread(_sqlite_facts, store.path, last, since_us)
    chunks: list[list[EventRecord]] = []
    hi = last
    while hi > 0:
        lo = max(hi - CHUNK, 0)
        batch = [e for e in await store.events(after_seq=lo, limit=hi - lo) if e.seq <= hi]
        chunks.append(batch)
        if batch and max(e.at for e in batch) < since_us:
            break
        hi = lo
    return [fact_of(e) for chunk in reversed(chunks) for e in chunk]


_REQUEST = "action IN ('request_approval', 'pause')"
_DECISION = "action IN ('approve', 'approve_partial', 'reject')"
_SQL_FACTS = f"""
SELECT seq, task_id, version, action, to_state, at, actor_id,
  CASE WHEN {_REQUEST} THEN json_extract(data, '$.interrupt.interrupt_id') END,
  CASE WHEN {_REQUEST} THEN json_extract(data, '$.interrupt.severity') END,
  CASE WHEN {_REQUEST} THEN
      coalesce(length(json_extract(data, '$.interrupt.reason')), 0)
    + coalesce(length(json_extract(data, '$.interrupt.action.name')), 0)
    + coalesce(length(json_extract(data, '$.interrupt.action.args')), 0)
    + coalesce(length(json_extract(data, '$.interrupt.context')), 0)
  ELSE 0 END,
  CASE WHEN {_DECISION} THEN json_extract(data, '$.decision.type') END,
  CASE WHEN {_DECISION} THEN json_extract(data, '$.decision.actor.id') END,
  CASE WHEN {_DECISION} THEN json_extract(data, '$.decision.interrupt_id') END,
  CASE WHEN {_DECISION} THEN json_extract(data, '$.decision.outcome') END,
  from_state
FROM events WHERE seq > ? AND seq <= ? ORDER BY seq
"""


def _sqlite_facts(path: Any, last: int, since_us: int) -> list[Fact]:
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        hi = last
        while hi > 0:
            lo = max(hi - CHUNK, 0)
            newest = conn.execute("SELECT max(at) FROM events WHERE seq > ? AND seq <= ?", (lo, hi)).fetchone()[0]
            if newest is not None and newest < since_us:
                break
            hi = lo
        start = max(hi - CHUNK, 0) if hi > 0 else 0
        return conn.execute(_SQL_FACTS, (start, last)).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"reading the stats from {path}: {exc}") from None
    finally:
        conn.close()


async def load_stats(
    store: Store,
    *,
    since_seconds: float = 24 * 3600,
    now: int | None = None,
    settings: StatsSettings | None = None,
) -> StatsFold:
    """A fold holding the window ``since_seconds`` back from ``now`` (and at least the last hour),
    ready to be fed the events after ``fold.last_seq``.

    Reads the waiting tasks through the store's state index first, then the window's events: a
    task the window does not touch was in the same state before it, so the waiting set at the
    window's start is known without reading older events — but for the tasks that were waiting
    when the window opened and changed within it, whose request is looked up by task.
    """
    now = now_us() if now is None else now
    span = max(int(since_seconds * US), (SERIES_MINUTES + 1) * 60 * US)
    since_us = now - span
    waiting_now = await store.query(TaskState.AWAITING_APPROVAL)
    last = await store.last_seq()
    facts = await _window_facts(store, last, since_us)
    fold = StatsFold(settings, keep_us=span)
    first_seen: dict[str, Fact] = {}
    for fact in facts:
        first_seen.setdefault(fact[1], fact)
    for record in waiting_now:
        if record.task_id in first_seen or record.interrupt is None:
            continue
        asked_at = int(record.interrupt.created_at.timestamp() * US)
        fold.seed_waiting(record.task_id, record.version, record.interrupt, asked_at)
    for task_id, first in first_seen.items():
        if first[14] == "awaiting_approval":
            await _seed_from_history(store, fold, task_id, first[0])
    fold._base_waiting = len(fold.waiting)
    for fact in facts:
        fold.apply_fact(fact)
    fold.last_seq = max(fold.last_seq, last)
    return fold


async def _seed_from_history(store: Store, fold: StatsFold, task_id: str, before_seq: int) -> None:
    """Seed a task that was waiting before ``before_seq`` from its own events (one indexed read)."""
    interrupt: Any = None
    asked_at = 0
    version = 0
    for event in await store.events(task_id=task_id):
        if event.seq >= before_seq:
            break
        version = event.version
        if event.action in ("request_approval", "pause"):
            interrupt, asked_at = event.data.get("interrupt"), event.at
        elif event.action == "approve_partial" and event.data.get("interrupt") is not None:
            interrupt = event.data["interrupt"]  # an edit under four eyes: the edited args are read now
    if interrupt is not None:
        fold.seed_waiting(task_id, version, interrupt, asked_at)


async def compute_stats(
    store: Store,
    *,
    since_seconds: float = 24 * 3600,
    now: int | None = None,
    settings: StatsSettings | None = None,
) -> Stats:
    """``load_stats`` and a snapshot of it: what ``hitl stats`` prints."""
    now = now_us() if now is None else now
    fold = await load_stats(store, since_seconds=since_seconds, now=now, settings=settings)
    return fold.snapshot(now, now - int(since_seconds * US))


def annotate_decision_events(
    events: Iterable[EventRecord], settings: StatsSettings, requests: dict[str, tuple[int, Any]]
) -> Iterable[tuple[EventRecord, dict[str, Any] | None]]:
    """For ``hitl audit export``: each event with its rubber-stamp verdict (decisions by a person)
    or None. ``requests`` (interrupt id -> (asked at, interrupt)) is filled as requests go by and
    must be shared across batches; a decision whose request was not exported has no verdict."""
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        interrupt = data.get("interrupt")
        if interrupt is not None and event.action in ("request_approval", "pause"):
            interrupt_id = _part(interrupt, "interrupt_id")
            if interrupt_id:
                requests[interrupt_id] = (event.at, interrupt)
        decision = data.get("decision")
        verdict: dict[str, Any] | None = None
        if decision is not None and decision_kind(decision) == "person":
            asked = requests.get(_part(decision, "interrupt_id") or "")
            if asked is not None:
                flagged, threshold, took = rubber_stamp_of(
                    asked[0], _severity(asked[1]), shown_chars(asked[1]), event.at, settings
                )
                verdict = {
                    "rubber_stamp": flagged,
                    "seconds": took,
                    "min_read_seconds": round(threshold, 3),
                    "clock_skew": took is None,
                }
            if event.action != "approve_partial":
                requests.pop(_part(decision, "interrupt_id") or "", None)
        yield event, verdict
