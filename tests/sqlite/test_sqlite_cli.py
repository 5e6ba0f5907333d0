"""The ``hitl`` command line on a SQLite store: each verb, who is recorded, and the exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState
from hitl_core.cli import main
from hitl_core.settings import os_user
from hitl_core.stores.sqlite import SCHEMA_VERSION


@pytest.fixture
def waiting(db_url: str) -> str:
    """A store holding "deploy" and "cleanup" awaiting approval and "done" completed."""

    async def fill() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            await machine.start_task("deploy", agent="ops-bot")
            await machine.request_approval(
                "deploy",
                "deploy v2 to production?\x1b[2J",
                {"version": 2},
                severity="critical",
                action="deploy",
                args={"env": "prod"},
            )
            await machine.start_task("cleanup")
            await machine.request_approval("cleanup", "drop old tables?")
            await machine.start_task("done")
            await machine.complete("done")

    asyncio.run(fill())
    return db_url


def hitl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def task(url: str, task_id: str) -> Any:
    async def get() -> Any:
        async with HITLStateMachine(url, load_entrypoints=False) as machine:
            return await machine.get_task(task_id)

    return asyncio.run(get())


def test_ls_lists_waiting_tasks_as_a_table_and_as_json(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hitl(capsys, "--store", waiting, "ls", "--state", "waiting")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "SEVERITY", "AGE", "AGENT", "REASON"]
    assert [line.split()[0] for line in lines[1:]] == ["deploy", "cleanup"]
    assert "\\x1b[2J" in out and "\x1b" not in out  # agent text shown, never obeyed by the terminal
    code, out, _ = hitl(capsys, "ls", "--json", "--store", waiting)  # --store after the verb works too
    assert code == 0
    assert [t["task_id"] for t in json.loads(out)] == ["deploy", "cleanup", "done"]


def test_show_prints_request_and_history(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hitl(capsys, "--store", waiting, "show", "deploy")
    assert code == 0
    assert "critical" in out and 'deploy {"env": "prod"}' in out and "request_approval" in out
    code, out, _ = hitl(capsys, "--store", waiting, "show", "deploy", "--json")
    assert json.loads(out)["interrupt_point"]["action"]["args"] == {"env": "prod"}


def test_approve_records_the_os_user_by_default_and_the_comment(
    waiting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = hitl(capsys, "--store", waiting, "approve", "deploy", "--message", "window is open")
    assert code == 0 and "approved task deploy" in out
    decision = task(waiting, "deploy").decision
    assert (decision.actor.id, decision.actor.source, decision.message) == (os_user(), "cli", "window is open")


def test_reject_records_the_named_actor_and_reason(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = hitl(capsys, "--store", waiting, "reject", "cleanup", "--message", "not today", "--as", "dana")
    assert code == 0
    got = task(waiting, "cleanup")
    assert got.state is TaskState.REJECTED
    assert (got.decision.actor.id, got.decision.message) == ("dana", "not today")


def test_resume_moves_a_decided_task_back_to_running(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    hitl(capsys, "--store", waiting, "approve", "deploy", "--as", "erin")
    code, out, _ = hitl(capsys, "--store", waiting, "resume", "deploy", "--as", "erin")
    assert code == 0 and "state running" in out
    assert task(waiting, "deploy").state is TaskState.RUNNING


def test_reject_without_a_reason_is_a_usage_error(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = hitl(capsys, "--store", waiting, "reject", "cleanup")
    assert code == 2 and "needs a message (--message TEXT)" in err
    code, _, err = hitl(capsys, "--store", waiting, "reject", "cleanup", "--message", "  ")
    assert code == 2 and "needs a message" in err
    assert task(waiting, "cleanup").state is TaskState.AWAITING_APPROVAL


def test_unknown_task_exits_3(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = hitl(capsys, "--store", waiting, "approve", "nope")
    assert code == 3 and err.strip() == "hitl: error: task 'nope' not found"


def test_deciding_a_decided_task_exits_4_naming_who_decided(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    hitl(capsys, "--store", waiting, "approve", "deploy", "--as", "frank")
    code, _, err = hitl(capsys, "--store", waiting, "reject", "deploy", "--message", "late", "--as", "gina")
    assert code == 4 and "already decided by frank" in err


def test_illegal_transition_exits_5(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = hitl(capsys, "--store", waiting, "resume", "cleanup")
    assert code == 5 and "cannot resume task 'cleanup' in state awaiting_approval" in err
    code, _, err = hitl(capsys, "--store", waiting, "approve", "done")
    assert code == 5


def test_unopenable_store_exits_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = hitl(capsys, "--store", f"sqlite:///{tmp_path}", "ls")
    assert code == 6 and "is a directory" in err
    code, _, err = hitl(capsys, "--store", "nosuch://x", "ls")
    assert code == 6 and "no store for" in err


def test_audit_export_writes_every_event_as_jsonl(
    waiting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = hitl(capsys, "--store", waiting, "audit", "export", "--format", "jsonl")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, 7))
    assert all(len(e["hash"]) == 64 for e in events) and events[1]["prev_hash"] == events[0]["hash"]
    target = tmp_path / "audit.json"
    code, _, _ = hitl(
        capsys, "--store", waiting, "audit", "export", "--format", "json", "--task", "deploy", "--output", str(target)
    )
    assert code == 0 and [e["action"] for e in json.loads(target.read_text())] == ["start", "request_approval"]


def test_store_info_says_where_the_store_is_and_what_it_holds(waiting: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hitl(capsys, "--store", waiting, "store", "info", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["path"] == waiting.removeprefix("sqlite:///") and info["schema_version"] == SCHEMA_VERSION
    assert (info["tasks"], info["events"], info["journal_mode"]) == (3, 6, "wal")
    assert info["by_state"] == {"awaiting_approval": 2, "completed": 1}


def test_default_store_is_a_sqlite_file_under_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HITL_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    code, out, _ = hitl(capsys, "store", "info")
    assert code == 0
    expected = tmp_path / "data" / "hitl" / "hitl.db"
    assert f"path             {expected}" in out and expected.exists()


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for line in (
        "3  task not found",
        "4  conflict",
        "5  illegal transition",
        "6  store error",
        "7  not authorized",
        "8  audit verify",
    ):
        assert line in out
