"""Soak and fault injection: agents, deciders and followers for a bounded time while faults strike at random.

    python benchmarks/soak.py [--store sqlite|postgresql|both] [--minutes 2 | --seconds 60]
                              [--agents 6] [--deciders 3] [--followers 2] [--seed N] [--json FILE]

The agents (soak_worker.py) mix the plain API, the ``@requires_approval`` decorator and a
LangGraph graph through its adapter; the deciders mix the machine API and the real ``hitl``
command; the followers follow the store from where they left off. Every process logs each
operation it had acknowledged. Meanwhile the injector, every few seconds, does one of:

* ``kill``: SIGKILL an agent, a decider or a follower (the harness starts it again; half the
  restarted agents come back slow to take their follower's starting point, as a CPU-starved
  process is: the window of the lost wake-up);
* ``pg-crash``: ``pg_ctl stop -m immediate``, then start the server again (PostgreSQL);
* ``pg-stall``: SIGSTOP every server process for a while, then SIGCONT (PostgreSQL);
* ``lock-stall``: another process holds SQLite's write lock for a while (SQLite);
* ``disk-full``: fill the small file system the SQLite store lives on, then free it (SQLite,
  when the harness may mount a tmpfs: it runs as root);
* ``clock-jump``: move one deadline sweeper's clock by ±1 or ±10 minutes for a while (the two
  sweepers settle the short deadlines of low requests, racing each other and the deciders);

Then it stops the faults, lets every waiting task be decided and every follower catch up, stops
everything, and the checker holds the store to the logs (see ``check``). It prints a one-screen
report and exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "postgres"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from soak_worker import read_log  # noqa: E402

from hitl_core import HITLStateMachine  # noqa: E402
from hitl_core.models import Decision, InterruptPoint, TaskState  # noqa: E402

WORKER = ROOT / "benchmarks" / "soak_worker.py"
AGENT_KINDS = ["api", "decorator", "langgraph"]
DECIDER_KINDS = ["api", "cli"]
#: How long a living, waiting agent may take to notice a decision, beyond any fault in between.
#: Generous: the harness runs beside the whole test suite on a 2-core machine.
WAKE_ALLOWANCE_S = 5.0
#: Deadline sweepers, each on its own jumping clock: two, so that they also race each other.
SWEEPERS = 2
CLOCK_JUMPS_S = [-600.0, -60.0, 60.0, 600.0]


@dataclass
class Proc:
    role: str
    name: str
    kind: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def argv(self, url: str) -> list[str]:
        if self.role == "sweeper":
            config = self.log.parent / "sweeper.toml"
            return [sys.executable, str(WORKER), "sweeper", url, self.name, str(config), str(self.log)]
        if self.role == "follower":
            return [sys.executable, str(WORKER), "follower", url, self.name, str(self.log)]
        return [sys.executable, str(WORKER), self.role, url, self.name, self.kind, str(self.log)]


@dataclass
class Fault:
    kind: str
    target: str
    start: float
    end: float = 0.0


@dataclass
class Run:
    backend: str
    url: str
    workdir: Path
    seconds: float
    procs: list[Proc] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    cluster: Any = None
    mount: Path | None = None
    drained_in: float = 0.0


# -- set-up -------------------------------------------------------------------------------------


def _mount_tmpfs(path: Path, size_mb: int) -> bool:
    """A small file system of our own for the disk-full fault; needs root (as here and in CI)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "hitl-soak", str(path)], capture_output=True, text=True
    )
    return result.returncode == 0


def setup(backend: str, seconds: float, workdir: Path) -> Run:
    if backend == "sqlite":
        storedir = workdir / "store"
        mounted = _mount_tmpfs(storedir, 256)
        if not mounted:
            storedir.mkdir(parents=True, exist_ok=True)
        run = Run(backend, f"sqlite:///{storedir / 'hitl.db'}", workdir, seconds)
        run.mount = storedir if mounted else None
        if not mounted:
            run.unavailable.append("disk-full (no tmpfs: not root, or mount refused)")
        return run
    from pg_cluster import LocalCluster

    cluster = LocalCluster(durable=False, max_connections=200).start()
    db = cluster.create_database("soak")
    run = Run(backend, db, workdir, seconds)
    run.cluster = cluster
    return run


def start(proc: Proc, url: str, slow_start: float = 0.0) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    env.pop("HITL_CONFIG", None)
    env["HITL_SOAK_MAX_SECONDS"] = "3600"
    env["HITL_SOAK_SLOW_START"] = str(slow_start)
    err = proc.log.with_suffix(".stderr").open("ab")
    proc.popen = subprocess.Popen(proc.argv(url), stdout=subprocess.DEVNULL, stderr=err, env=env)
    err.close()


# -- faults -------------------------------------------------------------------------------------


def _pg_pids(run: Run) -> list[int]:
    pidfile = run.cluster.data / "postmaster.pid"
    try:
        postmaster = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def inject(run: Run, rng: random.Random) -> Fault:
    """Strike once; returns the fault with its end time (faults last at most a few seconds)."""
    kinds = ["kill", "kill", "kill", "clock-jump"]
    if run.backend == "postgresql":
        kinds += ["pg-crash", "pg-stall"]
    else:
        kinds += ["lock-stall"]
        if run.mount is not None:
            kinds += ["disk-full"]
    kind = rng.choice(kinds)
    now = time.time()
    if kind == "kill":
        proc = rng.choice([p for p in run.procs if p.popen is not None])
        assert proc.popen is not None
        proc.popen.kill()
        proc.popen.wait()
        proc.kills += 1
        time.sleep(rng.uniform(0.2, 1.5))
        # Half the restarted agents come back CPU-starved: their follower takes its starting
        # point late (see soak_worker._slow_follower_start) while their lanes already wait.
        slow = 0.3 if proc.role == "agent" and proc.kind == "api" and rng.random() < 0.5 else 0.0
        start(proc, run.url, slow_start=slow)
        return Fault(kind + (" (slow restart)" if slow else ""), proc.name, now, time.time())
    if kind == "clock-jump":
        sweeper = rng.choice([p for p in run.procs if p.role == "sweeper"])
        jump = rng.choice(CLOCK_JUMPS_S)
        sweeper.log.with_suffix(".clock").write_text(str(jump))
        time.sleep(rng.uniform(1.0, 3.0))
        sweeper.log.with_suffix(".clock").write_text("0")
        return Fault(f"clock-jump {jump:+.0f}s", sweeper.name, now, time.time())
    if kind == "pg-crash":
        run.cluster.stop(mode="immediate")
        time.sleep(rng.uniform(0.5, 2.0))
        run.cluster._pg_ctl("start")
        return Fault(kind, "postgresql", now, time.time())
    if kind == "pg-stall":
        pids = _pg_pids(run)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        time.sleep(rng.uniform(0.5, 3.0))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        return Fault(kind, f"{len(pids)} server processes", now, time.time())
    if kind == "lock-stall":
        path = run.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(rng.uniform(0.5, 3.0))
        conn.execute("COMMIT")
        conn.close()
        return Fault(kind, "write lock", now, time.time())
    # disk-full: take every free byte of the store's file system, hold, give it back.
    assert run.mount is not None
    filler = run.mount / "filler"
    try:
        with filler.open("wb") as f:
            chunk = b"\0" * (1 << 20)
            while True:
                f.write(chunk)
                f.flush()
    except OSError:
        pass
    time.sleep(rng.uniform(0.5, 2.5))
    filler.unlink(missing_ok=True)
    return Fault(kind, str(run.mount), now, time.time())


# -- the run ------------------------------------------------------------------------------------


def execute(run: Run, agents: int, deciders: int, followers: int, seed: int) -> None:
    rng = random.Random(seed)
    logs = run.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(agents):
        kind = AGENT_KINDS[i % len(AGENT_KINDS)]
        run.procs.append(Proc("agent", f"agent{i}-{kind}", kind, logs / f"agent{i}.jsonl"))
    for i in range(deciders):
        kind = DECIDER_KINDS[i % len(DECIDER_KINDS)]
        run.procs.append(Proc("decider", f"decider{i}-{kind}", kind, logs / f"decider{i}.jsonl"))
    for i in range(followers):
        run.procs.append(Proc("follower", f"follower{i}", "", logs / f"follower{i}.jsonl"))
    (logs / "sweeper.toml").write_text("[deadlines]\nsweep_interval = 0.2\nwarn_before = 0\n")
    for i in range(SWEEPERS):
        run.procs.append(Proc("sweeper", f"sweeper{i}", "", logs / f"sweeper{i}.jsonl"))
    asyncio.run(_create_schema(run.url))
    for proc in run.procs:
        start(proc, run.url)
    began = time.time()
    while time.time() - began < run.seconds:
        time.sleep(rng.uniform(1.5, 4.0))
        if time.time() - began >= run.seconds:
            break
        run.faults.append(inject(run, rng))
        for proc in run.procs:  # a worker that died on its own is a finding; start it again
            if proc.popen is not None and proc.popen.poll() is not None:
                start(proc, run.url)
    drain(run, logs, timeout=max(90.0, run.seconds))


async def _create_schema(url: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False):
        pass


def drain(run: Run, logs: Path, timeout: float) -> None:
    """Stop the agents (each finishes its task), then the deciders, then — caught up — the followers."""
    deadline = time.time() + timeout
    for role in ("agent", "decider", "sweeper"):
        (logs / f"STOP-{role}").touch()
        while time.time() < deadline:
            procs = [p for p in run.procs if p.role == role and p.popen is not None]
            if all(p.popen.poll() is not None for p in procs):  # type: ignore[union-attr]
                break
            time.sleep(0.2)
    last = asyncio.run(_last_seq(run.url))
    while time.time() < deadline:
        seen = [
            max((r["seq"] for r in read_log(p.log) if r.get("op") == "event"), default=0)
            for p in run.procs
            if p.role == "follower"
        ]
        if all(s >= last for s in seen):
            break
        time.sleep(0.2)
    (logs / "STOP-follower").touch()
    for proc in run.procs:
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.terminate()
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
    run.drained_in = timeout - (deadline - time.time())


async def _last_seq(url: str) -> int:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        return await m.store.last_seq()


# -- the checker --------------------------------------------------------------------------------


@dataclass
class Report:
    backend: str
    seconds: float
    agents: int
    deciders: int
    followers: int
    faults: Counter[str] = field(default_factory=Counter)
    unavailable: list[str] = field(default_factory=list)
    events: int = 0
    tasks: int = 0
    expiries: int = 0
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong_args: list[str] = field(default_factory=list)
    late_wakeups: list[str] = field(default_factory=list)
    bad_expiries: list[str] = field(default_factory=list)
    follower_problems: list[str] = field(default_factory=list)
    chain: str = ""
    unfinished: list[str] = field(default_factory=list)
    latency_calm: list[float] = field(default_factory=list)
    latency_faulty: list[float] = field(default_factory=list)
    wake_calm: list[float] = field(default_factory=list)
    wake_faulty: list[float] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        out = []
        for name in (
            "lost",
            "duplicated",
            "wrong_args",
            "bad_expiries",
            "late_wakeups",
            "follower_problems",
            "unfinished",
        ):
            out += [f"{name}: {item}" for item in getattr(self, name)]
        if self.chain != "ok":
            out.append(f"chain: {self.chain}")
        if self.acknowledged == 0:
            out.append("nothing was acknowledged: the soak did no work")
        return out


def _overlap(faults: list[Fault], start: float, end: float) -> float:
    return sum(max(0.0, min(f.end, end) - max(f.start, start)) for f in faults)


async def _read_store(url: str) -> tuple[list[Any], dict[str, Any], Any]:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        events = await m.store.events(0, None)
        tasks = {t.task_id: t for t in await m.store.query()}
        report = await m.verify()
    return events, tasks, report


def check(run: Run, agents: int, deciders: int, followers: int) -> Report:
    """Hold the store to every acknowledged operation in the logs.

    * every acknowledged transition (task, version, action) is in the event log — none lost;
    * no interrupt was decided twice: one final decision event per (task, interrupt), and one
      winning decider per (task, interrupt) in the deciders' logs, matching the store's actor;
    * what an agent ran after an approval is exactly what was approved (the asked args'
      fingerprint, or the edited args');
    * every living, waiting agent woke within ``WAKE_ALLOWANCE_S`` of its decision's commit, plus
      any fault in between;
    * the hash chain verifies; every follower saw every event once and in order;
    * every task the agents asked was finished once the faults stopped.
    """
    rep = Report(run.backend, run.seconds, agents, deciders, followers, unavailable=run.unavailable)
    rep.faults = Counter(f.kind for f in run.faults)
    events, tasks, verify = asyncio.run(_read_store(run.url))
    rep.events, rep.tasks = len(events), len(tasks)
    rep.chain = "ok" if verify.ok else str(getattr(verify, "message", verify))
    by_key = {(e.task_id, e.version): e for e in events}
    decisions: dict[tuple[str, str], list[Any]] = defaultdict(list)
    asked_at: dict[tuple[str, str], float] = {}
    asked: dict[str, InterruptPoint] = {}
    for e in events:
        if e.action in ("approve", "reject"):
            decisions[(e.task_id, _decision_of(e).interrupt_id)].append(e)
        elif e.action in ("request_approval", "pause"):
            ip = _model(InterruptPoint, (e.data or {})["interrupt"])
            asked_at[(e.task_id, ip.interrupt_id)] = e.at / 1e6
            asked[e.task_id] = ip
    for key, evs in decisions.items():
        if len(evs) > 1:
            rep.duplicated.append(f"{key[0]} interrupt {key[1]} decided {len(evs)} times")
        d = _decision_of(evs[0])
        ip = asked.get(key[0])
        if d.type.value == "timeout":
            rep.expiries += 1
            if ip is None or ip.deadline is None:
                rep.bad_expiries.append(f"{key[0]}: expired by {d.actor.id}, but it had no deadline")

    winners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for proc in run.procs:
        records = read_log(proc.log)
        for r in records:
            if r.get("op") == "ack":
                rep.acknowledged += 1
                e = by_key.get((r["task"], r["version"]))
                if e is None or e.action != r["action"]:
                    rep.lost.append(f"{proc.name}: {r['action']} of {r['task']} v{r['version']}")
            elif r.get("op") == "won":
                rep.acknowledged += 1
                winners[(r["task"], r["interrupt_id"])].append(proc.name)
                evs = decisions.get((r["task"], r["interrupt_id"]), [])
                if not evs or evs[0].actor_id != proc.name:
                    got = evs[0].actor_id if evs else "nobody"
                    rep.lost.append(f"{proc.name}: its {r['type']} of {r['task']} (store says: {got})")
        if proc.role == "agent":
            _check_agent(rep, proc, records, tasks, decisions, asked_at, asked, run.faults)
        if proc.role == "follower":
            _check_follower(rep, proc, records, len(events))
    for key, names in winners.items():
        if len(names) > 1:
            rep.duplicated.append(f"{key[0]} interrupt {key[1]} won by {', '.join(names)}")
    return rep


def _model(cls: Any, value: Any) -> Any:
    """Event data read back from a store holds plain JSON; freshly written, the models themselves."""
    return cls.model_validate(value) if isinstance(value, dict) else value


def _decision_of(event: Any) -> Decision:
    return _model(Decision, (event.data or {})["decision"])


def _check_agent(
    rep: Report,
    proc: Proc,
    records: list[dict[str, Any]],
    tasks: dict[str, Any],
    decisions: dict[tuple[str, str], list[Any]],
    asked_at: dict[tuple[str, str], float],
    asked: dict[str, InterruptPoint],
    faults: list[Fault],
) -> None:
    from hitl_core.canonical import fingerprint

    waiting: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        op = r.get("op")
        if op == "waiting":
            waiting[(r["task"], r["interrupt_id"])] = r
        elif op == "woke":
            key = (r["task"], r["interrupt_id"])
            w = waiting.get(key)
            evs = decisions.get(key)
            if w is None or not evs or w["pid"] != r["pid"]:
                continue
            if _decision_of(evs[0]).type.value == "timeout":
                continue  # committed on a sweeper's jumping clock: its time says nothing here
            committed = evs[0].at / 1e6
            if committed < w["t"]:
                continue  # decided before this process began to wait: nothing to wake
            wake = r["t"] - committed
            fault_time = _overlap(faults, w["t"], r["t"])
            (rep.wake_faulty if fault_time else rep.wake_calm).append(wake)
            if wake > WAKE_ALLOWANCE_S + fault_time:
                rep.late_wakeups.append(
                    f"{r['task']} woke {wake:.2f}s after its decision ({fault_time:.1f}s of faults)"
                )
            if key in asked_at:
                (rep.latency_faulty if fault_time else rep.latency_calm).append(committed - asked_at[key])
        elif op in ("decided", "ran") and r.get("executed_fingerprint") is not None:
            task = tasks.get(r["task"])
            finals = [e for (tid, _), evs in decisions.items() if tid == r["task"] for e in evs]
            if task is None or not finals:
                rep.wrong_args.append(f"{r['task']}: ran, but the store has no decision for it")
                continue
            d = _decision_of(finals[-1])
            if not d.approved:
                rep.wrong_args.append(f"{r['task']}: ran after a {d.type.value} decision")
                continue
            ip = asked.get(r["task"])
            if d.edited_args is not None:
                allowed = fingerprint(d.edited_args)
            else:
                allowed = ip.args_fingerprint if ip is not None else None
            if r["executed_fingerprint"] != allowed:
                rep.wrong_args.append(f"{r['task']}: ran args {r['executed_fingerprint'][:12]}, approved {allowed}")
    if proc.kind == "api":
        begun = [r["task"] for r in records if r.get("op") == "begin"]
        for task_id in begun:
            task = tasks.get(task_id)
            if task is not None and task.state not in (TaskState.COMPLETED, TaskState.FAILED):
                rep.unfinished.append(f"{task_id} left {task.state.value}")


def _check_follower(rep: Report, proc: Proc, records: list[dict[str, Any]], last: int) -> None:
    seqs = [r["seq"] for r in records if r.get("op") == "event"]
    expected = 1
    for seq in seqs:
        if seq != expected:
            kind = "again" if seq < expected else f"after skipping {expected}..{seq - 1}"
            rep.follower_problems.append(f"{proc.name} saw event {seq} {kind}")
            break
        expected += 1
    if expected - 1 < last:
        rep.follower_problems.append(f"{proc.name} stopped at event {expected - 1} of {last}")


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f} ms"


def render(rep: Report) -> str:
    lines = [
        f"soak on {rep.backend}: {rep.seconds:.0f} s, {rep.agents} agents, {rep.deciders} deciders, "
        f"{rep.followers} followers (2-core machine)",
        "faults injected: " + (", ".join(f"{k} {v}" for k, v in sorted(rep.faults.items())) or "none"),
    ]
    if rep.unavailable:
        lines.append("faults not available here: " + "; ".join(rep.unavailable))
    lines += [
        f"tasks {rep.tasks}, events {rep.events}, acknowledged operations {rep.acknowledged}, "
        f"deadlines expired by the sweepers {rep.expiries}",
        f"lost {len(rep.lost)}, decided twice {len(rep.duplicated)}, ran unapproved args {len(rep.wrong_args)}, "
        f"late wake-ups {len(rep.late_wakeups)}, follower gaps/repeats {len(rep.follower_problems)}, "
        f"left unfinished {len(rep.unfinished)}, hash chain {rep.chain}",
        f"ask -> decision   p50/p99: calm {_pct(rep.latency_calm, 0.5)} / {_pct(rep.latency_calm, 0.99)}, "
        f"with faults {_pct(rep.latency_faulty, 0.5)} / {_pct(rep.latency_faulty, 0.99)}",
        f"decision -> agent p50/p99: calm {_pct(rep.wake_calm, 0.5)} / {_pct(rep.wake_calm, 0.99)}, "
        f"with faults {_pct(rep.wake_faulty, 0.5)} / {_pct(rep.wake_faulty, 0.99)}"
        + (f" (max {max(rep.wake_calm + rep.wake_faulty):.2f} s)" if rep.wake_calm or rep.wake_faulty else ""),
    ]
    problems = rep.violations
    lines.append("VIOLATIONS:" if problems else "no violation")
    lines += [f"  {p}" for p in problems[:20]]
    if len(problems) > 20:
        lines.append(f"  … and {len(problems) - 20} more")
    return "\n".join(lines)


def summary(rep: Report) -> dict[str, Any]:
    return {
        "backend": rep.backend,
        "seconds": rep.seconds,
        "agents": rep.agents,
        "deciders": rep.deciders,
        "followers": rep.followers,
        "faults": dict(rep.faults),
        "tasks": rep.tasks,
        "events": rep.events,
        "acknowledged": rep.acknowledged,
        "expiries": rep.expiries,
        "lost": len(rep.lost),
        "duplicated": len(rep.duplicated),
        "violations": rep.violations,
        "wake_p50_ms": statistics.median(rep.wake_calm + rep.wake_faulty) * 1000
        if rep.wake_calm or rep.wake_faulty
        else None,
    }


def soak(backend: str, seconds: float, agents: int, deciders: int, followers: int, seed: int) -> Report:
    workdir = Path(tempfile.mkdtemp(prefix=f"hitl-soak-{backend}-"))
    run = setup(backend, seconds, workdir)
    try:
        execute(run, agents, deciders, followers, seed)
        rep = check(run, agents, deciders, followers)
        if rep.violations:  # the logs are the evidence: keep them (the store too, for SQLite)
            kept = Path(tempfile.mkdtemp(prefix=f"hitl-soak-{backend}-evidence-"))
            shutil.copytree(workdir / "logs", kept / "logs")
            if run.backend == "sqlite":
                for f in (workdir / "store").glob("hitl.db*"):
                    shutil.copy2(f, kept)
            print(f"evidence kept in {kept}", flush=True)
        return rep
    finally:
        for proc in run.procs:
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.kill()
        if run.cluster is not None:
            run.cluster.destroy()
        if run.mount is not None:
            subprocess.run(["umount", "-l", str(run.mount)], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=None)
    length.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--deciders", type=int, default=3)
    parser.add_argument("--followers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 2)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    backends = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    failed = False
    results = []
    for backend in backends:
        rep = soak(backend, seconds, args.agents, args.deciders, args.followers, seed)
        print(render(rep), flush=True)
        print(f"(seed {seed})\n", flush=True)
        results.append(summary(rep))
        failed |= bool(rep.violations)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
