"""One table of actions: bindings, footer, palette, help and ``check_action`` all come from it."""

from __future__ import annotations

import pytest
from textual.binding import Binding

from hitl_core import HITLStateMachine, TaskState
from hitl_core.transitions import allowed_actions
from hitl_tui import ConsoleApp
from hitl_tui.actions import ACTIONS, BY_NAME, DECIDING, states_for
from hitl_tui.keymap import KeymapError
from hitl_tui.widgets import ConsoleCommands, KeyFooter

from .helpers import make_app, select, settle, waiting


def test_every_keyed_action_is_a_binding_with_its_id_key_and_help() -> None:
    bound = {b.id: b for b in ConsoleApp.BINDINGS if isinstance(b, Binding)}
    keyed = [a for a in ACTIONS if a.key]
    assert set(bound) == {a.id for a in keyed}
    for spec in keyed:
        binding = bound[spec.id]
        assert (binding.key, binding.action, binding.description, binding.show) == (
            spec.key,
            spec.action,
            spec.label,
            spec.show,
        )
        assert binding.tooltip == spec.help


def test_action_ids_are_unique() -> None:
    ids = [a.id for a in ACTIONS]
    assert len(ids) == len(set(ids))


def test_deciding_actions_apply_to_the_states_the_transition_table_allows() -> None:
    for spec in ACTIONS:
        if spec.transition is None:
            continue
        expected = {s for s in TaskState if spec.transition in allowed_actions(s)}
        assert spec.states == expected, spec.id
    assert states_for("pause") == {TaskState.RUNNING}
    assert states_for("resume") == {TaskState.APPROVED, TaskState.REJECTED}
    assert {"approve", "reject", "pause", "resume", "option", "approve_marked"} <= DECIDING


@pytest.mark.parametrize(
    ("state", "possible"),
    [
        (TaskState.RUNNING, {"pause", "mark", "history"}),
        (TaskState.AWAITING_APPROVAL, {"approve", "reject", "edit", "respond", "mark", "history"}),
        (TaskState.APPROVED, {"resume", "mark", "history"}),
        (TaskState.COMPLETED, {"mark", "history"}),
    ],
)
async def test_check_action_offers_what_the_selected_tasks_state_allows(
    machine: HITLStateMachine, state: TaskState, possible: set[str]
) -> None:
    await waiting(machine, "t1") if state is not TaskState.RUNNING else await machine.start_task("t1")
    if state in (TaskState.APPROVED, TaskState.COMPLETED):
        await machine.approve("t1", "bob")
    if state is TaskState.COMPLETED:
        await machine.resume("t1")
        await machine.complete("t1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        assert app.view.rows["t1"].state is state
        task_actions = ["approve", "reject", "edit", "respond", "resume", "pause", "mark", "history"]
        offered = {name for name in task_actions if app.check_action(name, ())}
        assert offered == possible
        # the footer shows exactly the shown ones, the palette offers exactly the possible ones
        footer = app.query_one(KeyFooter).render().plain
        for name in task_actions:
            spec = BY_NAME[name]
            if spec.show:
                assert (f" {spec.label} " in footer) == (name in possible), name
        palette = {name for name, _, _ in ConsoleCommands(app.screen)._available()}
        for name in task_actions:
            spec = BY_NAME[name]
            if spec.palette:
                assert (spec.palette in palette) == (name in possible), name


async def test_help_lists_every_action_of_the_table_by_id(machine: HITLStateMachine) -> None:
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        rows = {row[2]: row for row in app.binding_rows()}
        for spec in ACTIONS:
            if spec.key:
                assert rows[spec.id][1] == spec.help


def test_a_keymap_putting_two_table_actions_on_one_key_names_both(machine: HITLStateMachine) -> None:
    with pytest.raises(KeymapError) as caught:
        ConsoleApp(machine, actor="alice", keymap={"view.history": "a"})
    assert "decide.approve" in str(caught.value) and "view.history" in str(caught.value)
    assert "'a'" in str(caught.value)


async def test_the_console_says_waiting_never_pending(machine: HITLStateMachine) -> None:
    """Tasks awaiting a person are "waiting" everywhere the operator reads (PENDING tasks, not
    started yet, are "created")."""
    await waiting(machine, "w1")
    await machine.create_task("c1")
    app = make_app(machine)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot, app)
        words = [
            app.query_one("#summary").text.plain,  # type: ignore[attr-defined]
            app.query_one(KeyFooter).render().plain,
            " ".join(f"{row[0]} {row[1]}" for row in app.binding_rows()),
            " ".join(a.palette or "" for a in ACTIONS),
            " ".join(app.table._render_row(r, 200, False, app.clock()).text for r in app.view.rows.values()),
        ]
        text = " ".join(words).lower()
        assert "pending" not in text
        assert "waiting 1" in text and "created" in text and "waiting only" in text


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light", "solarized-light", "nord", "gruvbox"])
def test_the_four_severities_have_four_colours_in_each_theme(theme: str, machine: HITLStateMachine) -> None:
    from hitl_core import Severity
    from hitl_tui.theme import scheme_for

    app = ConsoleApp(machine, actor="alice")
    app.theme = theme
    scheme = scheme_for(app.get_css_variables(), app.current_theme.dark)
    colours = {scheme.severity[s].color for s in Severity}
    assert len(colours) == 4, colours
    # and none of them is the text colour of the theme (a severity must stand out)
    assert scheme.base.color not in colours
