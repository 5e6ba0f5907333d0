"""Console benchmark (not a test): 10,000 tasks, a fleet making ~500 transitions/s, headless.

Prints a table of: time to first full paint; latency from a transition being committed to its
row being drawn in the new state (median, p99, over transitions of rows on screen); key-press to
screen latency for ``j`` and ``a``, from posting the key event to the next frame that shows its
effect (not through Pilot's ``press``, which adds its own waits); the same keys again while the
fleet keeps up its rate, with the dwell rule on (``a`` is pressed only once the rule allows it: an
allowed key must not get slower); first paint at 80x24; peak RSS.

Headless: Textual composes every frame (our ``render_line`` runs) but does not write ANSI to a
terminal, so a real terminal adds the cost of its own drawing. Store: ``memory://`` (``--store``
to change). The machine is shared with other work right now, so figures are noisy.

    python benchmarks/bench_console.py [--tasks 10000] [--rate 500] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_tui import ConsoleApp
from hitl_tui.model import Row

S = TaskState


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def populate(machine: HITLStateMachine, tasks: int) -> None:
    """10% waiting, 30% running, the rest completed — a fleet that has been busy for a while."""
    for i in range(tasks):
        task_id = f"t{i:05d}"
        await machine.start_task(task_id, agent=f"agent-{i % 20}", framework="langgraph", step="execute")
        if i % 10 == 0:
            await machine.request_approval(
                task_id,
                f"Send report {i}",
                severity=("low", "medium", "high")[i % 3],
                action="send_email",
                args={"to": f"user{i}@example.com"},
            )
        elif i % 10 >= 4:
            await machine.complete(task_id)


async def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    machine = HITLStateMachine(args.store, load_entrypoints=False)
    await machine.__aenter__()
    t = time.perf_counter()
    await populate(machine, args.tasks)
    populate_s = time.perf_counter() - t

    # The dwell phase below turns the dwell rule on; the heap is settled as `hitl console` does it.
    # Every task is loaded (no recent-finished window): the rows measure a 10,000-row table.
    app = ConsoleApp(
        machine,
        actor="bench",
        follow=False,
        dwell=0,
        settle_heap=not args.no_settle,
        recent_finished_events=None,
    )
    frames: list[float] = []
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            frames.append(time.perf_counter())
        original_display(screen, renderable)

    app._display = display  # type: ignore[method-assign]
    committed: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    first_row: list[float] = []

    def drawn(row: Row) -> None:
        now = time.perf_counter()
        if not first_row:
            first_row.append(now)
        started = committed.pop((row.task_id, row.version), None)
        if started is not None:
            latencies.append(now - started)

    def committed_hook(task: Any, old: Any, new: Any) -> None:
        committed[(task.task_id, task.version)] = time.perf_counter()

    machine.add_callback(committed_hook)
    start = time.perf_counter()
    async with app.run_test(size=(160, 45)) as pilot:
        app.table.on_row_drawn = drawn
        await app.loaded.wait()
        while not first_row:  # noqa: ASYNC110 (polling the paint, not waiting for an event)
            await asyncio.sleep(0.001)
        frames_after = [f for f in frames if f >= first_row[0]]
        while not frames_after:
            await asyncio.sleep(0.001)
            frames_after = [f for f in frames if f >= first_row[0]]
        first_paint = frames_after[0] - start
        rows_loaded = len(app.view.rows)

        # Sort by id so the first screenful of tasks stays put; half the transitions hit those.
        app.view.sort_column = "id"
        app._relist()
        await pilot.pause()
        visible = app.view.order[: app.table.size.height]
        others = app.view.order[app.table.size.height :]
        stop = time.perf_counter() + args.seconds
        done = 0
        errors = 0

        async def step(task_id: str) -> None:
            record = await machine.store.get(task_id)
            if record is None:
                return
            if record.state is S.RUNNING:
                await machine.request_approval(task_id, "again?", severity="medium")
            elif record.state is S.AWAITING_APPROVAL:
                await machine.approve(task_id, "fleet")
            elif record.state in (S.APPROVED, S.REJECTED):
                await machine.resume(task_id)
            else:
                await machine.fail(task_id, "bench") if not record.state.terminal else None

        async def fleet(only_others: bool = False) -> None:
            nonlocal done, errors
            tick = 0.01
            per_tick = max(int(args.rate * tick), 1)
            i = 0
            live_others = [t for t in others if app.view.rows[t].state is not S.COMPLETED]
            next_at = time.perf_counter()
            while time.perf_counter() < stop:
                for k in range(per_tick):
                    pool = visible if k % 2 == 0 and not only_others else live_others
                    try:
                        await step(pool[i % len(pool)])
                        done += 1
                    except HITLError:
                        errors += 1
                    i += 1
                next_at += tick
                await asyncio.sleep(max(next_at - time.perf_counter(), 0))

        fleet_started = time.perf_counter()
        await fleet()
        fleet_s = time.perf_counter() - fleet_started
        fleet_done = done  # the dwell phase's fleet below counts on in ``done``
        await asyncio.sleep(0.3)
        # Rows changed off screen may be drawn much later (after the filter changes below):
        # that is not transition latency, so stop measuring it here.
        machine.remove_callback(committed_hook)
        committed.clear()

        # Key latency: post the key event, wait for its effect, then for the frame that shows it.
        async def key_latency(key: str, effect: Any) -> float:
            await asyncio.sleep(0.06)
            count = len(frames)
            t0 = time.perf_counter()
            app.post_message(events.Key(key, key))  # as the terminal driver does
            give_up = t0 + 5.0
            while not effect():
                if time.perf_counter() > give_up:
                    return float("nan")
                await asyncio.sleep(0)
            while time.perf_counter() < give_up:
                later = [f for f in frames[count:] if f >= t0]
                if later and effect():
                    return later[0] - t0
                await asyncio.sleep(0)
            return float("nan")

        j_lat = []
        for _ in range(args.keys):
            before = app.table.cursor_index
            if before >= len(app.view.order) - 2:
                app.table.move_cursor(0)
                await pilot.pause()
                before = 0
            j_lat.append(await key_latency("j", lambda b=before: app.table.cursor_index != b))

        app.view.state_filter = "waiting"
        app.view.sort_column = "id"
        app._relist()
        await pilot.pause()
        a_lat = []
        for n in range(args.keys):
            row = app.table.cursor_row
            if row is None or not row.waiting:
                break
            marker = f"✓ approved {row.task_id}"
            a_lat.append(await key_latency("a", lambda m=marker: app.flash_text.startswith(m)))  # "… · next: …" follows
            await asyncio.sleep(0.06)
            _ = n
        batches = app.batches
        j_lat = [x for x in j_lat if x == x]
        a_lat = [x for x in a_lat if x == x]

        # The same keys while transitions keep arriving, with the dwell rule as `hitl console` runs it.
        app.dwell = 0.3
        app.advance = True
        stop = time.perf_counter() + 60.0  # the fleet runs until the keys are measured
        busy = asyncio.create_task(fleet(only_others=True))  # not the rows the keys decide
        keys_until = time.perf_counter() + 40.0
        jd_lat: list[float] = []
        ad_lat: list[float] = []
        refused = 0
        while time.perf_counter() < keys_until and len(ad_lat) < max(args.keys // 4, 1):
            before = app.table.cursor_index
            if before >= len(app.view.order) - 2:
                app.table.move_cursor(0)
                await pilot.pause()
                before = app.table.cursor_index
            jd_lat.append(await key_latency("j", lambda b=before: app.table.cursor_index != b))
            give_up = time.perf_counter() + 2.0
            while not app.ready_to_decide() and time.perf_counter() < give_up:  # noqa: ASYNC110 (polling the dwell rule)
                await asyncio.sleep(0.01)
            row = app.table.cursor_row
            if row is None or not row.waiting or not app.ready_to_decide():
                refused += 1
                continue
            marker = f"✓ approved {row.task_id}"
            ad_lat.append(await key_latency("a", lambda m=marker: app.flash_text.startswith(m)))
        stop = 0.0
        await busy
        jd_lat = [x for x in jd_lat if x == x]
        ad_lat = [x for x in ad_lat if x == x]

    small = ConsoleApp(machine, actor="bench", follow=False, recent_finished_events=None)
    small_paint: list[float] = []
    t0 = time.perf_counter()
    async with small.run_test(size=(80, 24)):
        small.table.on_row_drawn = lambda row: small_paint.append(time.perf_counter()) if not small_paint else None
        await small.loaded.wait()
        while not small_paint:  # noqa: ASYNC110 (polling the paint, not waiting for an event)
            await asyncio.sleep(0.001)
    first_paint_small = small_paint[0] - t0

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ms = 1000.0
    return [
        ("tasks loaded", f"{rows_loaded:,}", f"populated in {populate_s:.1f} s"),
        ("time to first full paint", f"{first_paint:.3f} s", "target ≤ 1 s"),
        (
            "transitions committed",
            f"{fleet_done:,} in {fleet_s:.1f} s",
            f"{fleet_done / fleet_s:.0f}/s (asked {args.rate:g}/s), {errors} refused, {batches} batches",
        ),
        (
            "transition → row, median",
            f"{statistics.median(latencies) * ms:.0f} ms" if latencies else "-",
            f"over {len(latencies):,} on-screen transitions",
        ),
        ("transition → row, p99", f"{pct(latencies, 0.99) * ms:.0f} ms", "target ≤ 250 ms"),
        (
            "key j → screen, median / p99",
            f"{statistics.median(j_lat) * ms:.1f} / {pct(j_lat, 0.99) * ms:.1f} ms",
            f"{len(j_lat)} presses; target p99 ≤ 50 ms",
        ),
        (
            "key a → screen, median / p99",
            f"{statistics.median(a_lat) * ms:.1f} / {pct(a_lat, 0.99) * ms:.1f} ms" if a_lat else "-",
            f"{len(a_lat)} presses (commit + flash line); target p99 ≤ 50 ms",
        ),
        (
            f"key j → screen during {args.rate:g}/s, median / p99",
            f"{statistics.median(jd_lat) * ms:.1f} / {pct(jd_lat, 0.99) * ms:.1f} ms" if jd_lat else "-",
            f"{len(jd_lat)} presses while the fleet runs",
        ),
        (
            f"key a (dwell 0.3 s) → screen during {args.rate:g}/s, median / p99",
            f"{statistics.median(ad_lat) * ms:.1f} / {pct(ad_lat, 0.99) * ms:.1f} ms" if ad_lat else "-",
            f"{len(ad_lat)} allowed presses ({refused} skipped: no waiting task or not yet allowed)",
        ),
        ("time to first paint at 80x24", f"{first_paint_small:.3f} s", "rows drawn in the small terminal"),
        ("peak memory (RSS)", f"{peak_mb:.0f} MB", "target ≤ 300 MB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--no-settle", action="store_true", help="leave the heap unfrozen (hitl_tui.heap)")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    print(
        f"\nhitl console benchmark — {args.tasks:,} tasks, {args.rate:g} transitions/s, store {args.store}, headless,"
        " 2 shared cores (noisy)\n"
    )
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'measure':<{w0}}  {'value':>{w1}}  notes")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 30}")
    for name, value, note in rows:
        print(f"{name:<{w0}}  {value:>{w1}}  {note}")


if __name__ == "__main__":
    main()
