"""``hitl serve --web``: how fast a request shows up in a logged-in browser, and what a console costs.

Run with ``make bench`` or ``python benchmarks/bench_web.py [REQUESTS] [CONSOLES]``. Prints tables;
never pass/fail. The server is ``hitl serve --web`` in its own process (TLS, SQLite store); the
browser is Debian's chromium driven by Playwright.

Latency: this process asks for approval over the server's Unix socket (as an agent would); the
clock starts just before that request is sent and stops when the row for the task is in the
console page's DOM (a MutationObserver in the page records ``Date.now()``: same machine, same
clock). Each task is then rejected, so the table stays one row long.

Memory: CONSOLES more consoles are opened, each in its own browser context (its own login, its
own live stream); the server's RSS and the browser's PSS (all of its processes) are read before
and after, and divided by CONSOLES.

Terminal consoles (``/web/terminal``, the Textual console in the browser): TERMINALS tabs are
opened, each its own login; each spawns a ``hitl console`` process. Once every tab has drawn its
first screen (and 2 s more), the RSS and PSS of each console process are read, with the time from
opening the tab to its first screen.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hitl_core.server.web.accounts import WebAccounts  # noqa: E402
from tests.server.conftest import server_directory  # noqa: E402
from tests.web.conftest import CHROMIUM, WebServer  # noqa: E402

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
CONSOLES = int(sys.argv[2]) if len(sys.argv) > 2 else 10
TERMINALS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
PASSWORD = "bench-password-long"

WATCH = """
window.__seen = {};
new MutationObserver(() => {
  for (const tr of document.querySelectorAll('#tasks tbody tr[data-task]')) {
    if (!(tr.dataset.task in window.__seen)) window.__seen[tr.dataset.task] = Date.now();
  }
}).observe(document.querySelector('#tasks tbody'), { childList: true, subtree: true });
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def browser_pss_kib(marker: str) -> int:
    """The proportional set size of every process whose command line holds ``marker``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def log_in(context, url: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{url}/web/login")
    page.fill("#username", "bench")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("#tasks")
    return page


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def console_pids(log: Path) -> list[int]:
    import re

    return [int(p) for p in re.findall(r"opened a console, pid (\d+)", log.read_text(errors="replace"))]


def open_terminals(browser, url: str, log: Path, server_pid: int) -> tuple[list[float], list[int], list[int], int]:  # type: ignore[no-untyped-def]
    """(seconds to the first screen per tab, RSS KiB per console process, PSS KiB per process,
    the server's RSS KiB with them open)."""
    firsts: list[float] = []
    contexts = []
    for _ in range(TERMINALS):
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{url}/web/login?next=/web/terminal")
        page.fill("#username", "bench")
        page.fill("#password", PASSWORD)
        started = time.monotonic()
        page.click("#login")
        page.wait_for_selector("body.-first-byte", timeout=120_000)
        firsts.append(time.monotonic() - started)
    deadline = time.monotonic() + 60
    while len(console_pids(log)) < TERMINALS and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    pids = console_pids(log)
    rss = [rss_kib(p) for p in pids]
    pss = [pss_kib(p) for p in pids]
    server_rss = rss_kib(server_pid)
    for context in contexts:
        context.close()
    return firsts, rss, pss, server_rss


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    if not Path(CHROMIUM).exists():
        sys.exit(f"chromium is not installed at {CHROMIUM}: make chromium")
    from playwright.sync_api import sync_playwright

    directory = server_directory()
    server = WebServer(directory, listen=True)
    WebAccounts(server.token_file).add("bench", "operator", PASSWORD)
    server.start()
    latencies: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--no-sandbox"])
            context = browser.new_context(ignore_https_errors=True)
            page = log_in(context, server.url)
            page.evaluate(WATCH)
            with server.unix_client() as client:
                for i in range(REQUESTS):
                    task_id = f"bench-{i}"
                    client.post(f"/v1/tasks/{task_id}/start", json={}).raise_for_status()
                    started = time.time() * 1000
                    body = {"reason": f"bench request {i}", "severity": "high"}
                    client.post(f"/v1/tasks/{task_id}/request", json=body).raise_for_status()
                    # polled from here (the page's CSP forbids wait_for_function's eval); the time
                    # itself was taken in the page when the row arrived, so polling adds nothing to it
                    deadline = time.monotonic() + 30
                    while (seen := page.evaluate("id => window.__seen[id] ?? null", task_id)) is None:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"{task_id} never appeared in the console")
                        time.sleep(0.005)
                    latencies.append(seen - started)
                    client.post(f"/v1/tasks/{task_id}/reject", json={"reason": "bench"}).raise_for_status()

            assert server.proc is not None
            marker = "playwright_chromiumdev_profile"
            time.sleep(1.0)  # let the first console settle before the baseline
            server_before, browser_before = rss_kib(server.proc.pid), browser_pss_kib(marker)
            contexts = [browser.new_context(ignore_https_errors=True) for _ in range(CONSOLES)]
            for extra in contexts:
                log_in(extra, server.url)
            time.sleep(2.0)
            server_after, browser_after = rss_kib(server.proc.pid), browser_pss_kib(marker)
            for extra in contexts:
                extra.close()
            terminal_before = rss_kib(server.proc.pid)
            firsts, rss, pss, terminal_after = open_terminals(browser, server.url, server.log, server.proc.pid)
            browser.close()
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)

    print(f"hitl serve --web: request -> visible in a logged-in chromium, {REQUESTS} requests")
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; SQLite store")
    print(f"{'':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    print(
        f"{'request -> row in the DOM':<28} {pct(latencies, 0.5):>8.1f} {pct(latencies, 0.99):>8.1f}"
        f" {max(latencies):>8.1f} {statistics.fmean(latencies):>8.1f}"
    )
    print()
    print(f"memory per open console ({CONSOLES} more consoles, each its own login and live stream)")
    print(f"{'':<28} {'before MiB':>10} {'after MiB':>10} {'per console KiB':>16}")
    print(
        f"{'server (RSS)':<28} {server_before / 1024:>10.1f} {server_after / 1024:>10.1f}"
        f" {(server_after - server_before) / CONSOLES:>16.0f}"
    )
    print(
        f"{'chromium (PSS, all procs)':<28} {browser_before / 1024:>10.1f} {browser_after / 1024:>10.1f}"
        f" {(browser_after - browser_before) / CONSOLES:>16.0f}"
    )
    print()
    print(f"terminal consoles (/web/terminal): {TERMINALS} tabs, one hitl console process each")
    print(f"{'':<34} {'min':>8} {'mean':>8} {'max':>8}")
    print(
        f"{'console process RSS (MiB)':<34} {min(rss) / 1024:>8.1f} {statistics.fmean(rss) / 1024:>8.1f} {max(rss) / 1024:>8.1f}"
    )
    print(
        f"{'console process PSS (MiB)':<34} {min(pss) / 1024:>8.1f} {statistics.fmean(pss) / 1024:>8.1f} {max(pss) / 1024:>8.1f}"
    )
    print(
        f"{'open tab -> first screen (s)':<34} {min(firsts):>8.2f} {statistics.fmean(firsts):>8.2f} {max(firsts):>8.2f}"
    )
    print(
        f"server RSS: {terminal_before / 1024:.1f} MiB before the terminals, {terminal_after / 1024:.1f} MiB with"
        f" {TERMINALS} open ({(terminal_after - terminal_before) / TERMINALS:.0f} KiB per terminal)"
    )


if __name__ == "__main__":
    main()
