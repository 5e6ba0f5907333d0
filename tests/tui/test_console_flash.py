"""The flash line: a refusal stays long enough to be read; digit keys follow the dwell rule."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hitl_core import HITLStateMachine, TaskState
from hitl_core.stores.memory import MemoryStore

from .helpers import burst, make_app, poll, waiting
from .test_console_shift import started, state

S = TaskState


class GatedStore(MemoryStore):
    """A real in-memory store whose appends wait while ``gate`` is clear (a slow database)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def append(self, event: Any, task: Any, expected_version: Any) -> None:
        await self.gate.wait()
        await super().append(event, task, expected_version)


async def test_a_refusal_stays_visible_when_the_key_before_it_succeeds_a_moment_later() -> None:
    store = GatedStore()
    machine = HITLStateMachine(store, load_entrypoints=False)
    await waiting(machine, "t1")
    await waiting(machine, "t2")
    app = make_app(machine, refusal_seconds=1.5, advance=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "t1")
        store.gate.clear()  # the first approval waits at the store
        burst(app, "a")
        await poll(pilot, lambda: "t1" in app.in_flight)
        burst(app, "a")  # the second tap, on the same task: refused
        await poll(pilot, lambda: "still being recorded" in app.flash_text)
        refused_at = time.monotonic()  # a moment after the refusal was drawn
        refusal = app.flash_text
        store.gate.set()  # now the first key's approval commits and says so
        await poll(pilot, lambda: not app.in_flight)
        assert (await machine.get_task("t1")).state is S.APPROVED  # type: ignore[union-attr]
        # the success waits until the refusal has had its time on screen
        while time.monotonic() - refused_at < 1.3:
            assert app.flash_text == refusal
            await pilot.pause(0.05)
        await poll(pilot, lambda: app.flash_text.startswith("✓ approved t1"))  # then it is said


async def test_a_second_refusal_replaces_the_first_at_once(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine, refusal_seconds=30)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        app.set_flash("✗ first refusal", "bold red")
        app.set_flash("✗ second refusal", "bold red")
        assert app.flash_text == "✗ second refusal"
        app.set_flash("showing all tasks")  # not a refusal: waits its turn
        assert app.flash_text == "✗ second refusal"


async def test_digit_key_under_the_dwell_rule_is_refused_for_a_task_just_moved_under_the_cursor(
    machine: HITLStateMachine,
) -> None:
    await waiting(machine, "deploy-0142", "Deploy 1.42 to eu-west", options=["ship", "hold"])
    await waiting(machine, "billing-0155", "Refund order #88121", options=["refund", "deny"])
    app = make_app(machine, dwell=2.0)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "deploy-0142")
        below = app.view.order[app.view.index["deploy-0142"] + 1]
        burst(app, "j", "1")
        await poll(pilot, lambda: app.flash_text.startswith("✗ not decided"))
        assert below in app.flash_text
        assert await state(machine, "billing-0155") is S.AWAITING_APPROVAL
        assert await state(machine, "deploy-0142") is S.AWAITING_APPROVAL
        await poll(pilot, app.ready_to_decide, seconds=30)
        burst(app, "1")  # looked long enough: now option 1 is chosen
        await poll(pilot, lambda: app.view.rows[below].state is S.APPROVED)
        task = await machine.get_task(below)
        assert task is not None and task.decision is not None and task.decision.option in ("ship", "refund")


async def test_the_operators_own_decision_is_drawn_at_once_not_at_the_next_batch(machine: HITLStateMachine) -> None:
    """The batch timer is off (an hour): the approved row is drawn from the decision's own
    committed snapshot, by the time the flash line says it was approved."""
    await waiting(machine, "t1")
    await waiting(machine, "t2")
    app = make_app(machine, flush_interval=3600, follow=False, advance=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "t1")
        burst(app, "a")
        await poll(pilot, lambda: app.flash_text.startswith("✓ approved t1"))
        assert app.view.rows["t1"].state is S.APPROVED
        line = app.table._render_row(app.view.rows["t1"], 160, False, app.clock()).text
        assert "approved" in line
