"""Fixtures for the stats tests: a settable event clock, a SQLite store URL, a clean config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: 2027-01-15 08:00:00 UTC, in µs: "now" for the stats in these tests.
NOW_US = 1_800_000_000 * 1_000_000


class EventClock:
    """What ``hitl_core.machine.now_us`` returns: set it before each transition (µs)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> int:
        return self.at

    def set(self, seconds_before_now: float) -> None:
        self.at = NOW_US - int(seconds_before_now * 1_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> EventClock:
    c = EventClock(NOW_US - 3600 * 1_000_000)
    monkeypatch.setattr("hitl_core.machine.now_us", c)
    return c


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No hitl.toml from the developer's directories: each test names its own if it needs one."""
    monkeypatch.delenv("HITL_CONFIG", raising=False)
    monkeypatch.delenv("HITL_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hitl.db'}"


def forge_decider(store: object, task_id: str, actor_id: str) -> None:
    """Edit the store by hand: the decisions on ``task_id`` now name ``actor_id``.

    The machine refuses an actor id with control characters at the API, so such an id reaches the
    trail only this way (or from a store written before that rule): the stats must still show
    it inert. For a SQLite store, ``store`` is its file path; otherwise an in-memory store.
    """
    import sqlite3
    from pathlib import Path

    from hitl_core.models import Actor

    if isinstance(store, (str, Path)):
        conn = sqlite3.connect(store)
        with conn:
            conn.execute(
                "UPDATE events SET actor_id = ?, data = json_set(data, '$.decision.actor.id', ?) "
                "WHERE task_id = ? AND action IN ('approve', 'approve_partial', 'reject')",
                (actor_id, actor_id, task_id),
            )
        conn.close()
        return
    for record in store._log:  # type: ignore[attr-defined]
        decision = record.data.get("decision") if isinstance(record.data, dict) else None
        if record.task_id == task_id and decision is not None and record.action != "resume":
            record.actor_id = actor_id
            forged = decision.model_copy(update={"actor": Actor(id=actor_id, source=decision.actor.source)})
            record.data = {**record.data, "decision": forged}
