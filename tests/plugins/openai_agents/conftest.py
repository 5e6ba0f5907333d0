"""Fixtures for the OpenAI Agents SDK adapter: offline, no key, tracing off."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

# Before the SDK is imported: its tracing would otherwise try to export spans to the network.
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

import pytest
from agents import Agent, set_tracing_disabled
from hitl_openai_agents import OfflineToolModel
from oa_payments import TRANSFERS, payments_agent

from hitl_core import HITLStateMachine, TaskContext

set_tracing_disabled(True)


@pytest.fixture
def transfers() -> list[tuple[str, int]]:
    TRANSFERS.clear()
    return TRANSFERS


@pytest.fixture
def make_agent() -> Callable[..., tuple[Agent[None], OfflineToolModel]]:
    return payments_agent


@pytest.fixture
def when_pending() -> Callable[..., Awaitable[None]]:
    return _when_pending


async def _when_pending(
    machine: HITLStateMachine, count: int, decide: Callable[[list[TaskContext]], Awaitable[None]], timeout: float = 20.0
) -> None:
    """Wait until ``count`` tasks wait for a decision, then ``decide`` them (as a person would)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        pending = await machine.get_pending_approvals()
        if len(pending) >= count:
            await decide(pending)
            return
        if loop.time() > end:
            raise AssertionError(f"expected {count} pending approvals, saw {len(pending)}")
        await asyncio.sleep(0.01)
