"""Who may decide: self-approval, assignees and roles, roles per severity, four eyes; refusals audited."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, NotAuthorizedError, TaskState

from .conftest import MachineFactory

ROOT = Path(__file__).resolve().parents[2]

AUTH = """
[authorization]
no_self_approval = true
enforce_assignees = true
four_eyes = ["critical"]
[authorization.actors]
alice = ["sre", "lead"]
bob = ["sre"]
dave = ["support"]
[authorization.severity]
critical = ["sre", "lead"]
"""


async def test_self_approval_is_refused_and_audited(
    configured: MachineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    m = configured(AUTH)
    await m.start_task("t", agent="deploy-pilot")
    await m.request_approval("t", "deploy", severity="high", requested_by="alice")
    with (
        caplog.at_level(logging.WARNING, logger="hitl.audit"),
        pytest.raises(NotAuthorizedError, match="no self-approval") as info,
    ):
        await m.approve("t", actor="alice")
    assert info.value.actor == "alice" and info.value.task_id == "t"
    assert "refused: alice may not approve task t: no self-approval" in caplog.text
    task = await m.get_task("t")
    assert task.state == TaskState.AWAITING_APPROVAL and task.version == 2  # nothing committed
    rejected = await m.reject("t", actor="alice", message="changed my mind")  # withdrawing is fine
    assert rejected.state == TaskState.REJECTED
    # without requested_by the task's agent is the requester
    await m.start_task("own", agent="bob")
    await m.request_approval("own", "why")
    with pytest.raises(NotAuthorizedError, match="no self-approval"):
        await m.approve("own", actor="bob")
    assert (await m.approve("own", actor="alice")).state == TaskState.APPROVED


async def test_only_assignees_or_their_roles_may_decide(configured: MachineFactory) -> None:
    m = configured(AUTH)
    await m.start_task("t")
    await m.request_approval("t", "why", assignees=["carol", "role:lead"])
    for outsider in ("bob", "dave"):
        with pytest.raises(NotAuthorizedError, match=r"only the assignees may decide \(carol, role:lead\)"):
            await m.approve("t", actor=outsider)
    with pytest.raises(NotAuthorizedError):
        await m.reject("t", actor="bob", message="not yours to reject either")
    assert (await m.approve("t", actor="alice")).state == TaskState.APPROVED  # alice holds role lead
    await m.start_task("u")
    await m.request_approval("u", "why", assignees=["carol"])
    assert (await m.approve("u", actor="carol")).state == TaskState.APPROVED


async def test_roles_file_gates_each_severity(configured: MachineFactory) -> None:
    m = configured(AUTH)
    await m.start_task("c")
    await m.request_approval("c", "why", severity="critical")
    with pytest.raises(NotAuthorizedError, match=r"a critical request needs the role sre or lead .*'dave' support"):
        await m.approve("c", actor="dave")
    await m.start_task("m")
    await m.request_approval("m", "why", severity="medium")
    assert (await m.approve("m", actor="dave")).state == TaskState.APPROVED  # no roles asked at medium


async def test_four_eyes_needs_two_distinct_people(configured: MachineFactory) -> None:
    m = configured(AUTH)
    await m.start_task("t", agent="infra-guard")
    task = await m.request_approval("t", "grant admin", severity="critical")
    assert task.interrupt_point.required_approvals == 2  # asked for by the config, not the caller
    first = await m.approve("t", actor="alice")
    assert first.state == TaskState.AWAITING_APPROVAL and [a.actor.id for a in first.approvals] == ["alice"]
    assert first.history[-1]["action"] == "approve_partial"
    with pytest.raises(NotAuthorizedError, match="four eyes"):
        await m.approve("t", actor="alice")
    second = await m.approve("t", actor="bob")
    assert second.state == TaskState.APPROVED and [a.actor.id for a in second.approvals] == ["alice", "bob"]
    # a medium request needs one approval
    await m.start_task("m")
    await m.request_approval("m", "why", severity="medium")
    assert (await m.approve("m", actor="dave")).state == TaskState.APPROVED


async def test_refusals_are_appended_to_the_refusals_log(tmp_path: Path) -> None:
    log = tmp_path / "refusals.jsonl"
    config = tmp_path / "hitl.toml"
    config.write_text(AUTH.replace("four_eyes", f'refusals_log = "{log.name}"\nfour_eyes'), encoding="utf-8")
    async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as m:
        await m.start_task("t", agent="bot")
        await m.request_approval("t", "why")
        with pytest.raises(NotAuthorizedError):
            await m.approve("t", actor="bot")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["task_id"], e["actor"], e["decision"]) for e in entries] == [("t", "bot", "approve")]
    assert "no self-approval" in entries[0]["reason"]


@pytest.mark.processes
def test_the_cli_applies_the_config_it_finds(tmp_path: Path) -> None:
    """`hitl approve` in another process honours HITL_CONFIG: a config that is not applied everywhere fails open."""
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    config = tmp_path / "hitl.toml"
    config.write_text(AUTH, encoding="utf-8")

    async def ask() -> None:
        async with HITLStateMachine(url, load_entrypoints=False, config=config) as m:  # four eyes at critical
            await m.start_task("t", agent="alice")
            await m.request_approval("t", "why", severity="critical")

    import asyncio

    asyncio.run(ask())
    hitl = str(Path(sys.executable).parent / "hitl")
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"} | {"HITL_CONFIG": str(config)}
    run = lambda *args: subprocess.run(  # noqa: E731
        [hitl, *args, "--store", url],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    refused = run("approve", "t", "--as", "dave")
    assert refused.returncode == 7, refused.stderr
    assert "dave may not decide task 't': a critical request needs the role sre or lead" in refused.stderr
    own = run("approve", "t", "--as", "alice")
    assert own.returncode == 7 and "no self-approval" in own.stderr
    first = run("approve", "t", "--as", "bob")
    assert first.returncode == 0 and "waits for a second approver" in first.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text("[authorization]\nfour_eyes = ['sometimes']\n", encoding="utf-8")
    bad = subprocess.run(
        [hitl, "ls", "--store", url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=env | {"HITL_CONFIG": str(broken)},
    )
    assert bad.returncode == 2 and f"{broken}, line 2: authorization.four_eyes[0]" in bad.stderr
