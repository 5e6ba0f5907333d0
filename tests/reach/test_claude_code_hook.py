"""``hitl hook claude-code`` run as Claude Code runs it: a process, the event as JSON on stdin,
the answer as JSON on stdout, checked against the documented PreToolUse protocol
(https://code.claude.com/docs/en/hooks: exit 0 and ``hookSpecificOutput``; exit 2 blocks)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from hitl_core.models import TaskState

from .helpers import all_tasks, asked_action, decide, finish, hitl, start, states, waiting_task

pytestmark = pytest.mark.processes

RULES = """
[[rules]]
id = "read-only"
decision = "allow"
action = "Bash"
args = { command = { regex = "^(ls|git status)\\\\b" } }

[[rules]]
id = "no-force-push"
decision = "deny"
action = "Bash"
args = { command = { regex = "git push .*--force" } }
message = "force pushes are never run by an agent"
"""


def event(command: str = "ls -la", tool_use_id: str = "toolu_01", **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": "sess-1",
        "transcript_path": "/tmp/transcript.jsonl",
        "cwd": "/repo",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "a command"},
        "tool_use_id": tool_use_id,
    }
    base.update(over)
    return base


def protocol_answer(stdout: bytes) -> dict[str, Any]:
    """The answer, checked against the documented shape: nothing else on stdout, no unknown keys."""
    answer = json.loads(stdout)
    assert set(answer) == {"hookSpecificOutput"}
    inner = answer["hookSpecificOutput"]
    assert set(inner) <= {"hookEventName", "permissionDecision", "permissionDecisionReason", "updatedInput"}
    assert inner["hookEventName"] == "PreToolUse"
    assert inner["permissionDecision"] in {"allow", "deny"}
    assert isinstance(inner["permissionDecisionReason"], str) and inner["permissionDecisionReason"]
    return inner


def run_hook(tmp_path: Path, payload: dict[str, Any] | bytes, *extra: str) -> tuple[int, dict[str, Any] | None, bytes]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    result = hitl(tmp_path, "hook", "claude-code", *extra, input=raw)
    answer = protocol_answer(result.stdout) if result.stdout.strip() else None
    return result.returncode, answer, result.stderr


async def test_a_rule_that_allows_answers_allow_at_once_and_records_the_call(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(RULES)
    code, answer, _ = run_hook(tmp_path, event("git status"))
    assert code == 0
    assert answer == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "permissionDecisionReason": "Approved by policy:read-only: allowed by rule read-only.",
    }
    tasks = {t.task_id: t for t in await all_tasks(tmp_path)}
    call = tasks["claude-code:sess-1:toolu_01"]
    assert call.state is TaskState.COMPLETED and call.parent_id == "claude-code:sess-1"
    assert await asked_action(tmp_path, call.task_id) == {
        "name": "Bash",
        "args": {"command": "git status", "description": "a command"},
    }
    assert tasks["claude-code:sess-1"].state is TaskState.RUNNING  # the session: a run, open


def test_a_rule_that_denies_answers_deny_with_the_rules_message_for_the_model(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(RULES)
    code, answer, _ = run_hook(tmp_path, event("git push origin main --force"))
    assert code == 0 and answer is not None
    assert answer["permissionDecision"] == "deny"
    assert (
        answer["permissionDecisionReason"]
        == "Tool call rejected by policy:no-force-push: force pushes are never run by an agent"
    )


async def test_a_person_rejects_and_the_model_reads_who_and_why(tmp_path: Path) -> None:
    process = start(tmp_path, "hook", "claude-code", input=json.dumps(event("rm -rf build")).encode())
    task = await waiting_task(tmp_path, process)
    assert task.interrupt_point is not None and task.interrupt_point.reason == "Bash: rm -rf build"
    await decide(tmp_path, task.task_id, "reject", "alice", "use make clean")
    code, out, _ = finish(process)
    assert code == 0
    assert protocol_answer(out) == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": "Tool call rejected by alice: use make clean",
    }


async def test_a_persons_edit_reaches_claude_code_as_updated_input(tmp_path: Path) -> None:
    payload = event(
        tool_name="Edit",
        tool_input={"file_path": "/repo/a.py", "old_string": "x = 1\n", "new_string": "x = 2\n"},
        tool_use_id="toolu_02",
    )
    process = start(tmp_path, "hook", "claude-code", input=json.dumps(payload).encode())
    task = await waiting_task(tmp_path, process)
    assert task.interrupt_point is not None
    assert "-x = 1\n+x = 2\n" in task.interrupt_point.context["diff"]  # the person sees the diff
    edited = {"file_path": "/repo/a.py", "old_string": "x = 1\n", "new_string": "x = 3\n"}
    await decide(tmp_path, task.task_id, "edit", edited, "bob")
    code, out, _ = finish(process)
    assert code == 0
    answer = protocol_answer(out)
    assert answer["permissionDecision"] == "allow" and answer["updatedInput"] == edited


def test_nobody_answering_denies_with_the_default_never_a_silent_allow(tmp_path: Path) -> None:
    code, answer, _ = run_hook(tmp_path, event("terraform apply"), "--timeout", "1")
    assert code == 0 and answer is not None
    assert answer["permissionDecision"] == "deny"
    assert answer["permissionDecisionReason"].startswith("No person decided within 1s")


async def test_sigterm_while_a_person_decides_withdraws_the_call_and_blocks_it(tmp_path: Path) -> None:
    process = start(tmp_path, "hook", "claude-code", input=json.dumps(event("make deploy")).encode())
    task = await waiting_task(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    code, out, _ = finish(process)
    assert code == 2 and out == b""  # exit 2: Claude Code blocks the call
    assert states(await all_tasks(tmp_path))[task.task_id] is TaskState.FAILED


async def test_input_that_is_not_json_is_blocked_with_exit_2(tmp_path: Path) -> None:
    code, answer, err = run_hook(tmp_path, b"{not json")
    assert code == 2 and answer is None
    assert b"hitl denied the call: the hook input is not JSON" in err
    assert await all_tasks(tmp_path) == []


def test_input_that_is_not_json_passes_only_when_a_rule_allows_it(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(
        '[[rules]]\nid = "lenient"\ndecision = "allow"\naction = "hitl:bad-hook-input"\n'
    )
    code, answer, _ = run_hook(tmp_path, b"{not json")
    assert code == 0 and answer is None


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ({"tool_name": None}, "lacks tool_name"),
        ({"tool_use_id": ""}, "lacks tool_use_id"),
        ({"tool_input": "ls"}, "tool_input must be a JSON object"),
        ({"session_id": 7}, "session_id must be a string"),
    ],
)
async def test_a_pre_tool_use_event_missing_fields_is_denied_with_a_reason(
    tmp_path: Path, broken: dict[str, Any], says: str
) -> None:
    code, answer, _ = run_hook(tmp_path, event(**broken))
    assert code == 0 and answer is not None
    assert answer["permissionDecision"] == "deny" and says in answer["permissionDecisionReason"]
    assert await all_tasks(tmp_path) == []


def test_an_unknown_event_is_blocked_with_exit_2(tmp_path: Path) -> None:
    code, answer, err = run_hook(tmp_path, event(hook_event_name="PermissionRequest"))
    assert code == 2 and answer is None
    assert b"unknown hook event 'PermissionRequest'" in err


def test_a_store_that_is_down_denies_the_call(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    code, answer, _ = run_hook(tmp_path, event(), "--store", f"sqlite:///{tmp_path / 'dir.db'}")
    assert code == 0 and answer is not None
    assert answer["permissionDecision"] == "deny"
    assert answer["permissionDecisionReason"].startswith("hitl could not ask a person, so the call is denied")


def test_a_tool_input_over_the_payload_limit_is_denied(tmp_path: Path) -> None:
    payload = json.dumps(event("echo " + "x" * 5000)).encode()
    result = hitl(tmp_path, "hook", "claude-code", input=payload, HITL_MAX_PAYLOAD_BYTES="4096")
    assert result.returncode == 2  # over the limit before it is even parsed: blocked
    assert b"over the limit of 4,096" in result.stderr


async def test_the_same_tool_use_asked_again_gets_the_same_decision(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(RULES)
    first = run_hook(tmp_path, event("ls"))
    second = run_hook(tmp_path, event("ls"))
    assert first[1] == second[1] and first[1] is not None and first[1]["permissionDecision"] == "allow"
    assert len([t for t in await all_tasks(tmp_path) if t.parent_id]) == 1


async def test_session_end_completes_the_sessions_run(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(RULES)
    run_hook(tmp_path, event("ls"))
    code, answer, _ = run_hook(tmp_path, {"session_id": "sess-1", "hook_event_name": "SessionEnd", "reason": "exit"})
    assert code == 0 and answer is None
    assert states(await all_tasks(tmp_path))["claude-code:sess-1"] is TaskState.COMPLETED


async def test_a_tool_use_id_reused_for_another_command_is_denied_not_given_the_old_allow(tmp_path: Path) -> None:
    (tmp_path / "hitl.toml").write_text(RULES)
    assert run_hook(tmp_path, event("ls", tool_use_id="toolu_09"))[1]["permissionDecision"] == "allow"  # type: ignore[index]
    code, answer, _ = run_hook(tmp_path, event("rm -rf /", tool_use_id="toolu_09"))
    assert code == 0 and answer is not None
    assert (
        answer["permissionDecision"] == "deny"
        and "was asked about another action" in answer["permissionDecisionReason"]
    )


def test_a_hook_that_breaks_unexpectedly_blocks_with_exit_2(tmp_path: Path) -> None:
    result = hitl(tmp_path, "hook", "claude-code", input=json.dumps(event()).encode(), HITL_MAX_PAYLOAD_BYTES="lots")
    assert result.returncode == 2 and result.stdout == b""
    assert b"hitl hook failed, so the call is blocked: ValueError" in result.stderr


def test_an_escape_sequence_in_the_input_reaches_the_terminal_only_as_visible_text(tmp_path: Path) -> None:
    code, _, err = run_hook(tmp_path, event(hook_event_name="\x1b]0;pwned\x07\u202e"))
    assert code == 2
    assert b"\x1b" not in err and b"\x07" not in err and "\u202e".encode() not in err
    assert b"\\x1b]0;pwned\\x07\\u202e" in err
