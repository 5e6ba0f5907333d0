"""examples/two_processes runs end to end: agent process, `hitl approve` from another, agent goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes


def test_two_processes_example_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_processes" / "run_both.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "HITL_STORE"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[operator] approved task cleanup-staging as operator" in out
    assert "[agent]    decided: approve by operator (go ahead)" in out
    assert "[agent]    done" in out and "the hash chain is intact" in out
