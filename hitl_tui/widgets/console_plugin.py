"""``ConsolePlugin``: the console's ``hitl_transition`` hook; it only queues (the app applies in batches)."""

from __future__ import annotations

from collections import deque

from hitl_core import Event, TaskContext, hookimpl

from ..model import Row


class ConsolePlugin:
    """The console's ``hitl_transition`` implementation: queue the row, apply it in the next batch."""

    def __init__(self) -> None:
        self.queue: deque[Row] = deque()
        #: When (epoch seconds) deadlines expired and requests were escalated: the header counts
        #: the last hour's.
        self.expiries: deque[float] = deque(maxlen=10_000)
        self.escalations: deque[float] = deque(maxlen=10_000)
        # The same event can arrive twice (this process's hook and the store's follower, or the
        # start-up count and the live hook): it is counted once, by its sequence number.
        self._counted: set[int] = set()
        self._counted_order: deque[int] = deque()

    @hookimpl
    def hitl_transition(self, event: Event, task: TaskContext) -> None:
        self.queue.append(Row.from_context(task))
        self.count(
            event.seq, event.action, event.actor.source if event.actor is not None else None, event.at.timestamp()
        )

    def count(self, seq: int, action: str, source: str | None, at: float) -> None:
        """Count an expiry (a decision by the deadline: source ``timeout``) or an escalation."""
        if action != "escalate" and source != "timeout":
            return
        if seq in self._counted:
            return
        self._counted.add(seq)
        self._counted_order.append(seq)
        if len(self._counted_order) > 20_000:
            self._counted.discard(self._counted_order.popleft())
        (self.escalations if action == "escalate" else self.expiries).append(at)
