"""Helpers for the policy tests: a machine configured from TOML text, on memory or a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hitl_core import HITLStateMachine
from hitl_core.policies import parse_config

MachineFactory = Callable[..., HITLStateMachine]


@pytest.fixture
async def configured() -> AsyncIterator[MachineFactory]:
    """``configured(toml, store="memory://", plugins=())``: a machine with that hitl.toml (closed after)."""
    made: list[HITLStateMachine] = []

    def make(toml: str, store: str = "memory://", plugins: tuple[object, ...] = ()) -> HITLStateMachine:
        machine = HITLStateMachine(store, plugins=plugins, load_entrypoints=False, config=parse_config(toml))
        made.append(machine)
        return machine

    yield make
    for machine in made:
        await machine.close()
