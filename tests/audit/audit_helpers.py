"""Shared by the audit tests: a realistic history made through the real machine, and each durable
backend opened the way a forger would open it (its database, not hitl's API)."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audit_forgery import Db, postgres_db, sqlite_db

from hitl_core import HITLStateMachine
from hitl_core.records import EventRecord


async def make_history(url: str) -> None:
    """Three tasks through the real machine: t1 approved by alice and completed, t2 waiting, t3
    rejected by bob. Events 1-12, interleaved as agents would interleave them."""
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        for task_id in ("t1", "t2", "t3"):
            await m.start_task(task_id, agent="billing", metadata={"customer": 7})
        for task_id in ("t1", "t2", "t3"):
            await m.request_approval(task_id, f"refund for {task_id}?", args={"amount": 120})
        await m.approve("t1", "alice", message="ok")
        await m.reject("t3", "bob", "too much")
        await m.resume("t1", step="refund")
        await m.complete("t1", {"refunded": 120})
        await m.resume("t3")
        await m.fail("t3", "gave up")


async def add_events(url: str, task_id: str = "t4") -> None:
    """More honest activity: another task starts and asks (two events: 13-14 after ``make_history``)."""
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        await m.start_task(task_id, agent="billing")
        await m.request_approval(task_id, f"refund for {task_id}?")


@dataclass
class Target:
    """A store URL with a history, and a way to open its database as the forger."""

    url: str
    open_db: Callable[[], Any]  # context manager yielding a Db


def sqlite_target(tmp_path: Path) -> Target:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"

    @contextmanager
    def open_db() -> Iterator[Db]:
        conn = sqlite3.connect(path)
        try:
            yield sqlite_db(conn)
        finally:
            conn.close()

    return Target(url, open_db)


def postgres_target(tmp_path: Path) -> Target:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install -e '.[postgres]'")
    helpers = str(Path(__file__).parents[1] / "postgres")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)
    import psycopg
    from pg_cluster import shared_cluster, unavailable

    try:
        url = shared_cluster().create_database("audit")
    except RuntimeError as exc:
        unavailable(str(exc))  # under CI=true: a failure, not a skip

    @contextmanager
    def open_db() -> Iterator[Db]:
        with psycopg.connect(url) as conn:
            yield postgres_db(conn)

    return Target(url, open_db)


def blame_mallory(events: list[EventRecord]) -> list[EventRecord]:
    """Rewrite who approved t1 (event 7, alice) as mallory — decision and all."""
    for event in events:
        if event.action == "approve":
            event.actor_id = "mallory"
            event.data["decision"]["actor"]["id"] = "mallory"
    return events


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")) if p
    )
    return env
