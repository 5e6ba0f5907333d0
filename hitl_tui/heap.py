"""Keep Python's full garbage collections from freezing the console for a fifth of a second.

Why: a console over 10,000 tasks holds a few million objects that live for the whole shift (task
records, snapshots, rows, the widget tree). CPython's cyclic collector walks all of them in every
full (generation 2) collection: ``benchmarks/bench_console.py`` counted 35 of them in a run, the
longest 228 ms, and they were the keys' p99 (``j`` 128 ms, ``a`` 158 ms).

``gc.freeze()`` moves every object alive now into a permanent generation the collector no longer
walks. Reference counting still frees them when nothing refers to them; only a *cycle* of frozen
objects that becomes unreachable later stays in memory. So the console freezes right after a
collection (whatever was garbage is gone), when it is idle in its main screen (no dialog, whose
widgets would be cycles soon dropped), and then only every ``interval`` seconds: what it freezes
each time is what the shift added since. Freezing alone is not enough: with the frozen objects out of its count, the collector then runs a
full collection every ~70,000 allocations, each walking everything added since the last freeze.
So while settling, the console owns full collections: the automatic ones are off, and it runs one
(then freezes) when idle, at most every ``interval`` seconds — and at the latest every ``backstop``
seconds, idle or not, so that cyclic garbage waits a minute at most. Young-generation collections
run as always.

It is process-wide, so it is opt-in (``ConsoleApp(settle_heap=True)``): ``hitl console`` and
``hitl demo`` turn it on; an application embedding the console decides for its own process. The
thresholds are put back when the console stops.
"""

from __future__ import annotations

import gc
import time

#: Seconds between two freezes when idle: the collection before each walks what arrived since.
SETTLE_INTERVAL = 5.0
#: Seconds after which a full collection runs even in the middle of work.
SETTLE_BACKSTOP = 60.0
#: The oldest generation's threshold while settling: never reached, so never automatic.
_NEVER = 1 << 30


class HeapSettler:
    """``start()`` once the first listing is in, ``tick(idle)`` every second, ``stop()`` at the end."""

    def __init__(self, interval: float = SETTLE_INTERVAL, backstop: float = SETTLE_BACKSTOP) -> None:
        self.interval = interval
        self.backstop = backstop
        self.freezes = 0
        self._last = 0.0
        self._thresholds: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Take over full collections; the first ``tick`` collects and freezes (not now: the
        first paint should not wait for a walk of the whole heap)."""
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, _NEVER)
        self._last = -self.backstop

    def stop(self) -> None:
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def settle(self) -> None:
        gc.collect()
        gc.freeze()
        self.freezes += 1
        self._last = time.monotonic()

    def tick(self, idle: bool) -> bool:
        """Collect and freeze if due (idle and ``interval`` passed, or ``backstop`` passed)."""
        waited = time.monotonic() - self._last
        if waited < self.backstop and (not idle or waited < self.interval):
            return False
        self.settle()
        return True
