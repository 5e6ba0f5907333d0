"""Modal screens: the reason, edit, answer and confirm dialogs, help, and the audit history.

Dialogs return their result through ``dismiss`` (None means cancelled) so the app's actions can
``push_screen(..., callback)`` and stay short. Destructive confirms focus Cancel by default: an
operator hammering enter never approves a critical task by accident.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from typing import Any

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static, TextArea

from hitl_core import Event

from .model import Row, countdown
from .text import literal, visible


def task_context(row: Row) -> Text:
    """What the operator is deciding about, for a dialog: the request's reason and options."""
    text = Text()
    interrupt = row.interrupt if row.waiting else None
    text.append_text(literal(row.agent or "-", "grey62", limit=60))
    if interrupt is None:  # pausing a running task: say what it is doing
        text.append(f" is {row.state.value}", "grey50")
        if row.step:
            text.append(" at step ", "grey50")
            text.append_text(literal(row.step, limit=80))
        return text
    text.append(" asks: ", "grey50")
    text.append_text(literal(row.reason, single_line=False, limit=600))
    if interrupt is not None and interrupt.options:
        text.append("\noptions ", "grey50")
        for number, option in enumerate(interrupt.options[:9], start=1):
            text.append(f"{number} ", "bold cyan")
            text.append_text(literal(option, limit=60))
            text.append("  ")
    if interrupt is not None:
        text.append(f"\n{interrupt.severity.value}", "bold")
    return text


class ReasonScreen(ModalScreen[str | None]):
    """Ask for one line of text: a rejection reason, a pause reason, an answer.

    With ``row`` the dialog shows what is being decided (reason, options) and a live countdown,
    and the console tells it (``task_changed``) when the task changes while it is open: if it is
    decided by someone else or expires, the dialog says so and keeps the operator's text, and OK
    no longer sends it.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self,
        title: str,
        prompt: str,
        *,
        required: bool,
        placeholder: str = "",
        row: Row | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.required = required
        self.placeholder = placeholder
        self.row = row
        self.clock = clock
        #: What happened to the task while the dialog was open ("" while it still waits).
        self.outcome = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(literal(self.title_text, "bold"), classes="dialog-title")
            if self.row is not None:
                yield Static(task_context(self.row), id="dialog-context")
                yield Static(self._status(), id="dialog-status")
            yield Label(Text(self.prompt + (" (required)" if self.required else " (optional)")))
            yield Input(placeholder=self.placeholder, id="reason")
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()
        if self.row is not None and self.row.deadline is not None:
            self.set_interval(1.0, self._update_status, name="countdown")

    def _status(self) -> Text:
        row = self.row
        if self.outcome:
            return Text(self.outcome, style="bold red")
        if row is None or not row.waiting:
            return Text("")
        if row.deadline is None or self.clock is None:
            return Text("no deadline", style="grey50")
        left = countdown(row, self.clock())
        default = row.interrupt.default_decision if row.interrupt is not None else "reject"
        style = "bold bright_red" if row.deadline - self.clock() <= 30 else "bold"
        return Text(f"{left} left, then {default}" if left != "expired" else f"expired: {default} applies", style)

    def _update_status(self) -> None:
        if self.row is not None:
            self.query_one("#dialog-status", Static).update(self._status())

    def task_changed(self, row: Row) -> None:
        """The console's batch saw ``row`` change; if it is this dialog's task and its request is
        no longer waiting, say what happened and keep the typed text."""
        mine = self.row
        if mine is None or row.task_id != mine.task_id or self.outcome:
            return
        same_request = (
            row.waiting
            and row.interrupt is not None
            and mine.interrupt is not None
            and row.interrupt.interrupt_id == mine.interrupt.interrupt_id
        )
        if same_request or (not mine.waiting and row.state is mine.state):
            self.row = row  # e.g. escalated (a new deadline), or a running task's next step
        elif not mine.waiting:
            self.outcome = f"{row.task_id} is now {row.state.value}; your text below was not sent — copy it, then esc"
            self.query_one("#ok", Button).disabled = True
        else:
            who = f" by {row.decided_by}" if row.decided_by else ""
            self.outcome = (
                f"{row.task_id} was decided{who} while you typed ({row.state.value}); "
                "your text below was not sent — copy it, then esc"
            )
            ok = self.query_one("#ok", Button)
            ok.disabled = True
        self._update_status()

    def _submit(self) -> None:
        if self.outcome:
            return  # decided elsewhere: nothing to send; the text stays until the operator closes
        value = self.query_one("#reason", Input).value.strip()
        if self.required and not value:
            self.query_one("#dialog-error", Static).update("A reason is required for this task.")
            return
        self.dismiss(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no. ``danger`` focuses Cancel so that a stray enter does nothing."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self, title: str, message: Text | str, confirm_label: str = "Confirm", *, danger: bool = False
    ) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label
        self.danger = danger
        # The first focus is Textual's auto-focus, set as the screen starts. A focus() in
        # on_mount comes one message later, and a key queued before the dialog existed (``a``
        # and ``enter`` in one read) was handled in between by the first button: Approve.
        self.AUTO_FOCUS = "#cancel" if danger else "#ok"  # type: ignore[misc]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(self.message)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, variant="error" if self.danger else "primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "ok")

    def action_cancel(self) -> None:
        self.dismiss(False)


def args_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    old = json.dumps(before, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    new = json.dumps(after, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    lines = list(difflib.unified_diff(old, new, "shown", "edited", lineterm="", n=2))
    return visible("\n".join(lines), single_line=False) if lines else "(no change)"


class EditScreen(ModalScreen[dict[str, Any] | None]):
    """Edit an action's args as JSON, review the diff, then confirm.

    Two steps on one screen: ``ctrl+s`` (or Review) validates the JSON — a JSON object, or the
    error is shown and nothing else happens — and shows the diff; Approve with edits confirms.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        Binding("ctrl+s", "review", "Review diff", id="edit.review"),
    ]

    def __init__(self, task_id: str, action_name: str, args: dict[str, Any]) -> None:
        super().__init__()
        self.task_id = task_id
        self.action_name = action_name
        self.args = args
        self.edited: dict[str, Any] | None = None
        self.diff_text = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            title = Text("Edit the args of ", style="bold")
            title.append_text(literal(self.action_name, "bold cyan", limit=100))
            title.append(" for ")
            title.append_text(literal(self.task_id, "bold", limit=100))
            yield Label(title, classes="dialog-title")
            yield TextArea(
                json.dumps(self.args, indent=2, ensure_ascii=False), id="args", soft_wrap=True, show_line_numbers=False
            )
            yield Static("", id="dialog-error", classes="dialog-error")
            yield Static("", id="diff")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Review (ctrl+s)", id="review")
                yield Button("Approve with edits", variant="warning", id="ok", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#args", TextArea).focus()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        # Any change after a review invalidates it: the diff shown must be the one approved.
        self.edited = None
        self.query_one("#ok", Button).disabled = True

    def action_review(self) -> None:
        source = self.query_one("#args", TextArea).text
        error = self.query_one("#dialog-error", Static)
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            error.update(Text(f"Invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"))
            return
        if not isinstance(value, dict):
            error.update(Text(f"The args must be a JSON object, not {type(value).__name__}"))
            return
        error.update("")
        self.edited = value
        self.diff_text = args_diff(self.args, value)
        self.query_one("#diff", Static).update(
            Syntax(self.diff_text, "diff", theme="ansi_dark", background_color="default")
        )
        ok = self.query_one("#ok", Button)
        ok.disabled = False
        ok.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "review":
            self.action_review()
        elif event.button.id == "ok" and self.edited is not None:
            self.dismiss(self.edited)
        elif event.button.id == "cancel":
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every binding the console has, with its id (for the keymap file) and what it does."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, bindings: Iterable[tuple[str, str, str]], keymap_path: str) -> None:
        super().__init__()
        self.rows = list(bindings)
        self.keymap_path = keymap_path

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_edge=False)
        table.add_column("key", style="bold cyan")
        table.add_column("does")
        table.add_column("id (for the keymap)", style="grey50")
        for key, description, binding_id in self.rows:
            table.add_row(key, description, binding_id)
        with VerticalScroll(classes="dialog wide"):
            yield Label(Text("Keys", style="bold"), classes="dialog-title")
            yield Static(table)
            yield Static(Text(f'Remap keys in {self.keymap_path} ([keymap] id = "key").', style="grey50"))

    def action_close(self) -> None:
        self.dismiss(None)


class HistoryScreen(ModalScreen[None]):
    """The audit trail: committed events, newest last, with their chain hashes."""

    BINDINGS = [Binding("escape,q,h", "close", "Close", id="history.close")]

    def __init__(self, title: str, events: list[Event]) -> None:
        super().__init__()
        self.title_text = title
        self.events = events

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full"):
            yield Label(literal(self.title_text, "bold", limit=200), classes="dialog-title")
            yield DataTable(id="events", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        from datetime import UTC

        table = self.query_one(DataTable)
        table.add_columns("seq", "at (UTC)", "task", "action", "move", "actor", "hash")
        for e in self.events:
            at = e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            move = f"{e.from_state.value if e.from_state else 'new'} → {e.to_state.value}"
            table.add_row(
                str(e.seq),
                at,
                literal(e.task_id, limit=40),
                e.action,
                move,
                literal(e.actor.id if e.actor is not None else "-", limit=40),
                (e.hash or "")[:12],
            )
        if self.events:
            table.move_cursor(row=len(self.events) - 1)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
