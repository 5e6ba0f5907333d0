"""Fixtures for the audit tests: a store with a realistic history, key pairs, the real ``hitl``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, audit

ROOT = Path(__file__).resolve().parents[2]
#: The console script pip installed next to this interpreter: what an operator runs.
HITL = Path(sys.executable).parent / "hitl"


async def make_history(url: str) -> None:
    """Three tasks through the real machine: t1 approved by alice and completed, t2 waiting, t3
    rejected by bob. Events 1-12, interleaved as agents would interleave them."""
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for task_id in ("t1", "t2", "t3"):
            await m.start_task(task_id, agent="billing", metadata={"customer": 7})
        for task_id in ("t1", "t2", "t3"):
            await m.request_approval(task_id, f"refund for {task_id}?", args={"amount": 120})
        await m.approve("t1", "alice", comment="ok")
        await m.reject("t3", "bob", "too much")
        await m.resume("t1", step="refund")
        await m.complete("t1", {"refunded": 120})
        await m.resume("t3")
        await m.fail("t3", "gave up")


async def add_events(url: str, task_id: str = "t4") -> None:
    """More honest activity: another task starts and asks (two events: 13-14 after ``make_history``)."""
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        await m.start_task(task_id, agent="billing")
        await m.request_approval(task_id, f"refund for {task_id}?")


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


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture
def hitl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``hitl`` executable in its own process."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HITL), *args], capture_output=True, text=True, env=child_env(), cwd=cwd or ROOT, timeout=timeout
        )

    return run
