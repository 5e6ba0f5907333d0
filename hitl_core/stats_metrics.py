"""Prometheus text for the queue's figures, and a small opt-in ``/metrics`` server.

``render_prometheus(stats)`` is the one place the names are spelt (docs/metrics.md lists them):
any long-running hitl process — ``hitl stats --serve``, or ``hitl serve``'s own ``/metrics`` —
renders a ``Stats`` with it. Figures over the window (decisions, times) are gauges over that
window, not counters since the process started: they come from the audit trail, which is
already the cumulative record.

Label values (operator ids, task ids) come from people and agents: they are escaped as the text
format requires and their control characters made inert, so a scrape shown in a terminal is safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .stats import HISTOGRAM_BOUNDS, SEVERITIES, Stats, inert

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    text = inert(value, limit=200)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float | None) -> str:
    if value is None:
        return "NaN"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def render_prometheus(stats: Stats) -> str:
    """The Prometheus text exposition (format 0.0.4) of ``stats``."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float | None]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {_num(value)}")

    window = (stats.now - stats.since) / 1_000_000
    metric("hitl_stats_window_seconds", "gauge", "Length of the window the windowed figures cover.", [("", window)])
    # Named and labelled as ``hitl serve``'s own /metrics names it (hitl_core.server.app), so the
    # two can be scraped side by side or merged: sum over severity for the total.
    metric(
        "hitl_waiting_tasks",
        "gauge",
        "Tasks waiting for a decision now, by severity.",
        [(f'{{severity="{s}"}}', n) for s, n in stats.waiting_by_severity.items()],
    )
    metric(
        "hitl_oldest_waiting_seconds",
        "gauge",
        "How long the oldest waiting task has waited (NaN when none waits).",
        [("", stats.oldest_waiting_seconds)],
    )
    metric(
        "hitl_decisions",
        "gauge",
        "Final decisions in the window, by who made them (person, policy, timeout).",
        [(f'{{kind="{k}"}}', n) for k, n in stats.by_kind.items()],
    )
    metric("hitl_expiries", "gauge", "Requests whose deadline passed undecided, in the window.", [("", stats.expiries)])
    metric("hitl_escalations", "gauge", "Escalations in the window.", [("", stats.escalations)])
    samples: list[tuple[str, float | None]] = []
    for sev in SEVERITIES:
        t = stats.time_to_decision[sev.value]
        samples.append((f'{{severity="{sev.value}",quantile="0.5"}}', t.p50))
        samples.append((f'{{severity="{sev.value}",quantile="0.9"}}', t.p90))
    metric(
        "hitl_time_to_decision_seconds",
        "gauge",
        "A person's time from request to final decision in the window, by severity (NaN without decisions).",
        samples,
    )
    buckets: list[tuple[str, float | None]] = []
    for sev in SEVERITIES:
        t = stats.time_to_decision[sev.value]
        running = 0
        for bound, count in zip((*HISTOGRAM_BOUNDS, float("inf")), t.histogram, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            buckets.append((f'{{severity="{sev.value}",le="{le}"}}', running))
    metric(
        "hitl_time_to_decision_seconds_bucket",
        "gauge",
        "Cumulative count of a person's final decisions in the window taking at most le seconds.",
        buckets,
    )
    metric(
        "hitl_operator_decisions",
        "gauge",
        "Decisions (approvals under four eyes each count) by operator in the window.",
        [(f'{{actor="{_label(o.actor)}"}}', o.decisions) for o in stats.operators],
    )
    metric(
        "hitl_operator_rubber_stamps",
        "gauge",
        "Decisions by operator made faster than the request could be read, in the window.",
        [(f'{{actor="{_label(o.actor)}"}}', o.rubber_stamps) for o in stats.operators],
    )
    metric("hitl_rubber_stamps", "gauge", "Rubber-stamped decisions in the window.", [("", len(stats.rubber_stamps))])
    metric(
        "hitl_clock_skew_decisions",
        "gauge",
        "Decisions stamped before their request (clock went backwards): left out of the times.",
        [("", stats.clock_skew_decisions)],
    )
    return "\n".join(out) + "\n"


def serve_metrics(host: str, port: int, render: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve ``render()`` at ``/metrics`` on a daemon thread; ``shutdown()`` the result to stop.

    ``render`` runs on the server's thread: hand it something that returns a prepared string
    (``hitl stats --serve`` re-renders on its event loop and the handler returns the latest).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # a scrape every 15 s is not news

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="hitl-metrics", daemon=True).start()
    return server
