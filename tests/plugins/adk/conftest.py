"""Fixtures for the Google ADK adapter: a fresh log of what the tools did."""

from __future__ import annotations

from typing import Any

import adk_support
import pytest


@pytest.fixture(autouse=True)
def done() -> list[tuple[str, dict[str, Any]]]:
    adk_support.DONE.clear()
    adk_support.FAIL_NEXT.clear()
    return adk_support.DONE
