"""Pilot tests: every deciding key and flow of the console, against a real machine and store."""

from __future__ import annotations

from textual.widgets import Button, Input, TextArea

from hitl_core import HITLStateMachine, TaskState
from hitl_tui.screens import ConfirmScreen, EditScreen, ReasonScreen

from .helpers import eventually, make_app, select, settle, waiting

S = TaskState


async def test_approve_key_approves_the_selected_task(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    await waiting(machine, "t2")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t2")
        await pilot.press("a")
        await settle(pilot, app)
        task = await machine.get_task("t2")
        assert task is not None and task.state is S.APPROVED
        assert task.decision is not None and task.decision.actor.id == "alice"
        assert task.decision.actor.source == "console"
        assert (await machine.get_task("t1")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]
        assert app.flash_text == "✓ approved t2 · next: t1 (medium)"
        assert app.view.rows["t2"].state is S.APPROVED


async def test_reject_asks_for_a_reason_and_records_it(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("r")
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press(*"wrong customer", "enter")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.REJECTED
        assert task.decision is not None and task.decision.message == "wrong customer"
        assert app.flash_text == "✓ rejected t1 · nothing else is waiting"


async def test_rejecting_a_high_task_without_a_reason_is_refused(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", severity="high")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("r", "enter")
        await settle(pilot, app)
        assert isinstance(app.screen, ReasonScreen), "the dialog stays open without a reason"
        assert "required" in str(app.screen.query_one("#dialog-error").render())
        assert (await machine.get_task("t1")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]
        await pilot.press("escape")
        await settle(pilot, app)
        assert (await machine.get_task("t1")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]
        assert app.flash_text == "cancelled: t1 was not rejected"


async def test_edit_refuses_invalid_json_then_approves_valid_json_after_showing_the_diff(
    machine: HITLStateMachine,
) -> None:
    await waiting(machine, "t1", args={"to": "ops@acme.example", "amount": 10})
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, EditScreen)
        area = screen.query_one("#args", TextArea)
        area.text = '{"to": "ops@acme.example", "amount": '
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Invalid JSON" in str(screen.query_one("#dialog-error").render())
        assert screen.query_one("#ok", Button).disabled
        area.text = '{"to": "ops@acme.example", "amount": 5}'
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert '-  "amount": 10,' in screen.diff_text and '+  "amount": 5,' in screen.diff_text
        assert not screen.query_one("#ok", Button).disabled
        await pilot.click("#ok")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.APPROVED
        assert task.decision is not None and task.decision.type.value == "edit"
        assert task.decision.edited_args == {"to": "ops@acme.example", "amount": 5}


async def test_edit_args_that_are_not_an_object_are_refused(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("e")
        screen = app.screen
        screen.query_one("#args", TextArea).text = "[1, 2]"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "must be a JSON object" in str(screen.query_one("#dialog-error").render())
        await pilot.press("escape")
        await settle(pilot, app)
        assert (await machine.get_task("t1")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_respond_records_the_answer(machine: HITLStateMachine) -> None:
    await waiting(
        machine,
        "q1",
        "Which region?",
        kind="question",
        action=None,
        args={},
        options=["us-east", "eu-west"],
        allowed_decisions=["respond", "reject"],
    )
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "q1")
        assert app.check_action("approve", ()) is False, "approve is not offered for this question"
        await pilot.press("m")
        await pilot.press(*"eu-west please", "enter")
        await settle(pilot, app)
        task = await machine.get_task("q1")
        assert task is not None and task.state is S.APPROVED
        assert task.decision is not None and task.decision.response == "eu-west please"


async def test_number_key_chooses_an_option(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", options=["approve", "reject", "escalate"])
    await waiting(
        machine,
        "q1",
        "Which region?",
        kind="question",
        action=None,
        args={},
        options=["us-east", "eu-west"],
        allowed_decisions=["respond"],
    )
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("3")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.decision is not None and task.decision.option == "escalate"
        await select(pilot, app, "q1")
        await pilot.press("2")
        await settle(pilot, app)
        task = await machine.get_task("q1")
        assert task is not None and task.decision is not None and task.decision.response == "eu-west"


async def test_option_that_means_reject_asks_for_a_reason(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", options=["approve", "reject"])
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("2")
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press(*"no", "enter")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.REJECTED and task.decision is not None
        assert task.decision.option == "reject" and task.decision.message == "no"


async def test_pause_asks_why_and_resume_lets_the_task_go_on(machine: HITLStateMachine) -> None:
    await machine.start_task("run1", agent="deploy-pilot", framework="crewai", step="execute")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "run1")
        assert app.check_action("resume", ()) is False
        await pilot.press("p")
        await pilot.press(*"looks wrong", "enter")
        await settle(pilot, app)
        task = await machine.get_task("run1")
        assert task is not None and task.state is S.AWAITING_APPROVAL
        assert task.interrupt_point is not None and task.interrupt_point.kind.value == "review"
        assert task.interrupt_point.reason == "looks wrong"
        await pilot.press("a")
        await settle(pilot, app)
        assert app.check_action("resume", ()) is True
        await pilot.press("R")
        await settle(pilot, app)
        task = await machine.get_task("run1")
        assert task is not None and task.state is S.RUNNING
        assert task.history[-1]["actor"] == "alice"
        assert app.flash_text == "✓ resumed run1"


async def test_batch_approve_says_how_many_marked_tasks_the_filter_hides(machine: HITLStateMachine) -> None:
    await waiting(machine, "a-1", "refund one")
    await waiting(machine, "a-2", "refund two")
    await waiting(machine, "b-3", "other thing")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "b-3")
        await pilot.press("space")
        await select(pilot, app, "a-1")
        await pilot.press("space")
        await pilot.press("slash", *"refund", "enter")
        await settle(pilot, app)
        assert app.view.order == ["a-1", "a-2"]
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Approve 2 marked (1 hidden by filter)?" in str(app.screen.message)
        await pilot.click("#ok")
        await settle(pilot, app)
        for task_id, state in (("a-1", S.APPROVED), ("a-2", S.AWAITING_APPROVAL), ("b-3", S.APPROVED)):
            assert (await machine.get_task(task_id)).state is state, task_id  # type: ignore[union-attr]
        assert app.flash_text == "✓ approved 2 marked task(s)"
        assert not app.view.marked


async def test_batch_approve_is_refused_when_a_marked_task_is_critical(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    await waiting(machine, "crit", "drop the table", severity="critical")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("space")
        await select(pilot, app, "crit")
        await pilot.press("space")
        await pilot.press("A")
        await settle(pilot, app)
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.flash_text.startswith("✗ batch approve refused: 1 marked task(s) are critical")
        for task_id in ("t1", "crit"):
            assert (await machine.get_task(task_id)).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_critical_approval_needs_a_second_confirmation_that_focuses_cancel(machine: HITLStateMachine) -> None:
    await waiting(machine, "crit", "drop the table", severity="critical")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "crit")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")  # a stray enter cancels
        await settle(pilot, app)
        assert (await machine.get_task("crit")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#ok")
        await settle(pilot, app)
        assert (await machine.get_task("crit")).state is S.APPROVED  # type: ignore[union-attr]


async def test_an_enter_typed_ahead_of_the_critical_confirm_cancels_it(machine: HITLStateMachine) -> None:
    """``a`` and ``enter`` arriving in one read (a paste, an SSH packet) must hit Cancel.

    The enter is queued before the dialog exists. If the dialog's first focus went to Approve,
    even for one message, the queued enter would approve a critical task nobody confirmed.
    """
    from .helpers import burst, poll

    await waiting(machine, "crit", "drop the table", severity="critical")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "crit")
        for _ in range(5):  # before the fix, the first round approved it
            burst(app, "a", "enter")
            await poll(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            await settle(pilot, app)
            assert (await machine.get_task("crit")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_decision_made_first_by_another_actor_names_the_winner(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    # not following the store, so the screen still shows t1 waiting when bob has rejected it: a
    # follower could bring bob's decision first (a loaded run did), and then `a` is not offered
    app = make_app(machine, follow=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        # Bob decides through the same store with a machine of his own: this console's hook
        # never hears of it, so its row still shows the task waiting.
        bob = HITLStateMachine(machine.store, load_entrypoints=False)
        await bob.reject("t1", "bob", "not today", source="cli")
        assert app.view.rows["t1"].state is S.AWAITING_APPROVAL
        await pilot.press("a")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.REJECTED and task.decision is not None
        assert task.decision.actor.id == "bob"
        await eventually(pilot, app, lambda: app.flash_text != "")
        assert app.flash_text == "✗ t1: already decided by bob (reject); your approved was not recorded"
        assert app.view.rows["t1"].state is S.REJECTED, "the row catches up with the store"


async def test_illegal_action_says_why_and_changes_nothing(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    # not following the store: the screen still shows t1 waiting when it failed elsewhere (a
    # follower could otherwise bring the failure first, and then `a` is simply not offered)
    app = make_app(machine, follow=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        other = HITLStateMachine(machine.store, load_entrypoints=False)
        await other.fail("t1", "agent crashed")
        await pilot.press("a")
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.FAILED and task.decision is None
        await eventually(pilot, app, lambda: app.flash_text != "")
        assert app.flash_text.startswith("✗ cannot approve task 't1' in state failed")
        assert app.flash_text.endswith("nothing changed")
        assert app.view.rows["t1"].state is S.FAILED


async def test_stale_screen_never_approves_a_newer_request(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", args={"amount": 1})
    app = make_app(machine, follow=False)  # the screen keeps the first request (see above)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        other = HITLStateMachine(machine.store, load_entrypoints=False)
        await other.approve("t1", "bob")
        await other.resume("t1")
        await other.request_approval("t1", "Send again, bigger", action="send_email", args={"amount": 1000})
        await pilot.press("a")  # the screen still shows the first request
        await settle(pilot, app)
        task = await machine.get_task("t1")
        assert task is not None and task.state is S.AWAITING_APPROVAL, "the new request was not approved"
        await eventually(pilot, app, lambda: app.flash_text.startswith("✗ t1:"))


async def test_readonly_hides_every_deciding_key(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    await machine.start_task("run1")
    app = make_app(machine, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        for action in ("approve", "reject", "edit", "respond", "option", "pause", "resume", "approve_marked"):
            assert app.check_action(action, (1,) if action == "option" else ()) is False, action
        footer_keys = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "approve" not in footer_keys and "quit" in footer_keys
        await pilot.press("a", "r", "e", "1")
        await settle(pilot, app)
        assert not isinstance(app.screen, (ReasonScreen, EditScreen, ConfirmScreen))
        assert (await machine.get_task("t1")).state is S.AWAITING_APPROVAL  # type: ignore[union-attr]
        await select(pilot, app, "run1")
        await pilot.press("p")
        await settle(pilot, app)
        assert (await machine.get_task("run1")).state is S.RUNNING  # type: ignore[union-attr]


async def test_filter_narrows_rows_and_escape_clears_it(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1", agent="billing-bot")
    await waiting(machine, "t2", agent="deploy-pilot")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("slash", *"deploy")
        await settle(pilot, app)
        assert app.view.order == ["t2"]
        assert app.table.cursor_key == "t2"
        await pilot.press("escape")
        await settle(pilot, app)
        assert sorted(app.view.order) == ["t1", "t2"]
        assert not app.query_one("#filter", Input).display


async def test_state_filter_cycles_waiting_active_all(machine: HITLStateMachine) -> None:
    await waiting(machine, "w1")
    await machine.start_task("r1")
    await machine.start_task("done1")
    await machine.complete("done1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        assert len(app.view.order) == 3
        await pilot.press("f")
        await settle(pilot, app)
        assert app.view.order == ["w1"]
        await pilot.press("f")
        await settle(pilot, app)
        assert sorted(app.view.order) == ["r1", "w1"]
        await pilot.press("f")
        await settle(pilot, app)
        assert len(app.view.order) == 3


async def test_sort_keys_reorder_rows_and_the_cursor_stays_on_its_task(machine: HITLStateMachine) -> None:
    for name in ("c", "a", "b"):
        await waiting(machine, name)
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "b")
        await pilot.press("s")  # attention -> id
        await settle(pilot, app)
        assert app.view.sort_column == "id" and app.view.order == ["a", "b", "c"]
        assert app.table.cursor_key == "b"
        await pilot.press("S")
        await settle(pilot, app)
        assert app.view.order == ["c", "b", "a"] and app.table.cursor_key == "b"


async def test_cursor_follows_its_task_when_live_updates_move_rows(machine: HITLStateMachine) -> None:
    for name in ("t1", "t2", "t3"):
        await waiting(machine, name)
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t3")
        await machine.approve("t1", "bob")  # t1 leaves the top of the "attention" order
        await settle(pilot, app)
        assert app.view.order.index("t1") == 2
        assert app.table.cursor_key == "t3"


async def test_j_and_k_move_the_cursor_and_enter_focuses_the_detail(machine: HITLStateMachine) -> None:
    for name in ("t1", "t2"):
        await waiting(machine, name)
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        first = app.table.cursor_key
        await pilot.press("j")
        await settle(pilot, app)
        assert app.table.cursor_key != first
        assert app.detail.task_id == app.table.cursor_key
        await pilot.press("k")
        await settle(pilot, app)
        assert app.table.cursor_key == first
        await pilot.press("enter")
        assert app.detail.has_focus
        await pilot.press("enter")
        assert app.table.has_focus


async def test_help_lists_every_binding(machine: HITLStateMachine) -> None:
    app = make_app(machine)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        from hitl_tui.screens import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        for binding in app.BINDINGS:
            assert binding.id in ids  # type: ignore[union-attr]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_history_screen_shows_the_task_events(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("h")
        await settle(pilot, app)
        from hitl_tui.screens import HistoryScreen

        assert isinstance(app.screen, HistoryScreen)
        assert [e.action for e in app.screen.events] == ["start", "request_approval"]
        await pilot.press("escape")


async def test_command_palette_offers_only_possible_commands(machine: HITLStateMachine) -> None:
    await machine.start_task("run1")
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "run1")
        from hitl_tui.app import ConsoleCommands

        provider = ConsoleCommands(app.screen)
        names = [name for name, _, _ in provider._available()]
        assert "task: pause" in names and "view: waiting only" in names
        assert "task: approve" not in names
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"waiting only")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.view.state_filter == "waiting"


async def test_a_high_task_starting_to_wait_shows_the_alert_line_and_rings_no_bell(machine: HITLStateMachine) -> None:
    app = make_app(machine)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await waiting(machine, "low1", severity="low")
        await settle(pilot, app)
        assert not bells
        await waiting(machine, "hot1", "rotate the key", severity="high")
        await settle(pilot, app)
        assert bells == [], "the bell is for critical requests"
        titles = [n.title for n in app._notifications]
        assert "high task waiting" in titles
        assert "high waiting: hot1 rotate the key" in str(app.query_one("#alert").render())


async def test_deadline_about_to_expire_turns_red_and_is_announced_once(machine: HITLStateMachine) -> None:
    from .helpers import deadline_in

    await waiting(machine, "t1", severity="critical", deadline=deadline_in(20))
    await waiting(machine, "t2", severity="critical", deadline=deadline_in(3600))
    app = make_app(machine)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        app._tick()
        app._tick()
        await pilot.pause()
        assert bells == [1]
        assert app.announced_deadlines == {"t1"}
        assert [n.title for n in app._notifications].count("deadline") == 1
