"""Every model round-trips through JSON losslessly (property tests)."""

from __future__ import annotations

from datetime import UTC

from hypothesis import given, settings
from hypothesis import strategies as st

from hitl_core import (
    Action,
    Actor,
    Decision,
    DecisionType,
    Event,
    InterruptKind,
    InterruptPoint,
    Severity,
    TaskContext,
    TaskState,
)

text = st.text(max_size=20)
json_scalar = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
)
json_value = st.recursive(
    json_scalar, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3), max_leaves=8
)
json_object = st.dictionaries(text, json_value, max_size=4)
aware = st.datetimes(timezones=st.just(UTC))
actors = st.builds(Actor, id=text.filter(bool), source=st.sampled_from(["api", "cli", "console", "policy"]))
actions = st.builds(Action, name=text.filter(bool), args=json_object)
interrupts = st.builds(
    InterruptPoint,
    reason=text.filter(bool),
    context=json_object,
    options=st.lists(text, max_size=3),
    severity=st.sampled_from(list(Severity)),
    created_at=aware,
    interrupt_id=text,
    kind=st.sampled_from(list(InterruptKind)),
    action=st.none() | actions,
    args_fingerprint=st.none() | text,
    allowed_decisions=st.lists(st.sampled_from(["approve", "reject", "edit", "respond"]), min_size=1, unique=True),
    response_schema=st.none() | json_object,
    deadline=st.none() | aware,
    default_decision=st.sampled_from(["approve", "reject"]),
    assignees=st.lists(text, max_size=2),
    required_approvals=st.sampled_from([1, 2]),
    requested_by=st.none() | text,
)
decisions = st.builds(
    Decision,
    type=st.sampled_from(list(DecisionType)),
    actor=actors,
    option=st.none() | text,
    message=st.none() | text,
    edited_args=st.none() | json_object,
    response=json_value,
    decided_at=aware,
    interrupt_id=st.none() | text,
    outcome=st.none() | st.sampled_from(["approve", "reject"]),
)
events = st.builds(
    Event,
    seq=st.integers(1, 10**9),
    task_id=text.filter(bool),
    version=st.integers(1, 1000),
    action=text,
    from_state=st.none() | st.sampled_from(list(TaskState)),
    to_state=st.sampled_from(list(TaskState)),
    actor=st.none() | actors,
    at=aware,
    data=json_object,
    prev_hash=text,
    hash=text,
)
contexts = st.builds(
    TaskContext,
    task_id=text.filter(bool),
    state=st.sampled_from(list(TaskState)),
    current_step=st.none() | text,
    history=st.lists(json_object, max_size=3),
    metadata=json_object,
    interrupt_point=st.none() | interrupts,
    approval_data=st.none() | json_object,
    error=st.none() | text,
    version=st.integers(0, 100),
    created_at=aware,
    updated_at=aware,
    agent=st.none() | text,
    framework=st.none() | text,
    run_id=st.none() | text,
    parent_id=st.none() | text,
    result=json_value,
    decision=st.none() | decisions,
    approvals=st.lists(decisions, max_size=2),
)


@settings(max_examples=60)
@given(st.one_of(actors, actions, interrupts, decisions, events, contexts))
def test_every_model_round_trips_through_json(model: object) -> None:
    cls = type(model)
    assert cls.model_validate_json(model.model_dump_json()) == model  # type: ignore[attr-defined]
    assert cls.from_dict(model.to_dict()) == model  # type: ignore[attr-defined]


def test_decision_approved_follows_the_outcome_for_timeouts_and_policies() -> None:
    who = Actor(id="x")
    assert Decision(type="approve", actor=who).approved
    assert Decision(type="edit", actor=who).approved
    assert Decision(type="respond", actor=who).approved
    assert not Decision(type="reject", actor=who).approved
    assert not Decision(type="timeout", actor=who, outcome="reject").approved
    assert Decision(type="policy", actor=who, outcome="approve").approved
    assert not Decision(type="policy", actor=who).approved  # no outcome never approves


def test_severity_ranks_by_risk_not_alphabet() -> None:
    assert [s.rank for s in (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)] == [0, 1, 2, 3]


def test_the_snapshot_serialisation_schema_still_lists_its_fields() -> None:
    """``TaskContext``'s wrap serialiser (it fills in a lazy history) must not hide the fields."""
    schema = TaskContext.model_json_schema(mode="serialization")
    assert {"task_id", "state", "history", "interrupt_point", "decision"} <= set(schema["properties"])
