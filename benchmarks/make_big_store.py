"""Generate a large, realistic hitl SQLite store quickly: ``python benchmarks/make_big_store.py PATH``.

What it writes: a fleet's month (``--days``) of tasks, each ``start → request_approval →``
(a person's approve/reject after a lognormal time by severity | a policy's decision at once | a
timeout after escalations) ``→ resume → complete``; tasks whose next step falls after the end
stay where they are (so some wait, as in a real store). One operator ("speedy") approves in about
a second: the rubber stamp ``hitl stats`` should flag.

Size: ``--events N`` writes the first N events of N / 5 tasks (the stats benchmark's store);
``--tasks N`` writes all of N tasks' events, about five each (issue 14's 1,000,000-task,
5,000,000-event store).

How it is fast and small: the tasks' start times are drawn and sorted first (8 bytes a task),
and a task's later steps wait in a heap until the clock reaches them, so only the tasks in
flight are in memory (a few hundred), whatever the store's size. Rows go straight into the
store's schema (created by opening a real ``SqliteStore`` first) in chunks of 50,000, in one
transaction without a journal, into a ``.partial`` file renamed when complete: a build that dies
leaves no file that looks finished. The hash chain is valid: each link is computed as the store
computes it (canonical JSON of the event's head with the data's canonical JSON spliced in, the
same splice ``hitl_core.stores.sql.chain_hash`` does), so ``hitl audit verify`` passes on it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hitl_core.canonical import GENESIS_HASH, canonical_json, fingerprint, now_us
from hitl_core.models import Actor, Decision, InterruptPoint
from hitl_core.stores.sqlite import SqliteStore

US = 1_000_000
SEVERITIES = (("low", 0.40, 30), ("medium", 0.35, 90), ("high", 0.20, 240), ("critical", 0.05, 600))
OPERATORS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "speedy")
AGENTS = ("billing-bot", "deploy-bot", "support-bot", "ops-bot", "sales-bot", "infra-bot")
ACTIONS = (
    ("send_email", {"to": "ops@acme.example", "subject": "Quote #{n}", "body": "Hello, please find attached…"}),
    ("deploy", {"service": "api", "version": "1.{n}.0", "env": "production"}),
    ("refund", {"order": "A-{n}", "amount": 129.5, "currency": "EUR"}),
    ("delete_rows", {"table": "sessions", "where": "created < now() - interval '{n} days'"}),
)
_head = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


def _iso_z(us: int) -> str:
    """A datetime field as pydantic writes it in a model's JSON (UTC as Z)."""
    return _iso(us).replace("+00:00", "Z")


def _severity(rng: random.Random) -> tuple[str, float]:
    r = rng.random()
    for name, share, median in SEVERITIES:
        if r < share:
            return name, median
        r -= share
    return SEVERITIES[-1][0], SEVERITIES[-1][2]


def _task_steps(rng: random.Random, i: int, t: int) -> list[tuple[int, str, dict[str, Any]]]:
    """One task's whole life from its start at ``t``, as (at, kind, description)."""
    sev, median = _severity(rng)
    name, template = ACTIONS[i % len(ACTIONS)]
    args = {key: (v.format(n=i) if isinstance(v, str) else v) for key, v in template.items()}
    agent = AGENTS[i % len(AGENTS)]
    steps: list[tuple[int, str, dict[str, Any]]] = [(t, "start", {"agent": agent})]
    t += int(rng.uniform(0.5, 20) * US)
    steps.append((t, "request_approval", {"agent": agent, "severity": sev, "action": name, "args": args}))
    r = rng.random()
    if r < 0.15:
        t += 2000
        steps.append((t, "policy", {"outcome": "approve" if rng.random() < 0.8 else "reject"}))
    elif r < 0.20:
        deadline_wait = 900 * US
        steps.append((t + deadline_wait, "escalate", {}))
        t += 2 * deadline_wait
        steps.append((t, "timeout", {"outcome": "reject"}))
    else:
        operator = OPERATORS[min(int(rng.random() * len(OPERATORS)), len(OPERATORS) - 1)]
        took = rng.uniform(0.4, 1.5) if operator == "speedy" else median * math.exp(rng.gauss(0, 0.8))
        t += int(took * US)
        steps.append((t, "person", {"actor": operator, "approve": rng.random() < 0.85}))
    t += int(rng.uniform(0.05, 2) * US)
    steps.append((t, "resume", {"agent": agent}))
    t += int(rng.uniform(1, 60) * US)
    steps.append((t, "complete", {}))
    return steps


Step = tuple[int, int, str, str, dict[str, Any], bool]  # (at, tiebreak, task id, kind, description, last)


def _timeline(rng: random.Random, n_tasks: int, start: int, end: int) -> Iterator[Step]:
    """Every event up to ``end`` in time order, holding only the tasks in flight."""
    span = end - start
    starts = sorted(start + int(rng.random() * span) for _ in range(n_tasks))
    pending: list[Step] = []
    k = 0
    for i, t0 in enumerate(starts):
        while pending and pending[0][0] <= t0:  # ties: the earlier-pushed step first
            yield heapq.heappop(pending)
        steps = [s for s in _task_steps(rng, i, t0) if s[0] <= end]
        task_id = f"task-{i:07d}"
        for j, (at, kind, d) in enumerate(steps):
            heapq.heappush(pending, (at, k, task_id, kind, d, j == len(steps) - 1))
            k += 1
    while pending:
        yield heapq.heappop(pending)


CHUNK = 50_000
EVENT_INSERT = (
    "INSERT INTO events (seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, "
    "data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
TASK_INSERT = "INSERT INTO tasks (task_id, state, version, last_seq, snapshot) VALUES (?, ?, ?, ?, ?)"


def generate(
    path: Path,
    events: int | None = 1_000_000,
    days: float = 30.0,
    end: int | None = None,
    seed: int = 1,
    tasks: int | None = None,
    progress: bool = False,
) -> dict:
    """Write a new store at ``path``: the first ``events`` events of ``events / 5`` tasks, or
    (``tasks`` given) every event of that many tasks (``events`` then caps them, if given), over
    ``days`` up to ``end``."""
    if path.exists():
        raise SystemExit(f"{path} exists: pick a new path (this writes a fresh store)")
    if tasks is None and events is None:
        raise ValueError("give events or tasks")
    started = time.perf_counter()
    end = now_us() if end is None else end
    start = end - int(days * 86400 * US)
    rng = random.Random(seed)
    n_tasks = tasks if tasks is not None else max(int(events or 0) // 5, 1)
    cap = events if events is not None else None
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, partial.with_name(partial.name + "-wal"), partial.with_name(partial.name + "-shm")):
        leftover.unlink(missing_ok=True)

    # A real store makes the schema (and its pragmas); then we write straight into it.
    store = SqliteStore(f"sqlite:///{partial}")

    async def make_schema() -> None:
        await store.open()
        await store.close()

    asyncio.run(make_schema())
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")  # a failed build is thrown away, never repaired
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB: the (task_id, version) index is filled at random
    # Secondary indexes are built once at the end, faster than kept up to date row by row.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('events', 'tasks')"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("BEGIN")

    # Templates dumped once from the real models (so every row validates), then filled per event.
    interrupt_template = InterruptPoint(reason="x", interrupt_id="0" * 32).model_dump(mode="json")
    decision_template = Decision(type="approve", actor=Actor(id="x")).model_dump(mode="json")
    live: dict[str, dict[str, Any]] = {}  # the tasks in flight
    rows: list[tuple[Any, ...]] = []
    task_rows: list[tuple[Any, ...]] = []
    counts = {"tasks": 0, "waiting": 0}
    prev = GENESIS_HASH
    seq = 0

    def finish(task: dict[str, Any]) -> None:
        task_rows.append((task["task_id"], task["state"], task["version"], task["last_seq"], canonical_json(task)))
        counts["tasks"] += 1
        counts["waiting"] += task["state"] == "awaiting_approval"

    def flush() -> None:
        conn.executemany(EVENT_INSERT, rows)
        conn.executemany(TASK_INSERT, task_rows)
        rows.clear()
        task_rows.clear()
        if progress:
            rate = seq / (time.perf_counter() - started)
            print(f"  … {seq:,} events, {counts['tasks']:,} tasks written ({rate:,.0f} events/s)", flush=True)

    for at, _, task_id, kind, d, last in _timeline(rng, n_tasks, start, end):
        if cap is not None and seq >= cap:
            break
        seq += 1
        task = live.get(task_id)
        actor_id: str | None
        actor_source: str | None
        data: dict[str, Any]
        if kind == "start":
            task = live[task_id] = {
                "task_id": task_id,
                "state": "running",
                "version": 0,
                "created_at": at,
                "updated_at": at,
                "current_step": "plan",
                "metadata": None,
                "interrupt": None,
                "decision": None,
                "approvals": [],
                "error": None,
                "result": None,
                "agent": d["agent"],
                "framework": "langgraph",
                "run_id": None,
                "parent_id": None,
            }
            action, from_state, to_state = "start", None, "running"
            actor_id, actor_source, data = (
                d["agent"],
                "agent",
                {"agent": d["agent"], "framework": "langgraph", "step": "plan"},
            )
        else:
            assert task is not None
            from_state = task["state"]
            if kind == "request_approval":
                interrupt = dict(interrupt_template)
                interrupt.update(
                    reason=f"{d['action']} for {task_id}: please check the arguments",
                    severity=d["severity"],
                    created_at=_iso_z(at),
                    interrupt_id=hashlib.md5(task_id.encode()).hexdigest(),
                    action={"name": d["action"], "args": d["args"]},
                    args_fingerprint=fingerprint(d["args"]),
                    requested_by=d["agent"],
                )
                task["interrupt"] = interrupt
                action, to_state = "request_approval", "awaiting_approval"
                actor_id, actor_source, data = d["agent"], "agent", {"interrupt": interrupt}
            elif kind == "escalate":
                action, to_state = "escalate", "awaiting_approval"
                actor_id, actor_source = "escalation:level-1", "policy"
                data = {
                    "level": 1,
                    "assignees": ["oncall"],
                    "interrupt_id": task["interrupt"]["interrupt_id"],
                    "deadline": _iso(at + 900 * US),
                }
                task["interrupt"] = {**task["interrupt"], "assignees": ["oncall"], "deadline": _iso_z(at + 900 * US)}
            elif kind in ("policy", "timeout", "person"):
                interrupt = task["interrupt"]
                if kind == "person":
                    dtype = "approve" if d["approve"] else "reject"
                    who = Actor(id=d["actor"], source="console")
                    outcome = None
                    message = None if d["approve"] else "not now"
                else:
                    dtype = kind
                    who = Actor(id="policy:demo-rule" if kind == "policy" else "hitl:timeout", source=kind)
                    outcome = d["outcome"]
                    message = "no decision before the deadline" if kind == "timeout" else None
                decision = dict(decision_template)
                decision.update(
                    type=dtype,
                    actor={"id": who.id, "source": who.source},
                    outcome=outcome,
                    message=message,
                    decided_at=_iso_z(at),
                    interrupt_id=interrupt["interrupt_id"],
                    args_fingerprint=interrupt["args_fingerprint"],
                )
                approved = decision["outcome"] == "approve" if outcome else dtype != "reject"
                action, to_state = ("approve", "approved") if approved else ("reject", "rejected")
                actor_id, actor_source, data = who.id, who.source, {"decision": decision}
                task["decision"] = decision
                task["approvals"] = [decision] if approved else []
            elif kind == "resume":
                action, to_state = "resume", "running"
                # as the machine does: the interrupt and its decision go into the event, the
                # interrupt leaves the snapshot
                data = {"interrupt": task["interrupt"], "decision": task["decision"], "step": "act"}
                actor_id, actor_source = d["agent"], "agent"
                task["current_step"] = "act"
                task["interrupt"] = None
            else:
                action, to_state = "complete", "completed"
                actor_id, actor_source, data = None, None, {"result": {"ok": True}}
                task["result"] = {"ok": True}
        task["state"] = to_state
        task["version"] += 1
        task["updated_at"] = at
        task["last_seq"] = seq
        data_json = canonical_json(data)
        head = _head([seq, task_id, task["version"], action, from_state, to_state, actor_id, actor_source, at])
        digest = hashlib.sha256(f"{prev}\n{head[:-1]},{data_json}]".encode()).hexdigest()
        rows.append(
            (
                seq,
                task_id,
                task["version"],
                action,
                from_state,
                to_state,
                actor_id,
                actor_source,
                at,
                data_json,
                prev,
                digest,
            )
        )
        prev = digest
        if last:
            finish(live.pop(task_id))
        if len(rows) >= CHUNK:
            flush()
    for task in live.values():  # cut off by ``events``: they stay where they were
        finish(task)
    flush()
    if progress:
        print("  … building the indexes", flush=True)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")  # as the store leaves its files
    conn.close()
    partial.rename(path)
    return {
        "path": str(path),
        "events": seq,
        "tasks": counts["tasks"],
        "waiting": counts["waiting"],
        "days": days,
        "seconds": time.perf_counter() - started,
        "bytes": path.stat().st_size,
    }


#: Bump when what ``generate`` writes changes: a cached store of an older build is made again.
BUILD = 2


def cached(*, events: int | None = None, tasks: int | None = None, days: float = 30.0) -> Path:
    """The benchmarks' store of this size, made once and reused by later runs.

    Kept under ``$HITL_BENCH_DIR`` (default: the system temp dir); the name carries the size and
    ``BUILD``. A build that dies leaves only a ``.partial`` file, made again next time.
    """
    base = Path(os.environ.get("HITL_BENCH_DIR", tempfile.gettempdir()))
    size = f"{tasks}-tasks" if tasks is not None else f"{events}-events"
    path = base / f"hitl-bench-{size}-{days:g}d-build{BUILD}.db"
    if path.exists():
        print(f"reusing {path} (delete it to make a fresh one)", flush=True)
        return path
    print(f"making {path} once (about 20,000 events a second; reused by later runs)", flush=True)
    info = generate(path, events, days, tasks=tasks, progress=True)
    print(
        f"made {path}: {info['events']:,} events of {info['tasks']:,} tasks ({info['waiting']} waiting) "
        f"in {info['seconds']:.0f} s ({info['bytes'] / 1e6:,.0f} MB)",
        flush=True,
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, help="the first N events of N / 5 tasks (default 1,000,000)")
    size.add_argument("--tasks", type=int, help="every event of N tasks (about 5 each)")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    events = args.events if args.events is not None or args.tasks is not None else 1_000_000
    info = generate(args.path, events, args.days, seed=args.seed, tasks=args.tasks, progress=True)
    print(
        f"wrote {info['events']:,} events of {info['tasks']:,} tasks ({info['waiting']} waiting) over "
        f"{info['days']:g} days to {info['path']} ({info['bytes'] / 1e6:.0f} MB) in {info['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
