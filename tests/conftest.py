"""Shared fixtures."""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from hitl_core import HITLStateMachine

# The suite runs on a 2-core machine, often beside other work: how fast Hypothesis can draw
# inputs says nothing about the code under test, so slow generation is no failure here.
settings.register_profile("hitl", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("hitl")

# A suite started in the background by a non-interactive shell (`make test &`, a CI runner's
# script, nohup) inherits SIGINT ignored, and an ignored signal stays ignored across exec: every
# agent process a test starts and then sends Ctrl-C would ignore it too, and the test would wait
# out its deadline (seen in loaded runs: `SIGINT 1 []` printed by the smolagents agent). The tests
# are about a person's Ctrl-C at a terminal, where SIGINT is not ignored: restore that here.
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
async def machine() -> AsyncIterator[HITLStateMachine]:
    """A machine on a fresh in-memory store, without entry-point plugins (tests stay hermetic)."""
    m = HITLStateMachine("memory://", load_entrypoints=False)
    yield m
    await m.close()
