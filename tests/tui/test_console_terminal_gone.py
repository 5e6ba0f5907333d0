"""``hitl console`` and ``hitl demo`` end when their terminal goes away (``hitl_tui.terminal_watch``).

Each test runs the real command as its own OS process on a real pseudo-terminal, waits until it
has drawn its screen, then closes the terminal's master side — what a terminal emulator or tmux
does when its window goes. The process is started in a new session that does not own the terminal,
so no hang-up signal reaches it (as with ``make demo`` under a killed tmux): before the fix it read
end-of-file in a loop at 85 % of a core and never ended.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from hitl_tui.terminal_watch import TERMINAL_GONE_STATUS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$]*[A-Za-z]")


def run_until_drawn_then_close_the_terminal(args: list[str], env: dict[str, str], marker: bytes) -> int:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl_core.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    try:
        seen = b""
        give_up = time.monotonic() + 60
        while marker not in seen and time.monotonic() < give_up and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        screen = re.sub(rb" +", b" ", _ESCAPES.sub(b" ", seen))[:3000]
        assert marker in seen, f"no {marker!r} drawn (exit status {proc.poll()}); the screen's text: {screen!r}"
        os.close(master)
        master = -1
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the console was still running 20 s after its terminal closed") from None
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def child_env(tmp_path: Path) -> dict[str, str]:
    # No COLUMNS/LINES: the terminal's own size rules, as in a real window.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_") and k not in ("COLUMNS", "LINES")}
    env.update(
        TERM="xterm-256color",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        TMPDIR=str(tmp_path / "tmp"),
        HOME=str(tmp_path / "home"),
    )
    (tmp_path / "tmp").mkdir()
    (tmp_path / "home").mkdir()
    return env


def test_the_console_ends_when_its_terminal_closes(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    status = run_until_drawn_then_close_the_terminal(
        ["console", "--store", f"sqlite:///{tmp_path / 'hitl.db'}"], env, b"Quit"
    )
    assert status == TERMINAL_GONE_STATUS
    assert (tmp_path / "hitl.db").exists()  # the store is left as it was: only the console ended


def test_the_demo_ends_and_deletes_its_store_when_its_terminal_closes(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    status = run_until_drawn_then_close_the_terminal(["demo"], env, b"Quit")
    assert status == TERMINAL_GONE_STATUS
    assert list((tmp_path / "tmp").glob("hitl-demo-*")) == []  # its temporary store went with it
