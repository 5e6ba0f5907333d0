"""Fixtures for the Pydantic AI adapter: fresh logs for every test."""

from __future__ import annotations

import pa_support
import pytest


@pytest.fixture(autouse=True)
def _fresh_logs() -> None:
    pa_support.DONE.clear()
    pa_support.SEEN.clear()
    pa_support.METADATA.clear()
