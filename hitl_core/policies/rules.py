"""Auto-decision rules: allow / ask / deny, first match wins, explained on request.

A rule matches on the action's name, the agent, the severity and the action's arguments (a
glob, a literal or a predicate per field). ``allow`` approves and ``deny`` rejects at once,
recorded as ``Decision(type="policy")`` by actor ``policy:<rule-id>``; ``ask`` (and no match)
leaves the request to a person. A person's pause (kind ``review``) is never decided by a rule.

The arguments are agent-supplied, so matching them must not be a way to stall the process:

* ``regex`` is RE2 (``google-re2``): linear in the text, no backtracking. Patterns RE2 cannot
  take (backreferences, lookaround) are refused when the config loads (``config.compile_regex``).
* No text longer than ``MAX_MATCHED_CHARS`` is matched (glob or regex). A rule that would have
  to match one cannot be decided, and then no rule decides: a person does. Never allow, because
  a deny rule that could not look must not let the call through.
* A request whose tested text is over ``INLINE_CHARS`` is evaluated on a worker thread (RE2
  releases the GIL while it matches), so the event loop and every other agent on it keep going;
  after ``EVALUATION_TIMEOUT`` seconds a person decides.
"""

from __future__ import annotations

import asyncio
import logging
import reprlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..hookspecs import hookimpl
from ..models import Actor, Decision, DecisionType, InterruptKind, InterruptPoint, Severity, TaskContext
from .config import ArgPredicate, RuleConfig, compile_regex

log = logging.getLogger("hitl.policies.rules")

#: Longest text (in characters) a glob or regex is matched against: 1 MiB. RE2 scans that in a
#: few milliseconds; a longer argument leaves the decision to a person.
MAX_MATCHED_CHARS = 1 << 20
#: Requests whose arguments hold more than this many characters (and elements) are evaluated on a
#: worker thread rather than on the event loop.
INLINE_CHARS = 4096
#: Seconds a worker-thread evaluation may take before a person decides instead.
EVALUATION_TIMEOUT = 5.0

_MISSING = object()
_NO = "no"
# Its own two threads: a burst of huge requests must not occupy the loop's default executor,
# which the stores use.
_executor: ThreadPoolExecutor | None = None
# The last text encoded for RE2 and its bytes: 200 rules on one 1 MiB argument encode it once.
# One tuple, swapped whole, so two threads at worst encode twice.
_last_encoded: tuple[str, bytes] = ("", b"")


class _Undecidable(Exception):
    """A condition that cannot be tested (its text is over ``MAX_MATCHED_CHARS``)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Which rule decided (None: no rule matched) and, per rule checked, why it did not match.

    ``undecided`` says why no rule could decide (a text too long to match, an evaluation that
    took too long); the decision is then "ask", whatever the rules would have said.
    """

    rule: RuleConfig | None
    checked: tuple[tuple[str, str], ...]  # (rule id, why it did not match)
    undecided: str | None = None

    @property
    def decision(self) -> str:
        return self.rule.decision if self.rule is not None else "ask"


def _text(value: Any, what: str) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_MATCHED_CHARS:
        raise _Undecidable(f"{what} is {len(text):,} characters, over the {MAX_MATCHED_CHARS:,} a rule matches")
    return text


def _encoded(text: str) -> bytes:
    """UTF-8 for RE2, a lone surrogate as "?" (which "." matches) rather than an error."""
    global _last_encoded
    last = _last_encoded
    if last[0] is text:
        return last[1]
    data = text.encode("utf-8", "replace")
    _last_encoded = (text, data)
    return data


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 40


def _short(value: Any) -> str:
    """``repr`` for an explanation, cut in the middle (``reprlib``): an agent's 1 MB argument must
    neither flood the terminal nor cost a full ``repr`` for each rule it fails."""
    return _REPR.repr(value)


def _globs(patterns: str | list[str], value: str, what: str) -> bool:
    text = _text(value, what)
    return any(fnmatchcase(text, p) for p in ([patterns] if isinstance(patterns, str) else patterns))


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


def _predicate_fails(p: ArgPredicate, value: Any, what: str) -> str | None:
    """None when ``value`` passes every operator of ``p``, else what failed."""
    present = value is not _MISSING
    if p.exists is not None and p.exists != present:
        return "is missing" if p.exists else "is present"
    if not present:
        return None if p.model_fields_set == {"exists"} else "is missing"
    fields = p.model_fields_set
    if "eq" in fields and value != p.eq:
        return f"{_short(value)} != {p.eq!r}"
    if "ne" in fields and value == p.ne:
        return f"{_short(value)} == {p.ne!r}"
    for op, bound in (("lt", p.lt), ("le", p.le), ("gt", p.gt), ("ge", p.ge)):
        if op in fields:
            number = _number(value)
            if number is None:
                return f"{_short(value)} is not a number"
            assert bound is not None
            ok = {"lt": number < bound, "le": number <= bound, "gt": number > bound, "ge": number >= bound}[op]
            if not ok:
                return f"{_short(value)} is not {op} {bound:g}"
    if p.in_ is not None and value not in p.in_:
        return f"{_short(value)} is not one of {p.in_!r}"
    if p.not_in is not None and value in p.not_in:
        return f"{_short(value)} is one of {p.not_in!r}"
    if p.glob is not None and not fnmatchcase(_text(value, what), p.glob):
        return f"{_short(value)} does not match {p.glob!r}"
    if p.regex is not None and compile_regex(p.regex).search(_encoded(_text(value, what))) is None:
        return f"{_short(value)} does not match /{p.regex}/"
    return None


def why_not(
    rule: RuleConfig, action: str, args: dict[str, Any], agent: str, severity: Severity, explain: bool = True
) -> str | None:
    """None when ``rule`` matches the request, else the first condition that did not (just
    ``"no"`` unless ``explain``: building the explanation costs more than the match).
    Raises ``_Undecidable`` when a condition's text is over ``MAX_MATCHED_CHARS``."""
    if not _globs(rule.action, action, "the action name"):
        return f"action {_short(action)} does not match {rule.action!r}" if explain else _NO
    if not _globs(rule.agent, agent, "the agent name"):
        return f"agent {_short(agent)} does not match {rule.agent!r}" if explain else _NO
    if rule.severity is not None:
        wanted = [rule.severity] if isinstance(rule.severity, Severity) else rule.severity
        if severity not in wanted:
            return f"severity {severity.value} is not {'/'.join(s.value for s in wanted)}" if explain else _NO
    for field, test in rule.args.items():
        value = _lookup(args, field)
        if isinstance(test, ArgPredicate):
            failed = _predicate_fails(test, value, f"args.{field}")
        elif value is _MISSING:
            failed = "is missing"
        elif isinstance(test, str):
            matched = fnmatchcase(_text(value, f"args.{field}"), test)
            failed = None if matched else f"{_short(value)} does not match {test!r}"
        else:
            failed = (
                None
                if (value == test and type(value) is type(test))
                or (_number(value) is not None and _number(test) == _number(value))
                else f"{_short(value)} != {test!r}"
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
    """The first rule that matches, and (``explain``) why each rule before it did not.

    A rule that cannot be tested (a text over ``MAX_MATCHED_CHARS``) stops the evaluation with
    no rule and ``undecided`` set: the rules after it must not decide what it might have denied.
    """
    severity = Severity(severity)
    checked: list[tuple[str, str]] = []
    for rule in rules:
        try:
            failed = why_not(rule, action, args, agent, severity, explain)
        except _Undecidable as exc:
            return Verdict(None, tuple(checked), undecided=f"rule {rule.id}: {exc}")
        if failed is None:
            return Verdict(rule, tuple(checked))
        if explain:
            checked.append((rule.id, failed))
    return Verdict(None, tuple(checked))


def _over(value: Any, budget: int) -> int:
    """What is left of ``budget`` after counting ``value``'s characters and elements (negative:
    over). Walks lazily and stops once over, so the walk itself costs at most ``budget`` steps
    however large the arguments are."""
    stack = [iter((value,))]
    while stack:
        item = next(stack[-1], _MISSING)
        if item is _MISSING:
            stack.pop()
            continue
        budget -= 1
        if isinstance(item, str):
            budget -= len(item)
        elif isinstance(item, dict):
            stack.append(iter(item.items()))
        elif isinstance(item, (list, tuple)):
            stack.append(iter(item))
        if budget < 0:
            break
    return budget


def _worker() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hitl-rules")
    return _executor


async def evaluate_async(
    rules: list[RuleConfig],
    action: str,
    args: dict[str, Any],
    agent: str = "",
    severity: Severity | str = Severity.MEDIUM,
    *,
    explain: bool = False,
    timeout: float = EVALUATION_TIMEOUT,
) -> Verdict:
    """``evaluate`` without holding up the event loop: small requests (``INLINE_CHARS``) in place,
    larger ones on a worker thread. One that takes over ``timeout`` seconds is left to a person
    (``undecided`` says so); the thread finishes on its own, bounded by ``MAX_MATCHED_CHARS``."""
    if _over([action, agent, args], INLINE_CHARS) >= 0:
        return evaluate(rules, action, args, agent, severity, explain=explain)
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(_worker(), lambda: evaluate(rules, action, args, agent, severity, explain=explain))
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return Verdict(None, (), undecided=f"the rules took over {timeout:g}s to evaluate")


class RulesPlugin:
    """``hitl_auto_decide`` from the ``[[rules]]`` of a ``hitl.toml``."""

    def __init__(self, rules: list[RuleConfig], *, timeout: float = EVALUATION_TIMEOUT) -> None:
        self.rules = rules
        self.timeout = timeout
        #: Requests no rule could decide (text too long, too slow): each went to a person.
        self.undecided = 0

    @hookimpl
    async def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
        if interrupt.kind is InterruptKind.REVIEW:
            return None
        action = interrupt.action
        verdict = await evaluate_async(
            self.rules,
            action.name if action else "",
            action.args if action else {},
            task.agent or "",
            interrupt.severity,
            timeout=self.timeout,
        )
        if verdict.undecided is not None:
            self.undecided += 1
            log.warning("task %r: no rule could decide, a person will (%s)", task.task_id, verdict.undecided)
            return None
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
