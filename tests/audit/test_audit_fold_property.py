"""The fold (``hitl_core.records.fold``) and the machine's commit path must never drift apart.

Hypothesis drives random sequences of operations through the real ``HITLStateMachine`` — every
action, four eyes, edits, answers, escalations, timeouts, illegal moves that must be refused — on
each backend, then checks that every stored snapshot equals the fold of its task's events
(``verify``). A change to what a transition writes into the snapshot that the event does not
carry (or the fold does not read) fails here.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from escalating import escalate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hitl_core import HITLError, HITLStateMachine, TaskState

TASKS = ("a", "b", "c")
OPS = (
    "start",
    "create",
    "request",
    "pause",
    "approve",
    "reject",
    "edit",
    "respond",
    "resume",
    "complete",
    "fail",
    "escalate",
    "expire",
)
S = TaskState
#: What may follow each state: most steps pick one of these, so that runs get past "start" and reach
#: decisions; the rest pick any operation, which the machine must refuse without writing anything.
LEGAL: dict[TaskState | None, tuple[str, ...]] = {
    None: ("start", "create"),
    S.PENDING: ("start", "fail"),
    S.RUNNING: ("request", "request", "pause", "complete", "fail"),
    S.AWAITING_APPROVAL: ("approve", "approve", "reject", "edit", "respond", "escalate", "expire", "fail"),
    S.APPROVED: ("resume", "fail"),
    S.REJECTED: ("resume", "fail"),
    S.COMPLETED: (),
    S.FAILED: (),
}
#: (task, which operation: below 90 a legal one, else any; a variant of its arguments)
STEPS = st.lists(st.tuples(st.sampled_from(TASKS), st.integers(0, 99), st.integers(0, 3)), min_size=1, max_size=40)


async def _apply(m: HITLStateMachine, op: str, task: str, v: int) -> None:
    if op == "start":
        await m.start_task(
            task,
            metadata={"v": v} if v else None,
            step=f"s{v}" if v % 2 else None,
            agent="agent-3" if v == 3 else None,
            run_id="run-1" if v == 2 else None,
        )
    elif op == "create":
        await m.create_task(task, metadata={"c": v}, step="init", framework="fw", parent_id="p" if v else None)
    elif op == "request":
        await m.request_approval(
            task,
            f"may I {v}?",
            context={"k": v},
            args={"n": v} if v else None,
            options=["yes", "no"] if v == 2 else None,
            timeout=60 if v == 1 else None,
            step="ask" if v else None,
            required_approvals=2 if v == 3 else 1,
            response_schema={"type": "object"} if v == 2 else None,
        )
    elif op == "pause":
        await m.pause(task, "operator", "hold on")
    elif op == "approve":
        await m.approve(task, ("alice", "bob", "carol", "dave")[v], message="fine" if v else None)
    elif op == "reject":
        await m.reject(task, "carol", f"no {v}")
    elif op == "edit":
        await m.edit(task, {"n": 99 + v}, ("alice", "bob")[v % 2])
    elif op == "respond":
        await m.respond(task, {"answer": v}, "alice")
    elif op == "resume":
        await m.resume(task, step="after" if v else None)
    elif op == "complete":
        await m.complete(task, {"r": v} if v else None)
    elif op == "fail":
        await m.fail(task, f"boom {v}")
    elif op == "escalate":
        deadline = datetime.now(UTC) + timedelta(hours=v) if v else None
        await escalate(m, task, [f"boss-{v}"], deadline)
    elif op == "expire":
        await m.expire(task, force=True)


async def _run(url: str, steps: list[tuple[str, int, int]]) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for task, choice, v in steps:
            current = await m.get_task(task)
            legal = LEGAL[current.state if current is not None else None]
            op = legal[choice % len(legal)] if legal and choice < 90 else OPS[choice % len(OPS)]
            try:
                await _apply(m, op, task, v)
            except HITLError:
                pass  # an illegal move, refused as it must be; the log stays a legal history
        report = await m.verify()
        assert report.ok, report.problems
        assert report.tasks == len(await m.get_all_tasks())


def _postgres_url() -> str:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install -e '.[postgres]'")
    helpers = str(Path(__file__).parents[1] / "postgres")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)
    from pg_cluster import shared_cluster, unavailable

    try:
        return shared_cluster().create_schema("fold")
    except RuntimeError as exc:
        unavailable(str(exc))  # under CI=true: a failure, not a skip


#: Cases the property once found, pinned: starting a created task merges its metadata; under four
#: eyes an edit of the args restarts the count and replaces the interrupt's action.
METADATA_MERGE = [("b", 1, 0), ("b", 0, 1)]
FOUR_EYES_EDIT = [("a", 0, 0), ("a", 0, 3), ("a", 3, 0), ("a", 0, 1)]


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings(100)
@given(steps=STEPS)
@example(steps=METADATA_MERGE)
@example(steps=FOUR_EYES_EDIT)
def test_fold_equals_the_stored_snapshot_on_memory(steps: list[tuple[str, int, int]]) -> None:
    asyncio.run(_run("memory://", steps))


@_settings(40)
@given(steps=STEPS)
@example(steps=METADATA_MERGE)
@example(steps=FOUR_EYES_EDIT)
def test_fold_equals_the_stored_snapshot_on_sqlite(steps: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(f"sqlite:///{tmp}/hitl.db", steps))


@_settings(25)
@given(steps=STEPS)
@example(steps=METADATA_MERGE)
@example(steps=FOUR_EYES_EDIT)
def test_fold_equals_the_stored_snapshot_on_postgresql(steps: list[tuple[str, int, int]]) -> None:
    asyncio.run(_run(_postgres_url(), steps))
