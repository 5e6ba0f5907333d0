"""``ConsoleApp``: the operator console.

How a transition reaches the screen: the machine commits it and calls the ``hitl_transition``
hook; ``ConsolePlugin`` (registered on the machine's plugin host, like any plugin) only appends
the new row to a queue. A 50 ms timer drains the queue in one batch: rows are reconciled by task
id and version, the view re-sorted once, and the table redraws the screenful it shows. For a
store written by other processes a worker follows the machine (``machine.follow``) and re-emits
each event through the same hook, so both paths look alike. The console reads nothing but the
machine's public API, so it runs unchanged against a ``hitl serve`` (``RemoteMachine``). While a dialog is open the batches wait.

Decisions go through the machine with ``source="console"`` and the interrupt id and args
fingerprint of what the operator saw, so a stale screen can never approve something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input, TextArea

from hitl_core import (
    AlreadyDecidedError,
    ConflictError,
    HITLError,
    HITLStateMachine,
    Severity,
    TaskContext,
    TaskState,
)

from .actions import ACTIONS, BY_NAME, DECIDING, INPUT_ACTIONS, bindings, footer_names
from .heap import HeapSettler
from .keymap import check_conflicts, keymap_path
from .model import (
    DEADLINE_WARNING,
    SORT_ORDER,
    STATE_FILTERS,
    STATE_LABEL,
    TRIAGE_HORIZON,
    FilterError,
    FleetView,
    Row,
    countdown,
)
from .screens import ConfirmScreen, EditScreen, HelpScreen, HistoryScreen, ReasonScreen
from .text import literal
from .textual_compat import KeyPreview
from .theme import DEFAULT_SCHEME, Scheme, scheme_for
from .widgets import (
    ColumnHeader,
    ConsoleCommands,
    ConsolePlugin,
    DetailPane,
    FilterInput,
    KeyCapture,
    KeyFooter,
    TaskTable,
    TextLine,
)

__all__ = [
    "CAPTURE_QUIET",
    "CAPTURE_TIMEOUT",
    "DECIDING",
    "DWELL_SECONDS",
    "FRESH_REQUEST_SECONDS",
    "INPUT_ACTIONS",
    "REFUSAL_FLASH_SECONDS",
    "ConsoleApp",
    "ConsoleCommands",
    "ConsolePlugin",
    "KeyFooter",
    "TextLine",
]

S = TaskState
Clock = Callable[[], float]

_REJECT_WORDS = frozenset({"reject", "deny", "stop", "no", "cancel", "abort", "block"})

#: How long a request that replaced another on screen is protected from one-key decisions.
FRESH_REQUEST_SECONDS = 1.0
#: How long a refusal stays on the flash line before another message may replace it.
REFUSAL_FLASH_SECONDS = 2.5
#: How long the detail pane must have shown a task before a deciding key may act on it.
DWELL_SECONDS = 0.3
#: How long keys wait for their input to take focus before they are dropped (never delivered elsewhere).
CAPTURE_TIMEOUT = 10.0
#: After an input-opening key was refused, keys arriving closer together than this are dropped too.
CAPTURE_QUIET = 0.3
#: Finished tasks are loaded when their last event is among this many of the newest: a store's
#: month of history (a million finished tasks) must not stand between the operator and the first
#: paint. Every unfinished task is always loaded; older finished ones are in ``hitl ls``.
RECENT_FINISHED_EVENTS = 10_000
_UNFINISHED = tuple(s for s in TaskState if not s.terminal)
_FINISHED = tuple(s for s in TaskState if s.terminal)


class MainScreen(Screen[Any]):
    """The console's main screen: when a dialog closes, the footer is checked again."""

    def on_screen_resume(self) -> None:
        app: Any = self.app
        self.call_after_refresh(app.footer_after_dialog)


class ConsoleApp(KeyPreview, App[None]):
    """The console over one machine. ``clock`` feeds age and countdowns (tests freeze it)."""

    CSS_PATH = "console.tcss"
    TITLE = "hitl console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "ctrl+p"
    #: Under 140 columns the detail pane stacks below the table; under 30 rows dialogs tighten.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (140, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (30, "-tall")]

    #: Derived from the one table of actions (``hitl_tui.actions``).
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = list(bindings())

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        actor: str,
        readonly: bool = False,
        clock: Clock = time.time,
        follow: bool | None = None,
        keymap: dict[str, str] | None = None,
        flush_interval: float = 0.05,
        tick_interval: float | None = 1.0,
        before_load: Callable[[], Awaitable[None]] | None = None,
        background: Callable[[], Awaitable[None]] | None = None,
        detail_delay: float = 0.08,
        dwell: float = DWELL_SECONDS,
        advance: bool = True,
        triage_horizon: float = TRIAGE_HORIZON,
        quit_warning: str | None = None,
        refusal_seconds: float = REFUSAL_FLASH_SECONDS,
        settle_heap: bool = False,
        recent_finished_events: int | None = RECENT_FINISHED_EVENTS,
    ) -> None:
        super().__init__()
        if keymap:
            from .cli import default_keys

            check_conflicts(default_keys(), keymap)
        self.machine = machine
        self.actor = actor
        self.readonly = readonly
        self.clock = clock
        self.follow = follow
        self.flush_interval = flush_interval
        self.tick_interval = tick_interval
        self.before_load = before_load
        self.background = background
        self.view = FleetView(clock=clock, horizon=triage_horizon)
        self.plugin = ConsolePlugin()
        self.machine.plugins.register(self.plugin, name="hitl.console")
        self.flash_text = ""
        self.announced_deadlines: set[str] = set()
        self.loaded = asyncio.Event()
        self.store_ok = True
        #: What the store says is wrong (``machine.problem``) and what stopped the follower, if anything.
        self._problem: str | None = None
        self._follow_error: tuple[str, float] | None = None
        self.batches = 0
        #: task id -> when (monotonic) its row started showing a new request during this session
        self._asked_at: dict[str, float] = {}
        self.initial_keymap = keymap or {}
        #: None loads every finished task too (small stores, tests that want the whole history).
        self.recent_finished_events = recent_finished_events
        #: The newest event a finished task must have changed after to be loaded (0: all were).
        self.finished_since = 0
        self.detail_delay = detail_delay
        self._detail_timer: Timer | None = None
        #: A deciding key acts only on what the detail pane has shown for this long (seconds).
        #: Off (0) for an embedded app; ``hitl console`` and ``hitl demo`` run with ``DWELL_SECONDS``
        #: (or ``$HITL_CONSOLE_DWELL``).
        self.dwell = dwell
        #: After a decision, move the cursor to the next waiting task (``hitl console`` and ``hitl demo`` do).
        self.advance = advance
        #: (task id, interrupt id) the detail pane shows, and since when (monotonic).
        self._shown_key: tuple[str, str | None] | None = None
        self._shown_at = 0.0
        #: Tasks with a decision of ours on its way to the store: a second key on them is refused.
        self.in_flight: set[str] = set()
        #: The last tasks decided from this console (their leaving the view is no surprise).
        self._decided_here: deque[str] = deque(maxlen=64)
        self._capture: KeyCapture | None = None
        self._capture_timer: Timer | None = None
        #: Said before quitting (the demo deletes its store); None quits at once when nothing is in flight.
        self.quit_warning = quit_warning
        self.muted = False
        #: A refusal stays on the flash line at least this long (seconds).
        self.refusal_seconds = refusal_seconds
        #: Freezes the long-lived heap so that full collections stop stalling keys (``hitl_tui.heap``;
        #: process-wide, so off unless asked: ``hitl console`` and ``hitl demo`` ask).
        self.heap: HeapSettler | None = HeapSettler() if settle_heap else None
        self._last_key_at = 0.0
        self._refusal_until = 0.0
        self._deferred_flash: tuple[str | Text, str] | None = None
        self._flash_timer: Timer | None = None
        #: The styles every part of the console draws with, from the theme in force.
        self.scheme: Scheme = DEFAULT_SCHEME
        self._alert_times: deque[float] = deque()
        self._alert_shown_at = 0.0

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TextLine(id="summary")
        yield TextLine(id="banner")
        yield TextLine(id="alert")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ColumnHeader(self.view, id="columns")
                yield TaskTable(self.view, self.clock, id="table")
            yield DetailPane(self.clock, id="detail")
        yield FilterInput(placeholder="filter: id, agent or reason (enter keeps it, esc clears)", id="filter")
        yield TextLine(id="flash")
        yield KeyFooter(id="keys")

    @property
    def table(self) -> TaskTable:
        return self.query_one("#table", TaskTable)

    @property
    def detail(self) -> DetailPane:
        return self.query_one("#detail", DetailPane)

    _started = False

    async def on_ready(self) -> None:
        # Ready (the first screen is composed and shown) rather than Mount: under load a Mount
        # handler was seen running before the screen's widgets existed. Guarded: loading twice
        # would replace what the operator is looking at behind their back.
        if self._started:
            return
        self._started = True
        if self.initial_keymap:
            self.set_keymap(self.initial_keymap)
        self._apply_scheme()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.table.focus()
        self._update_summary()
        # from the start: a database that is down while the console loads is said at once
        self.set_interval(0.25, self._watch_problem, name="problem")
        self.run_worker(self._start(), name="load", group="store", exclusive=False)

    def _theme_changed(self, _theme: object) -> None:
        self._apply_scheme()

    def _apply_scheme(self) -> None:
        """Derive the console's styles from the theme in force and redraw what uses them."""
        self.scheme = scheme_for(self.get_css_variables(), self.current_theme.dark)
        with contextlib.suppress(NoMatches):
            self.table.refresh()
            self.query_one("#columns", ColumnHeader).refresh()
            self.query_one(KeyFooter).refresh()
            self.detail.restyle()
            self._update_summary()

    async def on_unmount(self) -> None:
        if self.heap is not None:
            self.heap.stop()
        try:
            self.machine.plugins.unregister(self.plugin)
        except ValueError:
            pass

    # -- keys typed ahead -----------------------------------------------------------------
    #
    # Textual routes a key to the widget focused when the key is read. A key that opens an
    # input (``/``, ``r``, ``:``…) is handled a little later, so without care the keys typed
    # right after it (a paste, SSH bundling a burst) reach the table and run as commands. Here
    # the app looks at each key as it is read: after an input-opening key the following keys
    # are held until that input has focus, then delivered to it in order — never to the screen
    # underneath. If the opening key was refused, the rest of its burst is dropped.

    async def preview_key(self, event: events.Key) -> bool:
        self._last_key_at = time.monotonic()
        return await self._hold_key(event)

    def _input_ready(self) -> bool:
        focused = self.focused
        if isinstance(focused, TextArea):
            return True
        if not isinstance(focused, Input):
            return False
        return self.modal_open or focused.id == "filter"

    def _filter_focused(self) -> bool:
        focused = self.focused
        return isinstance(focused, Input) and focused.id == "filter" and not self.modal_open

    def _filter_left(self) -> bool:
        return not self._filter_focused()

    def _opens_input(self, key: str) -> bool:
        if self.modal_open or isinstance(self.focused, (Input, TextArea)):
            return False
        try:
            active = self.screen.active_bindings.get(key)
        except Exception:  # not composed yet
            return False
        return active is not None and active.enabled and active.binding.action.split("(", 1)[0] in INPUT_ACTIONS

    async def _hold_key(self, event: events.Key) -> bool:
        """True when the key is held (or dropped) for an input that is opening."""
        capture = self._capture
        now = time.monotonic()
        if capture is not None:
            if capture.dropping:
                if now - capture.last_key < CAPTURE_QUIET:
                    capture.last_key = now
                    capture.dropped += 1
                    return True
                self._end_capture()
            elif capture.ready():
                await self._release_keys()
                return False
            elif now - capture.started > CAPTURE_TIMEOUT:
                self._drop_capture("its input did not open")
            else:
                capture.keys.append(event)
                capture.last_key = now
                return True
        ready: Callable[[], bool] | None = None
        if self._opens_input(event.key):
            ready = self._input_ready
        elif event.key in ("escape", "enter") and self._filter_focused():
            # leaving the filter box: what follows is for the table again (esc then "/" reopens it)
            ready = self._filter_left
        if ready is not None:
            self._capture = KeyCapture(event.key, now, now, ready)
            if self._capture_timer is None:
                self._capture_timer = self.set_interval(0.05, self._check_capture, name="capture")
        return False

    async def _release_keys(self) -> None:
        capture = self._capture
        self._end_capture()
        if capture is None:
            return
        for key in capture.keys:
            # each held key is looked at again: a "/" among them opens the filter and holds the rest
            if not await self._hold_key(key):
                await self.deliver_key(key)

    def _end_capture(self) -> None:
        self._capture = None
        if self._capture_timer is not None:
            self._capture_timer.stop()
            self._capture_timer = None

    def _drop_capture(self, why: str) -> None:
        capture = self._capture
        if capture is None:
            return
        dropped = len(capture.keys) + capture.dropped
        self._end_capture()
        if dropped:
            self.set_flash(f"{dropped} key(s) typed after {capture.opener!r} were dropped: {why}", "bold yellow")

    def refuse_capture(self) -> None:
        """The input-opening key was refused: what was typed after it is dropped, not run."""
        capture = self._capture
        if capture is None or capture.dropping:
            return
        capture.dropping = True
        capture.dropped += len(capture.keys)
        capture.keys.clear()

    async def _check_capture(self) -> None:
        capture = self._capture
        if capture is None:
            self._end_capture()
            return
        now = time.monotonic()
        if capture.dropping:
            if now - capture.last_key >= CAPTURE_QUIET:
                dropped = capture.dropped
                self._end_capture()
                if dropped:
                    self.set_flash(
                        f"{self.flash_text} · {dropped} key(s) typed after {capture.opener!r} were ignored", "bold red"
                    )
        elif capture.ready():
            await self._release_keys()
        elif now - capture.started > CAPTURE_TIMEOUT:
            self._drop_capture("its input did not open")

    async def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if self._capture is not None and not self._capture.dropping and self._capture.ready():
            await self._release_keys()

    async def _start(self) -> None:
        if self.before_load is not None:
            await self.before_load()
        after = await self._load_all()
        if self.heap is not None:
            self.heap.start()
            self.set_interval(1.0, self._settle_heap, name="heap")
        self.set_interval(self.flush_interval, self._apply_batch, name="flush")
        self.set_interval(0.5, self._follow_selection, name="selection")
        if self.tick_interval:
            self.set_interval(self.tick_interval, self._tick, name="tick")
        self.loaded.set()
        if self.background is not None:
            self.run_worker(self.background(), name="background", group="background")
        if self.follow is not False:
            await self._follow_machine(after)

    async def _load_all(self) -> int:
        machine = self.machine
        await machine.open()  # idempotent
        # the starting point first: anything committed while the tasks are read comes again
        # through ``follow`` and is reconciled by version
        after = await machine.last_seq()
        window = self.recent_finished_events
        self.finished_since = max(after - window, 0) if window is not None else 0
        # Unfinished first: a task that finishes between the two reads is then loaded finished.
        tasks = await machine.get_tasks(_UNFINISHED)
        tasks += await machine.get_tasks(_FINISHED, changed_after=self.finished_since or None)
        self.view.load(Row.from_context(t) for t in tasks)
        self.plugin.queue.clear()  # everything queued so far is already in what we loaded
        # the header's hour of expiries and escalations: read after the first paint, not before it
        self.plugin.expiries.clear()
        self.plugin.escalations.clear()
        # after the first paint: reading 5,000 events takes ~200 ms, and the worker shares the loop
        self.call_after_refresh(lambda: self.run_worker(self._count_recent(after), group="count", exclusive=True))
        self.table.rows_changed(None)
        self._update_summary()
        return after

    async def _count_recent(self, after: int) -> None:
        try:
            events = await self.machine.events(after_seq=max(after - 5000, 0))
        except HITLError:
            # the header's hour counts are a nicety: an unreadable store is the follower's and
            # the screens' to report, and must not take the console down with this worker
            return
        for event in events:  # the live hook may have counted some meanwhile: counted once by seq
            source = event.actor.source if event.actor is not None else None
            self.plugin.count(event.seq, event.action, source, event.at.timestamp())
        with contextlib.suppress(NoMatches):
            self._update_summary()

    async def _follow_machine(self, after: int) -> None:
        """Re-emit other processes' transitions through ``hitl_transition``; reconnect on failure."""
        delay = 0.5
        machine = self.machine
        while True:
            try:
                async for event in machine.follow(after):
                    after = event.seq
                    task = await machine.get_task(event.task_id)
                    if task is not None and task.version >= event.version:
                        await machine.plugins.transition(event, task)
                    if not self.store_ok:
                        self._store_back()
                    delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._store_lost(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                try:
                    after = await self._load_all()
                    self._store_back()
                except Exception as again:
                    self._store_lost(again, delay)

    def _store_lost(self, exc: BaseException, delay: float) -> None:
        """The console's follower failed: the banner says so until it is back."""
        self.store_ok = False
        self._follow_error = (f"{type(exc).__name__}: {exc}", delay)
        self._show_banner()

    def _store_back(self) -> None:
        self.store_ok = True
        self._follow_error = None
        self._show_banner()
        self.set_flash("store reconnected")

    def _watch_problem(self) -> None:
        """The store's own word on its health (``machine.problem``): a database that stopped
        answering shows at once, while its calls and followers are still retrying by themselves."""
        problem = self.machine.problem
        if problem == self._problem:
            return
        self._problem = problem
        with contextlib.suppress(NoMatches):
            self._show_banner()
            if problem is None and self._follow_error is None:
                self.set_flash("store reconnected")

    def _show_banner(self) -> None:
        banner = self.query_one("#banner", TextLine)
        problem, error = self._problem, self._follow_error
        if problem is None and error is None:
            banner.remove_class("shown")
            return
        message = Text(f" store unavailable ({self.machine.url}): ", style="bold")
        message.append_text(literal(problem or (error[0] if error else ""), limit=300))
        message.append(f" — reconnecting in {error[1]:g}s" if error is not None else " — reconnecting")
        banner.update(message)
        banner.add_class("shown")

    # -- batches --------------------------------------------------------------------------

    @property
    def modal_open(self) -> bool:
        return isinstance(self.screen, ModalScreen)

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(id="_default")

    def footer_after_dialog(self) -> None:
        """A dialog closed: what the footer offers may have changed while it was open."""
        self._bindings_signature = None
        self.refresh_bindings()

    def _apply_batch(self) -> None:
        try:
            self._apply_queued()
        except NoMatches:
            return  # the app is quitting: its widgets are going away while the timer fires once more

    def _apply_queued(self) -> None:
        # Batches apply while a dialog is open too: the table behind it stays live, and the
        # dialog is told when its task changes (it keeps the operator's text either way).
        queue = self.plugin.queue
        if not queue:
            return
        try:
            self.table  # noqa: B018 - the batch timer may fire once more while the app is quitting
        except NoMatches:
            return
        latest: dict[str, Row] = {}
        while queue:
            row = queue.popleft()
            seen = latest.get(row.task_id)
            if seen is None or row.version > seen.version:
                latest[row.task_id] = row
        self._apply_rows(latest.values())

    def _apply_rows(self, rows: Iterable[Row]) -> None:
        """Reconcile ``rows`` (by task id and version) into the view and redraw what changed."""
        changed = self.view.apply(rows)
        if not changed:
            return
        now = time.monotonic()
        for old, new in changed:
            # A task that asks something new while it is on screen: remember when, so that a key
            # already on its way (meant for the old request) cannot approve the new one.
            if (
                old is not None
                and new.interrupt is not None
                and new.interrupt.requested_by != self.actor
                and (old.interrupt is None or old.interrupt.interrupt_id != new.interrupt.interrupt_id)
            ):
                self._asked_at[new.task_id] = now
        self.batches += 1
        self._announce(changed)
        self.view.reorder()
        changed_ids = {new.task_id for _, new in changed}
        self.view.marked -= {t for t in changed_ids if not self.view.rows[t].waiting}
        self.table.rows_changed(changed_ids)
        self._update_summary()
        self._tell_dialog(changed)
        self.refresh_bindings()
        if self.table.cursor_key in changed_ids:
            # The selected task changed under the cursor: its detail and footer follow, at most
            # a few times a second (each costs a layout), on the ``_follow_selection`` timer.
            self._selection_stale = True

    def _announce(self, changed: Iterable[tuple[Row | None, Row]]) -> None:
        """A toast and the bell when a high or critical task starts waiting."""
        urgent = [
            new
            for old, new in changed
            if new.waiting
            and new.interrupt is not None
            and new.interrupt.severity.rank >= 2
            and (old is None or not old.waiting or old.interrupt is not new.interrupt)
        ]
        for row in urgent[:3]:
            assert row.interrupt is not None
            message = Text()
            message.append_text(literal(row.task_id, "bold", limit=60))
            message.append(" (")
            message.append_text(literal(row.agent, limit=40))
            message.append("): ")
            message.append_text(literal(row.reason, limit=160))
            # plain text: Textual's toast renders only a str (a rich Text crashes it); markup=False keeps it literal
            self.notify(
                message.plain,
                title=f"{row.interrupt.severity.value} task waiting",
                severity="error" if row.interrupt.severity is Severity.CRITICAL else "warning",
                markup=False,
            )
        if len(urgent) > 3:
            self.notify(f"and {len(urgent) - 3} more urgent tasks waiting", severity="warning", markup=False)
        if urgent:
            top = max(urgent, key=lambda r: r.interrupt.severity.rank if r.interrupt else 0)
            assert top.interrupt is not None
            line = Text(f"{top.interrupt.severity.value} waiting: ", style="bold")
            line.append_text(literal(top.task_id, "bold", limit=60))
            line.append(" ")
            line.append_text(literal(top.reason, limit=160))
            self._alert(
                line,
                len(urgent),
                critical=any(r.interrupt.severity is Severity.CRITICAL for r in urgent if r.interrupt),
            )

    def _alert(self, line: Text, count: int = 1, *, critical: bool) -> None:
        """The one alert line (instead of stacked toasts): the latest urgent event and how many
        came in the last minute. The bell rings for critical ones only, unless muted."""
        now = time.monotonic()
        self._alert_times.extend([now] * count)
        while self._alert_times and now - self._alert_times[0] > 60:
            self._alert_times.popleft()
        text = Text("⚠ ", style="bold")
        text.append_text(line)
        if len(self._alert_times) > 1:
            text.append(f"  ({len(self._alert_times)} alerts in the last minute)", style=self.scheme.base)
        if self.muted:
            text.append("  [muted: b]", style=self.scheme.dim)
        widget = self.query_one("#alert", TextLine)
        widget.update(text)
        widget.add_class("shown")
        self._alert_shown_at = now
        if critical and not self.muted:
            self.bell()

    def action_mute(self) -> None:
        self.muted = not self.muted
        self.set_flash("bell muted (b again to unmute)" if self.muted else "bell on for critical requests")

    _selection_stale = False

    def _tell_dialog(self, changed: Iterable[tuple[Row | None, Row]]) -> None:
        screen = self.screen
        notify = getattr(screen, "task_changed", None)
        if notify is None:
            return
        for _, new in changed:
            notify(new)

    def _follow_selection(self) -> None:
        if self._selection_stale and not self.modal_open:
            self._selection_stale = False
            self.refresh_bindings()
            self.run_worker(partial(self._load_detail, self.table.cursor_key), group="detail", exclusive=True)

    def _settle_heap(self) -> None:
        # Idle: no dialog, nothing being decided, and no key for a second (an operator's keys come
        # in bursts; the collection before a freeze should not fall inside one).
        if self.heap is not None:
            quiet = time.monotonic() - self._last_key_at > 1.0
            self.heap.tick(idle=quiet and not self.modal_open and not self.in_flight and self._capture is None)

    def _tick(self) -> None:
        """Once a second: ages and countdowns move; a deadline about to expire is announced once."""
        view = self.view
        if view.sort_column == "attention" and not view.frozen and not self.modal_open:
            # deadlines come within the triage horizon as time passes
            before = view.order
            view.reorder()
            if view.order != before:
                self.table.rows_changed(None)
        self.table.tick()
        now = self.clock()
        for row in self.view.rows.values():
            deadline = row.deadline
            if deadline is None or row.task_id in self.announced_deadlines:
                continue
            if deadline - now <= DEADLINE_WARNING:
                self.announced_deadlines.add(row.task_id)
                message = literal(row.task_id, "bold", limit=60)
                left = max(deadline - now, 0)
                message.append(
                    f": deadline in {left:.0f}s, then {row.interrupt.default_decision if row.interrupt else 'reject'}"
                )
                self.notify(message.plain, title="deadline", severity="error", markup=False)
                critical = row.interrupt is not None and row.interrupt.severity is Severity.CRITICAL
                self._alert(Text("deadline: ").append_text(message), critical=critical)
        if self._alert_shown_at and time.monotonic() - self._alert_shown_at > 60:
            self._alert_shown_at = 0.0
            self.query_one("#alert", TextLine).remove_class("shown")

    def _update_summary(self) -> None:
        view = self.view
        counts = view.counts
        scheme = self.scheme
        dim, soft = scheme.dim, scheme.base
        text = Text()
        text.append(" hitl ", style="bold reverse")
        text.append("  store ", style=dim)
        text.append_text(literal(self.machine.url, limit=80))
        text.append("  operator ", style=dim)
        text.append_text(literal(self.actor, "bold", limit=40))
        if self.readonly:
            text.append("  READ-ONLY", style=scheme.warning)
        text.append("\n ")
        waiting = counts.get(S.AWAITING_APPROVAL, 0)
        text.append(f"waiting {waiting}", style=scheme.state[S.AWAITING_APPROVAL] if waiting else dim)
        by_sev = view.waiting_by_severity
        sev_parts = [(s, by_sev.get(s, 0)) for s in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)]
        text.append(" (")
        for i, (sev, n) in enumerate(sev_parts):
            if i:
                text.append(" ")
            urgent = sev.rank >= 2 and n
            text.append(f"{sev.value} {n}", style=scheme.severity[sev] if urgent else dim)
        text.append(")")
        for state, label in (
            (S.RUNNING, "running"),
            (S.APPROVED, "approved"),
            (S.REJECTED, "rejected"),
            (S.PENDING, "created"),
            (S.COMPLETED, "done"),
            (S.FAILED, "failed"),
        ):
            text.append(f"  {label} {counts.get(state, 0)}", style=soft)
            if self.finished_since and state.terminal:
                text.append(" (recent)", style=dim)  # older finished tasks were left in the store
        text.append(f"   │ showing {len(view.order)} · {view.state_filter}", style=dim)
        if view.text_filter:
            text.append(" · text ", style=dim)
            text.append_text(literal(view.text_filter, limit=40))
        if view.marked:
            text.append(f" · marked {len(view.marked)}", style=scheme.marked)
        if view.frozen:
            text.append(" · FROZEN (z)", style=scheme.marked)
        hour_ago = self.clock() - 3600
        expired = sum(1 for at in self.plugin.expiries if at >= hour_ago)
        escalated = sum(1 for at in self.plugin.escalations if at >= hour_ago)
        text.append("   │ last hour: ", style=dim)
        text.append(f"expired {expired}", style=scheme.error if expired else dim)
        text.append(f"  escalated {escalated}", style=scheme.warning if escalated else dim)
        self.query_one("#summary", TextLine).update(text)

    #: What the flash line's words mean, drawn in the theme's colours.
    _FLASH_STYLES: ClassVar[dict[str, str]] = {"bold red": "error", "bold green": "success", "bold yellow": "warning"}

    def set_flash(self, message: str | Text, style: str = "") -> None:
        """Say what the last action did. A refusal ("bold red") stays for at least
        ``refusal_seconds``: a message that comes meanwhile (the success of the key before it,
        finishing a moment later) waits until then instead of wiping the refusal out."""
        named = self._FLASH_STYLES.get(style)
        now = time.monotonic()
        if named != "error" and now < self._refusal_until:
            self._deferred_flash = (message, style)
            if self._flash_timer is None:
                self._flash_timer = self.set_timer(self._refusal_until - now, self._show_deferred_flash)
            return
        if named == "error":
            self._refusal_until = now + self.refusal_seconds
        look: str | Style = getattr(self.scheme, named) if named is not None else style
        text = message if isinstance(message, Text) else literal(message, look, limit=500)
        self.flash_text = text.plain
        self.query_one("#flash", TextLine).update(text)

    def _show_deferred_flash(self) -> None:
        self._flash_timer = None
        deferred, self._deferred_flash = self._deferred_flash, None
        if deferred is not None:
            with contextlib.suppress(NoMatches):
                self.set_flash(*deferred)  # a newer refusal meanwhile defers it again

    # -- selection ------------------------------------------------------------------------

    _FOOTER_ACTIONS = footer_names()

    def refresh_bindings(self) -> None:
        """Re-check the footer only when what is possible changed: a footer rebuild costs a
        frame, and the cursor moves (and rows change) many times a second."""
        if not self.screen_stack:
            return  # quitting: a late message (a cursor move) finds no screen left to refresh
        try:
            signature: tuple[bool, ...] | None = (
                self.modal_open,
                *(self.command_possible(a) for a in self._FOOTER_ACTIONS),
            )
        except Exception:  # not composed yet
            signature = None
        if signature is None or signature != getattr(self, "_bindings_signature", None):
            self._bindings_signature = signature
            super().refresh_bindings()
            for footer in self.query(KeyFooter):
                footer.refresh()

    @on(TaskTable.CursorMoved)
    def _cursor_moved(self, message: TaskTable.CursorMoved) -> None:
        self.refresh_bindings()
        left = message.left
        if left is not None and left not in self._decided_here and message.task_id is not None:
            row = self.view.rows.get(left)
            now = f"now {STATE_LABEL[row.state]}" if row is not None else "gone"
            self.set_flash(
                f"{left} left the view ({now}); the cursor stayed in its place, on {message.task_id}", "bold yellow"
            )
        # Holding j scrolls through many tasks: draw the detail of the one the cursor stops on,
        # so the cursor itself moves at key speed.
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if self.detail_delay <= 0:
            self.run_worker(partial(self._load_detail, message.task_id), group="detail", exclusive=True)
        else:
            self._detail_timer = self.set_timer(
                self.detail_delay,
                partial(self.run_worker, partial(self._load_detail, message.task_id), group="detail", exclusive=True),
            )

    async def _load_detail(self, task_id: str | None) -> None:
        if task_id is None:
            with contextlib.suppress(NoMatches):
                self.detail.show(None, None)
            self._shown_key = None
            return
        machine = self.machine
        record = await machine.get_task(task_id)
        events = await machine.events(task_id=task_id) if record is not None else []
        try:
            detail = self.detail
        except NoMatches:  # the main screen is gone (quitting)
            return
        detail.show(record, self.view.rows.get(task_id), events)
        interrupt = record.interrupt_point if record is not None else None
        shown = (task_id, interrupt.interrupt_id if interrupt is not None else None)
        if record is None:
            self._shown_key = None
        elif shown != self._shown_key:
            self._shown_key = shown
            self._shown_at = time.monotonic()

    @property
    def selected(self) -> Row | None:
        try:
            return self.table.cursor_row
        except Exception:  # before compose, or while shutting down
            return None

    # -- what is possible right now -------------------------------------------------------

    def command_possible(self, action: str, parameters: tuple[object, ...] = ()) -> bool:
        """Whether ``action`` can act now: the table's gates (read-only, a selected task in one
        of the states the transition table allows), then what the selected request permits."""
        spec = BY_NAME.get(action)
        if spec is None:
            return True
        if self.readonly and spec.decides:
            return False
        row = self.selected
        if spec.needs_task and row is None:
            return False
        states = spec.states
        # ``R`` also lifts the operator's own pause: a waiting review they asked for
        lifts_own_pause = action == "resume" and self._my_pause(row)
        if states is not None and row is not None and row.state not in states and not lifts_own_pause:
            return False
        interrupt = row.interrupt if row is not None and row.waiting else None
        if action in ("approve", "reject", "edit", "respond"):
            if interrupt is None or action not in interrupt.allowed_decisions:
                return False
            return action != "edit" or interrupt.action is not None
        if action == "option":
            number = int(parameters[0]) if parameters else 1  # type: ignore[call-overload]
            return interrupt is not None and number <= len(interrupt.options)
        if action in ("approve_marked", "reject_marked"):
            return bool(self.view.marked)
        if action == "clear_filter":
            return bool(self.view.text_filter) or self.query_one("#filter", Input).display
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        spec = BY_NAME.get(action)
        if spec is None or not spec.blocked_by_dialog:
            return True
        if self.modal_open:
            return False  # a dialog is up: its keys, not ours
        return self.command_possible(action, parameters)

    # -- deciding -------------------------------------------------------------------------

    def _decide(self, row: Row, verb: str, call: Callable[[], Awaitable[Any]]) -> None:
        # In flight from now (not from when the worker starts): a second key read before the
        # worker runs is refused instead of deciding the same task twice.
        self.in_flight.add(row.task_id)
        self.run_worker(self._run_decision(row, verb, call), group="decide")

    def _may_decide(self, row: Row, verb: str) -> bool:
        """The dwell rule: a deciding key acts only on the task (and the request) the detail pane
        has shown for at least ``dwell`` seconds. When the cursor moved, or the task asked
        something new, more recently than that, the key is refused and the flash line names the
        task now under the cursor — the key was meant for what was there before."""
        if row.task_id in self.in_flight:
            self.set_flash(
                f"✗ {row.task_id}: your decision on it is still being recorded; nothing more was done", "bold red"
            )
            self.refuse_capture()
            return False
        why = self._too_soon(row)
        if why is None:
            return True
        self.set_flash(f"✗ not {verb}: {why}; read it, then press again", "bold red")
        self.refuse_capture()
        return False

    def _too_soon(self, row: Row) -> str | None:
        """Why the dwell rule refuses a key on ``row`` now, or None when it allows it."""
        if self.dwell <= 0:
            return None
        key = (row.task_id, row.interrupt.interrupt_id if row.interrupt is not None else None)
        since = time.monotonic() - self._shown_at
        if self._shown_key == key and since >= self.dwell:
            return None
        if self._shown_key is not None and self._shown_key[0] == row.task_id and self._shown_key != key:
            return f"{row.task_id} asked something new just now"
        if self._shown_key == key:
            return f"the cursor moved to {row.task_id} {since:.1f}s ago"
        return f"the cursor moved to {row.task_id} just now"

    def ready_to_decide(self) -> bool:
        """Would a deciding key act on the selected task now (the dwell rule, nothing in flight)?"""
        row = self.selected
        return row is not None and row.task_id not in self.in_flight and self._too_soon(row) is None

    async def _run_decision(self, row: Row, verb: str, call: Callable[[], Awaitable[Any]]) -> None:
        task_id = row.task_id
        self.in_flight.add(task_id)
        try:
            outcome = await call()
        except AlreadyDecidedError as exc:
            self.set_flash(
                f"✗ {task_id}: already decided by {exc.decided_by} ({exc.decision_type}); your {verb} was not recorded",
                "bold red",
            )
            await self.reload_task(task_id)
        except ConflictError as exc:
            self.set_flash(f"✗ {task_id}: changed while you looked ({exc}); nothing was decided", "bold red")
            await self.reload_task(task_id)
        except HITLError as exc:
            self.set_flash(f"✗ {exc}; nothing changed", "bold red")
            await self.reload_task(task_id)
        except Exception as exc:  # the store went away, most likely
            self.set_flash(f"✗ {task_id}: {verb} failed: {type(exc).__name__}: {exc}", "bold red")
        else:
            self._draw_own(outcome)
            after = self._advance_after(task_id) if row.waiting and self.advance else ""
            self.set_flash(f"✓ {verb} {task_id}{after}", "bold green")
        finally:
            self.in_flight.discard(task_id)
            self._decided_here.append(task_id)
        if self.table.cursor_key == task_id:
            # The operator just acted on this task: show the outcome now, not at the next
            # throttled refresh of the selection.
            self.run_worker(partial(self._load_detail, task_id), group="detail", exclusive=True)

    def _draw_own(self, outcome: object) -> None:
        """The operator's own decision is committed: draw it now, from the snapshot the machine
        returned, instead of at the next batch (or, from a server, when the stream brings it
        back). Only this row: the rest of the queue waits for its batch. Reconciled by version, so
        the hook's copy of the same event, applied later, changes nothing."""
        if isinstance(outcome, TaskContext):
            with contextlib.suppress(NoMatches):
                self._apply_rows([Row.from_context(outcome)])

    def _advance_after(self, task_id: str) -> str:
        """After a decision on the selected task, put the cursor on the next waiting task (below
        it in the view, then from the top), in every view; returns the flash line's "next" part.
        The dwell rule then holds keys until that task has been on screen long enough."""
        view = self.view
        table = self.table
        if task_id in view.index:
            if table.cursor_key != task_id:
                return ""  # the operator moved on already: leave the cursor where they put it
            start = view.index[task_id] + 1
        else:
            start = table.cursor_index  # it left the view: the cursor parked on its position
        order = view.order
        for i in [*range(start, len(order)), *range(0, min(start, len(order)))]:
            candidate = view.rows[order[i]]
            if candidate.task_id != task_id and candidate.waiting and candidate.task_id not in self.in_flight:
                if table.cursor_key != candidate.task_id:
                    table.select(candidate.task_id)
                left = countdown(candidate, self.clock())
                severity = candidate.severity.value if candidate.severity is not None else ""
                facts = ", ".join(x for x in (severity, f"{left} left" if left and left != "expired" else left) if x)
                return f" · next: {candidate.task_id}" + (f" ({facts})" if facts else "")
        return " · nothing else is waiting"

    async def reload_task(self, task_id: str) -> None:
        """Put the store's version of a task on screen (after a conflict, the row catches up)."""
        task = await self.machine.get_task(task_id)
        if task is not None:
            self.plugin.queue.append(Row.from_context(task))

    def _changed_just_now(self, row: Row) -> bool:
        """One-key decisions on a request that replaced another less than a moment ago are refused:
        the key was most likely meant for what was on screen before."""
        asked = self._asked_at.get(row.task_id)
        if asked is None or time.monotonic() - asked >= FRESH_REQUEST_SECONDS:
            return False
        self.set_flash(f"✗ {row.task_id}: it asked something new just now; read it, then decide", "bold red")
        return True

    def _seen(self, row: Row) -> dict[str, Any]:
        assert row.interrupt is not None
        return {"source": "console", "interrupt_id": row.interrupt.interrupt_id}

    def _confirm_critical(self, row: Row, what: str, then: Callable[[], None]) -> None:
        if row.interrupt is None or row.interrupt.severity is not Severity.CRITICAL:
            then()
            return
        message = Text("This task is ")
        message.append("critical", style=self.scheme.severity[Severity.CRITICAL])
        message.append(f". {what} ")
        message.append_text(literal(row.task_id, "bold", limit=100))
        message.append("?\n\n")
        message.append_text(literal(row.reason, single_line=False, limit=2000))

        def done(confirmed: bool | None) -> None:
            if confirmed:
                then()
            else:
                self.set_flash(f"cancelled: {row.task_id} was not approved")

        self.push_screen(ConfirmScreen("Approve a critical task", message, "Approve", danger=True), done)

    def action_approve(self) -> None:
        row = self.selected
        if row is None or row.interrupt is None or self._changed_just_now(row) or not self._may_decide(row, "approved"):
            return
        seen = self._seen(row)
        fingerprint = row.interrupt.args_fingerprint

        def go() -> None:
            self._decide(
                row,
                "approved",
                lambda: self.machine.approve(row.task_id, self.actor, args_fingerprint=fingerprint, **seen),
            )

        self._confirm_critical(row, "Approve", go)

    def _ask_reason_then_reject(self, row: Row, option: str | None = None) -> None:
        assert row.interrupt is not None
        required = row.interrupt.severity.rank >= 2
        seen = self._seen(row)

        def done(reason: str | None) -> None:
            if reason is None:
                self.set_flash(f"cancelled: {row.task_id} was not rejected")
                return
            self._decide(
                row,
                "rejected",
                lambda: self.machine.reject(row.task_id, self.actor, reason or None, option=option, **seen),
            )

        self.push_screen(
            ReasonScreen(
                f"Reject {row.task_id}",
                "Why? The agent is told.",
                required=required,
                placeholder="reason",
                row=row,
                clock=self.clock,
            ),
            done,
        )

    def action_reject(self) -> None:
        row = self.selected
        if row is not None and row.interrupt is not None and self._may_decide(row, "rejected"):
            self._ask_reason_then_reject(row)

    def action_edit(self) -> None:
        row = self.selected
        if row is None or row.interrupt is None or row.interrupt.action is None or not self._may_decide(row, "edited"):
            return
        action = row.interrupt.action
        seen = self._seen(row)
        fingerprint = row.interrupt.args_fingerprint

        def done(edited: dict[str, Any] | None) -> None:
            if edited is None:
                self.set_flash(f"cancelled: {row.task_id} was not edited")
                return
            self._confirm_critical(
                row,
                "Approve with edited args",
                lambda: self._decide(
                    row,
                    "edited and approved",
                    lambda: self.machine.edit(row.task_id, edited, self.actor, args_fingerprint=fingerprint, **seen),
                ),
            )

        self.push_screen(EditScreen(row.task_id, action.name, action.args), done)

    def action_respond(self) -> None:
        row = self.selected
        if row is None or row.interrupt is None or not self._may_decide(row, "answered"):
            return
        seen = self._seen(row)
        schema = row.interrupt.response_schema

        def done(answer: str | None) -> None:
            if answer is None:
                self.set_flash(f"cancelled: {row.task_id} got no answer")
                return
            response: Any = answer
            if schema is not None and schema.get("type") not in (None, "string"):
                try:
                    response = json.loads(answer)
                except json.JSONDecodeError:
                    response = answer  # the machine's schema check says what is wrong
            self._decide(row, "answered", lambda: self.machine.respond(row.task_id, response, self.actor, **seen))

        self.push_screen(
            ReasonScreen(
                f"Answer {row.task_id}",
                "Your answer",
                required=True,
                placeholder="type the answer",
                row=row,
                clock=self.clock,
            ),
            done,
        )

    def action_option(self, number: int) -> None:
        row = self.selected
        if row is None or row.interrupt is None or not 1 <= number <= len(row.interrupt.options):
            return
        if self._changed_just_now(row) or not self._may_decide(row, "decided"):
            return
        option = row.interrupt.options[number - 1]
        allowed = row.interrupt.allowed_decisions
        seen = self._seen(row)
        if option.strip().lower() in _REJECT_WORDS and "reject" in allowed:
            self._ask_reason_then_reject(row, option)
        elif "approve" in allowed:
            fingerprint = row.interrupt.args_fingerprint
            self._confirm_critical(
                row,
                f"Choose {option!r} for",
                lambda: self._decide(
                    row,
                    f"chose {option!r} for",
                    lambda: self.machine.approve(
                        row.task_id, self.actor, option=option, args_fingerprint=fingerprint, **seen
                    ),
                ),
            )
        elif "respond" in allowed:
            self._decide(
                row, f"answered {option!r} to", lambda: self.machine.respond(row.task_id, option, self.actor, **seen)
            )
        else:
            self.set_flash(f"option {number} is not a decision this task allows ({', '.join(allowed)})")

    def _my_pause(self, row: Row | None) -> bool:
        """A review this operator asked for by pausing the task (``R`` lets it go on)."""
        return (
            row is not None
            and row.waiting
            and row.interrupt is not None
            and row.interrupt.kind.value == "review"
            and row.interrupt.requested_by == self.actor
        )

    def action_resume(self) -> None:
        row = self.selected
        if row is None or not self._may_decide(row, "resumed"):
            return
        if self._my_pause(row):
            # taking back one's own pause: approve the review with its "resume" option
            assert row.interrupt is not None
            seen = self._seen(row)
            fingerprint = row.interrupt.args_fingerprint
            option = "resume" if "resume" in row.interrupt.options else None
            self._decide(
                row,
                "resumed (pause lifted)",
                lambda: self.machine.approve(
                    row.task_id, self.actor, option=option, args_fingerprint=fingerprint, **seen
                ),
            )
            return
        self._decide(row, "resumed", lambda: self.machine.resume(row.task_id, actor=self.actor))

    def action_pause(self) -> None:
        row = self.selected
        if row is None or not self._may_decide(row, "paused"):
            return

        def done(reason: str | None) -> None:
            if reason is None:
                self.set_flash(f"cancelled: {row.task_id} keeps running")
                return
            self._decide(row, "paused", lambda: self.machine.pause(row.task_id, self.actor, reason))

        self.push_screen(
            ReasonScreen(
                f"Pause {row.task_id}",
                "Why? The agent stops at its next checkpoint.",
                required=True,
                placeholder="reason",
                row=row,
                clock=self.clock,
            ),
            done,
        )

    def action_mark(self) -> None:
        row = self.selected
        if row is None:
            return
        marked = self.view.marked
        if row.task_id in marked:
            marked.discard(row.task_id)
        else:
            marked.add(row.task_id)
        self.table.action_cursor_down()
        self.table.refresh()
        self._update_summary()
        self.refresh_bindings()

    def action_approve_marked(self) -> None:
        view = self.view
        shown, hidden = view.visible_marked()
        ids = shown + hidden
        rows = [view.rows[t] for t in ids if t in view.rows]
        critical = [
            r.task_id
            for r in rows
            if r.waiting and r.interrupt is not None and r.interrupt.severity is Severity.CRITICAL
        ]
        if critical:
            self.set_flash(
                f"✗ batch approve refused: {len(critical)} marked task(s) are critical "
                f"({', '.join(critical[:3])}); approve those one at a time",
                "bold red",
            )
            return
        waiting = [
            r for r in rows if r.waiting and r.interrupt is not None and "approve" in r.interrupt.allowed_decisions
        ]
        if not waiting:
            self.set_flash("nothing marked is waiting for approval")
            return
        n_hidden = sum(1 for r in waiting if r.task_id not in view.index)
        message = Text(f"Approve {len(waiting)} marked ({n_hidden} hidden by filter)?")
        if len(waiting) < len(rows):
            message.append(f"\n{len(rows) - len(waiting)} marked task(s) are not waiting and are skipped.")

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.run_worker(self._approve_many(waiting), group="decide")
            else:
                self.set_flash("cancelled: nothing approved")

        self.push_screen(ConfirmScreen("Approve marked", message, f"Approve {len(waiting)}"), done)

    def action_reject_marked(self) -> None:
        """One reason for every marked waiting task (fifteen identical requests, one dialog);
        critical ones among them need their own confirm, focused on Cancel."""
        view = self.view
        shown, hidden = view.visible_marked()
        rows = [view.rows[t] for t in shown + hidden if t in view.rows]
        waiting = [
            r
            for r in rows
            if r.waiting
            and r.interrupt is not None
            and "reject" in r.interrupt.allowed_decisions
            and r.task_id not in self.in_flight
        ]
        if not waiting:
            self.set_flash("nothing marked is waiting for a decision")
            self.refuse_capture()
            return
        n_hidden = sum(1 for r in waiting if r.task_id not in view.index)
        critical = [r for r in waiting if r.interrupt is not None and r.interrupt.severity is Severity.CRITICAL]
        required = any(r.interrupt is not None and r.interrupt.severity.rank >= 2 for r in waiting)

        def reject_all(reason: str) -> None:
            self.run_worker(self._reject_many(waiting, reason), group="decide")

        def with_reason(reason: str | None) -> None:
            if reason is None:
                self.set_flash("cancelled: nothing rejected")
                return
            if not critical:
                reject_all(reason)
                return
            message = Text(f"{len(critical)} of the {len(waiting)} marked tasks are ")
            message.append("critical", style=self.scheme.severity[Severity.CRITICAL])
            message.append(": ")
            message.append_text(literal(", ".join(r.task_id for r in critical[:5]), "bold", limit=300))
            message.append("\nReject them too, with the same reason?")

            def confirmed(yes: bool | None) -> None:
                if yes:
                    reject_all(reason)
                else:
                    self.set_flash("cancelled: nothing rejected")

            self.push_screen(
                ConfirmScreen("Reject critical tasks", message, f"Reject {len(waiting)}", danger=True), confirmed
            )

        self.push_screen(
            ReasonScreen(
                f"Reject {len(waiting)} marked ({n_hidden} hidden by filter)",
                "One reason for all of them. The agents are told.",
                required=required,
                placeholder="reason",
            ),
            with_reason,
        )

    async def _reject_many(self, rows: list[Row], reason: str) -> None:
        done, failed = 0, []
        self.in_flight.update(r.task_id for r in rows)
        try:
            for row in rows:
                try:
                    await self.machine.reject(row.task_id, self.actor, reason or None, **self._seen(row))
                    done += 1
                except HITLError as exc:
                    failed.append(f"{row.task_id}: {exc}")
                    await self.reload_task(row.task_id)
                self.view.marked.discard(row.task_id)
                self.in_flight.discard(row.task_id)
        finally:
            self.in_flight.difference_update(r.task_id for r in rows)
        if failed:
            self.set_flash(f"rejected {done}, {len(failed)} not: {failed[0]}", "bold red")
        else:
            self.set_flash(f"✓ rejected {done} marked task(s)", "bold green")
        self._update_summary()

    async def _approve_many(self, rows: list[Row]) -> None:
        done, failed = 0, []
        for row in rows:
            assert row.interrupt is not None
            try:
                await self.machine.approve(
                    row.task_id, self.actor, args_fingerprint=row.interrupt.args_fingerprint, **self._seen(row)
                )
                done += 1
            except HITLError as exc:
                failed.append(f"{row.task_id}: {exc}")
                await self.reload_task(row.task_id)
            self.view.marked.discard(row.task_id)
        if failed:
            self.set_flash(f"approved {done}, {len(failed)} not: {failed[0]}", "bold red")
        else:
            self.set_flash(f"✓ approved {done} marked task(s)", "bold green")
        self._update_summary()

    # -- viewing --------------------------------------------------------------------------

    def _relist(self) -> None:
        self.view.reorder(force=True)
        self.table.rows_changed(None, report_left=False)  # the operator changed the view: no surprise
        self.query_one("#columns", ColumnHeader).refresh()
        self._update_summary()
        self.refresh_bindings()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        # at once, not on the next idle (``focus()``): the keys that follow are the filter's
        self.screen.set_focus(box)
        self.refresh_bindings()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            self.view.text_filter = event.value
        except FilterError as exc:
            self.set_flash(f"✗ {exc}; the filter is unchanged", "bold red")
            return
        self._relist()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.display = False
        self.screen.set_focus(self.table)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.view.text_filter = ""
        self._relist()
        self.screen.set_focus(self.table)  # at once: a "/" right after esc opens the filter again
        self.set_flash("filter cleared")

    def action_cycle_state_filter(self) -> None:
        current = STATE_FILTERS.index(self.view.state_filter)
        self.action_set_state_filter(STATE_FILTERS[(current + 1) % len(STATE_FILTERS)])

    def action_set_state_filter(self, name: str) -> None:
        self.view.state_filter = name
        self._relist()
        self.set_flash(f"showing {name} tasks")

    def action_sort(self) -> None:
        current = SORT_ORDER.index(self.view.sort_column)
        self.view.sort_column = SORT_ORDER[(current + 1) % len(SORT_ORDER)]
        self.view.sort_reverse = False
        self._relist()
        self.set_flash(f"sorted by {self.view.sort_column}")

    def action_sort_deadline(self) -> None:
        self.view.sort_column = "deadline"
        self.view.sort_reverse = False
        self._relist()
        self.set_flash("sorted by deadline, soonest first (s cycles, S flips)")

    def action_freeze(self) -> None:
        view = self.view
        view.frozen = not view.frozen
        if not view.frozen:
            self._relist()
        self._update_summary()
        self.set_flash(
            "frozen: rows keep their places while you read (z again re-sorts)" if view.frozen else "unfrozen: re-sorted"
        )

    def action_flip_sort(self) -> None:
        self.view.sort_reverse = not self.view.sort_reverse
        self._relist()
        self.set_flash(f"sorted by {self.view.sort_column}, {'descending' if self.view.sort_reverse else 'ascending'}")

    def action_focus_detail(self) -> None:
        detail = self.detail
        if detail.has_focus:
            self.table.focus()
        else:
            detail.focus()

    def action_history(self) -> None:
        row = self.selected
        self.run_worker(self._open_history(row.task_id if row is not None else None), group="history")

    async def _open_history(self, task_id: str | None) -> None:
        machine = self.machine
        if task_id is not None:
            events = await machine.events(task_id=task_id)
            title = f"History of {task_id}"
        else:
            last = await machine.last_seq()
            events = await machine.events(after_seq=max(last - 500, 0))
            title = "Audit trail (last 500 events)"
        await self.push_screen(HistoryScreen(title, events))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(keys, description, id) of every binding, with the keymap applied (the help screen)."""
        keymap = getattr(self, "_keymap", {})
        rows = []

        def shown(keys: str) -> str:
            return keys.replace("question_mark", "?").replace("slash", "/").replace("colon", ":")

        for binding in TaskTable.BINDINGS:
            if isinstance(binding, Binding):
                rows.append(
                    (
                        shown(keymap.get(binding.id or "", binding.key)),
                        binding.tooltip or binding.description,
                        binding.id or "",
                    )
                )
        for spec in ACTIONS:
            if spec.key:
                rows.append((shown(keymap.get(spec.id, spec.key)), spec.help, spec.id))
        rows.append(("ctrl+p", "Command palette", "(textual)"))
        return rows

    async def action_quit(self) -> None:
        """Quit — after a confirm when decisions are still on their way to the store, or when
        quitting loses something (the demo deletes its store). Cancel is focused."""
        if self.modal_open and isinstance(self.screen, ConfirmScreen) and self.screen.title_text == "Quit":
            return
        reasons = []
        if self.in_flight:
            reasons.append(
                f"{len(self.in_flight)} decision(s) are still being recorded: {', '.join(sorted(self.in_flight)[:3])}."
            )
        if self.quit_warning:
            reasons.append(self.quit_warning)
        if not reasons:
            self.exit()
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.exit()
            else:
                self.set_flash("still here")

        self.push_screen(
            ConfirmScreen("Quit", Text("\n".join(reasons) + "\n\nQuit anyway?"), "Quit", danger=True), done
        )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.binding_rows(), str(keymap_path())))

    # -- stats screen (hitl_tui/stats_screen.py) ------------------------------------------------

    def action_stats(self) -> None:
        from .stats_screen import StatsScreen

        if not isinstance(self.screen, StatsScreen):
            self.push_screen(StatsScreen(self.machine, clock=self.clock))
