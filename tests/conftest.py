"""Shared fixtures."""

from __future__ import annotations

import pytest

from hitl_core import HITLStateMachine


@pytest.fixture
def machine() -> HITLStateMachine:
    """A machine on a fresh in-memory store, without entry-point plugins (tests stay hermetic)."""
    return HITLStateMachine("memory://", load_entrypoints=False)
