"""The processes of the soak harness (benchmarks/soak.py): agents, deciders and followers.

    python soak_worker.py agent    URL NAME KIND LOG   KIND: api | decorator | langgraph
    python soak_worker.py decider  URL NAME KIND LOG   KIND: api | cli
    python soak_worker.py follower URL NAME LOG
    python soak_worker.py sweeper  URL NAME CONFIG LOG   a deadline sweeper on a clock the harness moves

Each process appends one JSON line per operation to LOG, written *after* the operation was
acknowledged (the call returned), flushed at once: the checker holds the store to every line.
A process killed with SIGKILL is started again with the same arguments and picks up where its
log and the store say it was — the log is the process's memory, the store the truth.

Every worker stops on its own when the file ``STOP-<role>`` appears beside its log (an agent
finishes the task it is on first), and never runs more than ``HITL_SOAK_MAX_SECONDS``. The harness
stops the agents first, then the deciders (so that nothing an agent asked is left undecided),
then, once they have seen every event, the followers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("LANGSMITH_TRACING", "false")

from hitl_core import AlreadyDecidedError, ConflictError, HITLError, HITLStateMachine, TaskState
from hitl_core.canonical import fingerprint
from hitl_core.errors import DecisionTimeoutError

MAX_SECONDS = float(os.environ.get("HITL_SOAK_MAX_SECONDS", "7200"))
STARTED = time.monotonic()
TARGETS = ["staging", "prod", "eu-west", "us-east", "billing", "search"]
ASKING, FINISHING = "asking", "finishing"


class Log:
    """Append-only JSON lines; one ``write`` per line so a kill never leaves half a record."""

    def __init__(self, path: str, role: str) -> None:
        self.path = Path(path)
        self.stop_file = self.path.parent / f"STOP-{role}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.pid = os.getpid()

    def write(self, **record: Any) -> None:
        record.setdefault("t", time.time())
        record["pid"] = self.pid
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def records(self) -> list[dict[str, Any]]:
        return read_log(self.path)

    def stopping(self) -> bool:
        return self.stop_file.exists() or time.monotonic() - STARTED > MAX_SECONDS


def read_log(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill: nothing was acknowledged by it
    return out


# -- agents -------------------------------------------------------------------------------------


class Agent:
    """Runs tasks one after another: start, ask, wait, resume, complete — driven by the store's state.

    After any failure (the store down, a full disk, a conflict) the agent reads its task again
    and does the next step that state calls for, so a retried call never acts twice.
    """

    def __init__(self, machine: HITLStateMachine, name: str, kind: str, log: Log) -> None:
        self.m, self.name, self.kind, self.log = machine, name, kind, log
        records = log.records()
        self.next_index = 1 + max((r["i"] for r in records if r.get("op") == "begin"), default=-1)
        self.decided = {r["task"] for r in records if r.get("op") == "decided"}
        self.unfinished = [r["task"] for r in records if r.get("op") == "begin"]
        self.finished = {r["task"] for r in records if r.get("op") == "finished"}
        self.waiting: dict[str, str] = {}  # task id -> interrupt id this process waits on

    def ack(self, action: str, task: Any) -> None:
        self.log.write(op="ack", task=task.task_id, version=task.version, action=action)

    #: Tasks in flight at once in one process (parallel tool calls): several waiters share the
    #: process's one follower, which is where a lost wake-up hides.
    LANES = 4

    async def run(self) -> None:
        leftovers = [t for t in self.unfinished if t not in self.finished]
        await asyncio.gather(*(self.drive(task_id, None) for task_id in leftovers))
        await asyncio.gather(*(self.lane() for _ in range(self.LANES)))

    async def lane(self) -> None:
        while not self.log.stopping():
            i = self.next_index
            self.next_index += 1
            task_id = f"{self.name}-{i}"
            args = {"n": i, "target": random.choice(TARGETS), "replicas": random.randint(1, 9)}
            self.log.write(op="begin", task=task_id, i=i, args=args)
            await self.drive(task_id, args)

    async def drive(self, task_id: str, args: dict[str, Any] | None) -> None:
        failures = 0
        while True:
            try:
                if await self.step(task_id, args):
                    self.log.write(op="finished", task=task_id)
                    return
                failures = 0
            except (HITLError, OSError, ConnectionError, TimeoutError) as exc:
                failures += 1
                self.log.write(op="error", task=task_id, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                await asyncio.sleep(min(0.1 * failures, 2.0))

    async def step(self, task_id: str, args: dict[str, Any] | None) -> bool:
        """One step of ``task_id``'s life; True once it is finished."""
        task = await self.m.get_task(task_id)
        if task is None:
            task = await self.m.start_task(task_id, step=ASKING, agent=self.name, framework="soak")
            self.ack("start", task)
            return False
        state = task.state
        if state is TaskState.RUNNING and task.current_step == ASKING:
            if args is None:
                args = next(r["args"] for r in self.log.records() if r.get("task") == task_id and r["op"] == "begin")
            severity = random.choice(["low", "medium", "high", "critical"])
            # Low requests carry a short deadline: the sweepers (on their jumping clocks) race
            # the deciders (who mostly leave low requests alone) to settle them.
            timeout = random.uniform(1.0, 4.0) if severity == "low" else None
            task = await self.m.request_approval(
                task_id,
                f"soak: run op {args['n']} on {args['target']}",
                action="op",
                args=args,
                severity=severity,
                timeout=timeout,
            )
            self.ack("request_approval", task)
            return False
        if state is TaskState.AWAITING_APPROVAL:
            assert task.interrupt_point is not None
            self.log.write(op="waiting", task=task_id, interrupt_id=task.interrupt_point.interrupt_id)
            self.waiting[task_id] = task.interrupt_point.interrupt_id
            d = await self.m.wait_for_decision(task_id, timeout=30)
            self.log.write(op="woke", task=task_id, interrupt_id=d.interrupt_id)
            del self.waiting[task_id]
            return False
        if state in (TaskState.APPROVED, TaskState.REJECTED):
            if task_id in self.waiting:
                # The wait ended without the decision (it timed out, or failed): this read is when
                # the agent noticed it. The checker judges how late that was.
                self.log.write(op="woke", task=task_id, interrupt_id=self.waiting.pop(task_id), by_reading=True)
            if task_id not in self.decided:
                d = await self.m.wait_for_decision(task_id, timeout=5)  # decided: returns at once
                executed = None
                if d.approved:
                    ip = task.interrupt_point
                    asked = ip.args_fingerprint if ip is not None else None
                    executed = fingerprint(d.edited_args) if d.edited_args is not None else asked
                self.log.write(
                    op="decided",
                    task=task_id,
                    interrupt_id=d.interrupt_id,
                    type=d.type.value,
                    approved=d.approved,
                    by=d.actor.id,
                    executed_fingerprint=executed,
                )
                self.decided.add(task_id)
            task = await self.m.resume(task_id, step=FINISHING)
            self.ack("resume", task)
            return False
        if state is TaskState.RUNNING and task.current_step == FINISHING:
            task = await self.m.complete(task_id, {"ok": True})
            self.ack("complete", task)
            return True
        if state in (TaskState.COMPLETED, TaskState.FAILED):
            return True
        raise HITLError(f"{task_id}: unexpected state {state.value} at step {task.current_step!r}")


class DecoratedAgent(Agent):
    """An agent whose risky step is a ``@requires_approval`` function (the decorator's own lifecycle).

    The decorator owns its task ids, so a restarted process does not pick its waiting calls back
    up (those tasks stay waiting or decided; the checker only holds it to what it acknowledged).
    """

    async def run(self) -> None:
        from hitl_core import requires_approval

        executed: list[dict[str, Any]] = []
        name = self.name

        @requires_approval(
            machine=self.m, reason="soak: decorated op {n}", severity="high", task_id=lambda n, **_: f"{name}-{n}"
        )
        async def op(n: int, target: str, replicas: int) -> str:
            executed.append({"n": n, "target": target, "replicas": replicas})
            return f"ran {n}"

        records = self.log.records()
        ended = {r["i"] for r in records if r.get("op") in ("ran", "refused")}
        calls = [(r["i"], r["args"]) for r in records if r.get("op") == "call" and r["i"] not in ended]
        self.next_index = 1 + max((r["i"] for r in records if r.get("op") == "call"), default=-1)
        while not self.log.stopping() or calls:
            if calls:
                i, args = calls.pop(0)  # a call the killed process made: the same call adopts its task
            else:
                i = self.next_index
                self.next_index += 1
                args = {"n": i, "target": random.choice(TARGETS), "replicas": random.randint(1, 9)}
                self.log.write(op="call", i=i, task=f"{name}-{i}", args=args)
            try:
                await op(**args)
                self.log.write(op="ran", i=i, task=f"{name}-{i}", executed_fingerprint=fingerprint(executed[-1]))
            except HITLError as exc:
                self.log.write(op="refused", i=i, task=f"{name}-{i}", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                await asyncio.sleep(0.05)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.log.write(op="error", i=i, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                calls.insert(0, (i, args))
                await asyncio.sleep(0.2)


async def run_langgraph_agent(url: str, name: str, log: Log) -> None:
    """A LangGraph graph with one interrupt per run, through the LangGraph adapter (SqliteSaver checkpoints)."""
    import sqlite3

    from hitl_langgraph import GraphApprovals
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt
    from typing_extensions import TypedDict

    class State(TypedDict):
        n: int
        out: str

    def risky(state: State) -> dict[str, Any]:
        answer = interrupt(
            {"reason": f"soak graph op {state['n']}", "action": "op", "args": {"n": state["n"]}, "severity": "medium"}
        )
        return {"out": f"{answer['type']} by {answer['actor']}"}

    builder = StateGraph(State)
    builder.add_node("risky", risky)
    builder.add_edge(START, "risky")
    builder.add_edge("risky", END)
    conn = sqlite3.connect(str(log.path.with_suffix(".ckpt.db")), check_same_thread=False)
    graph = builder.compile(checkpointer=SqliteSaver(conn))
    records = log.records()
    done = {r["thread"] for r in records if r.get("op") == "graph_done"}
    pending = [r["thread"] for r in records if r.get("op") == "graph_begin" and r["thread"] not in done]
    index = sum(1 for r in records if r.get("op") == "graph_begin")
    machine = HITLStateMachine(url, load_entrypoints=False, agent=name)
    approvals = GraphApprovals(machine, agent=name)

    def go(thread: str, resuming: bool) -> None:
        config = {"configurable": {"thread_id": thread}}
        while True:
            try:
                if resuming:
                    approvals.resume(graph, config, wait=True, wait_timeout=30, takeover=True)
                else:
                    approvals.run(graph, {"n": int(thread.rsplit("-", 1)[1]), "out": ""}, config, wait_timeout=30)
                log.write(op="graph_done", thread=thread)
                return
            except DecisionTimeoutError:
                resuming = True
            except (HITLError, OSError, ConnectionError, TimeoutError) as exc:
                log.write(op="error", thread=thread, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                time.sleep(0.3)
                resuming = True

    for thread in pending:
        await asyncio.to_thread(go, thread, True)
    while not log.stopping():
        thread = f"{name}-{index}"
        index += 1
        log.write(op="graph_begin", thread=thread)
        await asyncio.to_thread(go, thread, False)
    await asyncio.to_thread(machine.sync.close_machine)


# -- deciders -----------------------------------------------------------------------------------


async def run_decider(url: str, name: str, kind: str, log: Log) -> None:
    """Decide waiting tasks at random: mostly approve, some reject, some edit; CLI kind shells out."""
    rng = random.Random(f"{name}-{os.getpid()}")
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        while not log.stopping():
            try:
                pending = await m.get_pending_approvals()
            except (HITLError, OSError, ConnectionError) as exc:
                log.write(op="error", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                await asyncio.sleep(0.3)
                continue
            if not pending:
                await asyncio.sleep(0.05)
                continue
            for task in rng.sample(pending, min(len(pending), 4)):
                ip = task.interrupt_point
                if ip is None or (ip.deadline is not None and zlib.crc32(task.task_id.encode()) % 10 < 7):
                    continue  # most requests with a deadline are left to the sweepers, by every decider
                roll = rng.random()
                if kind == "cli":
                    await _decide_by_cli(url, name, task.task_id, ip.interrupt_id, roll, log)
                    continue
                try:
                    if roll < 0.6 or ("edit" not in ip.allowed_decisions and roll < 0.85):
                        await m.approve(
                            task.task_id,
                            actor=name,
                            interrupt_id=ip.interrupt_id,
                            args_fingerprint=ip.args_fingerprint,
                        )
                        log.write(
                            op="won",
                            task=task.task_id,
                            interrupt_id=ip.interrupt_id,
                            type="approve",
                            fingerprint=ip.args_fingerprint,
                        )
                    elif roll < 0.85:
                        args = dict(ip.action.args) if ip.action is not None else {}
                        args["replicas"] = rng.randint(10, 20)
                        await m.edit(
                            task.task_id,
                            args,
                            actor=name,
                            interrupt_id=ip.interrupt_id,
                            args_fingerprint=ip.args_fingerprint,
                        )
                        log.write(
                            op="won",
                            task=task.task_id,
                            interrupt_id=ip.interrupt_id,
                            type="edit",
                            fingerprint=fingerprint(args),
                        )
                    else:
                        await m.reject(task.task_id, actor=name, message="soak says no", interrupt_id=ip.interrupt_id)
                        log.write(op="won", task=task.task_id, interrupt_id=ip.interrupt_id, type="reject")
                except AlreadyDecidedError as exc:
                    log.write(op="lost", task=task.task_id, interrupt_id=ip.interrupt_id, to=exc.decided_by)
                except ConflictError:
                    log.write(op="conflict", task=task.task_id, interrupt_id=ip.interrupt_id)
                except (HITLError, OSError, ConnectionError, TimeoutError) as exc:
                    log.write(op="error", task=task.task_id, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                    await asyncio.sleep(0.2)
            await asyncio.sleep(rng.uniform(0.0, 0.05))


async def _decide_by_cli(url: str, name: str, task_id: str, interrupt_id: str, roll: float, log: Log) -> None:
    """The real ``hitl`` command, as an operator's script would run it."""
    hitl = str(Path(sys.executable).parent / "hitl")
    if roll < 0.75:
        cmd = [hitl, "approve", task_id, "--as", name, "--store", url]
        what = "approve"
    else:
        cmd = [hitl, "reject", task_id, "--message", "soak cli says no", "--as", name, "--store", url]
        what = "reject"
    env = {k: v for k, v in os.environ.items() if k not in ("HITL_CONFIG",)}
    proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode == 0:
        # The CLI decides whatever the task waits on now; it asked once, so it is ``interrupt_id``.
        log.write(op="won", task=task_id, interrupt_id=interrupt_id, type=what, via="cli")
    elif proc.returncode == 4:
        log.write(op="lost", task=task_id, interrupt_id=interrupt_id, via="cli")
    else:
        log.write(op="error", task=task_id, via="cli", code=proc.returncode, error=proc.stderr.strip()[-200:])
        await asyncio.sleep(0.2)


# -- followers ----------------------------------------------------------------------------------


async def run_follower(url: str, name: str, log: Log) -> None:
    """Follow the store from the last event this follower logged; log every event's seq."""
    after = max((r["seq"] for r in log.records() if r.get("op") == "event"), default=0)
    m = HITLStateMachine(url, load_entrypoints=False)
    store = await m._ready()
    try:
        while not log.stopping():
            try:
                async for event in store.follow(after):
                    log.write(op="event", seq=event.seq, task=event.task_id, version=event.version)
                    after = event.seq
                    if log.stopping():
                        break
            except (HITLError, OSError, ConnectionError) as exc:
                log.write(op="error", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                await asyncio.sleep(0.3)
    finally:
        await m.close()


async def run_sweeper(url: str, name: str, config: str, log: Log) -> None:
    """A process whose only job is the deadline sweeper, on a clock the harness jumps.

    The machine's and the sweeper's clocks (``now_us`` as they imported it) read real time plus
    the offset in ``<log>.clock``; the events this process commits carry that time too, as they
    would on a host whose clock jumped.
    """
    import hitl_core.machine as machine_module
    import hitl_core.policies.deadlines as deadlines_module
    from hitl_core.canonical import now_us as real_now_us

    clock = log.path.with_suffix(".clock")
    offset_us = 0

    def skewed_now_us() -> int:
        return real_now_us() + offset_us

    machine_module.now_us = skewed_now_us  # type: ignore[assignment]
    deadlines_module.now_us = skewed_now_us  # type: ignore[assignment]
    async with HITLStateMachine(url, load_entrypoints=False, config=config):
        while not log.stopping():
            try:
                wanted = int(float(clock.read_text() or 0) * 1_000_000)
            except (OSError, ValueError):
                wanted = 0
            if wanted != offset_us:
                offset_us = wanted
                log.write(op="clock", offset_s=offset_us / 1e6)
            await asyncio.sleep(0.1)


def _slow_follower_start(machine: HITLStateMachine, delay: float) -> None:
    """Fault: this process's store answers ``last_seq()`` late, as a CPU-starved process would.

    That is where the follower takes its starting point; a late answer widens the window in
    which a decision committed meanwhile must still reach every waiter (the lost wake-up fixed
    in ``_ensure_follower``).
    """
    store = machine.store
    original = store.last_seq

    async def late_last_seq() -> int:
        await asyncio.sleep(delay)
        return await original()

    store.last_seq = late_last_seq  # type: ignore[method-assign]


def main() -> None:
    role, url, name, *rest = sys.argv[1:]
    if role == "sweeper":
        asyncio.run(run_sweeper(url, name, rest[0], Log(rest[1], role)))
        return
    if role == "follower":
        asyncio.run(run_follower(url, name, Log(rest[0], role)))
        return
    kind, log_path = rest
    log = Log(log_path, role)
    if role == "agent" and kind == "langgraph":
        asyncio.run(run_langgraph_agent(url, name, log))
    elif role == "agent":

        async def agent() -> None:
            async with HITLStateMachine(url, load_entrypoints=False, agent=name) as m:
                slow = float(os.environ.get("HITL_SOAK_SLOW_START", "0"))
                if slow:
                    _slow_follower_start(m, slow)
                cls = DecoratedAgent if kind == "decorator" else Agent
                await cls(m, name, kind, log).run()

        asyncio.run(agent())
    elif role == "decider":
        asyncio.run(run_decider(url, name, kind, log))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
