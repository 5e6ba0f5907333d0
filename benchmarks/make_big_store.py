"""Generate a large, realistic hitl SQLite store quickly: ``python benchmarks/make_big_store.py PATH``.

What it writes: a fleet's month (``--days``) of tasks, each ``start → request_approval →``
(a person's approve/reject after a lognormal time by severity | a policy's decision at once | a
timeout after escalations) ``→ resume → complete``; tasks whose next step falls after the end
stay where they are (so some wait, as in a real store). One operator ("speedy") approves in about
a second: the rubber stamp ``hitl stats`` should flag.

How it is fast: the events are generated in memory, sorted by time, and written with two
``executemany`` calls inside one transaction straight into the store's schema (created by opening
a real ``SqliteStore`` first). The hash chain is valid: each link is computed as the store computes
it (canonical JSON of the event's head with the data's canonical JSON spliced in, the same
splice ``hitl_core.stores.sql.chain_hash`` does), so ``hitl audit verify`` passes on it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import sqlite3
import sys
import time
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


def _plan(rng: random.Random, n_tasks: int, start: int, end: int) -> list[tuple[int, int, str, dict[str, Any]]]:
    """Every event as (at, tiebreak, task index, description); sorted by the caller."""
    out: list[tuple[int, int, str, dict[str, Any]]] = []
    span = end - start
    k = 0
    for i in range(n_tasks):
        task_id = f"task-{i:07d}"
        t = start + int(rng.random() * span)
        sev, median = _severity(rng)
        name, template = ACTIONS[i % len(ACTIONS)]
        args = {key: (v.format(n=i) if isinstance(v, str) else v) for key, v in template.items()}
        steps: list[tuple[int, str, dict[str, Any]]] = [(t, "start", {})]
        t += int(rng.uniform(0.5, 20) * US)
        steps.append((t, "request_approval", {"severity": sev, "action": name, "args": args}))
        r = rng.random()
        if r < 0.15:
            steps.append((t + 2000, "policy", {"outcome": "approve" if rng.random() < 0.8 else "reject"}))
            t += 2000
        elif r < 0.20:
            deadline_wait = 900 * US
            steps.append((t + deadline_wait, "escalate", {"level": 1}))
            t += 2 * deadline_wait
            steps.append((t, "timeout", {"outcome": "reject"}))
        else:
            operator = OPERATORS[min(int(rng.random() * len(OPERATORS)), len(OPERATORS) - 1)]
            took = rng.uniform(0.4, 1.5) if operator == "speedy" else median * math.exp(rng.gauss(0, 0.8))
            t += int(took * US)
            steps.append((t, "person", {"actor": operator, "approve": rng.random() < 0.85}))
        t += int(rng.uniform(0.05, 2) * US)
        steps.append((t, "resume", {}))
        t += int(rng.uniform(1, 60) * US)
        steps.append((t, "complete", {}))
        for at, kind, extra in steps:
            if at > end:
                break
            out.append((at, k, task_id, {"kind": kind, "agent": AGENTS[i % len(AGENTS)], **extra}))
            k += 1
    return out


def generate(path: Path, events: int = 1_000_000, days: float = 30.0, end: int | None = None, seed: int = 1) -> dict:
    """Write a new store at ``path`` holding about ``events`` events over ``days`` up to ``end``."""
    if path.exists():
        raise SystemExit(f"{path} exists: pick a new path (this writes a fresh store)")
    started = time.perf_counter()
    end = now_us() if end is None else end
    start = end - int(days * 86400 * US)
    rng = random.Random(seed)
    plan = _plan(rng, max(events // 5, 1), start, end)
    plan.sort(key=lambda e: (e[0], e[1]))
    plan = plan[:events]

    # A real store makes the schema (and its pragmas); then we write straight into it.
    store = SqliteStore(f"sqlite:///{path}")

    async def make_schema() -> None:
        await store.open()
        await store.close()

    asyncio.run(make_schema())

    # Templates dumped once from the real models (so every row validates), then filled per event.
    interrupt_template = InterruptPoint(reason="x", interrupt_id="0" * 32).model_dump(mode="json")
    decision_template = Decision(type="approve", actor=Actor(id="x")).model_dump(mode="json")
    tasks: dict[str, dict[str, Any]] = {}
    rows: list[tuple[Any, ...]] = []
    prev = GENESIS_HASH
    for seq, (at, _, task_id, d) in enumerate(plan, start=1):
        task = tasks.get(task_id)
        kind = d["kind"]
        actor_id: str | None
        actor_source: str | None
        data: dict[str, Any]
        if kind == "start":
            task = tasks[task_id] = {
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
    task_rows = [(t["task_id"], t["state"], t["version"], t["last_seq"], canonical_json(t)) for t in tasks.values()]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO events (seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, "
        "data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO tasks (task_id, state, version, last_seq, snapshot) VALUES (?, ?, ?, ?, ?)", task_rows
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    waiting = sum(1 for t in tasks.values() if t["state"] == "awaiting_approval")
    return {
        "path": str(path),
        "events": len(rows),
        "tasks": len(tasks),
        "waiting": waiting,
        "days": days,
        "seconds": time.perf_counter() - started,
        "bytes": path.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    info = generate(args.path, args.events, args.days, seed=args.seed)
    print(
        f"wrote {info['events']:,} events of {info['tasks']:,} tasks ({info['waiting']} waiting) over "
        f"{info['days']:g} days to {info['path']} ({info['bytes'] / 1e6:.0f} MB) in {info['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
