"""``hitl stats --png/--svg``: the figures as one image, drawn with matplotlib (the ``stats`` extra).

Imported only when a chart is asked for, so the core never needs matplotlib. Four panels: the
waiting queue over the last hour, a person's time to decision by severity (histogram), decisions
per operator with the rubber stamps among them, and who decided (person, policy, timeout).
"""

from __future__ import annotations

from pathlib import Path

from .stats import HISTOGRAM_BOUNDS, SEVERITIES, Stats, inert

_COLOURS = {"low": "#7aa6c2", "medium": "#e0c341", "high": "#f08a24", "critical": "#d6332a"}


def render_charts(stats: Stats, path: Path, fmt: str = "png") -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), dpi=100)
    fig.suptitle(f"hitl: {stats.waiting} waiting now, {stats.decisions} decisions in the window")

    ax = axes[0][0]
    minutes = list(range(-len(stats.waiting_series) + 1, 1))
    ax.step(minutes, stats.waiting_series, where="post", color="#d6332a")
    ax.fill_between(minutes, stats.waiting_series, step="post", alpha=0.2, color="#d6332a")
    ax.set_title("waiting tasks, last hour")
    ax.set_xlabel("minutes ago")
    ax.set_ylim(bottom=0)

    ax = axes[0][1]
    labels = [f"≤{b:g}s" if b < 60 else f"≤{b / 60:g}m" for b in HISTOGRAM_BOUNDS] + [
        f">{HISTOGRAM_BOUNDS[-1] / 60:g}m"
    ]
    width = 0.2
    for i, sev in enumerate(SEVERITIES):
        counts = stats.time_to_decision[sev.value].histogram
        xs = [x + (i - 1.5) * width for x in range(len(counts))]
        t = stats.time_to_decision[sev.value]
        p50 = f"{t.p50:.0f}s" if t.p50 is not None else "-"
        ax.bar(xs, counts, width, label=f"{sev.value} (p50 {p50})", color=_COLOURS[sev.value])
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
    ax.set_title("a person's time to decision, by severity")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    if stats.operators:
        names = [inert(o.actor, 24) for o in stats.operators]
        ax.barh(names, [o.decisions for o in stats.operators], color="#7aa6c2", label="decisions")
        ax.barh(names, [o.rubber_stamps for o in stats.operators], color="#d6332a", label="rubber stamps")
        ax.invert_yaxis()
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no decisions by a person yet", ha="center", va="center")
    ax.set_title("decisions per operator")

    ax = axes[1][1]
    kinds = ["person", "policy", "timeout"]
    ax.bar(kinds, [stats.by_kind[k] for k in kinds], color=["#7aa6c2", "#8fbf7f", "#d6332a"])
    ax.set_title(f"who decided ({stats.escalations} escalations)")

    fig.tight_layout()
    fig.savefig(path, format=fmt)
    plt.close(fig)
