"""Fixtures for the SQLite tests: a fresh database URL, real child processes, the real CLI."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

AGENT = Path(__file__).with_name("proc_agent.py")
ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment of a child process: this interpreter's packages, no stray store setting."""
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A running child process whose stdout lines can be awaited with a timeout."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, prefix: str, timeout: float = 60) -> str:
        """The first line starting with ``prefix``; fails with what the child said if none comes."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} from {self.args} within {timeout}s; saw {self.seen}") from None
            if line is None:
                self.proc.wait(5)
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(
                    f"{self.args} exited ({self.proc.returncode}) before {prefix!r}; "
                    f"saw {self.seen}; stderr: {err[-2000:]}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hitl.db'}"


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    """``spawn("ask", url, "job")`` starts tests/sqlite/proc_agent.py in its own process; all are
    killed at the end of the test whatever happened."""
    children: list[Child] = []

    def start(*args: str) -> Child:
        child = Child([sys.executable, str(AGENT), *args])
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def hitl_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``hitl`` command line in its own process."""

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hitl_core.cli", *args],
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=ROOT,
            timeout=timeout,
        )

    return run
