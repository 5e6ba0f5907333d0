"""The console's stats screen: how the queue and the people who drain it are doing, live.

Opened with ``t`` or the palette's "view: stats". It loads the figures once through the machine
(``machine.stats``: the waiting tasks by index, the window's events by SQL on SQLite, through the
server's API on a ``hitl serve``), then
keeps them live from the same stream the task table follows — every ``hitl_transition`` the
console receives, in-process or re-emitted by its store follower — folded once a second.

Drawn with Textual's own ``Sparkline`` (waiting tasks, one bar a minute for the last hour) and
``textual-plotext`` (the time-to-decision histogram by severity): the one plotting widget that
installs cleanly beside the pinned textual 8.2.8 without numpy. Operator and task ids are
untrusted text: they go through ``hitl_tui.text.literal`` (control characters shown, no markup).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from hitl_core import Event, HITLStateMachine, TaskContext, hookimpl
from hitl_core.stats import HISTOGRAM_BOUNDS, SEVERITIES, US, Stats, StatsFold, StatsSettings
from hitl_core.stats_cli import duration

from .text import literal

Clock = Callable[[], float]
#: The window the screen's figures cover (the sparkline always shows the last hour).
WINDOW_SECONDS = 24 * 3600
_SEVERITY_STYLE = {"critical": "bold #ff3030", "high": "#ff8700", "medium": "#d7d700", "low": "#a0a0a0"}
#: The histogram's colours, low … critical: the same as the severity names in the table beside it,
#: which serves as the legend (plotext's own legend box would cover the first bars).
_PLOT_COLOURS = ((160, 160, 160), (215, 215, 0), (255, 135, 0), (255, 48, 48))


class _Feed:
    """``hitl_transition`` → a buffer the screen folds once a second (in ``seq`` order)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def hitl_transition(self, event: Event, task: TaskContext) -> None:
        self.events.append(event)


def _bucket_labels() -> list[str]:
    labels = [f"{b:g}s" if b < 60 else f"{b / 60:g}m" for b in HISTOGRAM_BOUNDS]
    return [*labels, f">{labels[-1]}"]


class StatsScreen(ModalScreen[None]):
    """Waiting now and over the hour, time to decision, who decides, rubber stamps."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,q,t", "close", "Close", id="stats.close")
    ]
    DEFAULT_CSS = """
    StatsScreen { align: center middle; }
    StatsScreen #stats-box { width: 96%; height: 94%; border: thick $accent; background: $surface; padding: 0 1; }
    StatsScreen #stats-head { height: 3; }
    StatsScreen #stats-spark-label { height: 1; }
    StatsScreen Sparkline { height: 3; margin-bottom: 1; }
    StatsScreen #stats-middle { height: 14; }
    StatsScreen #stats-times { width: 44; }
    StatsScreen PlotextPlot { width: 1fr; }
    StatsScreen #stats-people { height: 1fr; }
    """

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        clock: Clock,
        settings: StatsSettings | None = None,
        refresh_interval: float | None = 1.0,
    ) -> None:
        super().__init__()
        self.machine = machine
        self.clock = clock
        self.settings = settings
        self.refresh_interval = refresh_interval
        self.fold: StatsFold | None = None
        self.stats: Stats | None = None
        self._feed = _Feed()

    def compose(self) -> ComposeResult:
        with Vertical(id="stats-box"):
            yield Static(Text("loading the figures…", style="grey50"), id="stats-head")
            yield Static(Text("waiting tasks, last hour (a bar a minute)", style="grey50"), id="stats-spark-label")
            yield Sparkline([0] * 60, summary_function=max, id="stats-spark")
            with Horizontal(id="stats-middle"):
                yield Static(id="stats-times")
                yield PlotextPlot(id="stats-histogram")
            yield Static(id="stats-people")

    async def on_mount(self) -> None:
        # Listen before loading: a transition committed meanwhile is folded after the load (the
        # fold ignores what the load already holds, by seq).
        self.machine.plugins.register(self._feed, name="hitl.console.stats")
        self.run_worker(self._load(), name="stats-load", group="stats", exit_on_error=False)

    def on_unmount(self) -> None:
        try:
            self.machine.plugins.unregister(self._feed)
        except ValueError:
            pass

    def _now(self) -> int:
        return int(self.clock() * US)

    async def _load(self) -> None:
        settings = self.settings
        if settings is None:
            from hitl_core.policies import found_config

            try:
                settings = StatsSettings.from_config(found_config(sweep=False))
            except Exception:  # a broken hitl.toml is the policy's problem, not the figures'
                settings = StatsSettings()
        try:
            fold = await self.machine.stats(WINDOW_SECONDS, now=self._now(), settings=settings)
        except Exception as exc:  # the store is down or unreadable: say so here, keep the console up
            message = Text("could not load the figures: ", style="bold")
            message.append_text(literal(f"{type(exc).__name__}: {exc}", limit=300))
            message.append(" (close and open again to retry)", style="grey50")
            self.query_one("#stats-head", Static).update(message)
            return
        self.fold = fold
        self.fold_pending()
        if self.refresh_interval:
            self.set_interval(self.refresh_interval, self.fold_pending, name="stats-refresh")

    def fold_pending(self) -> None:
        """Fold what arrived since the last call and redraw (the refresh timer's callback)."""
        fold = self.fold
        if fold is None:
            return
        pending, self._feed.events = self._feed.events, []
        for event in sorted(pending, key=lambda e: e.seq):
            fold.apply_event(event)
        now = self._now()
        self.stats = fold.snapshot(now, now - WINDOW_SECONDS * US)
        self._draw(self.stats)

    # -- drawing ------------------------------------------------------------------------------

    def _draw(self, stats: Stats) -> None:
        head = Text()
        head.append(" stats ", style="bold reverse")
        head.append("  last 24h  store ", style="grey50")
        head.append_text(literal(self.machine.url, limit=60))
        head.append("\n waiting now ", style="grey50")
        head.append(str(stats.waiting), style="bold bright_yellow" if stats.waiting else "grey50")
        head.append(" (")
        for i, sev in enumerate(reversed(SEVERITIES)):
            if i:
                head.append(" ")
            n = stats.waiting_by_severity[sev.value]
            head.append(f"{sev.value} {n}", style=_SEVERITY_STYLE[sev.value] if n else "grey50")
        head.append(")")
        if stats.oldest_waiting_task is not None:
            head.append("   oldest ", style="grey50")
            head.append_text(literal(stats.oldest_waiting_task, "bold", limit=40))
            head.append(f" waiting {duration(stats.oldest_waiting_seconds)}")
        head.append("\n decisions ", style="grey50")
        if stats.has_decisions:
            k = stats.by_kind
            head.append(f"{stats.decisions}", style="bold")
            head.append(f"  person {k['person']} · policy {k['policy']} · timeout {k['timeout']}")
        else:
            head.append("none yet in the last 24h", style="italic")
        head.append(f"   expiries {stats.expiries}   escalations {stats.escalations}")
        self.query_one("#stats-head", Static).update(head)
        series = stats.waiting_series
        self.query_one("#stats-spark-label", Static).update(
            Text(f"waiting tasks, last hour (a bar a minute; now {series[-1]}, max {max(series)})", style="grey50")
        )
        self.query_one("#stats-spark", Sparkline).data = [float(v) for v in series]
        self.query_one("#stats-times", Static).update(self._times_table(stats))
        self._draw_histogram(stats)
        self.query_one("#stats-people", Static).update(self._people(stats))

    def _times_table(self, stats: Stats) -> Table:
        table = Table(title="a person's time to decision", box=None, padding=(0, 1), title_justify="left")
        table.add_column("severity")
        table.add_column("count", justify="right")
        table.add_column("p50", justify="right")
        table.add_column("p90", justify="right")
        for sev in reversed(SEVERITIES):
            t = stats.time_to_decision[sev.value]
            table.add_row(
                Text(sev.value, style=_SEVERITY_STYLE[sev.value]), str(t.count), duration(t.p50), duration(t.p90)
            )
        if stats.clock_skew_decisions:
            table.caption = f"{stats.clock_skew_decisions} stamped before their request (clock went back): left out"
        elif not stats.has_decisions:
            table.caption = "no decisions yet"
        return table

    def _draw_histogram(self, stats: Stats) -> None:
        widget = self.query_one("#stats-histogram", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        plt.title("decisions per time-to-decision bucket, by severity (colours as at left)")
        counts = [stats.time_to_decision[s.value].histogram for s in SEVERITIES]
        labels = _bucket_labels()
        plt.stacked_bar(labels, counts, color=list(_PLOT_COLOURS), width=0.6)
        top = max((sum(column) for column in zip(*counts, strict=True)), default=0)
        step = max(1, -(-top // 4))  # at most five whole-number ticks: counts are never fractions
        plt.yticks(list(range(0, top + step, step)))
        widget.refresh()

    def _people(self, stats: Stats) -> Table:
        table = Table(title="who decides", box=None, padding=(0, 1), title_justify="left", expand=False)
        table.add_column("operator")
        table.add_column("decisions", justify="right")
        table.add_column("approved", justify="right")
        table.add_column("rejected", justify="right")
        table.add_column("p50", justify="right")
        table.add_column("rubber stamps", justify="right")
        for o in stats.operators[:12]:
            table.add_row(
                literal(o.actor, limit=32),
                str(o.decisions),
                str(o.approved),
                str(o.rejected),
                duration(o.p50_seconds),
                Text(str(o.rubber_stamps), style="bold bright_red") if o.rubber_stamps else Text("0", style="grey50"),
            )
        if not stats.operators:
            table.caption = "no decisions by a person yet"
        elif stats.rubber_stamps:
            last = stats.rubber_stamps[-1]
            caption = Text(f"{len(stats.rubber_stamps)} decided faster than the request could be read; last: ")
            caption.append_text(literal(last.actor, "bold", limit=32))
            caption.append(" on ")
            caption.append_text(literal(last.task_id, limit=40))
            caption.append(f" in {duration(last.seconds)} (reading takes {duration(last.min_read_seconds)})")
            table.caption = caption
        return table

    def action_close(self) -> None:
        self.dismiss(None)
