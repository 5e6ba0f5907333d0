"""A store with a long history: the console loads every unfinished task and only the recent finished.

A month of a fleet is a million finished tasks; loading them all took 147 s before the first row
was drawn (``benchmarks/bench_issue14.py``, big-store rows). What must hold whatever the window:
no unfinished task is ever left out, however old, and the header says the finished are partial.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hitl_core import HITLStateMachine, TaskState

from .helpers import make_app, poll, settle, waiting


async def finished_fleet(machine: HITLStateMachine, n: int) -> None:
    for i in range(n):
        await machine.start_task(f"done-{i:02d}")
        await machine.complete(f"done-{i:02d}")


async def test_unfinished_tasks_of_any_age_and_only_the_recent_finished_are_loaded(machine: HITLStateMachine) -> None:
    await waiting(machine, "ancient-waiting")  # seq 1-2: older than any finished task
    await machine.start_task("ancient-running")  # seq 3
    await finished_fleet(machine, 30)  # seq 4-63
    await machine.start_task("old-failed")
    await machine.fail("old-failed", "boom")  # seq 65
    await machine.start_task("recent-done")
    await machine.complete("recent-done")  # seq 67
    app = make_app(machine, recent_finished_events=4)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        assert app.finished_since == 63
        assert set(app.view.rows) == {"ancient-waiting", "ancient-running", "old-failed", "recent-done"}
        assert app.view.counts[TaskState.AWAITING_APPROVAL] == 1
        summary = str(app.query_one("#summary").render())
        assert "done 1 (recent)" in summary and "failed 1 (recent)" in summary, summary
        # what finishes from now on is shown as it happens, whatever the window
        await machine.complete("ancient-running")
        await poll(pilot, lambda: app.view.rows["ancient-running"].state is TaskState.COMPLETED)


async def test_a_store_shorter_than_the_window_is_loaded_whole(machine: HITLStateMachine) -> None:
    await waiting(machine, "w")
    await finished_fleet(machine, 30)
    app = make_app(machine, recent_finished_events=1_000)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        assert app.finished_since == 0 and len(app.view.rows) == 31
        assert "(recent)" not in str(app.query_one("#summary").render())


async def test_no_window_loads_every_finished_task(machine: HITLStateMachine) -> None:
    await finished_fleet(machine, 30)
    app = make_app(machine, recent_finished_events=None)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        assert len(app.view.rows) == 30 and app.finished_since == 0


def test_a_negative_finished_window_is_refused_before_the_console_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_core.cli",
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "console",
            "--finished",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--finished must be 0 (all) or a positive number of events" in done.stderr
    assert not (tmp_path / "s.db").exists(), "refused before anything was opened"
