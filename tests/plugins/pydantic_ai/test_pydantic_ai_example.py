"""examples/pydantic_ai_refund.py runs offline as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.processes
def test_refund_example_runs_to_the_end_with_a_stand_in_reviewer(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "examples/pydantic_ai_refund.py",
            "--store",
            f"sqlite:///{tmp_path / 'hitl.db'}",
            "--decide-for-me",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "refunded 35 EUR on A-1001" in out.stdout and "refunded 100 EUR on A-1002" in out.stdout
    assert "rejected by stand-in-reviewer: the customer has an open order" in out.stdout
    assert "the Visa ending 4242" in out.stdout
