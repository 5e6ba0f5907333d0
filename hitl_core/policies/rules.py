"""Auto-decision rules: allow / ask / deny, first match wins, explained on request.

A rule matches on the action's name, the agent, the severity and the action's arguments (a
glob, a literal or a predicate per field). ``allow`` approves and ``deny`` rejects at once,
recorded as ``Decision(type="policy")`` by actor ``policy:<rule-id>``; ``ask`` (and no match)
leaves the request to a person. A person's pause (kind ``review``) is never decided by a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..hookspecs import hookimpl
from ..models import Actor, Decision, DecisionType, InterruptKind, InterruptPoint, Severity, TaskContext
from .config import ArgPredicate, RuleConfig

_MISSING = object()
_NO = "no"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Which rule decided (None: no rule matched) and, per rule checked, why it did not match."""

    rule: RuleConfig | None
    checked: tuple[tuple[str, str], ...]  # (rule id, why it did not match)

    @property
    def decision(self) -> str:
        return self.rule.decision if self.rule is not None else "ask"


def _globs(patterns: str | list[str], value: str) -> bool:
    return any(fnmatchcase(value, p) for p in ([patterns] if isinstance(patterns, str) else patterns))


def _lookup(args: dict[str, Any], dotted: str) -> Any:
    value: Any = args
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _predicate_fails(p: ArgPredicate, value: Any) -> str | None:
    """None when ``value`` passes every operator of ``p``, else what failed."""
    present = value is not _MISSING
    if p.exists is not None and p.exists != present:
        return "is missing" if p.exists else "is present"
    if not present:
        return None if p.model_fields_set == {"exists"} else "is missing"
    fields = p.model_fields_set
    if "eq" in fields and value != p.eq:
        return f"{value!r} != {p.eq!r}"
    if "ne" in fields and value == p.ne:
        return f"{value!r} == {p.ne!r}"
    for op, bound in (("lt", p.lt), ("le", p.le), ("gt", p.gt), ("ge", p.ge)):
        if op in fields:
            number = _number(value)
            if number is None:
                return f"{value!r} is not a number"
            assert bound is not None
            ok = {"lt": number < bound, "le": number <= bound, "gt": number > bound, "ge": number >= bound}[op]
            if not ok:
                return f"{value!r} is not {op} {bound:g}"
    if p.in_ is not None and value not in p.in_:
        return f"{value!r} is not one of {p.in_!r}"
    if p.not_in is not None and value in p.not_in:
        return f"{value!r} is one of {p.not_in!r}"
    if p.glob is not None and not fnmatchcase(str(value), p.glob):
        return f"{value!r} does not match {p.glob!r}"
    if p.regex is not None and re.search(p.regex, str(value)) is None:
        return f"{value!r} does not match /{p.regex}/"
    return None


def why_not(
    rule: RuleConfig, action: str, args: dict[str, Any], agent: str, severity: Severity, explain: bool = True
) -> str | None:
    """None when ``rule`` matches the request, else the first condition that did not (just
    ``"no"`` unless ``explain``: building the explanation costs more than the match)."""
    if not _globs(rule.action, action):
        return f"action {action!r} does not match {rule.action!r}" if explain else _NO
    if not _globs(rule.agent, agent):
        return f"agent {agent!r} does not match {rule.agent!r}" if explain else _NO
    if rule.severity is not None:
        wanted = [rule.severity] if isinstance(rule.severity, Severity) else rule.severity
        if severity not in wanted:
            return f"severity {severity.value} is not {'/'.join(s.value for s in wanted)}" if explain else _NO
    for field, test in rule.args.items():
        value = _lookup(args, field)
        if isinstance(test, ArgPredicate):
            failed = _predicate_fails(test, value)
        elif value is _MISSING:
            failed = "is missing"
        elif isinstance(test, str):
            failed = None if fnmatchcase(str(value), test) else f"{value!r} does not match {test!r}"
        else:
            failed = (
                None
                if (value == test and type(value) is type(test))
                or (_number(value) is not None and _number(test) == _number(value))
                else f"{value!r} != {test!r}"
            )
        if failed is not None:
            return f"args.{field} {failed}" if explain else _NO
    return None


def evaluate(
    rules: list[RuleConfig],
    action: str,
    args: dict[str, Any],
    agent: str = "",
    severity: Severity | str = Severity.MEDIUM,
    *,
    explain: bool = True,
) -> Verdict:
    """The first rule that matches, and (``explain``) why each rule before it did not."""
    severity = Severity(severity)
    checked: list[tuple[str, str]] = []
    for rule in rules:
        failed = why_not(rule, action, args, agent, severity, explain)
        if failed is None:
            return Verdict(rule, tuple(checked))
        if explain:
            checked.append((rule.id, failed))
    return Verdict(None, tuple(checked))


class RulesPlugin:
    """``hitl_auto_decide`` from the ``[[rules]]`` of a ``hitl.toml``."""

    def __init__(self, rules: list[RuleConfig]) -> None:
        self.rules = rules

    @hookimpl
    def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
        if interrupt.kind is InterruptKind.REVIEW:
            return None
        action = interrupt.action
        verdict = evaluate(
            self.rules,
            action.name if action else "",
            action.args if action else {},
            task.agent or "",
            interrupt.severity,
            explain=False,
        )
        rule = verdict.rule
        if rule is None or rule.decision == "ask":
            return None
        outcome = "approve" if rule.decision == "allow" else "reject"
        message = rule.message or f"{'allowed' if outcome == 'approve' else 'denied'} by rule {rule.id}"
        return Decision(
            type=DecisionType.POLICY,
            outcome=outcome,
            actor=Actor(id=f"policy:{rule.id}", source="policy"),
            message=message,
        )
