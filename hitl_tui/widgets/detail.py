"""The detail pane: everything about the selected task, for deciding without leaving the keyboard.

Built from the task's snapshot (``machine.get_task``) and its events (``machine.events``): the
machine's public API, so it draws the same against a local store or a ``hitl serve``. Every agent-supplied
string goes through ``hitl_tui.text`` (literal ``Text``, control characters visible); JSON is
pretty-printed, highlighted and cut at ``DETAIL_JSON_LIMIT`` so a huge context scrolls instead of
freezing the app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hitl_core import Event, TaskContext

from ..model import STATE_LABEL, Row, countdown
from ..text import literal, pretty_json
from ..textual_compat import set_virtual_size
from ..theme import DEFAULT_SCHEME, Scheme, scheme_of


def _hms(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


def _json_block(title: str, value: object, scheme: Scheme = DEFAULT_SCHEME) -> list[RenderableType]:
    code, cut = pretty_json(value)
    parts: list[RenderableType] = [
        Text(title, style="bold underline"),
        Syntax(code, "json", theme=scheme.syntax_theme, word_wrap=True, background_color="default"),
    ]
    if cut:
        parts.append(Text("… cut: too large to show in full", style=scheme.dim + Style(italic=True)))
    return parts


def _escalation(events: list[Event]) -> str | None:
    """ "level 2 at 14:03:07" when the current request was escalated (by a hitl.toml escalation chain)."""
    latest = None
    for event in events:
        if event.action in ("request_approval", "pause"):
            latest = None
        elif event.action == "escalate":
            latest = event
    if latest is None:
        return None
    level = latest.data.get("level") if isinstance(latest.data, dict) else None
    return f"level {level} at {_hms(latest.at)}" if level is not None else f"at {_hms(latest.at)}"


def describe(
    record: TaskContext, events: list[Event], row: Row | None, now: float, scheme: Scheme = DEFAULT_SCHEME
) -> RenderableType:
    dim = scheme.dim
    parts: list[RenderableType] = []
    title = Text()
    title.append_text(literal(record.task_id, "bold", limit=200))
    title.append("  ")
    title.append(STATE_LABEL[record.state], scheme.state[record.state])
    parts.append(title)
    who = Text("agent ", style=dim)
    who.append_text(literal(record.agent or "-", limit=200))
    who.append("  framework ", style=dim)
    who.append_text(literal(record.framework or "-", limit=100))
    who.append("  step ", style=dim)
    who.append_text(literal(record.current_step or "-", limit=200))
    parts.append(who)
    interrupt = record.interrupt_point
    if interrupt is not None:
        parts.append(Text(""))
        parts.append(Text("Reason", style="bold underline"))
        parts.append(literal(interrupt.reason, single_line=False, limit=20_000))
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style=dim)
        facts.add_column()
        facts.add_row("severity", Text(interrupt.severity.value, scheme.severity[interrupt.severity]))
        facts.add_row("kind", interrupt.kind.value)
        if interrupt.deadline is not None:
            left = countdown(row, now) if row is not None else ""
            facts.add_row(
                "deadline",
                Text(
                    f"{interrupt.deadline.strftime('%H:%M:%S')} UTC"
                    + (f"  ({left} left)" if left and left != "expired" else "  (expired)" if left else "")
                    + f", then {interrupt.default_decision}"
                ),
            )
        facts.add_row("may decide", literal(", ".join(interrupt.assignees) or "anyone", limit=400))
        escalation = _escalation(events)
        if escalation is not None:
            facts.add_row("escalated", Text(escalation, style=scheme.warning))
        if interrupt.required_approvals > 1:
            approvals = Text(f"{len(record.approvals)} of {interrupt.required_approvals} (four eyes)")
            if record.approvals:
                approvals.append(" by ", dim)
                approvals.append_text(literal(", ".join(a.actor.id for a in record.approvals), limit=200))
            facts.add_row("approvals", approvals)
        facts.add_row("decisions", ", ".join(interrupt.allowed_decisions))
        options = Text()
        for number, option in enumerate(interrupt.options[:9], start=1):
            options.append(f"{number} ", scheme.marked)
            options.append_text(literal(option, limit=80))
            options.append("  ")
        facts.add_row("options", options)
        if interrupt.requested_by:
            facts.add_row("asked by", literal(interrupt.requested_by, limit=200))
        parts.append(facts)
        if interrupt.action is not None:
            parts.append(Text(""))
            parts.extend(_json_block(f"Action: {interrupt.action.name[:200]}", interrupt.action.args, scheme))
        if interrupt.context:
            parts.append(Text(""))
            parts.extend(_json_block("Context", interrupt.context, scheme))
    if record.decision is not None:
        d = record.decision
        line = Text("\nDecision ", style="bold")
        line.append(d.type.value + (f" ({d.outcome})" if d.outcome else ""))
        line.append(" by ")
        line.append_text(literal(d.actor.id, limit=200))
        line.append(f" via {d.actor.source}", style=dim)
        if d.message:
            line.append(": ")
            line.append_text(literal(d.message, limit=2000))
        parts.append(line)
    if record.error:
        parts.append(Text("\nError", style=scheme.error))
        parts.append(literal(record.error, single_line=False, limit=5000))
    if record.result is not None:
        parts.append(Text(""))
        parts.extend(_json_block("Result", record.result, scheme))
    parts.append(Text("\nHistory", style="bold underline"))
    timeline = Table.grid(padding=(0, 1))
    for _ in range(4):
        timeline.add_column()
    for event in events[-50:]:
        move = f"{event.from_state.value if event.from_state else 'new'} → {event.to_state.value}"
        timeline.add_row(
            Text(_hms(event.at), dim),
            Text(event.action, "bold"),
            Text(move, dim),
            literal(event.actor.id if event.actor is not None else "-", limit=80),
        )
    parts.append(timeline)
    return Group(*parts)


class DetailPane(ScrollView, can_focus=True):
    """Scrollable; ``show`` replaces its content with the given task.

    A Line API widget: the task's description is rendered to strips once per ``show`` (and per
    width), so a live update elsewhere never re-measures the rich tables and highlighted JSON in
    here, and showing a task never asks the screen for a new layout.
    """

    DEFAULT_CSS = """
    DetailPane { padding: 0 1; overflow-x: hidden; overflow-y: scroll; scrollbar-size-vertical: 1; }
    """

    BINDINGS = [
        Binding("down,j", "scroll_down", "Scroll down", show=False, id="detail.down"),
        Binding("up,k", "scroll_up", "Scroll up", show=False, id="detail.up"),
    ]

    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clock = clock
        self.task_id: str | None = None
        self.renderable: RenderableType = Text("No task selected.", style=DEFAULT_SCHEME.dim)
        self._shown: tuple[TaskContext | None, Row | None, list[Event] | None] = (None, None, None)
        self._strips: list[Strip] = []
        self._rendered_width = -1

    def show(self, record: TaskContext | None, row: Row | None, events: list[Event] | None = None) -> None:
        self._shown = (record, row, events)
        scheme = scheme_of(self.app)
        if record is None:
            self.task_id = None
            self.renderable = Text("No task selected.", style=scheme.dim)
        else:
            if record.task_id != self.task_id:
                self.scroll_to(y=0, animate=False, immediate=True)
            self.task_id = record.task_id
            self.renderable = describe(record, events or [], row, self.clock(), scheme)
        self._rendered_width = -1
        self._render_strips()
        self.refresh()

    def restyle(self) -> None:
        """The theme changed: draw the same task again in its colours."""
        record, row, events = self._shown
        self.show(record, row, events)

    def _render_strips(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        if width <= 0 or width == self._rendered_width:
            return
        console = self.app.console
        options = console.options.update_width(width)
        lines = console.render_lines(self.renderable, options, pad=False)
        base = self.rich_style  # the theme's background under every line (see TaskTable.render_line)
        self._strips = [Strip(line).extend_cell_length(width).apply_style(base) for line in lines]
        self._rendered_width = width
        set_virtual_size(self, Size(width, len(self._strips)))

    def on_resize(self) -> None:
        self._rendered_width = -1
        self._render_strips()

    def render_line(self, y: int) -> Strip:
        self._render_strips()
        index = int(self.scroll_offset.y) + y
        if 0 <= index < len(self._strips):
            return self._strips[index]
        return Strip.blank(self.scrollable_content_region.width or self.size.width, self.rich_style)
