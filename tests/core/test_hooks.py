"""One ``test_hook_<name>`` per hookspec, and the docs must document every hook."""

from __future__ import annotations

import inspect
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hitl_core import (
    Actor,
    Decision,
    DecisionType,
    Event,
    HITLStateMachine,
    InterruptPoint,
    MemoryStore,
    NotAuthorizedError,
    Severity,
    TaskContext,
    TaskState,
    hookimpl,
    hookspecs,
)
from hitl_core.errors import HITLError

ROOT = Path(__file__).resolve().parents[2]
#: Every function pluggy takes as a spec (marked ``@hookspec``), whatever its name.
HOOKS = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, f"{hookspecs.PROJECT}_spec")
)


def test_every_hook_is_documented_with_its_signature_and_tested() -> None:
    docs = (ROOT / "docs" / "hooks.md").read_text()
    tests = Path(__file__).read_text()
    assert len(HOOKS) == 9
    for name in HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert re.search(rf"^### {re.escape(f'{name}({params})')}$", docs, re.M), (
            f"docs/hooks.md lacks a section '### {name}({params})'"
        )
        assert f"def test_hook_{name}(" in tests or f"async def test_hook_{name}(" in tests, f"no test_hook_{name}"


def test_hook_hitl_register_commands(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from hitl_core.cli import build_parser

    class Hello:
        @hookimpl
        def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
            hello = subparsers.add_parser("hello")
            hello.set_defaults(handler=lambda args: print("hello from a plugin") or 0)

    args = build_parser(load_entrypoints=False, plugins=[("hello", Hello())]).parse_args(["hello"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out == "hello from a plugin\n"


def machine_with(*plugins: object) -> HITLStateMachine:
    return HITLStateMachine("memory://", plugins=plugins, load_entrypoints=False)


async def test_hook_hitl_register_stores() -> None:
    opened: list[str] = []

    class Recording(MemoryStore):
        async def open(self) -> None:
            opened.append(self.url)

    class Plugin:
        @hookimpl
        def hitl_register_stores(self, register: Any) -> None:
            register("recording", Recording)

    m = HITLStateMachine("recording://x", plugins=[Plugin()], load_entrypoints=False)
    await m.start_task("t")
    assert opened == ["recording://x"]
    with pytest.raises(HITLError, match=r"no store for 'nosuch://x'.*memory://.*recording://"):
        HITLStateMachine("nosuch://x", plugins=[Plugin()], load_entrypoints=False)


async def test_hook_hitl_transition() -> None:
    seen: list[tuple[int, str, TaskState | None, TaskState, str]] = []

    class Observer:
        @hookimpl
        async def hitl_transition(self, event: Event, task: TaskContext) -> None:
            seen.append((event.seq, event.action, event.from_state, event.to_state, task.state.value))
            assert event.hash and len(event.hash) == 64 and event.task_id == task.task_id

    m = machine_with(Observer())
    await m.start_task("t")
    await m.request_approval("t", "why")
    await m.approve("t", actor="alice")
    assert seen == [
        (1, "start", None, TaskState.RUNNING, "running"),
        (2, "request_approval", TaskState.RUNNING, TaskState.AWAITING_APPROVAL, "awaiting_approval"),
        (3, "approve", TaskState.AWAITING_APPROVAL, TaskState.APPROVED, "approved"),
    ]


async def test_hook_hitl_approval_requested(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[str] = []

    class Notifier:
        @hookimpl
        def hitl_approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
            asked.append(f"{task.task_id}:{interrupt.reason}")

    class Broken:
        @hookimpl
        def hitl_approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
            raise ConnectionError("smtp down")

    m = machine_with(Notifier(), Broken())
    await m.start_task("t")
    with caplog.at_level(logging.ERROR, logger="hitl.plugins"):
        t = await m.request_approval("t", "why")
    assert asked == ["t:why"] and t.state == TaskState.AWAITING_APPROVAL
    assert m.observer_errors == 1 and "smtp down" in caplog.text


async def test_hook_hitl_assess() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)

    class Risk:
        @hookimpl
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any] | None:
            if interrupt.action and interrupt.action.args.get("env") == "prod":
                return {"severity": "high", "deadline": soon}
            return {"severity": "low"}  # never lowers

    class Crashing:
        @hookimpl
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> None:
            if task.task_id == "boom":
                raise ValueError("scorer bug")

    m = machine_with(Risk(), Crashing())
    await m.start_task("t")
    t = await m.request_approval("t", "deploy", action="deploy", args={"env": "prod"}, severity="medium")
    assert t.interrupt_point is not None
    assert t.interrupt_point.severity == Severity.HIGH and t.interrupt_point.deadline == soon
    await m.start_task("u")
    u = await m.request_approval("u", "deploy", severity="medium")
    assert u.interrupt_point is not None and u.interrupt_point.severity == Severity.MEDIUM
    await m.start_task("boom")
    b = await m.request_approval("boom", "deploy", severity="low")
    assert b.interrupt_point is not None and b.interrupt_point.severity == Severity.CRITICAL  # fails closed


async def test_hook_hitl_auto_decide() -> None:
    class Rules:
        @hookimpl
        def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
            if interrupt.action and interrupt.action.name == "read_file":
                return Decision(type="approve", actor=Actor(id="policy:reads", source="policy"))
            if interrupt.action and interrupt.action.name == "crash":
                raise RuntimeError("rule engine bug")
            return None

    m = machine_with(Rules())
    for name in ("read_file", "delete_file", "crash"):
        await m.start_task(name)
    read = await m.request_approval("read_file", "read", action="read_file", args={"p": "/etc/hosts"})
    assert read.state == TaskState.APPROVED and read.decision is not None
    assert (read.decision.type, read.decision.outcome, read.decision.actor.id) == (
        DecisionType.POLICY,
        "approve",
        "policy:reads",
    )
    delete = await m.request_approval("delete_file", "rm", action="delete_file", args={"p": "/"})
    assert delete.state == TaskState.AWAITING_APPROVAL
    crash = await m.request_approval("crash", "x", action="crash")
    assert crash.state == TaskState.REJECTED and crash.decision is not None
    assert crash.decision.actor.id == "policy:error" and "rule engine bug" in (crash.decision.message or "")


async def test_hook_hitl_authorize() -> None:
    class OnlyLeads:
        @hookimpl
        def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> bool:
            return actor.id in {"lead"} or not decision.approved

    class Crashing:
        @hookimpl
        def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> None:
            if task.task_id == "boom":
                raise LookupError("roles file missing")

    m = machine_with(OnlyLeads(), Crashing())
    await m.start_task("t")
    await m.request_approval("t", "why")
    with pytest.raises(NotAuthorizedError, match="intern may not decide task 't'"):
        await m.approve("t", actor="intern")
    assert (await m.get_task("t")).state == TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]
    assert (await m.approve("t", actor="lead")).state == TaskState.APPROVED
    await m.start_task("boom")
    await m.request_approval("boom", "why")
    with pytest.raises(NotAuthorizedError, match="roles file missing"):
        await m.approve("boom", actor="lead")


async def test_hook_hitl_deadline_expired() -> None:
    class Escalate:
        @hookimpl
        def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
            if task.task_id == "special":
                return Decision(type="timeout", outcome="approve", actor=Actor(id="policy:grace", source="policy"))
            return None

    m = machine_with(Escalate())
    past = datetime.now(UTC) - timedelta(seconds=1)
    for name in ("plain", "special"):
        await m.start_task(name)
        await m.request_approval(name, "why", deadline=past)
    plain = await m.expire("plain")
    assert plain.state == TaskState.REJECTED and plain.decision is not None
    assert plain.decision.type == DecisionType.TIMEOUT and plain.decision.actor.id == "hitl:timeout"
    special = await m.expire("special")
    assert special.state == TaskState.APPROVED


async def test_hook_hitl_deadline_warning() -> None:
    from hitl_core.policies import DeadlineSweeper
    from hitl_core.policies.config import DeadlinesConfig

    warned: list[tuple[str, float]] = []

    class Notifier:
        @hookimpl
        def hitl_deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
            warned.append((task.task_id, seconds_left))

    m = machine_with(Notifier())
    await m.start_task("soon")
    await m.request_approval("soon", "why", timeout=30)
    await m.start_task("later")
    await m.request_approval("later", "why", timeout=3600)
    sweeper = DeadlineSweeper(m, DeadlinesConfig(warn_before=60))
    await sweeper.sweep_once()
    await sweeper.sweep_once()  # once per deadline, not once per sweep
    assert [t for t, _ in warned] == ["soon"] and 0 < warned[0][1] <= 30
    assert (await m.get_task("soon")).state == TaskState.AWAITING_APPROVAL  # a warning decides nothing


async def test_assess_may_ask_for_four_eyes() -> None:
    class Critical:
        @hookimpl
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any]:
            return {"required_approvals": 2}

    m = machine_with(Critical())
    await m.start_task("t")
    task = await m.request_approval("t", "why")
    assert task.interrupt_point is not None and task.interrupt_point.required_approvals == 2


async def test_trace_env_logs_every_hook_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HITL_TRACE_PLUGINS", "1")

    class Observer:
        @hookimpl
        def hitl_transition(self, event: Event, task: TaskContext) -> None:
            pass

    m = machine_with(Observer())
    with caplog.at_level(logging.DEBUG, logger="hitl.plugins"):
        await m.start_task("t")
    assert "hitl_transition" in caplog.text


# -- every hook goes through pluggy's caller: tracing and wrappers ------------------------------

PAST = datetime.now(UTC) - timedelta(seconds=1)


class Everything:
    """A plain implementation of every hook that answers nothing, so each hook has someone to call."""

    @hookimpl
    def hitl_register_stores(self, register: Any) -> None:
        pass

    @hookimpl
    def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        pass

    @hookimpl
    async def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        pass

    @hookimpl
    def hitl_approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        pass

    @hookimpl
    def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> None:
        pass

    @hookimpl
    async def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        pass

    @hookimpl
    def hitl_deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
        pass

    @hookimpl
    async def hitl_transition(self, event: Event, task: TaskContext) -> None:
        pass


async def exercise_every_hook(*plugins: object) -> HITLStateMachine:
    """Drive one machine through a flow that calls each of the eight hooks at least once."""
    from hitl_core.policies import DeadlineSweeper
    from hitl_core.policies.config import DeadlinesConfig

    m = HITLStateMachine("memory://", plugins=[Everything(), *plugins], load_entrypoints=False)  # register_stores
    await m.start_task("t")  # transition
    await m.request_approval("t", "why", timeout=30)  # assess, auto_decide, approval_requested
    await DeadlineSweeper(m, DeadlinesConfig(warn_before=60)).sweep_once()  # deadline_warning
    await m.approve("t", "alice")  # authorize
    await m.start_task("late")
    await m.request_approval("late", "why", deadline=PAST)
    await m.expire("late")  # deadline_expired
    await m.close()
    return m


def wrapper_on(name: str, style: str, seen: list[str]) -> object:
    """A plugin with only a wrapper (``wrapper=True`` or old-style ``hookwrapper=True``) on ``name``."""
    if style == "wrapper":

        def wrap(*args: Any) -> Any:
            seen.append("before")
            result = yield
            seen.append("after")
            return result

        marker = hookimpl(wrapper=True)
    else:

        def wrap(*args: Any) -> Any:  # type: ignore[misc]
            seen.append("before")
            outcome = yield
            outcome.get_result()
            seen.append("after")

        marker = hookimpl(hookwrapper=True)
    wrap.__wrapped__ = getattr(hookspecs, name)  # type: ignore[attr-defined]  # pluggy reads the spec's arguments
    return type(f"Wrap_{name}", (), {name: staticmethod(marker(wrap))})()


#: The hooks a machine calls (``hitl_register_commands`` is the command line's: tested below).
MACHINE_HOOKS = [name for name in HOOKS if name != "hitl_register_commands"]


@pytest.mark.parametrize("style", ["wrapper", "hookwrapper"])
def test_wrapper_runs_on_register_commands(style: str) -> None:
    from hitl_core.cli import build_parser

    seen: list[str] = []
    build_parser(load_entrypoints=False, plugins=[("wrap", wrapper_on("hitl_register_commands", style, seen))])
    assert seen == ["before", "after"]


def test_trace_logs_the_register_commands_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hitl_core.cli import build_parser

    monkeypatch.setenv("HITL_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.DEBUG, logger="hitl.plugins"):
        build_parser(load_entrypoints=False)
    traced = [r.getMessage().strip() for r in caplog.records if r.name == "hitl.plugins"]
    assert any(line.startswith("hitl_register_commands [hook]") for line in traced), traced
    assert any(line.startswith("finish hitl_register_commands -->") for line in traced)


@pytest.mark.parametrize("style", ["wrapper", "hookwrapper"])
@pytest.mark.parametrize("name", MACHINE_HOOKS)
async def test_wrapper_runs_on_each_hook(name: str, style: str) -> None:
    seen: list[str] = []
    await exercise_every_hook(wrapper_on(name, style, seen))
    assert seen[:2] == ["before", "after"] and len(seen) % 2 == 0


@pytest.mark.parametrize("name", MACHINE_HOOKS)
async def test_trace_logs_each_hook_call(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HITL_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.DEBUG, logger="hitl.plugins"):
        await exercise_every_hook()
    traced = [r.getMessage() for r in caplog.records if r.name == "hitl.plugins"]
    assert any(line.strip().startswith(f"{name} [hook]") for line in traced), f"{name} was not traced"
    assert any(line.strip().startswith(f"finish {name} -->") for line in traced)


def test_trace_logs_every_hook_call(tmp_path: Path) -> None:
    """In a fresh process, as a user would turn it on: every hook's call on stderr."""
    import os
    import subprocess
    import sys

    script = tmp_path / "trace.py"
    script.write_text(
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_hooks import exercise_every_hook\n"
        "from hitl_core.cli import build_parser\n"
        "asyncio.run(exercise_every_hook())\n"
        "build_parser(load_entrypoints=False)\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"} | {"HITL_TRACE_PLUGINS": "1"}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    for name in HOOKS:
        assert f"hitl.plugins:   {name} [hook]" in run.stderr, f"{name} not traced"
        assert f"hitl.plugins:   finish {name} -->" in run.stderr


async def test_refusing_authorize_wrapper_refuses() -> None:
    class Refuse:
        @hookimpl(wrapper=True)
        def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> Any:
            if actor.id == "mallory":
                raise NotAuthorizedError(task.task_id, actor.id, "mallory is on leave")
            return (yield)

    class ForceNo:
        @hookimpl(hookwrapper=True)
        def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> Any:
            outcome = yield
            if actor.id == "eve":
                outcome.force_result([*outcome.get_result(), False])

    m = machine_with(Refuse(), ForceNo())
    await m.start_task("t")
    before = await m.request_approval("t", "why")
    with pytest.raises(NotAuthorizedError, match="mallory is on leave"):
        await m.approve("t", "mallory")
    with pytest.raises(NotAuthorizedError, match="eve may not decide task 't': refused"):
        await m.approve("t", "eve")
    assert await m.get_task("t") == before
    assert (await m.approve("t", "alice")).state == TaskState.APPROVED


async def test_authorize_wrapper_that_crashes_refuses() -> None:
    class Crashing:
        @hookimpl(wrapper=True)
        def hitl_authorize(self, actor: Actor, task: TaskContext, decision: Decision) -> Any:
            result = yield
            raise RuntimeError("roles service down")
            return result  # pragma: no cover

    m = machine_with(Crashing())
    await m.start_task("t")
    await m.request_approval("t", "why")
    with pytest.raises(NotAuthorizedError, match="roles service down"):
        await m.approve("t", "alice")
    assert (await m.get_task("t")).state == TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_assess_wrapper_works() -> None:
    class Raise:
        @hookimpl(wrapper=True)
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> Any:
            answers = yield
            return [*answers, {"severity": "high"}]

    class Plain:
        @hookimpl
        async def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any]:
            return {"required_approvals": 2}

    m = machine_with(Plain(), Raise())
    await m.start_task("t")
    task = await m.request_approval("t", "why", severity="low")
    assert task.interrupt_point is not None
    assert (task.interrupt_point.severity, task.interrupt_point.required_approvals) == (Severity.HIGH, 2)


async def test_assess_that_raises_leaves_the_others_answers_standing() -> None:
    class Crashing:
        @hookimpl(tryfirst=True)
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> None:
            raise ValueError("scorer bug")

    class FourEyes:
        @hookimpl
        async def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any]:
            return {"required_approvals": 2}

    m = machine_with(FourEyes(), Crashing())
    await m.start_task("t")
    task = await m.request_approval("t", "why")
    assert task.interrupt_point is not None
    assert (task.interrupt_point.severity, task.interrupt_point.required_approvals) == (Severity.CRITICAL, 2)


def _decides(label: str, kind: str, answer: Decision | None, ran: list[str], name: str, **marks: bool) -> object:
    """A plugin whose ``name`` hook (sync or async) answers ``answer`` and notes that it ran."""
    if kind == "sync":

        def impl(task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
            ran.append(label)
            return answer
    else:

        async def impl(task: TaskContext, interrupt: InterruptPoint) -> Decision | None:  # type: ignore[misc]
            ran.append(label)
            return answer

    return type("Decides", (), {name: staticmethod(hookimpl(**marks)(impl))})()


@pytest.mark.parametrize("name", ["hitl_auto_decide", "hitl_deadline_expired"])
@pytest.mark.parametrize("second", ["sync", "async"])
@pytest.mark.parametrize("first", ["sync", "async"])
async def test_first_answer_is_the_first_not_none_after_awaiting(first: str, second: str, name: str) -> None:
    ran: list[str] = []
    answer = Decision(type="policy", outcome="approve", actor=Actor(id="policy:second", source="policy"))
    never = Decision(type="policy", outcome="reject", actor=Actor(id="policy:third", source="policy"))
    m = machine_with(
        _decides("third", "async", never, ran, name, trylast=True),  # after the winner: never awaited
        _decides("second", second, answer, ran, name),
        _decides("first", first, None, ran, name, tryfirst=True),  # called first, answers None
    )
    await m.start_task("t")
    task = await m.request_approval("t", "why", deadline=PAST if name == "hitl_deadline_expired" else None)
    if name == "hitl_deadline_expired":
        task = await m.expire("t")
    assert task.state == TaskState.APPROVED and task.decision is not None
    assert task.decision.actor.id == "policy:second"
    # (a sync body runs inside pluggy's call, an async one when awaited: both ran, the third never)
    assert sorted(ran) == ["first", "second"]


async def test_observer_wrapper_that_raises_is_counted_and_the_transition_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        @hookimpl(wrapper=True)
        def hitl_transition(self, event: Event, task: TaskContext) -> Any:
            yield
            raise RuntimeError("metrics exporter down")

    seen: list[str] = []

    class Async:
        @hookimpl
        async def hitl_transition(self, event: Event, task: TaskContext) -> None:
            seen.append(event.action)

    m = machine_with(Async(), Broken())
    with caplog.at_level(logging.ERROR, logger="hitl.plugins"):
        task = await m.start_task("t")
    assert task.state == TaskState.RUNNING and (await m.get_task("t")) is not None
    assert m.observer_errors == 1 and "metrics exporter down" in caplog.text
    assert seen == ["start"]  # the async observer still ran, though the wrapper took pluggy's results


async def test_async_observer_that_raises_does_not_stop_the_others() -> None:
    seen: list[str] = []

    class Broken:
        @hookimpl(tryfirst=True)
        async def hitl_transition(self, event: Event, task: TaskContext) -> None:
            raise ConnectionError("down")

    class Sync:
        @hookimpl
        def hitl_transition(self, event: Event, task: TaskContext) -> None:
            raise ValueError("also down")

    class Fine:
        @hookimpl(trylast=True)
        async def hitl_transition(self, event: Event, task: TaskContext) -> None:
            seen.append(event.action)

    m = machine_with(Fine(), Sync(), Broken())
    await m.start_task("t")
    assert seen == ["start"] and m.observer_errors == 2


async def test_store_plugin_registered_later_overrides_a_builtin_scheme() -> None:
    class Mine(MemoryStore):
        pass

    class Plugin:
        @hookimpl
        def hitl_register_stores(self, register: Any) -> None:
            register("memory", Mine)

    m = HITLStateMachine("memory://", plugins=[Plugin()], load_entrypoints=False)
    assert type(m.store) is Mine


async def test_policy_wrapper_that_raises_fails_closed() -> None:
    class BrokenAssess:
        @hookimpl(wrapper=True)
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> Any:
            yield
            raise RuntimeError("scorer wrapper bug")

    class BrokenRules:
        @hookimpl(wrapper=True)
        def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Any:
            raise RuntimeError("rules wrapper bug")
            yield  # pragma: no cover

    m = machine_with(BrokenAssess())
    await m.start_task("t")
    task = await m.request_approval("t", "why", severity="low")
    assert task.interrupt_point is not None and task.interrupt_point.severity == Severity.CRITICAL
    m = machine_with(BrokenRules())
    await m.start_task("t")
    task = await m.request_approval("t", "why")
    assert task.state == TaskState.REJECTED and task.decision is not None
    assert task.decision.actor.id == "policy:error" and "rules wrapper bug" in (task.decision.message or "")


async def test_observer_wrapper_that_raises_before_its_yield_is_counted_and_the_transition_stands() -> None:
    seen: list[str] = []

    class Early:
        @hookimpl(wrapper=True)
        def hitl_transition(self, event: Event, task: TaskContext) -> Any:
            raise RuntimeError("refuses to wrap")
            yield  # pragma: no cover

    class Observer:
        @hookimpl
        def hitl_transition(self, event: Event, task: TaskContext) -> None:
            seen.append(event.action)

    m = machine_with(Observer(), Early())
    task = await m.start_task("t")
    assert task.state == TaskState.RUNNING and m.observer_errors == 1
    assert seen == []  # pluggy calls nothing inside a wrapper that failed to start


async def test_four_eyes_by_severity_applies_when_another_assessor_raised_it() -> None:
    """A scorer raises a medium request to critical; four eyes at critical must then apply."""
    from hitl_core.policies import parse_config

    class Risk:
        @hookimpl
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any]:
            return {"severity": "critical"}

    class Crashing:
        @hookimpl
        def hitl_assess(self, task: TaskContext, interrupt: InterruptPoint) -> None:
            raise ValueError("scorer bug")

    config = parse_config('[deadlines]\nsweep = false\n[authorization]\nfour_eyes = ["critical"]\n')
    for scorer in (Risk(), Crashing()):
        m = HITLStateMachine("memory://", plugins=[scorer], load_entrypoints=False, config=config)
        await m.start_task("t")
        task = await m.request_approval("t", "why", severity="medium")
        assert task.interrupt_point is not None
        assert (task.interrupt_point.severity, task.interrupt_point.required_approvals) == (Severity.CRITICAL, 2)
        assert (await m.approve("t", "alice")).state == TaskState.AWAITING_APPROVAL
        await m.close()
