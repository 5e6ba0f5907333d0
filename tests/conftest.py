"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, settings

from hitl_core import HITLStateMachine

# The suite runs on a 2-core machine, often beside other work: how fast Hypothesis can draw
# inputs says nothing about the code under test, so slow generation is no failure here.
settings.register_profile("hitl", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("hitl")


@pytest.fixture
async def machine() -> AsyncIterator[HITLStateMachine]:
    """A machine on a fresh in-memory store, without entry-point plugins (tests stay hermetic)."""
    m = HITLStateMachine("memory://", load_entrypoints=False)
    yield m
    await m.close()
