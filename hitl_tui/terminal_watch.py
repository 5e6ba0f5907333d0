"""End ``hitl console`` / ``hitl demo`` when their terminal goes away, instead of spinning forever.

Why: when the terminal closes without the kernel's hang-up reaching the console (tmux's
``kill-server`` with the console under ``make``, a pty whose session leader is another process),
Textual's input thread reads end-of-file in a loop (a core at 85 %) and the main thread blocks
writing to a terminal that no longer exists. Seen on this project's machine: an orphaned
``hitl demo`` ran for 20 minutes at 85 % CPU and slowed the test suite beside it to half speed.

A daemon thread looks once a second whether the console's terminal is still a terminal (a closed
pty is not: ``isatty`` turns false). When it is gone nobody can see or type into the console, so
the process ends at once with 129 (128 + SIGHUP), after ``cleanup`` (the demo deletes its store).
Ending abruptly is safe: every decision is committed in one transaction or not at all, which is
what the kill -9 tests hold the stores to.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

#: The exit status when the terminal went away: what a shell reports for SIGHUP.
TERMINAL_GONE_STATUS = 129


def exit_when_terminal_closes(
    fd: int, cleanup: Callable[[], None] | None = None, interval: float = 1.0
) -> threading.Thread | None:
    """Watch ``fd`` (the console's terminal); None if it is not a terminal to begin with."""
    if not os.isatty(fd):
        return None

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.isatty(fd):
                continue
            try:
                if cleanup is not None:
                    cleanup()
            finally:
                os._exit(TERMINAL_GONE_STATUS)

    thread = threading.Thread(target=watch, name="hitl-terminal-watch", daemon=True)
    thread.start()
    return thread
