"""Fixtures for the audit tests: a store with a realistic history, key pairs, the real ``hitl``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from audit_helpers import Target, child_env, make_history, postgres_target, sqlite_target

from hitl_core import audit

ROOT = Path(__file__).resolve().parents[2]
#: The console script pip installed next to this interpreter: what an operator runs.
HITL = Path(sys.executable).parent / "hitl"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hitl.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    url = f"sqlite:///{db_path}"
    asyncio.run(make_history(url))
    return url


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """(private key file, public key file), as ``hitl audit keygen`` writes them."""
    (tmp_path / "keys").mkdir()
    private, public, _ = audit.generate_keypair(tmp_path / "keys")
    return private, public


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "other-keys").mkdir()
    private, public, _ = audit.generate_keypair(tmp_path / "other-keys")
    return private, public


@pytest.fixture
def hitl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``hitl`` executable in its own process."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HITL), *args], capture_output=True, text=True, env=child_env(), cwd=cwd or ROOT, timeout=timeout
        )

    return run


# -- a store on each durable backend, and the forger's way into its database ----------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    made = sqlite_target(tmp_path) if request.param == "sqlite" else postgres_target(tmp_path)
    asyncio.run(make_history(made.url))
    return made
