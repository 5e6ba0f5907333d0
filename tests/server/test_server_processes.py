"""Server mode with real processes: an agent process waits, the real CLI decides through the server,
the server is SIGKILLed and restarted under a waiting agent, and the OS user is the actor."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState
from hitl_core.client import RemoteMachine

from .conftest import ServerFactory, ServerProcess, child_env

pytestmark = pytest.mark.processes

AGENT = Path(__file__).with_name("proc_agent.py")
ROOT = Path(__file__).resolve().parents[2]


class Agent:
    """tests/server/proc_agent.py in its own process; its stdout lines awaited with a deadline."""

    def __init__(self, task_id: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT), task_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**env),
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, prefix: str, timeout: float = 120) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} within {timeout}s; saw {self.seen}") from None
            if line is None:
                self.proc.wait(5)
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"agent exited ({self.proc.returncode}) before {prefix!r}: {err[-3000:]}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def agents() -> Any:
    started: list[Agent] = []

    def start(task_id: str, **env: str) -> Agent:
        agent = Agent(task_id, **env)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()


def test_agent_process_waits_and_the_cli_approves_through_the_server(
    start_server: ServerFactory, agents: Any, hitl_cli: Any
) -> None:
    server = start_server(listen=True)
    token = server.token("refund-bot", "agent")
    # The agent talks TLS with its token; the operator's CLI talks to the Unix socket as root.
    agent = agents("refund-1", HITL_STORE=server.https_url, HITL_TOKEN=token, HITL_CA_BUNDLE=str(server.cert))
    assert agent.read_until("machine") == "machine RemoteMachine"
    agent.read_until("waiting")
    listed = hitl_cli("--store", server.unix_url, "ls", "--state", "awaiting_approval")
    assert listed.returncode == 0, listed.stderr
    assert "refund-1" in listed.stdout and "refund-bot" in listed.stdout
    approved = hitl_cli("--store", server.unix_url, "approve", "refund-1", "--message", "ok")
    assert approved.returncode == 0, approved.stderr
    assert agent.read_until("decided") == "decided approve root | unix"
    agent.read_until("done")
    shown = hitl_cli("--store", server.unix_url, "show", "refund-1", "--json")
    task = json.loads(shown.stdout)
    assert task["state"] == "completed"
    assert [h["actor"] for h in task["history"]][:3] == ["refund-bot", "refund-bot", "root"]


def test_cli_exit_codes_through_the_server(start_server: ServerFactory, hitl_cli: Any) -> None:
    server = start_server()
    assert hitl_cli("--store", server.unix_url, "approve", "nope").returncode == 3

    async def ask() -> None:
        async with HITLStateMachine(server.unix_url) as m:
            await m.start_task("t")
            await m.request_approval("t", "why")

    asyncio.run(ask())
    assert hitl_cli("--store", server.unix_url, "approve", "t").returncode == 0
    again = hitl_cli("--store", server.unix_url, "approve", "t")
    assert again.returncode == 4 and "already decided by root" in again.stderr
    assert hitl_cli("--store", server.unix_url, "approve", "t", "--as", "mallory").returncode == 7
    exported = hitl_cli("--store", server.unix_url, "audit", "export")
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(line)["action"] for line in exported.stdout.splitlines()] == [
        "start",
        "request_approval",
        "approve",
    ]
    verify = hitl_cli("--store", server.unix_url, "audit", "verify")
    assert verify.returncode == 6 and "run it on the server's host" in verify.stderr
    direct = hitl_cli("--store", server.store_url, "audit", "verify")
    assert direct.returncode == 0, direct.stderr


def test_agent_gets_its_decision_across_a_server_sigkill_and_restart(
    start_server: ServerFactory, agents: Any, hitl_cli: Any
) -> None:
    server = start_server()
    agent = agents("refund-2", HITL_STORE=server.unix_url)
    agent.read_until("waiting")
    server.kill()  # SIGKILL: no goodbye to the agent's stream
    server.start()
    approved = hitl_cli("--store", server.unix_url, "approve", "refund-2")
    assert approved.returncode == 0, approved.stderr
    assert agent.read_until("decided").startswith("decided approve root")
    agent.read_until("done")


async def test_stream_resumes_from_its_last_seq_with_no_gap_and_no_duplicate(start_server: ServerFactory) -> None:
    server = start_server()
    remote = RemoteMachine(server.unix_url)
    seen: list[int] = []

    async def collect() -> None:
        async for event in remote.follow(0):
            seen.append(event.seq)

    async def until(count: int) -> None:
        for _ in range(2400):
            if len(seen) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"saw {seen}, wanted {count} events")

    collector = asyncio.create_task(collect())
    try:
        for i in range(3):
            await remote.start_task(f"before-{i}")
        await until(3)
        server.kill()
        # While the server is down, another writer appends to the same store (the log is the truth).
        async with HITLStateMachine(server.store_url, load_entrypoints=False) as local:
            for i in range(4):
                await local.start_task(f"during-{i}")
        server.start()
        for i in range(3):
            await remote.start_task(f"after-{i}")
        await until(10)
    finally:
        collector.cancel()
        await remote.close()
    assert seen == list(range(1, 11))


async def test_client_raises_the_machines_exceptions(start_server: ServerFactory) -> None:
    from hitl_core import (
        AlreadyDecidedError,
        DuplicateTaskError,
        InvalidTransitionError,
        PayloadError,
        TaskNotFoundError,
    )

    server = start_server()
    async with HITLStateMachine(server.unix_url) as m:
        assert await m.get_task("nope") is None
        with pytest.raises(TaskNotFoundError):
            await m.resume("nope")
        await m.start_task("t")
        with pytest.raises(DuplicateTaskError):
            await m.start_task("t")
        with pytest.raises(PayloadError):
            await m.request_approval("t", " ")
        await m.request_approval("t", "why", options=["approve", "reject"])
        with pytest.raises(InvalidTransitionError) as illegal:
            await m.complete("t")
        assert illegal.value.state == "awaiting_approval"
        await m.reject("t", message="no")
        with pytest.raises(AlreadyDecidedError) as decided:
            await m.approve("t")
        assert decided.value.decided_by == "root" and decided.value.decision_type == "reject"


async def test_callbacks_and_the_sync_facade_over_the_server(start_server: ServerFactory) -> None:
    server = start_server()
    async with HITLStateMachine(server.unix_url) as m:
        calls: list[tuple[str, str | None, str]] = []
        m.add_callback(lambda task, old, new: calls.append((task.task_id, old and old.value, new.value)))
        await m._ensure_follower()
        await m.start_task("cb")
        await m.request_approval("cb", "why")
        await m.approve("cb")
        for _ in range(2400):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.05)
        assert calls == [
            ("cb", None, "running"),
            ("cb", "running", "awaiting_approval"),
            ("cb", "awaiting_approval", "approved"),
        ]

    def sync_agent() -> str:
        machine = HITLStateMachine(server.unix_url)
        machine.sync.start_task("s")
        machine.sync.request_approval("s", "why")
        machine.sync.approve("s", message="fine")
        decision = machine.sync.wait_for_decision("s", timeout=60)
        machine.sync.close_machine()
        return decision.message or ""

    assert await asyncio.to_thread(sync_agent) == "fine"


async def test_deadlines_run_in_the_server_not_in_any_client(start_server: ServerFactory) -> None:
    server = start_server("[deadlines]\nsweep_interval = 0.2\n[deadlines.default_timeout]\nlow = 0.5\n")
    async with HITLStateMachine(server.unix_url) as m:  # no config on this side at all
        await m.start_task("slow")
        await m.request_approval("slow", "nobody answers", severity="low")
        decision = await m.wait_for_decision("slow", timeout=120)
    assert decision.type.value == "timeout" and decision.outcome == "reject"
    assert decision.actor.id == "hitl:timeout"


def test_openapi_document_is_current(start_server: ServerFactory) -> None:
    from hitl_core.server.api import openapi_document

    checked_in = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert checked_in == openapi_document(), (
        "docs/openapi.json is stale: run python -m hitl_core.server.api > docs/openapi.json"
    )
    server = start_server()
    with server.unix_client() as c:
        assert c.get("/openapi.json").json() == checked_in
        assert c.get("/healthz").json()["status"] == "ok"
        metrics = c.get("/metrics").text
    assert 'hitl_waiting_tasks{severity="critical"} 0' in metrics
    assert "hitl_live_streams 0" in metrics


def _useradd(name: str, group: str | None = None) -> tuple[int, int]:
    """A local user (made once; the tests run as root here and in CI), its (uid, gid)."""
    import grp
    import pwd

    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", group], check=True)
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


# The child imports everything as root, says hello once as root (so that no import happens later),
# then drops to the other user *before* it connects: SO_PEERCRED names who connected.
AS_USER = """
import asyncio, json, os, sys
from hitl_core import HITLStateMachine, TaskState
from hitl_core.client import RemoteMachine
url, uid, gid, groups = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
async def warm():
    async with RemoteMachine(url) as m:
        await m.whoami()
asyncio.run(warm())
os.setgroups(groups); os.setgid(gid); os.setuid(uid)
async def main():
    try:
        async with HITLStateMachine(url) as m:
            who = await m.whoami()
            task = await m.start_task("peer-task")
            print(json.dumps({"who": who, "agent": task.agent, "actor": task.history[0]["actor"]}))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
asyncio.run(main())
"""


def _run_as(server: ServerProcess, uid: int, gid: int, groups: list[int]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", AS_USER, server.unix_url, str(uid), str(gid), json.dumps(groups)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peer_credentials_name_the_os_user(start_server: ServerFactory) -> None:
    import grp

    uid, gid = _useradd("hitl-peer-test", group="hitl-serve-test")
    group_gid = grp.getgrnam("hitl-serve-test").gr_gid
    server = start_server(socket_group="hitl-serve-test")
    mode = server.socket_path.stat()
    assert oct(mode.st_mode & 0o777) == "0o660" and mode.st_gid == group_gid
    result = _run_as(server, uid, gid, [group_gid])
    assert result["who"] == {"name": "hitl-peer-test", "role": "operator", "channel": "unix", "impersonate": False}
    assert result["agent"] == "hitl-peer-test" and result["actor"] == "hitl-peer-test"
    # The same user outside the socket's group cannot connect at all.
    denied = _run_as(server, uid, gid, [])
    assert denied["error"] == "StoreError" and "Permission denied" in denied["message"]


async def test_decorators_work_unchanged_against_the_server(start_server: ServerFactory) -> None:
    from hitl_core import ApprovalRejected, checkpoint, interruptible, requires_approval

    server = start_server()  # no policy config: the server still sweeps deadlines
    agent = HITLStateMachine(server.unix_url)
    operator = HITLStateMachine(server.unix_url)

    @requires_approval("refund {amount}", machine=agent, task_id=lambda amount: f"refund-{amount}")
    def refund(amount: int) -> str:
        return f"refunded {amount}"

    @requires_approval("drop table", machine=agent, timeout=0.5, task_id=lambda: "drop")
    def drop() -> str:
        return "dropped"

    @interruptible(check_interval=0.05, machine=agent, task_id=lambda paused, go_on: "long-job")
    def long_job(paused: threading.Event, go_on: threading.Event) -> str:
        while not go_on.is_set():
            checkpoint()
            time.sleep(0.02)
        checkpoint()
        return "finished"

    async def decide_when_waiting(task_id: str) -> None:
        for _ in range(2400):  # the agent's thread creates the task
            if await operator.get_task(task_id) is not None:
                break
            await asyncio.sleep(0.05)
        await operator.wait_for_state(task_id, [TaskState.AWAITING_APPROVAL], timeout=120)
        await operator.approve(task_id, message="go")

    try:
        approving = asyncio.create_task(decide_when_waiting("refund-420"))
        assert await asyncio.to_thread(refund, 420) == "refunded 420"
        await approving
        with pytest.raises(ApprovalRejected) as rejected:
            await asyncio.to_thread(drop)
        assert rejected.value.decision.type.value == "timeout"
        assert rejected.value.decision.actor.id == "hitl:timeout"

        paused, go_on = threading.Event(), threading.Event()
        job = asyncio.create_task(asyncio.to_thread(long_job, paused, go_on))
        for _ in range(2400):  # the job's thread creates the task
            if await operator.get_task("long-job") is not None:
                break
            await asyncio.sleep(0.05)
        await operator.pause("long-job", None, "let me look")
        await operator.wait_for_state("long-job", [TaskState.AWAITING_APPROVAL], timeout=120)
        await operator.approve("long-job")
        go_on.set()
        assert await job == "finished"
        task = await operator.get_task("long-job")
        assert task is not None and task.state is TaskState.COMPLETED
        assert [h["action"] for h in task.history] == ["start", "pause", "approve", "resume", "complete"]
    finally:
        await asyncio.to_thread(agent.sync.close_machine)
        await operator.close()


def test_a_clients_local_config_has_no_say(start_server: ServerFactory, tmp_path: Path, hitl_cli: Any) -> None:
    # The server's policy: operators may not approve their own requests. The client's local
    # hitl.toml would auto-approve everything and turn that check off; in server mode it is ignored.
    server = start_server("[authorization]\nno_self_approval = true\n")
    local = tmp_path / "hitl.toml"
    local.write_text('[authorization]\nno_self_approval = false\n\n[[rules]]\nid = "yes"\ndecision = "allow"\n')

    async def ask() -> TaskState:
        async with HITLStateMachine(server.unix_url, config=local) as m:
            await m.start_task("local-config")
            return (await m.request_approval("local-config", "deploy")).state

    assert asyncio.run(ask()) is TaskState.AWAITING_APPROVAL  # no local rule decided it
    refused = hitl_cli("--store", server.unix_url, "approve", "local-config", env={"HITL_CONFIG": str(local)})
    assert refused.returncode == 7 and "no self-approval" in refused.stderr
    # Nor can a client make its local file the policy without the admin role: an operator's token
    # is refused (403, audited) and the policy in force is still the server's.
    tls = start_server("[authorization]\nno_self_approval = true\n", listen=True)
    env = {"HITL_TOKEN": tls.token("carol", "operator"), "HITL_CA_BUNDLE": str(tls.cert)}
    pushed = hitl_cli("--store", tls.https_url, "policy", "apply", str(local), env=env)
    assert pushed.returncode == 7 and "apply a policy needs the admin role" in pushed.stderr
    shown = hitl_cli("--store", tls.https_url, "policy", "show", env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("version 1\n")
    assert "no_self_approval = true" in shown.stdout and "[[rules]]" not in shown.stdout
    with tls.unix_client() as c:
        refused_records = c.get("/v1/audit", params={"kind": "refused"}).json()["records"]
    assert [(r["actor"], r["data"]["what"]) for r in refused_records] == [("carol", "apply a policy")]


async def test_an_approving_default_is_the_servers_to_allow(start_server: ServerFactory) -> None:
    from hitl_core import PayloadError

    strict = start_server()
    async with HITLStateMachine(strict.unix_url) as m:
        await m.start_task("default-approve")
        with pytest.raises(PayloadError, match="allow_default_approve"):
            await m.request_approval("default-approve", "why", timeout=60, default_decision="approve")
    lenient = start_server("[deadlines]\nallow_default_approve = true\nsweep_interval = 0.2\n")
    async with HITLStateMachine(lenient.unix_url) as m:
        await m.start_task("default-approve")
        await m.request_approval("default-approve", "why", timeout=0.5, default_decision="approve")
        decision = await m.wait_for_decision("default-approve", timeout=120)
    assert decision.type.value == "timeout" and decision.outcome == "approve"
