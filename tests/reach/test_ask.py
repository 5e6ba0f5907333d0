"""``hitl ask``: a person in front of any command, as a shell, Makefile or CI job runs it."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from hitl_core.cli_commands import EXIT_STORE, EXIT_USAGE
from hitl_core.integrations.ask import EXIT_REJECTED, EXIT_TIMED_OUT
from hitl_core.models import TaskState

from .helpers import all_tasks, decide, finish, hitl, start, waiting_task

pytestmark = pytest.mark.processes

ALLOW_LS = """
[[rules]]
id = "listing"
decision = "allow"
action = "ls"
"""


async def test_ask_exits_0_when_a_person_approves_and_prints_the_decision(tmp_path: Path) -> None:
    process = start(tmp_path, "ask", "Drop staging tables", "--action", "sql", "--args", '{"db": "staging"}', "--json")
    task = await waiting_task(tmp_path, process)
    assert task.interrupt_point is not None and task.interrupt_point.action is not None
    assert task.interrupt_point.action.name == "sql" and task.interrupt_point.action.args == {"db": "staging"}
    assert task.framework == "shell"
    await decide(tmp_path, task.task_id, "approve", "alice", message="fine")
    code, out, _ = finish(process)
    assert code == 0
    decision = json.loads(out)
    assert decision["approved"] is True and decision["by"] == "alice" and decision["args"] == {"db": "staging"}
    assert {t.task_id: t.state for t in await all_tasks(tmp_path)} == {task.task_id: TaskState.COMPLETED}


async def test_edited_args_reach_the_command_and_its_exit_code_is_returned(tmp_path: Path) -> None:
    script = "import os, sys; open('seen.json', 'w').write(os.environ['HITL_ARGS']); sys.exit(3)"
    process = start(tmp_path, "ask", "Deploy", "--args", '{"replicas": 10}', "--", sys.executable, "-c", script)
    task = await waiting_task(tmp_path, process)
    await decide(tmp_path, task.task_id, "edit", {"replicas": 2}, "bob")
    code, _, _ = finish(process)
    assert code == 3  # CMD's own exit code
    assert json.loads((tmp_path / "seen.json").read_text()) == {"replicas": 2}
    done = (await all_tasks(tmp_path))[0]
    assert done.state is TaskState.COMPLETED and done.result == {"exit_code": 3}


async def test_reject_exits_9_with_the_reason_and_does_not_run_the_command(tmp_path: Path) -> None:
    script = "open('ran', 'w').write('yes')"
    process = start(tmp_path, "ask", "Deploy", "--", sys.executable, "-c", script)
    task = await waiting_task(tmp_path, process)
    await decide(tmp_path, task.task_id, "reject", "carol", "not on a Friday")
    code, _, err = finish(process)
    assert code == EXIT_REJECTED
    assert b"rejected by carol: not on a Friday" in err
    assert not (tmp_path / "ran").exists()


def test_nobody_deciding_before_the_timeout_exits_10_and_records_the_default_reject(tmp_path: Path) -> None:
    result = hitl(tmp_path, "ask", "Rotate keys", "--timeout", "1s", "--json")
    assert result.returncode == EXIT_TIMED_OUT
    decision = json.loads(result.stdout)
    assert decision["timed_out"] is True and decision["type"] == "timeout" and decision["approved"] is False


def test_a_rule_that_allows_decides_at_once_without_a_person(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(ALLOW_LS)
    result = hitl(tmp_path, "ask", "List", "--json", "--", "ls")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["by"] == "policy:listing"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_withdraws_the_request_recorded_as_failed_not_decided(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    process = start(tmp_path, "ask", "Drop tables")
    task = await waiting_task(tmp_path, process)
    process.send_signal(sig)
    exit_code, _, err = finish(process)
    assert exit_code == code, err
    withdrawn = (await all_tasks(tmp_path))[0]
    assert withdrawn.state is TaskState.FAILED and withdrawn.decision is None
    assert withdrawn.error == f"withdrawn by the caller ({sig.name})"
    assert withdrawn.task_id == task.task_id


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--args", "{not json"], b"--args is not JSON"),
        (["--args", "[1, 2]"], b"--args must be a JSON object"),
        (["--timeout", "soon"], b"--timeout"),
        (["--severity", "extreme"], b"invalid choice"),
        (["--frobnicate"], b"unrecognized arguments"),
    ],
)
async def test_bad_arguments_exit_2_and_record_nothing(tmp_path: Path, argv: list[str], says: bytes) -> None:
    result = hitl(tmp_path, "ask", "Drop tables", *argv)
    assert result.returncode == EXIT_USAGE
    assert says in result.stderr
    assert await all_tasks(tmp_path) == []


async def test_args_over_the_payload_limit_exit_2_and_record_nothing(tmp_path: Path) -> None:
    result = hitl(tmp_path, "ask", "Big", "--args", json.dumps({"blob": "x" * 5000}), HITL_MAX_PAYLOAD_BYTES="4096")
    assert result.returncode == EXIT_USAGE
    assert b"over the limit of 4,096 bytes" in result.stderr
    assert await all_tasks(tmp_path) == []


def test_a_store_that_is_down_exits_6_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    result = hitl(tmp_path, "ask", "Drop tables", "--store", f"sqlite:///{tmp_path / 'a-directory.db'}")
    assert result.returncode == EXIT_STORE, result.stderr
    assert result.stderr.startswith(b"hitl ask: ") and b"Traceback" not in result.stderr
    assert list((tmp_path / "a-directory.db").iterdir()) == []  # nothing half-written


async def test_the_same_id_finds_the_same_request_and_its_decision(tmp_path: Path) -> None:
    process = start(tmp_path, "ask", "Migrate", "--id", "deploy-42", "--args", '{"v": 7}', "--run", "job-1")
    task = await waiting_task(tmp_path, process)
    assert task.task_id == "shell:deploy-42" and task.parent_id == "shell:job-1"
    await decide(tmp_path, task.task_id, "approve", "alice")
    assert finish(process)[0] == 0
    again = hitl(tmp_path, "ask", "Migrate", "--id", "deploy-42", "--args", '{"v": 7}', "--run", "job-1", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["by"] == "alice"  # a CI retry: no second question
    assert len(await all_tasks(tmp_path)) == 2  # the request and its run


async def test_an_id_reused_for_other_args_is_refused_not_given_the_old_approval(tmp_path: Path) -> None:
    process = start(tmp_path, "ask", "Migrate", "--id", "deploy-43", "--args", '{"v": 7}')
    task = await waiting_task(tmp_path, process)
    await decide(tmp_path, task.task_id, "approve", "alice")
    assert finish(process)[0] == 0
    forged = hitl(tmp_path, "ask", "Migrate", "--id", "deploy-43", "--args", '{"v": 8, "drop": true}')
    assert forged.returncode == EXIT_USAGE
    assert b"was asked about another action" in forged.stderr


async def test_a_command_that_cannot_start_exits_127_and_the_decision_stays_delivered(tmp_path: Path) -> None:
    process = start(tmp_path, "ask", "Run it", "--", str(tmp_path / "no-such-command"))
    task = await waiting_task(tmp_path, process)
    await decide(tmp_path, task.task_id, "approve", "alice")
    code, _, err = finish(process)
    assert code == 127 and b"cannot run" in err
    done = (await all_tasks(tmp_path))[0]
    assert done.state is TaskState.COMPLETED and done.result is not None and done.result["exit_code"] == 127


async def test_a_deciders_message_with_escape_sequences_is_printed_as_visible_text(tmp_path: Path) -> None:
    process = start(tmp_path, "ask", "Deploy", "--json")
    task = await waiting_task(tmp_path, process)
    await decide(tmp_path, task.task_id, "reject", "mallory", "no\x1b[2J\u202e")
    code, out, err = finish(process)
    assert code == EXIT_REJECTED
    for stream in (out, err):
        assert b"\x1b" not in stream and "\u202e".encode() not in stream
    assert json.loads(out)["message"] == "no\x1b[2J\u202e"  # JSON escapes parse back to the original
