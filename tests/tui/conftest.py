"""Fixtures for the console tests: a machine on a real in-memory store and frozen event times.

Why freeze two clocks? The console's age and countdown columns read the app's injected clock
(``helpers.frozen_clock``); the machine stamps events with ``hitl_core.machine.now_us``.
Snapshot tests pin both so every run draws the same screen.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from hitl_core import HITLStateMachine

from .helpers import FROZEN_NOW


@pytest.fixture
def frozen_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Events are stamped 10 minutes before FROZEN_NOW, one second apart."""
    ticks = itertools.count()
    start = int((FROZEN_NOW - 600) * 1_000_000)
    monkeypatch.setattr("hitl_core.machine.now_us", lambda: start + next(ticks) * 1_000_000)
    yield


@pytest.fixture
def machine() -> HITLStateMachine:
    return HITLStateMachine("memory://", load_entrypoints=False)
