"""Ctrl-C reaches an agent blocked on the sync facade, whichever of its threads the kernel hands it to.

A signal sent to a process goes to any one of its threads that does not block it. When that is not
the main thread (the store's writer, the facade's own loop), CPython only sets a flag for the main
thread to read when it next runs Python code; a main thread blocked without end in
``Future.result()`` never did, and the agent ignored Ctrl-C until a person decided (found by a
loaded CI run: the smolagents agent did not stop within 90 s of SIGINT). Each case runs in a child
process: the signal games stay out of the test runner.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import signal, sys, threading, time
    from hitl_core import HITLStateMachine

    machine = HITLStateMachine(sys.argv[1], load_entrypoints=False)
    sync = machine.sync
    sync.start_task("t")
    sync.request_approval("t", "deploy?")
    target = sys.argv[2]

    def poke():
        time.sleep(0.5)
        names = {t.name: t.ident for t in threading.enumerate()}
        ident = names[target]
        signal.pthread_kill(ident, signal.SIGINT)  # as the kernel may: to a thread that is not main

    threading.Thread(target=poke, name="poker", daemon=True).start()
    started = time.monotonic()
    try:
        sync.wait_for_decision("t", timeout=60)
        print("DECIDED?!")
    except KeyboardInterrupt:
        print(f"INTERRUPTED {time.monotonic() - started:.2f}")
    """
)


@pytest.mark.parametrize(
    ("store", "thread"),
    [("memory://", "hitl-sync"), ("sqlite", "hitl-sqlite-writer"), ("sqlite", "hitl-sync")],
)
def test_ctrl_c_given_to_another_thread_still_interrupts_a_blocking_wait(
    tmp_path: Path, store: str, thread: str
) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}" if store == "sqlite" else store
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, thread],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert child.returncode == 0, child.stderr[-3000:]
    word, seconds = child.stdout.split()
    assert word == "INTERRUPTED", child.stdout
    # the signal comes 0.5 s in; the main thread reads it at its next slice (0.2 s), not at the
    # wait's 60 s timeout (generous for a loaded machine, far from the 60 s it took before)
    assert float(seconds) < 20, child.stdout
