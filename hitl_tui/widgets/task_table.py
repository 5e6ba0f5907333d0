"""The live task table: a Line API widget that draws only the rows on screen.

A ``DataTable`` builds every row up front (about 1.3 s for 10,000 rows here); this table keeps
the fleet in a ``FleetView`` and turns a row into a ``Strip`` only when ``render_line`` asks for
it, so first paint, scrolling and a live update cost the same at ten tasks and at ten thousand.
Columns have fixed widths, so an update never re-measures anything. The cursor is a task id,
not an index: when rows move, it stays on its task (htop's "follow").
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hitl_core import TaskState

from ..model import STATE_LABEL, FleetView, Row, countdown, deadline_close, format_duration
from ..text import TABLE_TEXT_LIMIT, visible
from ..textual_compat import set_virtual_size
from ..theme import DEFAULT_SCHEME, Scheme, scheme_of

S = TaskState

#: (name, width); the last column (reason) takes the rest of the line.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("", 2),
    ("id", 14),
    ("agent", 13),
    ("framework", 10),
    ("step", 9),
    ("state", 9),
    ("severity", 9),
    ("age", 7),
    ("deadline", 9),
    ("reason", 0),
)

#: The default theme's styles; a running console draws with its theme's (``hitl_tui.theme``).
SEVERITY_STYLE = DEFAULT_SCHEME.severity
SEVERITY_CELL_STYLE = DEFAULT_SCHEME.severity_cell
STATE_STYLE = DEFAULT_SCHEME.state


#: Columns dropped, in this order, while the reason would get fewer than ``MIN_REASON`` cells.
DROP_ORDER = ("step", "framework", "age", "agent")
MIN_REASON = 28


def columns_for(width: int) -> tuple[tuple[str, int], ...]:
    """The columns that fit ``width`` with room for the reason (the column an operator reads)."""
    columns = COLUMNS
    for name in DROP_ORDER:
        if width - sum(w for _, w in columns) >= MIN_REASON:
            break
        columns = tuple(c for c in columns if c[0] != name)
    return columns


def _cell(text: str, width: int) -> str:
    return set_cell_size(text, width - 1) + " " if width > 1 else set_cell_size(text, width)


def column_header(width: int, sort_column: str, reverse: bool, scheme: Scheme = DEFAULT_SCHEME) -> Strip:
    segments = []
    used = 0
    for name, w in columns_for(width):
        w = w or max(width - used, 0)
        label = name + ((" ▼" if reverse else " ▲") if name == sort_column else "")
        segments.append(Segment(_cell(label, w), scheme.header if name else Style()))
        used += w
    return Strip(segments, width)


class TaskTable(ScrollView, can_focus=True):
    """The fleet, one line per task; ``cursor_key`` is the selected task's id."""

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="cursor.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="cursor.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="cursor.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="cursor.page_up"),
        Binding("home,g", "first", "First", show=False, id="cursor.first"),
        Binding("end,G", "last", "Last", show=False, id="cursor.last"),
    ]

    DEFAULT_CSS = """
    TaskTable { scrollbar-size-vertical: 1; overflow-x: hidden; overflow-y: scroll; }
    """

    class CursorMoved(Message):
        """The selected task changed (or its row did): the detail pane and the footer follow."""

        def __init__(self, task_id: str | None, left: str | None = None) -> None:
            super().__init__()
            self.task_id = task_id
            #: The task that was selected and left the view (the cursor parked on its position).
            self.left = left

    def __init__(self, view: FleetView, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.view = view
        self.clock = clock
        self.cursor_key: str | None = None
        self._cursor_index = 0
        #: Called with the time a row for a task was last drawn (the benchmark listens).
        self.on_row_drawn: Callable[[Row], None] | None = None

    # -- the model changed ----------------------------------------------------------------

    @property
    def cursor_index(self) -> int:
        return self._cursor_index

    @property
    def cursor_row(self) -> Row | None:
        return self.view.rows.get(self.cursor_key) if self.cursor_key is not None else None

    def rows_changed(self, changed_ids: set[str] | None = None, *, report_left: bool = True) -> None:
        """Call after ``view.reorder()``: keep the cursor on its task and redraw what moved.

        ``changed_ids`` None means "anything may have moved" (a sort, a filter); otherwise only
        the lines of those tasks are redrawn when nothing else moved.
        """
        view = self.view
        old_key = self.cursor_key
        count = len(view.order)
        if old_key is not None and old_key in view.index:
            index = view.index[old_key]
        else:
            index = min(self._cursor_index, count - 1) if count else 0
        set_virtual_size(self, Size(self.size.width, count))
        self._cursor_index = index
        self.cursor_key = view.order[index] if count else None
        # Redrawing the visible lines is cheap (a screenful of strips), so a batch simply
        # refreshes the viewport instead of tracking which lines moved.
        self.refresh()
        self.scroll_to_cursor()
        if self.cursor_key != old_key:
            left = old_key if report_left and old_key is not None and old_key not in view.index else None
            self.post_message(self.CursorMoved(self.cursor_key, left))

    def tick(self) -> None:
        """Once a second: age and countdown columns move; nothing else is recomputed."""
        self.refresh()

    # -- cursor ---------------------------------------------------------------------------

    def move_cursor(self, index: int) -> None:
        order = self.view.order
        if not order:
            return
        index = max(0, min(index, len(order) - 1))
        previous = self._cursor_index
        self._cursor_index = index
        key = order[index]
        changed = key != self.cursor_key
        self.cursor_key = key
        top = int(self.scroll_offset.y)
        self.refresh_line(previous - top)
        self.refresh_line(index - top)
        self.scroll_to_cursor()
        if changed:
            self.post_message(self.CursorMoved(key))

    def select(self, task_id: str) -> None:
        index = self.view.index.get(task_id)
        if index is not None:
            self.move_cursor(index)

    def scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height or self.size.height
        top = int(self.scroll_offset.y)
        index = self._cursor_index
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif height and index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    def refresh_line(self, y: int) -> None:
        if 0 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor_index + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor_index - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor_index + max(self.size.height - 1, 1))

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor_index - max(self.size.height - 1, 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.view.order) - 1)

    def on_click(self, event: object) -> None:
        offset = getattr(event, "y", None)
        if isinstance(offset, int):
            self.move_cursor(int(self.scroll_offset.y) + offset)

    # -- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = int(self.scroll_offset.y) + y
        order = self.view.order
        # The widget's own style (the theme's background and text) under every cell: a Line API
        # strip without a background would show the terminal's, whatever the theme.
        base = self.rich_style
        if index >= len(order):
            return Strip.blank(width, base)
        row = self.view.rows[order[index]]
        strip = self._render_row(row, width, index == self._cursor_index, self.clock()).apply_style(base)
        if self.on_row_drawn is not None:
            self.on_row_drawn(row)
        return strip

    def _render_row(self, row: Row, width: int, is_cursor: bool, now: float) -> Strip:
        interrupt = row.interrupt if row.waiting else None
        severity = interrupt.severity if interrupt is not None else None
        urgent = row.waiting and deadline_close(row, now)
        marked = row.task_id in self.view.marked
        scheme = scheme_of(self.app)
        dim = scheme.dim
        base = dim if row.state in (S.COMPLETED,) else scheme.base
        values: dict[str, tuple[str, Style]] = {
            "": ("●" if marked else " ", scheme.marked),
            "id": (visible(row.task_id, limit=64), base),
            "agent": (visible(row.agent, limit=64), base),
            "framework": (visible(row.framework, limit=32), dim),
            "step": (visible(row.step, limit=64), base),
            "state": (STATE_LABEL[row.state], scheme.state[row.state]),
            "severity": (
                severity.value if severity is not None else "",
                scheme.severity_cell[severity] if severity else dim,
            ),
            "age": (format_duration(now - row.requested_at), dim),
            "deadline": (countdown(row, now), scheme.urgent_text if urgent else base),
            "reason": (visible(row.reason, limit=TABLE_TEXT_LIMIT), scheme.severity[severity] if severity else dim),
        }
        segments: list[Segment] = []
        used = 0
        extra = Style()
        if urgent:
            extra = extra + scheme.urgent
        if is_cursor:
            extra = extra + scheme.cursor
        for name, w in columns_for(width):
            text, style = values[name]
            w = w or max(width - used, 0)
            if w <= 0:
                break
            segments.append(Segment(_cell(text, w), style + extra))
            used += w
        return Strip(segments, width)
