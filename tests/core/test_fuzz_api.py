"""Hostile input through every public method: each call either works or raises a ``HITLError``,
and a refused call writes nothing.

Hypothesis draws the strings (control characters, bidi overrides, lone surrogates, huge ones), the
numbers (NaN, infinities, integers past 64 bits) and the nesting an agent or a careless caller
could send. The store is a real SQLite file: a refusal that left half a transition in it, or a
value the database could not take back, shows up as a changed event count or a broken chain.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from hitl_core import HITLError, HITLStateMachine, StoreError, TaskState

# Every code point, surrogates included: Python strings can hold them, JSON encoders choke on them.
hostile_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.sampled_from(
        ["", " ", "\x1b]0;pwned\x07", "deploy\nprod", "deploy\\nprod", "\u202eevil", "a\u200bb", "\x00", "\ud800"]
    ),
    st.text(max_size=3).map(lambda s: s * 30_000),
)
hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.binary(max_size=8),
    st.just(object()),
)
hostile_json = st.recursive(
    hostile_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(hostile_text, st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)
maybe_text = st.one_of(st.none(), hostile_text, st.integers(), st.just(["a", "b"]))

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
_ids = itertools.count()


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HITLStateMachine]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "hitl.db"
    m = HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False)
    assert m.sync.get_task("opens-the-store") is None
    yield m
    assert m.sync.run(m.verify()).ok, "the hash chain broke under fuzzing"
    m.sync.close_machine()


def _count(m: HITLStateMachine) -> int:
    return m.sync.run(m.store.last_seq())


def _attempt(m: HITLStateMachine, task_id: str | None, call: Any) -> Any:
    """Run ``call``; a refusal must be a ``HITLError`` and must leave the store as it was."""
    before = _count(m)
    snapshot = m.sync.get_task(task_id) if isinstance(task_id, str) and _printable_id(task_id) else None
    try:
        return call()
    except StoreError as exc:
        pytest.fail(f"bad input got as far as the store instead of being refused at the boundary: {exc}")
    except HITLError:
        assert _count(m) == before, "a refused call wrote to the store"
        if snapshot is not None:
            assert m.sync.get_task(task_id) == snapshot, "a refused call changed the task"
        return None


def _printable_id(task_id: str) -> bool:
    try:
        task_id.encode()
    except UnicodeEncodeError:
        return False
    return True


def _waiting(m: HITLStateMachine, **kw: Any) -> str:
    task_id = f"fuzz-{next(_ids)}"
    m.sync.start_task(task_id)
    m.sync.request_approval(task_id, "may I?", **kw)
    return task_id


@FUZZ
@given(
    task_id=st.one_of(hostile_text, st.integers(), st.none()),
    metadata=st.one_of(st.none(), st.dictionaries(hostile_text, hostile_json, max_size=3), hostile_json),
    step=maybe_text,
    agent=maybe_text,
    framework=maybe_text,
    run_id=maybe_text,
)
def test_start_task_with_hostile_input_works_or_refuses_cleanly(
    machine: HITLStateMachine, task_id: Any, metadata: Any, step: Any, agent: Any, framework: Any, run_id: Any
) -> None:
    task = _attempt(
        machine,
        task_id,
        lambda: machine.sync.start_task(
            task_id, metadata, step, agent=agent, framework=framework, run_id=run_id, parent_id=None
        ),
    )
    if task is not None:
        assert machine.sync.get_task(task.task_id) == task


@FUZZ
@given(
    reason=st.one_of(hostile_text, st.integers(), st.none()),
    context=st.one_of(st.none(), hostile_json),
    options=st.one_of(st.none(), st.lists(hostile_text, max_size=4), hostile_json),
    severity=st.one_of(st.sampled_from(["low", "medium", "high", "critical"]), hostile_text),
    args=st.one_of(st.none(), st.dictionaries(hostile_text, hostile_json, max_size=3)),
    timeout=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(min_value=-5, max_value=10**12)),
    assignees=st.one_of(st.none(), st.lists(hostile_text, max_size=3)),
    required_approvals=st.integers(min_value=-3, max_value=5),
    allowed=st.one_of(st.none(), st.lists(hostile_text, max_size=3)),
    schema=st.one_of(st.none(), hostile_json),
)
def test_request_approval_with_hostile_input_works_or_refuses_cleanly(
    machine: HITLStateMachine,
    reason: Any,
    context: Any,
    options: Any,
    severity: Any,
    args: Any,
    timeout: Any,
    assignees: Any,
    required_approvals: int,
    allowed: Any,
    schema: Any,
) -> None:
    task_id = f"fuzz-{next(_ids)}"
    machine.sync.start_task(task_id)
    task = _attempt(
        machine,
        task_id,
        lambda: machine.sync.request_approval(
            task_id,
            reason,
            context,
            options,
            severity,
            args=args,
            timeout=timeout,
            assignees=assignees,
            required_approvals=required_approvals,
            allowed_decisions=allowed,
            response_schema=schema,
        ),
    )
    current = machine.sync.get_task(task_id)
    assert current is not None
    if task is None:
        assert current.state is TaskState.RUNNING
    else:
        assert current.state in (TaskState.AWAITING_APPROVAL, TaskState.APPROVED, TaskState.REJECTED)


@FUZZ
@given(
    who=maybe_text,
    text=maybe_text,
    option=maybe_text,
    edited=st.one_of(st.none(), hostile_json, st.dictionaries(hostile_text, hostile_json, max_size=3)),
    response=hostile_json,
    verb=st.sampled_from(["approve", "reject", "edit", "respond"]),
)
def test_deciding_with_hostile_input_works_or_refuses_cleanly(
    machine: HITLStateMachine, who: Any, text: Any, option: Any, edited: Any, response: Any, verb: str
) -> None:
    task_id = _waiting(machine, options=["yes", "no"], args={"n": 1})
    s = machine.sync
    calls = {
        "approve": lambda: s.approve(task_id, who, option=option, message=text),
        "reject": lambda: s.reject(task_id, who, text, option=option),
        "edit": lambda: s.edit(task_id, edited, who, message=text),
        "respond": lambda: s.respond(task_id, response, who),
    }
    task = _attempt(machine, task_id, calls[verb])
    state = s.get_task(task_id).state
    assert state is (TaskState.AWAITING_APPROVAL if task is None else task.state)


@FUZZ
@given(result=hostile_json, error=maybe_text, step=maybe_text, actor=maybe_text, reason=maybe_text)
def test_going_on_with_hostile_input_works_or_refuses_cleanly(
    machine: HITLStateMachine, result: Any, error: Any, step: Any, actor: Any, reason: Any
) -> None:
    s = machine.sync
    paused = f"fuzz-{next(_ids)}"
    s.start_task(paused)
    _attempt(machine, paused, lambda: s.pause(paused, actor, reason))
    task_id = _waiting(machine)
    s.approve(task_id, "alice")
    _attempt(machine, task_id, lambda: s.resume(task_id, step))
    if s.get_task(task_id).state is TaskState.RUNNING:
        _attempt(machine, task_id, lambda: s.complete(task_id, result))
    failing = f"fuzz-{next(_ids)}"
    s.start_task(failing)
    _attempt(machine, failing, lambda: s.fail(failing, error))


@FUZZ
@given(data=st.data())
def test_answers_drawn_from_the_response_schema_are_taken_and_others_refused(
    machine: HITLStateMachine, data: st.DataObject
) -> None:
    schema = data.draw(
        st.sampled_from(
            [
                {
                    "type": "object",
                    "properties": {
                        "env": {"enum": ["staging", "prod"]},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 9},
                    },
                    "required": ["env", "replicas"],
                    "additionalProperties": False,
                },
                {"type": "string", "minLength": 1, "maxLength": 20},
                {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
            ]
        )
    )
    good = data.draw(from_schema(schema))
    task_id = _waiting(machine, kind="question", allowed_decisions=["respond", "reject"], response_schema=schema)
    task = machine.sync.respond(task_id, good, "alice")
    assert task.approval_data is not None and task.state is TaskState.APPROVED
    bad = data.draw(hostile_json.filter(lambda v: not _fits(v, schema)))
    other = _waiting(machine, kind="question", allowed_decisions=["respond", "reject"], response_schema=schema)
    with pytest.raises(HITLError):
        _checked_respond(machine, other, bad)
    assert machine.sync.get_task(other).state is TaskState.AWAITING_APPROVAL


def _checked_respond(machine: HITLStateMachine, task_id: str, value: Any) -> None:
    before = _count(machine)
    try:
        machine.sync.respond(task_id, value, "alice")
    finally:
        assert _count(machine) == before or machine.sync.get_task(task_id).state is TaskState.APPROVED


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    """An independent check of the three schemas above, so that ``bad`` really is outside them."""
    kind = schema["type"]
    if kind == "string":
        return isinstance(value, str) and 1 <= len(value) <= 20
    if kind == "array":
        return isinstance(value, list) and len(value) <= 3 and all(isinstance(v, bool) for v in value)
    if not isinstance(value, dict) or set(value) != {"env", "replicas"}:
        return False
    replicas = value["replicas"]
    integral = (isinstance(replicas, int) and not isinstance(replicas, bool)) or (
        isinstance(replicas, float) and math.isfinite(replicas) and replicas.is_integer()
    )
    return value["env"] in ("staging", "prod") and integral and 1 <= replicas <= 9
