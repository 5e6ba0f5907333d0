"""No PostgreSQL server: under CI the PostgreSQL tests fail saying why; elsewhere they skip saying why.

Each case runs pytest in a subprocess on one test of tests/postgres and one of the store
conformance suite, with ``HITL_TEST_PG_BINDIR`` pointing at an empty directory (no initdb).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg_cluster import BINDIR_VARIABLE

pytestmark = pytest.mark.processes

ROOT = Path(__file__).parents[2]
SELECTED = [
    "tests/postgres/test_postgres_store.py::test_append_is_compare_and_set",
    "tests/store_conformance/test_store_contract.py::test_append_then_get_returns_snapshot_and_history[postgresql]",
]


def run_without_postgres(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[BINDIR_VARIABLE] = str(empty)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *SELECTED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_selected_tests_exist() -> None:
    """Guards the two cases below: a renamed test would make them pass on 'no tests ran'."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *SELECTED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 tests collected" in result.stdout


def test_under_ci_a_postgres_test_without_a_server_fails_with_the_reason(tmp_path: Path) -> None:
    result = run_without_postgres(tmp_path, ci="true")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "2 errors" in out and "skipped" not in out, out
    assert "CI=true and the PostgreSQL tests cannot run" in out
    assert "PostgreSQL is not installed (no initdb/pg_ctl in" in out and "no-postgres-here" in out


def test_without_ci_a_postgres_test_without_a_server_skips_with_the_reason(tmp_path: Path) -> None:
    result = run_without_postgres(tmp_path, ci=None)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "2 skipped" in out, out
    assert "PostgreSQL is not installed (no initdb/pg_ctl in" in out and "`make pg-server` installs it" in out
