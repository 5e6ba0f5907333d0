"""``hitl stats`` and the rubber-stamp field of ``hitl audit export``, on real SQLite files."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine
from hitl_core.cli import main
from hitl_core.stats import StatsFold
from hitl_core.stats_metrics import render_prometheus, serve_metrics

from .conftest import forge_decider

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "mallory\x1b[2J\x1b]0;pwned\x07\u202e"


def hitl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fill(url: str, *, decide: bool = True) -> None:
    """Three waiting tasks; with ``decide``, one approved at once (a rubber stamp) by an operator
    whose id was then edited by hand into a hostile one, and one rejected by alice."""

    async def go() -> None:
        async with HITLStateMachine(url, load_entrypoints=False) as machine:
            for task_id, severity in (("deploy", "critical"), ("mail", "low"), ("later", "high")):
                await machine.start_task(task_id, agent="ops-bot")
                await machine.request_approval(task_id, f"{task_id}?", severity=severity, args={"env": "prod"})
            if decide:
                await machine.approve("deploy", "mallory")
                await machine.reject("mail", "alice", "not today")

    asyncio.run(go())
    if decide:
        forge_decider(url.removeprefix("sqlite:///"), "deploy", HOSTILE)


def test_stats_on_a_store_with_no_decisions_yet_says_so(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fill(db_url, decide=False)
    code, out, err = hitl(capsys, "--store", db_url, "stats")
    assert code == 0, err
    assert "waiting now     3  (critical 1, high 1, medium 0, low 1)" in out
    assert "no decisions yet" in out
    code, out, _ = hitl(capsys, "--store", db_url, "stats", "--json")
    data = json.loads(out)
    assert data["decisions"] == 0 and data["waiting"] == 3
    assert data["time_to_decision_seconds"]["critical"] == {
        "count": 0,
        "p50": None,
        "p90": None,
        "histogram": [0] * 10,
    }


def test_stats_table_and_json_show_decisions_operators_and_rubber_stamps(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_url)
    code, out, err = hitl(capsys, "--store", db_url, "stats", "--since", "2h")
    assert code == 0, err
    assert "decisions       2  (person 2, policy 0, timeout 0)" in out
    assert "waiting now     1" in out and "oldest: later" in out
    assert "rubber stamps   2 decision(s) came faster than the request could be read" in out
    code, out, _ = hitl(capsys, "--store", db_url, "stats", "--json")
    data = json.loads(out)
    assert {o["actor"] for o in data["operators"]} == {HOSTILE, "alice"}
    assert data["decisions_by_kind"] == {"person": 2, "policy": 0, "timeout": 0}
    assert len(data["waiting_series_per_minute"]) == 60


def test_an_operator_id_with_control_characters_is_printed_inert(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_url)
    _, out, _ = hitl(capsys, "--store", db_url, "stats")
    assert "mallory\\x1b[2J\\x1b]0;pwned\\x07\\u202e" in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    _, out, _ = hitl(capsys, "--store", db_url, "stats", "--json")
    assert "\x1b" not in out and "\u202e" not in out  # JSON escapes them (ensure_ascii)
    assert HOSTILE in {o["actor"] for o in json.loads(out)["operators"]}  # the data itself is exact


def test_a_bad_since_is_a_usage_error(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = hitl(capsys, "--store", db_url, "stats", "--since", "yesterday")
    assert code == 2
    assert "--since 'yesterday'" in err and "24h" in err


def test_audit_export_marks_a_person_s_decision_made_faster_than_reading(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(db_url)
    code, out, _ = hitl(capsys, "--store", db_url, "audit", "export")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    decisions = [e for e in events if e["action"] in ("approve", "reject")]
    assert len(decisions) == 2
    for event in decisions:
        check = event["read_check"]
        assert check["rubber_stamp"] is True and check["clock_skew"] is False
        assert 0 <= check["seconds"] < check["min_read_seconds"]
    assert all("read_check" not in e for e in events if e["action"] not in ("approve", "reject"))
    # A hitl.toml that reads at the speed of light with no floor flags nothing.
    config = tmp_path / "fast.toml"
    config.write_text("[stats]\nchars_per_second = 1e9\nfloor = { low = 0, medium = 0, high = 0, critical = 0 }\n")
    monkeypatch.setenv("HITL_CONFIG", str(config))
    _, out, _ = hitl(capsys, "--store", db_url, "audit", "export")
    checks = [json.loads(line).get("read_check") for line in out.splitlines()]
    assert [c["rubber_stamp"] for c in checks if c] == [False, False]


def test_stats_png_draws_the_charts(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fill(db_url)
    image = tmp_path / "stats.png"
    code, _, err = hitl(capsys, "--store", db_url, "stats", "--png", str(image))
    assert code == 0, err
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000
    svg = tmp_path / "stats.svg"
    assert hitl(capsys, "--store", db_url, "stats", "--svg", str(svg))[0] == 0
    assert svg.read_text().lstrip().startswith("<?xml")


def test_stats_png_without_matplotlib_says_how_to_install_it(db_url: str, tmp_path: Path) -> None:
    """A real process in which matplotlib cannot be imported (as on an install without the extra)."""
    fill(db_url)
    image = tmp_path / "stats.png"
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from hitl_core.cli import main\n"
        f"sys.exit(main(['--store', {db_url!r}, 'stats', '--png', {str(image)!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "pip install 'hitl[stats]'" in done.stderr
    assert not image.exists()


def test_prometheus_text_names_the_figures_and_escapes_label_values(db_url: str) -> None:
    fill(db_url)

    async def stats() -> str:
        from hitl_core.stats import compute_stats

        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return render_prometheus(await compute_stats(machine.store))

    text = asyncio.run(stats())
    assert 'hitl_waiting_tasks{severity="high"} 1\n' in text
    assert 'hitl_decisions{kind="person"} 2\n' in text
    assert 'hitl_operator_rubber_stamps{actor="mallory\\\\x1b[2J\\\\x1b]0;pwned\\\\x07\\\\u202e"} 1\n' in text
    assert "\x1b" not in text
    assert 'hitl_time_to_decision_seconds_bucket{severity="low",le="+Inf"} 1\n' in text
    for line in text.splitlines():
        assert line.startswith("#") or line.split(" ")[0].split("{")[0].startswith("hitl_")


def test_the_metrics_server_serves_metrics_and_nothing_else() -> None:
    fold = StatsFold()
    server = serve_metrics("127.0.0.1", 0, lambda: render_prometheus(fold.snapshot()))
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'hitl_waiting_tasks{severity="low"} 0' in reply.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/secrets", timeout=30)
        assert refused.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_stats_serve_follows_the_store_live(db_url: str) -> None:
    """``hitl stats --serve`` in its own process: a decision made by another process shows up."""
    fill(db_url, decide=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl_core.cli", "--store", db_url, "stats", "--serve", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving /metrics on http://127.0.0.1:" in line, proc.stderr.read() if proc.stderr else ""
        url = line.split(" on ")[1].split(" ")[0]

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=30) as reply:
                return reply.read().decode()

        assert 'hitl_waiting_tasks{severity="critical"} 1\n' in scrape()

        async def decide() -> None:
            async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
                await machine.approve("deploy", "alice")

        asyncio.run(decide())
        deadline = time.monotonic() + 60
        while 'hitl_waiting_tasks{severity="critical"} 0\n' not in (text := scrape()):
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert 'hitl_operator_decisions{actor="alice"} 1' in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_read_check_field_leaves_the_chain_verifiable(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fill(db_url, decide=False)

    async def approve() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            await machine.approve("mail", "alice")

    asyncio.run(approve())
    code, out, _ = hitl(capsys, "--store", db_url, "audit", "export")
    assert code == 0
    approvals = [json.loads(line) for line in out.splitlines() if '"action":"approve"' in line]
    assert approvals and approvals[0]["read_check"]["rubber_stamp"] is True
    code, out, err = hitl(capsys, "--store", db_url, "audit", "verify")
    assert code == 0, err
