"""An operator's shift, reproduced: no key decides a task the operator did not see.

Each test replays what an on-call operator ran into (issue 18). They run on the real batch timer
(no direct calls to the console's internals), send keys as one burst where the operator's keys
arrived as one (a paste, SSH bundling keystrokes), and poll for conditions instead of sleeping.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from escalating import escalate
from textual.pilot import Pilot
from textual.widgets import Button

from hitl_core import HITLStateMachine, TaskState
from hitl_tui import ConsoleApp
from hitl_tui.app import KeyFooter
from hitl_tui.cli import default_keys
from hitl_tui.keymap import KeymapError, load_keymap
from hitl_tui.screens import ConfirmScreen, ReasonScreen

from .helpers import burst, make_app, poll, waiting

S = TaskState


def footer(app: ConsoleApp) -> str:
    return app.query_one(KeyFooter).render().plain


async def started(pilot: Pilot[Any], app: ConsoleApp, task_id: str | None = None) -> None:
    """Loaded, and (when given) ``task_id`` selected and shown long enough to decide on."""
    await poll(pilot, lambda: app.loaded.is_set() and app.table.cursor_key is not None)
    if task_id is not None:
        app.table.select(task_id)
        await poll(pilot, lambda: app.table.cursor_key == task_id and app.ready_to_decide())


async def state(machine: HITLStateMachine, task_id: str) -> TaskState:
    task = await machine.get_task(task_id)
    assert task is not None
    return task.state


async def test_double_tap_while_the_list_moves_never_decides_the_task_that_slid_under_the_cursor(
    machine: HITLStateMachine,
) -> None:
    await waiting(machine, "deploy-0142", "Deploy 1.42 to eu-west", agent="deploy-pilot")
    await waiting(machine, "billing-0155", "Refund order #88121", agent="billing-bot")
    app = make_app(machine, dwell=0.3)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        app.action_set_state_filter("waiting")
        await started(pilot, app, "deploy-0142")
        burst(app, "a", "a")  # a double tap: both keys read before anything is redrawn
        await poll(pilot, lambda: app.view.rows["deploy-0142"].state is S.APPROVED)
        await poll(pilot, lambda: "deploy-0142" not in app.view.index and app.table.cursor_key == "billing-0155")
        # the second tap, whether it came while the first was in flight or after the list moved,
        # decided nothing; once the dwell has passed the billing task is still waiting
        await poll(pilot, app.ready_to_decide)
        assert await state(machine, "billing-0155") is S.AWAITING_APPROVAL
        # and a tap that arrives just after the row slid under the cursor is refused, naming it
        await poll(pilot, lambda: not app.in_flight)
        app.table.select("billing-0155")
        app.action_set_state_filter("all")
        app.action_set_state_filter("waiting")
        app.table.select("billing-0155")
        await pilot.pause()
        assert app.table.cursor_key == "billing-0155"


async def test_a_key_right_after_the_cursor_moved_is_refused_and_names_the_new_task(
    machine: HITLStateMachine,
) -> None:
    await waiting(machine, "deploy-0142", "Deploy 1.42 to eu-west", agent="deploy-pilot")
    await waiting(machine, "billing-0155", "Refund order #88121", agent="billing-bot")
    app = make_app(machine, dwell=2.0)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "deploy-0142")
        burst(app, "j", "a")
        await poll(pilot, lambda: app.flash_text.startswith("✗ not approved"))
        assert "billing-0155" in app.flash_text
        assert await state(machine, "billing-0155") is S.AWAITING_APPROVAL
        assert await state(machine, "deploy-0142") is S.AWAITING_APPROVAL
        await poll(pilot, app.ready_to_decide, seconds=30)
        burst(app, "a")  # looked long enough: now the key acts
        await poll(pilot, lambda: app.view.rows["billing-0155"].state is S.APPROVED)


async def test_g_j_a_while_the_top_row_expires_is_refused(machine: HITLStateMachine) -> None:
    from .helpers import deadline_in

    await waiting(machine, "ops-0134", "Restart the queue", deadline=deadline_in(-5))
    await waiting(machine, "quote-0135", "Send the renewal quote", agent="support-7")
    await waiting(machine, "data-0136", "Drop the staging table", agent="data-janitor")
    app = make_app(machine, dwell=1.0)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        app.action_set_state_filter("waiting")
        await started(pilot, app, "quote-0135")
        assert app.view.order[:2] == ["ops-0134", "quote-0135"], "the deadline sorts first"
        burst(app, "g")
        await poll(pilot, lambda: app.table.cursor_key == "ops-0134")
        await machine.expire("ops-0134", force=True)  # the top row expires while the operator's keys travel
        await poll(pilot, lambda: "ops-0134" not in app.view.index)
        assert app.table.cursor_key == "quote-0135", "the cursor parked at its position"
        burst(app, "j", "a")
        await poll(pilot, lambda: app.flash_text.startswith("✗ not approved"))
        assert "data-0136" in app.flash_text
        assert await state(machine, "data-0136") is S.AWAITING_APPROVAL
        assert await state(machine, "quote-0135") is S.AWAITING_APPROVAL


async def test_burst_slash_data_goes_into_the_filter(machine: HITLStateMachine) -> None:
    await waiting(machine, "deploy-0007", "Deploy to prod", agent="deploy-pilot")
    await waiting(machine, "data-0001", "Vacuum the data lake", agent="data-janitor")
    app = make_app(machine)  # no dwell: the filter box alone must catch the keys
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "deploy-0007")
        burst(app, "/", *"data")
        await poll(pilot, lambda: app.view.text_filter == "data")
        assert app.view.order == ["data-0001"]
        assert await state(machine, "deploy-0007") is S.AWAITING_APPROVAL
        burst(app, "escape", "/", *"st")
        await poll(pilot, lambda: app.view.text_filter == "st")
        assert app.view.sort_column == "attention", "the s went into the filter, not to the sort key"


async def test_reject_reason_typed_before_the_dialog_has_focus_never_approves(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", "Refund twice")
    await waiting(machine, "t2", "Another request")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "t1")
        burst(app, "r", *"bad amount", "enter")  # no pause: the dialog is still opening
        await poll(pilot, lambda: app.view.rows["t1"].state is S.REJECTED)
        task = await machine.get_task("t1")
        assert task is not None and task.decision is not None and task.decision.message == "bad amount"
        assert await state(machine, "t2") is S.AWAITING_APPROVAL


async def test_keys_typed_after_a_refused_reject_are_dropped_not_run(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", "Refund twice")
    await waiting(machine, "t2", "Another request")
    app = make_app(machine, dwell=2.0)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "t1")
        burst(app, "j", "r", *"a bad amount")  # r is refused (the cursor just moved): its text is not run
        await poll(pilot, lambda: "ignored" in app.flash_text)
        assert not isinstance(app.screen, ReasonScreen)
        assert await state(machine, "t1") is S.AWAITING_APPROVAL
        assert await state(machine, "t2") is S.AWAITING_APPROVAL


@pytest.mark.parametrize("view", ["waiting", "active", "all"])
async def test_cursor_after_a_decision_in_each_view(machine: HITLStateMachine, view: str) -> None:
    await waiting(machine, "first", "First request")
    await waiting(machine, "second", "Second request")
    await waiting(machine, "third", "Third request")
    await machine.start_task("done-1")
    await machine.complete("done-1", {"ok": True})
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        app.action_set_state_filter(view)
        await started(pilot, app, "first")
        burst(app, "a")
        await poll(pilot, lambda: app.flash_text.startswith("✓ approved first"))
        assert app.flash_text == "✓ approved first · next: second (medium)"
        await poll(pilot, lambda: app.view.rows["first"].state is S.APPROVED)
        assert app.table.cursor_key == "second", f"{view}: the cursor is on the next waiting task"
        burst(app, "a")
        await poll(pilot, lambda: app.flash_text.startswith("✓ approved second"))
        assert app.flash_text == "✓ approved second · next: third (medium)"
        await poll(pilot, lambda: app.view.rows["second"].state is S.APPROVED)
        assert app.table.cursor_key == "third"


async def test_selected_task_leaving_the_view_parks_the_cursor_and_says_so(machine: HITLStateMachine) -> None:
    await waiting(machine, "a-1", "One")
    await waiting(machine, "a-2", "Two")
    await waiting(machine, "a-3", "Three")
    # A dwell far longer than the test: however slowly a loaded machine runs it, the task that
    # took a-2's place has not been on screen long enough when `a` arrives.
    app = make_app(machine, dwell=600)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        app.action_set_state_filter("waiting")
        app.table.select("a-2")
        await poll(pilot, lambda: app.table.cursor_key == "a-2")
        await machine.approve("a-2", "bob", source="console")  # a colleague decides it
        await poll(pilot, lambda: "a-2" not in app.view.index)
        assert app.table.cursor_key == "a-3" and app.table.cursor_index == 1
        await poll(pilot, lambda: "a-2 left the view" in app.flash_text)
        assert "on a-3" in app.flash_text
        burst(app, "a")  # and the dwell rule protects the task that took its place
        await poll(pilot, lambda: app.flash_text.startswith("✗ not approved"))
        assert await state(machine, "a-3") is S.AWAITING_APPROVAL


async def test_freeze_keeps_rows_in_place(machine: HITLStateMachine) -> None:
    from .helpers import deadline_in

    await waiting(machine, "slow", "No hurry", severity="low")
    await waiting(machine, "mid", "Normal")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        burst(app, "z")
        await poll(pilot, lambda: app.view.frozen)
        before = list(app.view.order)
        await waiting(machine, "hot", "Urgent", severity="critical", deadline=deadline_in(20))
        await poll(pilot, lambda: "hot" in app.view.index)
        assert app.view.order == [*before, "hot"], "frozen: new rows go to the end, nothing moves"
        burst(app, "z")
        await poll(pilot, lambda: not app.view.frozen)
        assert app.view.order[0] == "hot"


async def test_footer_after_reject_offers_resume(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", "Refund twice")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "t1")
        assert "Approve" in footer(app) and "Resume" not in footer(app)
        burst(app, "r", *"no", "enter")
        await poll(pilot, lambda: app.view.rows["t1"].state is S.REJECTED)
        await poll(pilot, lambda: "Resume" in footer(app))
        text = footer(app)
        assert "Approve" not in text and "Reject" not in text, text
        assert "R Resume" in text


async def test_footer_after_a_critical_approval(machine: HITLStateMachine) -> None:
    await waiting(machine, "crit-1", "Grant admin", severity="critical")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "crit-1")
        burst(app, "a")
        await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await poll(pilot, lambda: app.screen.query("#ok"))
        app.screen.query_one("#ok", Button).press()
        await poll(pilot, lambda: app.view.rows["crit-1"].state is S.APPROVED)
        await poll(pilot, lambda: "Resume" in footer(app))
        text = footer(app)
        assert "Approve" not in text and "Mark" in text and "Filter" in text, text


def test_keymap_with_two_actions_on_one_key_is_an_error(tmp_path: Path, machine: HITLStateMachine) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keymap]\n"decide.approve" = "r"\n', encoding="utf-8")
    with pytest.raises(KeymapError, match=r"key 'r' is bound to two actions, decide.approve and decide.reject"):
        load_keymap(path, default_keys())
    with pytest.raises(KeymapError, match=r"decide.approve and decide.reject|decide.reject and decide.approve"):
        ConsoleApp(machine, actor="alice", keymap={"decide.approve": "r"})
    # moving both is fine
    path.write_text('[keymap]\n"decide.approve" = "r"\n"decide.reject" = "x"\n', encoding="utf-8")
    assert load_keymap(path, default_keys()) == {"decide.approve": "r", "decide.reject": "x"}


async def test_filter_by_field_negation_and_regex(machine: HITLStateMachine) -> None:
    await waiting(machine, "c-1", "Grant admin", severity="critical", agent="infra-guard")
    await waiting(machine, "h-1", "Deploy", severity="high", agent="deploy-pilot", framework="crewai")
    await waiting(machine, "l-1", "Search", severity="low", agent="research-1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app)
        for text, expected in [
            ("sev:critical", ["c-1"]),
            ("high", ["h-1"]),
            ("-sev:low", ["c-1", "h-1"]),
            ("!sev:low agent:deploy", ["h-1"]),
            ("framework:crewai", ["h-1"]),
            ("agent:/^(infra|research)/", ["c-1", "l-1"]),
            ("state:waiting", ["c-1", "h-1", "l-1"]),
        ]:
            burst(app, "escape", "/", *text, "enter")
            await poll(pilot, lambda text=text: app.view.text_filter == text and not app.query_one("#filter").has_focus)
            assert sorted(app.view.order) == expected, text
        burst(app, "escape", "/", *"agent:/[/")
        await poll(pilot, lambda: "not a valid regular expression" in app.flash_text)
        assert app.view.text_filter == "agent:/[", "a bad regex leaves the filter as it was"


def test_dwell_setting_that_is_not_a_number_of_seconds_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from hitl_tui.cli import HITLConsoleConfigError, console_dwell

    monkeypatch.setenv("HITL_CONSOLE_DWELL", "0.5")
    assert console_dwell() == 0.5
    monkeypatch.delenv("HITL_CONSOLE_DWELL")
    assert console_dwell() == 0.3
    for bad in ("soon", "-1", "60"):
        monkeypatch.setenv("HITL_CONSOLE_DWELL", bad)
        with pytest.raises(
            HITLConsoleConfigError, match=r"HITL_CONSOLE_DWELL=.*must be a number of seconds from 0 to 5"
        ):
            console_dwell()


async def test_dialog_answer_survives_an_expiry(machine: HITLStateMachine) -> None:
    from textual.widgets import Button, Input, Static

    from .helpers import deadline_in

    await waiting(
        machine,
        "q1",
        "Which region should the tenant live in?",
        kind="question",
        action=None,
        args={},
        options=["us-east", "eu-west"],
        allowed_decisions=["respond", "reject"],
        deadline=deadline_in(45),
    )
    app = make_app(machine)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app, "q1")
        burst(app, "m", *"eu-west, because the customer is in Berlin")
        await poll(pilot, lambda: isinstance(app.screen, ReasonScreen))
        dialog = app.screen
        assert isinstance(dialog, ReasonScreen)
        await poll(pilot, lambda: dialog.query("#dialog-context"))
        context = str(dialog.query_one("#dialog-context", Static).render())
        assert "Which region should the tenant live in?" in context and "1 us-east" in context
        assert "45s left, then reject" in str(dialog.query_one("#dialog-status", Static).render())
        box = dialog.query_one("#reason", Input)
        await poll(pilot, lambda: box.value == "eu-west, because the customer is in Berlin")
        await machine.expire("q1", force=True)  # the deadline passes while the operator types
        await poll(pilot, lambda: dialog.outcome != "")
        assert "decided by hitl:timeout (timeout, reject)" in dialog.outcome
        assert "not sent" in str(dialog.query_one("#dialog-status", Static).render())
        assert dialog.query_one("#ok", Button).disabled
        burst(app, "enter")  # enter does not send it, nor close the dialog: the text stays
        await pilot.pause()
        assert app.screen is dialog and box.value == "eu-west, because the customer is in Berlin"
        task = await machine.get_task("q1")
        assert task is not None and task.decision is not None and task.decision.type.value == "timeout"
        burst(app, "escape")
        await poll(pilot, lambda: not isinstance(app.screen, ReasonScreen))


async def test_pause_then_resume_by_the_same_operator() -> None:
    from hitl_core.policies.demo import demo_config

    machine = HITLStateMachine("memory://", config=demo_config("alice"), load_entrypoints=False)
    await machine.start_task("run1", agent="deploy-pilot", framework="crewai", step="execute")
    app = make_app(machine, dwell=0.2)
    async with app.run_test(size=(160, 40)) as pilot:
        await started(pilot, app, "run1")
        assert "p Pause" in footer(app)
        burst(app, "p", *"check the diff first", "enter")
        await poll(pilot, lambda: app.view.rows["run1"].state is S.AWAITING_APPROVAL)
        await poll(pilot, lambda: "R Resume" in footer(app))
        await poll(pilot, app.ready_to_decide)
        burst(app, "R")
        await poll(pilot, lambda: app.view.rows["run1"].state is S.APPROVED)
        task = await machine.get_task("run1")
        assert task is not None and task.decision is not None
        assert task.decision.actor.id == "alice" and task.decision.option == "resume"
        assert app.flash_text.startswith("✓ resumed (pause lifted) run1")


async def test_approving_an_agents_request_of_ones_own_is_still_refused() -> None:
    """Lifting one's own pause is not a loophole: a request an operator made as an agent stays
    under no-self-approval."""
    from hitl_core import NotAuthorizedError
    from hitl_core.policies.demo import demo_config

    machine = HITLStateMachine("memory://", config=demo_config("alice"), load_entrypoints=False)
    await machine.start_task("t1", agent="alice")
    await machine.request_approval("t1", "Let me do it", severity="low")
    with pytest.raises(NotAuthorizedError, match="no self-approval"):
        await machine.approve("t1", "alice")


async def test_quitting_the_demo_asks_first_and_cancel_is_focused(machine: HITLStateMachine) -> None:
    from textual.widgets import Button

    await waiting(machine, "t1")
    app = make_app(machine, quit_warning="The demo's store is deleted when it quits.")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        burst(app, "h")
        await poll(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        burst(app, "q", "q")  # h q q: the history closes, then quit asks
        await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await poll(pilot, lambda: isinstance(app.focused, Button))
        assert app.focused is not None and app.focused.id == "cancel"
        burst(app, "enter")
        await poll(pilot, lambda: app.flash_text == "still here")
        assert app.is_running and not isinstance(app.screen, ConfirmScreen)


async def test_one_alert_line_instead_of_toasts_and_the_bell_only_for_critical(machine: HITLStateMachine) -> None:
    await waiting(machine, "l-1", "Search", severity="low")
    app = make_app(machine)
    rings: list[int] = []
    async with app.run_test(size=(120, 30)) as pilot:
        app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
        await started(pilot, app)
        await waiting(machine, "h-1", "Deploy", severity="high")
        await poll(pilot, lambda: "h-1" in str(app.query_one("#alert").render()))
        assert rings == [], "no bell for a high request"
        await waiting(machine, "c-1", "Grant admin", severity="critical")
        await poll(pilot, lambda: "c-1" in str(app.query_one("#alert").render()))
        assert rings == [1]
        assert "2 alerts in the last minute" in str(app.query_one("#alert").render())
        burst(app, "b")
        await poll(pilot, lambda: app.muted)
        await waiting(machine, "c-2", "Grant root", severity="critical")
        await poll(pilot, lambda: "c-2" in str(app.query_one("#alert").render()))
        assert rings == [1], "muted"
        assert "c-2" in str(app.query_one("#alert").render()) and "muted" in str(app.query_one("#alert").render())


async def test_fifteen_identical_critical_requests_are_rejected_with_one_reason(machine: HITLStateMachine) -> None:
    for i in range(15):
        await waiting(machine, f"dup-{i:02d}", "Grant admin to the build bot", severity="critical")
    await waiting(machine, "other", "Something else", severity="low")
    app = make_app(machine)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        app.table.select("dup-00")
        await poll(pilot, lambda: app.table.cursor_key == "dup-00")
        burst(app, *["space"] * 15)
        await poll(pilot, lambda: len(app.view.marked) == 15)
        assert "other" not in app.view.marked
        burst(app, "X", *"duplicate of INC-4411", "enter")
        await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "15 of the 15 marked tasks are critical" in str(app.screen.message)
        await poll(pilot, lambda: app.screen.query("#ok"))
        app.screen.query_one("#ok", Button).press()
        await poll(pilot, lambda: app.flash_text == "✓ rejected 15 marked task(s)")
        for i in range(15):
            task = await machine.get_task(f"dup-{i:02d}")
            assert task is not None and task.state is S.REJECTED
            assert task.decision is not None and task.decision.message == "duplicate of INC-4411"
        assert await state(machine, "other") is S.AWAITING_APPROVAL


def test_the_four_severities_stay_apart_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: Textual's own filters turn the colours to greys; the four severities must still
    look different (a grey level and a weight each), and a critical severity cell is reversed."""
    from rich.segment import Segment
    from textual.color import Color

    from hitl_core.models import Severity
    from hitl_tui.theme import scheme_for
    from hitl_tui.widgets.task_table import SEVERITY_CELL_STYLE, SEVERITY_STYLE

    monkeypatch.setenv("NO_COLOR", "1")
    app = ConsoleApp(HITLStateMachine("memory://", load_entrypoints=False), actor="alice")
    filters = app.get_line_filters()
    assert filters, "NO_COLOR installs a colour filter"
    app.theme = "textual-light"
    light = scheme_for(app.get_css_variables(), app.current_theme.dark)
    assert not light.dark
    for styles in (SEVERITY_CELL_STYLE, SEVERITY_STYLE, light.severity_cell, light.severity):
        seen = {}
        for severity in Severity:
            segments = [Segment(severity.value, styles[severity])]
            for line_filter in filters:
                segments = line_filter.apply(segments, Color(0, 0, 0))
            style = segments[0].style
            assert style is not None and style.color is not None
            assert style.color.triplet is not None
            r, g, b = style.color.triplet
            assert r == g == b, f"{severity.value} is not grey under NO_COLOR: {style}"
            seen[severity] = (r, bool(style.bold), bool(style.reverse))
        assert len(set(seen.values())) == 4, seen
    critical = SEVERITY_CELL_STYLE[Severity.CRITICAL]
    assert critical.reverse and critical.bold


async def test_quitting_while_a_decision_is_still_being_recorded_asks_first() -> None:
    """A decision on its way to the store must not be cut off by `q`: the console asks, naming it."""
    import asyncio

    from hitl_core.stores.memory import MemoryStore

    class SlowStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()
            self.gate.set()

        async def append(self, event, task, expected_version):  # type: ignore[no-untyped-def]
            await self.gate.wait()
            await super().append(event, task, expected_version)

    store = SlowStore()
    machine = HITLStateMachine(store, load_entrypoints=False)
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, "t1")
        store.gate.clear()  # the approval will wait at the store
        burst(app, "a")
        await poll(pilot, lambda: "t1" in app.in_flight)
        burst(app, "q")
        await poll(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "still being recorded: t1" in app.screen.message.plain  # type: ignore[attr-defined]
        await poll(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
        burst(app, "enter")
        await poll(pilot, lambda: app.flash_text == "still here" or not isinstance(app.screen, ConfirmScreen))
        assert app.is_running
        store.gate.set()
        await poll(pilot, lambda: not app.in_flight)
        assert (await machine.get_task("t1")).state is TaskState.APPROVED  # type: ignore[union-attr]
        burst(app, "q")  # nothing in flight, no warning: quits at once
        await poll(pilot, lambda: not app.is_running)


async def test_age_counts_from_the_request_and_the_header_counts_the_last_hours_expiries_and_escalations(
    machine: HITLStateMachine,
) -> None:
    """A colleague's partial approval does not make a request look new; expiries and escalations
    of the last hour are counted in the header as they happen."""
    from datetime import UTC, datetime, timedelta

    from hitl_tui.app import TextLine

    await machine.start_task("grant")
    await machine.request_approval("grant", "Grant admin", severity="critical", required_approvals=2)
    await waiting(machine, "late", "Rotate the key", deadline=datetime.now(UTC) - timedelta(seconds=1))
    await waiting(machine, "slow", "Restart the queue")
    app = make_app(machine, clock=time.time)
    async with app.run_test(size=(200, 40)) as pilot:
        await started(pilot, app)
        asked = app.view.rows["grant"].requested_at
        await machine.approve("grant", "bob")  # 1 of 2: the task changes, the request does not
        await poll(pilot, lambda: app.view.rows["grant"].version == 3)
        assert app.view.rows["grant"].requested_at == asked
        assert app.view.rows["grant"].updated_at > asked

        def header() -> str:
            return app.query_one("#summary", TextLine).text.plain

        assert "expired 0" in header() and "escalated 0" in header()
        await machine.expire("late")
        await escalate(machine, "slow", ["carol"])
        await poll(pilot, lambda: "expired 1" in header() and "escalated 1" in header())
