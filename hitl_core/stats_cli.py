"""``hitl stats``: how the queue and the people who drain it are doing.

``hitl stats [--since 24h]`` prints a table for people, ``--json`` the same figures for scripts,
``--png FILE`` / ``--svg FILE`` draws them (needs the ``stats`` extra: matplotlib), and
``--serve [HOST]:PORT`` keeps them live at ``/metrics`` for Prometheus. Registered on the ``hitl``
parser by ``add_stats_command`` (one line in ``hitl_core.cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .canonical import now_us
from .cli_commands import EXIT_CODES_HELP, EXIT_OK, EXIT_USAGE, _run
from .errors import PayloadError
from .machine import HITLStateMachine
from .stats import SEVERITIES, US, Stats, StatsSettings, inert
from .text import json_text

_SPARK = "▁▂▃▄▅▆▇█"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
INSTALL_HINT = "charts need matplotlib: pip install 'hitl[stats]' (or pip install matplotlib)"


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` (or plain seconds) → seconds; ``PayloadError`` otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not found or float(found.group(1)) <= 0:
        raise PayloadError(f"--since {text!r}: give a positive duration such as 90s, 15m, 24h or 7d")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def sparkline(values: list[int]) -> str:
    if not values:
        return ""
    top = max(values)
    if top == 0:
        return _SPARK[0] * len(values)
    return "".join(_SPARK[min(len(_SPARK) - 1, v * (len(_SPARK) - 1) // top)] for v in values)


def duration(seconds: float | None) -> str:
    """1.2s, 45s, 4m05s, 2h07m, 3d04h; "-" for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _tenths(seconds: float | None) -> str:
    # a flag compares two close numbers: whole seconds could print "11s, at least 11s"
    return "-" if seconds is None else f"{seconds:.1f}s" if seconds < 60 else duration(seconds)


def render_table(stats: Stats, store_url: str, window_label: str) -> str:
    """The figures as text for a terminal. Operator and task ids are made inert (``stats.inert``)."""
    lines: list[str] = []
    since = datetime.fromtimestamp(stats.since / US, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"hitl stats  {inert(store_url, 100)}  last {window_label} (since {since})")
    lines.append("")
    sev = ", ".join(f"{s.value} {stats.waiting_by_severity[s.value]}" for s in reversed(SEVERITIES))
    oldest = (
        f"   oldest: {inert(stats.oldest_waiting_task, 40)} waiting {duration(stats.oldest_waiting_seconds)}"
        if stats.oldest_waiting_task is not None
        else ""
    )
    lines.append(f"waiting now     {stats.waiting}  ({sev}){oldest}")
    series = stats.waiting_series
    lines.append(f"last hour       {sparkline(series)}  min {min(series)} max {max(series)} (one mark a minute)")
    if not stats.has_decisions:
        lines.append("decisions       no decisions yet in this window: no times, operators or rubber stamps to show")
        lines.append(f"escalations     {stats.escalations}")
        return "\n".join(lines) + "\n"
    k = stats.by_kind
    lines.append(
        f"decisions       {stats.decisions}  (person {k['person']}, policy {k['policy']}, "
        f"timeout {k['timeout']})   expiries {stats.expiries}   escalations {stats.escalations}"
    )
    lines.append("")
    lines.append("time to decision (a person's, request to final decision)")
    lines.append(f"  {'SEVERITY':<10}{'COUNT':>7}{'P50':>9}{'P90':>9}")
    for s in reversed(SEVERITIES):
        t = stats.time_to_decision[s.value]
        lines.append(f"  {s.value:<10}{t.count:>7}{duration(t.p50):>9}{duration(t.p90):>9}")
    if stats.clock_skew_decisions:
        lines.append(
            f"  {stats.clock_skew_decisions} decision(s) stamped before their request (the clock went "
            "backwards) are left out of these times"
        )
    lines.append("")
    if stats.operators:
        width = max(8, *(len(inert(o.actor, 32)) for o in stats.operators))
        lines.append(f"  {'OPERATOR':<{width}}  {'DECISIONS':>9}  {'APPROVED':>8}  {'REJECTED':>8}  {'P50':>7}  STAMPS")
        for o in stats.operators:
            lines.append(
                f"  {inert(o.actor, 32):<{width}}  {o.decisions:>9}  {o.approved:>8}  {o.rejected:>8}  "
                f"{duration(o.p50_seconds):>7}  {o.rubber_stamps or ''}"
            )
    else:
        lines.append("  no decisions by a person in this window")
    if stats.rubber_stamps:
        lines.append("")
        lines.append(
            f"rubber stamps   {len(stats.rubber_stamps)} decision(s) came faster than the request could be read:"
        )
        for r in stats.rubber_stamps[-5:]:
            lines.append(
                f"  {inert(r.actor, 32)} on {inert(r.task_id, 40)} ({r.severity.value if r.severity else '?'}) "
                f"in {_tenths(r.seconds)}, reading takes at least {_tenths(r.min_read_seconds)}"
            )
    return "\n".join(lines) + "\n"


def _settings() -> StatsSettings:
    from .policies import found_config

    return StatsSettings.from_config(found_config(sweep=False))


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise PayloadError(f"--serve {text!r}: give [HOST]:PORT, e.g. :9464 or 127.0.0.1:9464 (port 0: any free port)")
    return host or "127.0.0.1", int(port)


async def _stats(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    since = parse_since(args.since)
    image = args.png or args.svg
    if image:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"hitl: error: {INSTALL_HINT}", file=sys.stderr)
            return EXIT_USAGE
    if args.serve:
        return await _serve(machine, args, since, out)
    settings = _settings()
    now = now_us()
    fold = await machine.stats(since, now=now, settings=settings)
    stats = fold.snapshot(now, now - int(since * US))
    if image:
        from .stats_charts import render_charts

        render_charts(stats, Path(image), "svg" if args.svg else "png")
        print(f"wrote charts to {image}", file=sys.stderr)
        return EXIT_OK
    if args.json:
        # json_text: ids with escape or bidi characters arrive as \\u escapes (inert, same value)
        out.write(json_text(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False)) + "\n")
        return EXIT_OK
    out.write(render_table(stats, machine.url, args.since))
    return EXIT_OK


async def _serve(machine: HITLStateMachine, args: argparse.Namespace, since: float, out: IO[str]) -> int:
    from .stats_metrics import render_prometheus, serve_metrics

    host, port = parse_address(args.serve)
    fold = await machine.stats(since, settings=_settings())
    span = int(since * US)

    def now_text() -> str:
        now = now_us()
        return render_prometheus(fold.snapshot(now, now - span))

    latest = [now_text()]
    server = serve_metrics(host, port, lambda: latest[0])
    print(f"serving /metrics on http://{host}:{server.server_address[1]}/metrics (ctrl-c stops)", file=out, flush=True)

    async def follow() -> None:
        async for event in machine.follow(fold.last_seq):
            fold.apply_event(event)

    follower = asyncio.create_task(follow())
    try:
        while not follower.done():
            latest[0] = now_text()
            await asyncio.sleep(1.0)
        follower.result()
    finally:
        follower.cancel()
        server.shutdown()
    return EXIT_OK


def add_stats_command(sub: Any) -> None:
    """Add ``hitl stats`` to the ``hitl`` parser's subparsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "stats",
        help="how the queue and its deciders are doing: waiting, times, operators, rubber stamps",
        description="How the queue and the people who drain it are doing, from the audit trail.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store", metavar="URL", default=argparse.SUPPRESS, help="store URL (default: $HITL_STORE, else the user file)"
    )
    parser.add_argument("--since", default="24h", metavar="DURATION", help="window: 90m, 24h, 7d (default 24h)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    charts = parser.add_mutually_exclusive_group()
    charts.add_argument("--png", metavar="FILE", help="draw the charts to a PNG (needs the stats extra)")
    charts.add_argument("--svg", metavar="FILE", help="draw the charts to an SVG (needs the stats extra)")
    parser.add_argument("--serve", metavar="[HOST]:PORT", help="serve Prometheus /metrics, live, until ctrl-c")
    parser.set_defaults(handler=_run(_stats))


def read_check_field() -> Any:
    """For ``hitl audit export``: a function adding ``"read_check"`` to a person's decision event.

    ``{"rubber_stamp": bool, "seconds": float | null, "min_read_seconds": float, "clock_skew": bool}``
    — whether the decision came faster than the request could be read (``[stats]`` in hitl.toml).
    The field is beside the event's hashed fields, not one of them: the chain is unchanged. A
    decision whose request is not in the same export (``--after`` past it) gets no field.
    """
    from .stats import annotate_decision_events

    settings = _settings()
    requests: dict[str, Any] = {}

    def add(record: Any, line: str) -> str:
        for _, verdict in annotate_decision_events((record,), settings, requests):
            if verdict is not None:
                return f'{line[:-1]},"read_check":{json.dumps(verdict, separators=(",", ":"))}}}'
        return line

    return add
