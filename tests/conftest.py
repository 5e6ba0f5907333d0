"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hitl_core import HITLStateMachine


@pytest.fixture
async def machine() -> AsyncIterator[HITLStateMachine]:
    """A machine on a fresh in-memory store, without entry-point plugins (tests stay hermetic)."""
    m = HITLStateMachine("memory://", load_entrypoints=False)
    yield m
    await m.close()
