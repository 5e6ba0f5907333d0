"""The soak harness in the suite: 45 seconds of faults on SQLite and on PostgreSQL, and its checker's teeth.

The soak itself runs as its own process (benchmarks/soak.py), exactly as ``make soak`` runs it.
Under ``CI=true`` a PostgreSQL server that cannot start fails the PostgreSQL soak (the harness
exits non-zero); nothing here skips.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import soak  # noqa: E402
from soak_worker import Log  # noqa: E402

from hitl_core import HITLStateMachine  # noqa: E402
from hitl_core.canonical import fingerprint  # noqa: E402

pytestmark = pytest.mark.processes


def _soak(store: str, tmp_path: Path) -> dict:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak.py"),
            "--store",
            store,
            "--seconds",
            "45",
            "--agents",
            "3",
            "--deciders",
            "2",
            "--followers",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=540,
    )
    print(proc.stdout, proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    [result] = json.loads(out.read_text())
    return result


def _assert_clean(result: dict) -> None:
    assert result["violations"] == []
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert sum(result["faults"].values()) >= 5, result["faults"]
    assert result["acknowledged"] > 100


@pytest.mark.timeout(600)
def test_a_soak_on_sqlite_loses_nothing_and_decides_nothing_twice(tmp_path: Path) -> None:
    _assert_clean(_soak("sqlite", tmp_path))


@pytest.mark.timeout(600)
def test_a_soak_on_postgresql_loses_nothing_and_decides_nothing_twice(tmp_path: Path) -> None:
    result = _soak("postgresql", tmp_path)
    _assert_clean(result)
    assert {"pg-crash", "pg-stall"} & set(result["faults"]), result["faults"]


# -- the checker catches what it is there to catch ------------------------------------------------


def _run(tmp_path: Path) -> tuple[soak.Run, dict[str, Path]]:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"

    async def story() -> None:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            await m.start_task("t1", agent="a")
            await m.request_approval("t1", "go?", action="op", args={"n": 1})
            await m.approve("t1", actor="d1")

    asyncio.run(story())
    logs = tmp_path / "logs"
    logs.mkdir()
    run = soak.Run("sqlite", url, tmp_path, 1.0)
    paths = {}
    for role, name, kind in (
        ("agent", "a", "api"),
        ("decider", "d1", "api"),
        ("decider", "d2", "api"),
        ("follower", "f", ""),
    ):
        path = logs / f"{name}.jsonl"
        path.touch()
        run.procs.append(soak.Proc(role, name, kind, path))
        paths[name] = path
    return run, paths


def _write(path: Path, role: str, **record: object) -> None:
    Log(str(path), role).write(**record)


async def _interrupt_id(url: str) -> str:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        task = await m.get_task("t1")
        assert task is not None and task.approval_data is not None
        return (await m.wait_for_decision("t1")).interrupt_id or ""


def test_checker_passes_an_honest_history(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    iid = asyncio.run(_interrupt_id(run.url))
    _write(paths["a"], "agent", op="ack", task="t1", version=1, action="start")
    _write(paths["d1"], "decider", op="won", task="t1", interrupt_id=iid, type="approve")
    for seq in (1, 2, 3):
        _write(paths["f"], "follower", op="event", seq=seq)
    assert soak.check(run, 1, 2, 1).violations == []


def test_checker_catches_a_lost_acknowledged_transition(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    _write(paths["a"], "agent", op="ack", task="t1", version=4, action="complete")
    assert any("complete of t1 v4" in v for v in soak.check(run, 1, 2, 1).violations)


def test_checker_catches_one_interrupt_won_by_two_deciders(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    iid = asyncio.run(_interrupt_id(run.url))
    _write(paths["d1"], "decider", op="won", task="t1", interrupt_id=iid, type="approve")
    _write(paths["d2"], "decider", op="won", task="t1", interrupt_id=iid, type="approve")
    violations = soak.check(run, 1, 2, 1).violations
    assert any("won by d1, d2" in v for v in violations)
    assert any("d2: its approve of t1 (store says: d1)" in v for v in violations)


def test_checker_catches_an_agent_running_args_nobody_approved(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    _write(paths["a"], "agent", op="decided", task="t1", executed_fingerprint=fingerprint({"n": 2}))
    assert any("t1: ran args" in v for v in soak.check(run, 1, 2, 1).violations)


def test_checker_catches_a_follower_that_skipped_or_repeated_an_event(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    for seq in (1, 3):
        _write(paths["f"], "follower", op="event", seq=seq)
    assert any("saw event 3 after skipping 2..2" in v for v in soak.check(run, 1, 2, 1).violations)


def test_checker_catches_a_waiting_agent_that_woke_long_after_its_decision(tmp_path: Path) -> None:
    run, paths = _run(tmp_path)
    iid = asyncio.run(_interrupt_id(run.url))
    log = Log(str(paths["a"]), "agent")
    log.write(op="waiting", task="t1", interrupt_id=iid, t=time.time() - 120)
    log.write(op="woke", task="t1", interrupt_id=iid, t=time.time() + 30)
    assert any("t1 woke" in v for v in soak.check(run, 1, 2, 1).violations)
