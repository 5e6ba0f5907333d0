"""Every core example runs, offline, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_EXAMPLES = ["basic_approval", "parallel_deployments", "rejection", "persistence", "decorators"]


@pytest.mark.parametrize("name", CORE_EXAMPLES)
def test_example_runs(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"examples.{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
