"""Fixtures for the LangGraph adapter: a checkpoint file per test and a "person" thread that decides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lg_support
import pytest
from lg_support import Person

from hitl_core import HITLStateMachine


@pytest.fixture(autouse=True)
def _fresh_logs() -> None:
    lg_support.DONE.clear()
    lg_support.STARTS.clear()


@pytest.fixture
def checkpoints(tmp_path: Path) -> str:
    return str(tmp_path / "checkpoints.db")


@pytest.fixture
def person(machine: HITLStateMachine) -> Iterator[Person]:
    who = Person(machine)
    yield who
    who.join()
