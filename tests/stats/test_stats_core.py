"""The stats core: figures from the audit trail, folded live or loaded from a store.

Events are stamped by a settable clock (``clock`` fixture), so times to decision are exact.
"""

from __future__ import annotations

from typing import Any

import pytest
from escalating import escalate

from hitl_core import HITLStateMachine, hookimpl
from hitl_core.models import Event, TaskContext
from hitl_core.policies.config import ConfigError, parse_config
from hitl_core.records import EventRecord
from hitl_core.stats import (
    StatsFold,
    StatsSettings,
    compute_stats,
    fact_of,
    inert,
    load_stats,
    shown_chars,
)

from .conftest import NOW_US, EventClock

US = 1_000_000


async def ask(machine: HITLStateMachine, clock: EventClock, task_id: str, ago: float, **kwargs: Any) -> None:
    clock.set(ago)
    await machine.start_task(task_id, agent="bot")
    await machine.request_approval(task_id, kwargs.pop("reason", "send the quote?"), **kwargs)


async def decide(
    machine: HITLStateMachine, clock: EventClock, task_id: str, ago: float, who: str, ok: bool = True
) -> None:
    clock.set(ago)
    if ok:
        await machine.approve(task_id, who)
    else:
        await machine.reject(task_id, who, "no")


async def test_a_store_with_no_decisions_yet_has_figures_without_dividing_by_zero(clock: EventClock) -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "t1", 600, severity="high")
        stats = await compute_stats(machine.store, now=NOW_US)
    assert not stats.has_decisions
    assert stats.decisions == 0
    assert stats.waiting == 1
    assert stats.waiting_by_severity["high"] == 1
    assert stats.oldest_waiting_task == "t1"
    assert stats.oldest_waiting_seconds == pytest.approx(600, abs=1)
    assert all(t.p50 is None and t.p90 is None and t.count == 0 for t in stats.time_to_decision.values())
    assert stats.operators == [] and stats.rubber_stamps == []
    data = stats.to_dict()
    assert data["decisions"] == 0 and data["time_to_decision_seconds"]["high"]["p50"] is None


async def test_an_empty_store_has_figures_too() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        stats = await compute_stats(machine.store, now=NOW_US)
    assert stats.waiting == 0 and stats.decisions == 0 and stats.oldest_waiting_task is None
    assert stats.waiting_series == [0] * 60


async def test_time_to_decision_by_severity_and_per_operator(clock: EventClock) -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        for i, took in enumerate((30, 60, 90, 120, 600)):
            await ask(machine, clock, f"h{i}", 3000, severity="high")
            await decide(machine, clock, f"h{i}", 3000 - took, "alice" if i % 2 else "bob", ok=i != 4)
        await ask(machine, clock, "low", 1000, severity="low")
        await decide(machine, clock, "low", 990, "alice")
        stats = await compute_stats(machine.store, now=NOW_US)
    high = stats.time_to_decision["high"]
    assert high.count == 5
    assert high.p50 == pytest.approx(90)
    assert high.p90 == pytest.approx(600)
    # buckets ≤5, ≤15, ≤30, ≤60, ≤120, ≤300, ≤900, …: 30 | 60 | 90, 120 | 600
    assert high.histogram[:7] == [0, 0, 1, 1, 2, 0, 1]
    assert stats.time_to_decision["low"].p50 == pytest.approx(10)
    by_actor = {o.actor: o for o in stats.operators}
    assert by_actor["alice"].decisions == 3 and by_actor["bob"].decisions == 3
    assert by_actor["bob"].rejected == 1
    assert stats.by_kind == {"person": 6, "policy": 0, "timeout": 0}


async def test_a_clock_that_jumped_backwards_is_not_counted_as_a_negative_time(clock: EventClock) -> None:
    """The decision is stamped 5 s *before* its request: left out of the times (not as -5 s, nor
    as 0 s, which would look like a rubber stamp) and counted as a clock-skew decision."""
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "skewed", 100, severity="medium")
        await decide(machine, clock, "skewed", 105, "alice")
        await ask(machine, clock, "fine", 100, severity="medium")
        await decide(machine, clock, "fine", 40, "alice")
        stats = await compute_stats(machine.store, now=NOW_US)
    medium = stats.time_to_decision["medium"]
    assert medium.count == 1 and medium.p50 == pytest.approx(60)
    assert stats.clock_skew_decisions == 1
    assert stats.rubber_stamps == []
    assert stats.decisions == 2  # it was still decided, by a person
    assert all(v >= 0 for t in stats.time_to_decision.values() for v in (t.p50 or 0, t.p90 or 0))


async def test_a_request_stamped_in_the_future_waits_zero_seconds_not_negative(clock: EventClock) -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "future", -300)
        stats = await compute_stats(machine.store, now=NOW_US)
    assert stats.oldest_waiting_task == "future" and stats.oldest_waiting_seconds == 0.0


async def test_a_decision_faster_than_reading_is_flagged_and_a_slow_one_is_not(clock: EventClock) -> None:
    settings = StatsSettings()
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "fast", 500, severity="critical", reason="drop the production database?")
        await decide(machine, clock, "fast", 499, "speedy")
        await ask(machine, clock, "slow", 500, severity="critical", reason="drop the production database?")
        await decide(machine, clock, "slow", 400, "careful")
        stats = await compute_stats(machine.store, now=NOW_US, settings=settings)
    assert [(r.actor, r.task_id) for r in stats.rubber_stamps] == [("speedy", "fast")]
    stamp = stats.rubber_stamps[0]
    assert stamp.seconds == pytest.approx(1.0)
    assert stamp.min_read_seconds is not None and stamp.min_read_seconds > 8.0  # the critical floor plus reading
    by_actor = {o.actor: o for o in stats.operators}
    assert by_actor["speedy"].rubber_stamps == 1 and by_actor["careful"].rubber_stamps == 0


async def test_the_reading_threshold_grows_with_the_text_shown(clock: EventClock) -> None:
    settings = StatsSettings(chars_per_second=10.0, floor={})
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "short", 500, reason="ok?", severity="low")
        await decide(machine, clock, "short", 495, "alice")
        await ask(machine, clock, "long", 500, reason="x" * 200, severity="low")
        await decide(machine, clock, "long", 495, "alice")
        stats = await compute_stats(machine.store, now=NOW_US, settings=settings)
    assert [r.task_id for r in stats.rubber_stamps] == ["long"]  # 200 chars at 10/s is 20 s, not 5


def test_the_stats_section_of_hitl_toml_sets_the_reading_speed_and_floors() -> None:
    config = parse_config("[stats]\nchars_per_second = 12.5\nfloor = { critical = 30 }\n")
    settings = StatsSettings.from_config(config)
    assert settings.chars_per_second == 12.5
    assert settings.floor["critical"] == 30 and settings.floor["low"] == StatsSettings().floor["low"]
    assert StatsSettings.from_config(None) == StatsSettings()


def test_a_stats_section_with_a_bad_value_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"stats\.chars_per_second"):
        parse_config("[stats]\nchars_per_second = 0\n")
    with pytest.raises(ConfigError, match=r"stats\.floor"):
        parse_config("[stats]\nfloor = { high = -1 }\n")


async def test_expiries_policy_decisions_and_escalations_are_counted_apart(clock: EventClock) -> None:
    from datetime import UTC, datetime, timedelta

    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "late", 900)
        clock.set(800)
        await escalate(machine, "late", ["oncall"], datetime.now(UTC) - timedelta(seconds=1))
        clock.set(700)
        await machine.expire("late", force=True)
        await ask(machine, clock, "decided", 600)
        await decide(machine, clock, "decided", 500, "alice")
        stats = await compute_stats(machine.store, now=NOW_US)
    assert stats.expiries == 1
    assert stats.escalations == 1
    assert stats.by_kind == {"person": 1, "policy": 0, "timeout": 1}
    assert [o.actor for o in stats.operators] == ["alice"]  # the deadline is nobody's decision


async def test_the_waiting_series_counts_per_minute_over_the_last_hour(clock: EventClock) -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await ask(machine, clock, "old", 2 * 3600)  # waiting since before the hour
        await ask(machine, clock, "a", 30 * 60 + 1)
        await ask(machine, clock, "b", 20 * 60 + 1)
        await decide(machine, clock, "a", 10 * 60 + 1, "alice")
        stats = await compute_stats(machine.store, now=NOW_US)
    series = stats.waiting_series
    assert len(series) == 60
    assert series[0] == 1  # an hour ago: only "old"
    assert series[-31] == 2 and series[-21] == 3 and series[-11] == 2 and series[-1] == 2
    assert stats.oldest_waiting_task == "old"


async def test_the_live_fold_agrees_with_a_fresh_load_and_ignores_a_repeated_event(
    clock: EventClock, db_url: str
) -> None:
    """What the console keeps live from ``hitl_transition`` equals what a fresh load computes,
    even when each event is delivered twice (the hook and the store follower)."""
    async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
        await ask(machine, clock, "before", 7200, severity="high")  # before the live fold starts
        live = await load_stats(machine.store, now=NOW_US)
        seen: list[Event] = []

        class Twice:
            @hookimpl
            def hitl_transition(self, event: Event, task: TaskContext) -> None:
                live.apply_event(event)
                live.apply_event(event)
                seen.append(event)

        machine.plugins.register(Twice())
        await decide(machine, clock, "before", 3000, "alice")
        await ask(machine, clock, "t1", 1800, severity="critical")
        await decide(machine, clock, "t1", 1799, "bob")  # a rubber stamp
        await ask(machine, clock, "t2", 900, severity="low")
        await ask(machine, clock, "t3", 600, severity="medium")
        await decide(machine, clock, "t3", 300, "alice", ok=False)
        fresh = await compute_stats(machine.store, now=NOW_US)
    assert len(seen) == 9
    now = live.snapshot(NOW_US, NOW_US - 24 * 3600 * US)
    assert now.to_dict() == fresh.to_dict()
    assert now.waiting == 1 and now.decisions == 3 and len(now.rubber_stamps) == 1


async def test_memory_and_sqlite_stores_give_the_same_figures(clock: EventClock, db_url: str) -> None:
    """The SQLite fast path (SQL with json_extract) and the generic path (``Store.events``) agree."""
    results = []
    for url in ("memory://", db_url):
        async with HITLStateMachine(url, load_entrypoints=False) as machine:
            await ask(
                machine, clock, "a", 5000, severity="critical", args={"x": "é" * 40}, action="go", context={"k": 1}
            )
            await decide(machine, clock, "a", 4990, "alice")
            await ask(machine, clock, "b", 4000, severity="low")
            await ask(machine, clock, "c", 100)
            await decide(machine, clock, "b", 50, "bob", ok=False)
            results.append((await compute_stats(machine.store, now=NOW_US)).to_dict())
    assert results[0] == results[1]


def test_shown_chars_counts_reason_action_args_and_context_alike_for_models_and_json() -> None:
    from hitl_core.models import Action, InterruptPoint

    interrupt = InterruptPoint(reason="abc", action=Action(name="go", args={"a": 1}), context={"b": "é"})
    assert shown_chars(interrupt) == shown_chars(interrupt.model_dump(mode="json")) == 3 + 2 + 7 + 9


def test_operator_ids_with_control_characters_are_made_inert() -> None:
    assert inert("mallory\x1b[2J\x07\u202e") == "mallory\\x1b[2J\\x07\\u202e"
    assert inert("x" * 100, limit=10) == "x" * 10 + "… (90 more characters)"
    assert inert("a\\x1b") == "a\\\\x1b"  # a real backslash is doubled: it never looks like an escape


def test_a_fact_from_an_event_record_without_data_is_harmless() -> None:
    from hitl_core.models import TaskState

    record = EventRecord("t", 1, "start", None, TaskState.RUNNING, None, None, NOW_US, {}, seq=1)
    fold = StatsFold()
    fold.apply_fact(fact_of(record))
    assert fold.snapshot(NOW_US).waiting == 0
