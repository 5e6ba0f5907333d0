"""Fixtures for the smolagents guard: real smolagents agents on an offline model, a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hitl_smolagents import SmolagentsApprovals
from smol_helpers import RUNS, TRANSFERS, store_url

from hitl_core import HITLStateMachine


@pytest.fixture(autouse=True)
def _forget_earlier_runs() -> None:
    RUNS.clear()


@pytest.fixture
def transfers() -> list[tuple[str, int]]:
    TRANSFERS.clear()
    return TRANSFERS


@pytest.fixture
def agent_machine(tmp_path: Path) -> Iterator[HITLStateMachine]:
    """The agent's own machine (its sync facade is what the guard blocks on)."""
    machine = HITLStateMachine(store_url(tmp_path), load_entrypoints=False)
    yield machine
    machine.sync.close_machine()


@pytest.fixture
def approvals(agent_machine: HITLStateMachine) -> SmolagentsApprovals:
    return SmolagentsApprovals(agent_machine, run_id="r1")
