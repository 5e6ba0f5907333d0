"""Auto-decision rules: first match wins, allow/deny decide at once as policy:<rule>, ask leaves it to a person."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hitl_core import DecisionType, HITLStateMachine, InterruptPoint, TaskContext, TaskState, hookimpl
from hitl_core.cli import main
from hitl_core.models import Action
from hitl_core.policies import ConfigError, RulesPlugin, evaluate, load_config, parse_config
from hitl_core.policies.rules import MAX_MATCHED_CHARS

from .conftest import MachineFactory

ROOT = Path(__file__).resolve().parents[2]

RULES = """
[[rules]]
id = "no-prod-deletes"
decision = "deny"
action = "sql_execute"
args = { statement = { regex = "(?i)^\\\\s*(delete|drop)\\\\b" }, database = "prod-*" }
message = "destructive SQL on production is never run by an agent"

[[rules]]
id = "routine-search"
decision = "allow"
action = ["web_search", "read_*"]
severity = ["low", "medium"]

[[rules]]
id = "small-refunds"
decision = "allow"
action = "issue_refund"
agent = "billing-*"
args = { amount = { le = 50 }, currency = { in = ["USD", "EUR"] }, "customer.tier" = "gold" }

[[rules]]
id = "refunds-ask"
decision = "ask"
action = "issue_refund"

[[rules]]
id = "no-refunds-at-all"
decision = "deny"
action = "issue_refund"
"""


class Seen:
    """Records which requests reached a person (hitl_approval_requested)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def hitl_approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        self.asked.append(task.task_id)


async def test_deny_rule_stops_a_call_before_any_person_sees_it(configured: MachineFactory) -> None:
    seen = Seen()
    m = configured(RULES, plugins=(seen,))
    await m.start_task("t", agent="janitor")
    task = await m.request_approval(
        "t",
        "clean up",
        action="sql_execute",
        severity="low",
        args={"database": "prod-orders", "statement": "DELETE FROM orders"},
    )
    assert task.state == TaskState.REJECTED
    assert task.decision is not None and task.decision.type == DecisionType.POLICY
    assert task.decision.outcome == "reject" and task.decision.actor.id == "policy:no-prod-deletes"
    assert task.decision.message == "destructive SQL on production is never run by an agent"
    assert seen.asked == []
    assert [h["action"] for h in task.history] == ["start", "request_approval", "reject"]
    decision = await m.wait_for_decision("t", timeout=1)  # the agent is told at once, with the reason
    assert decision.actor.id == "policy:no-prod-deletes"


async def test_allow_rule_auto_approves_a_routine_task(configured: MachineFactory) -> None:
    seen = Seen()
    m = configured(RULES, plugins=(seen,))
    await m.start_task("s", agent="research-1")
    task = await m.request_approval("s", "search", action="web_search", args={"query": "x"}, severity="low")
    assert task.state == TaskState.APPROVED and task.decision is not None
    assert (task.decision.type, task.decision.outcome, task.decision.actor.id) == (
        DecisionType.POLICY,
        "approve",
        "policy:routine-search",
    )
    assert task.decision.actor.source == "policy" and seen.asked == []
    # the same action at high severity is not routine: a person decides
    await m.start_task("h", agent="research-1")
    waiting = await m.request_approval("h", "search", action="web_search", args={"query": "x"}, severity="high")
    assert waiting.state == TaskState.AWAITING_APPROVAL and seen.asked == ["h"]


async def test_ask_rule_leaves_it_to_a_person_and_first_match_wins(configured: MachineFactory) -> None:
    seen = Seen()
    m = configured(RULES, plugins=(seen,))
    await m.start_task("r", agent="billing-bot")
    big = await m.request_approval(
        "r", "refund", action="issue_refund", args={"amount": 500, "currency": "USD", "customer": {"tier": "gold"}}
    )
    # refunds-ask matches before no-refunds-at-all: the later deny never applies
    assert big.state == TaskState.AWAITING_APPROVAL and seen.asked == ["r"]
    await m.start_task("small", agent="billing-bot")
    small = await m.request_approval(
        "small", "refund", action="issue_refund", args={"amount": 20, "currency": "EUR", "customer": {"tier": "gold"}}
    )
    assert small.state == TaskState.APPROVED and small.decision.actor.id == "policy:small-refunds"


async def test_a_persons_pause_is_never_decided_by_a_rule(configured: MachineFactory) -> None:
    m = configured('[[rules]]\nid = "all"\ndecision = "deny"\n')
    await m.start_task("t")
    paused = await m.pause("t", "alice", "let me look")
    assert paused.state == TaskState.AWAITING_APPROVAL


def test_argument_predicates_and_the_explanation() -> None:
    rules = parse_config(RULES).rules
    verdict = evaluate(
        rules, "issue_refund", {"amount": 20, "currency": "GBP", "customer": {"tier": "gold"}}, "billing-bot", "medium"
    )
    assert verdict.rule is not None and verdict.rule.id == "refunds-ask"
    assert dict(verdict.checked)["small-refunds"] == "args.currency 'GBP' is not one of ['USD', 'EUR']"
    verdict = evaluate(rules, "issue_refund", {"amount": 20, "currency": "USD"}, "billing-bot")
    assert dict(verdict.checked)["small-refunds"] == "args.customer.tier is missing"
    verdict = evaluate(rules, "issue_refund", {"amount": "20", "currency": "USD"}, "billing-bot")
    assert dict(verdict.checked)["small-refunds"] == "args.amount '20' is not a number"
    verdict = evaluate(rules, "sql_execute", {"database": "staging", "statement": "DROP TABLE x"})
    assert verdict.rule is None and verdict.decision == "ask"
    assert dict(verdict.checked)["no-prod-deletes"] == "args.database 'staging' does not match 'prod-*'"
    more = parse_config(
        '[[rules]]\nid = "x"\ndecision = "allow"\n'
        "args = { dry_run = true, retries = { exists = false }, n = { gt = 1, lt = 5, ne = 3 } }\n"
    ).rules
    assert evaluate(more, "a", {"dry_run": True, "n": 2}).rule is not None
    assert evaluate(more, "a", {"dry_run": 1, "n": 2}).rule is None  # true means the boolean, not 1
    assert evaluate(more, "a", {"dry_run": True, "n": 3}).rule is None
    assert evaluate(more, "a", {"dry_run": True, "n": 2, "retries": 0}).rule is None


def test_policy_test_cli_explains_which_rule_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(RULES, encoding="utf-8")
    code = main(
        [
            "policy",
            "test",
            str(path),
            "--action",
            "issue_refund",
            "--agent",
            "billing-bot",
            "--args",
            '{"amount": 20, "currency": "USD", "customer": {"tier": "gold"}}',
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "skip  no-prod-deletes: action 'issue_refund' does not match 'sql_execute'" in out
    assert "match small-refunds" in out and "allow: approved at once, recorded as policy:small-refunds" in out
    assert main(["policy", "test", str(path), "--action", "deploy"]) == 0
    assert "no rule matches: ask (a person decides)" in capsys.readouterr().out
    assert main(["policy", "test", str(path), "--action", "x", "--args", "[1]"]) == 2
    assert "--args must be a JSON object" in capsys.readouterr().err


def test_policy_cli_names_a_broken_file_as_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "hitl.toml"
    path.write_text('[[rules]]\nid = "b"\ndecision = "maybe"\n', encoding="utf-8")
    hitl = Path(sys.executable).parent / "hitl"
    result = subprocess.run(
        [str(hitl), "policy", "test", str(path), "--action", "x"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"{path}, line 3: rules[0].decision: Input should be 'allow', 'ask' or 'deny'" in result.stderr
    ok = subprocess.run(
        [str(hitl), "policy", "check", str(ROOT / "examples" / "hitl.toml")], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and "rules        4" in ok.stdout


# -- rules cannot stall the process ---------------------------------------------------------------

CATASTROPHIC = r"(?i)(delete|drop)\s.*from.*where"
# Python's backtracking re needs about a minute for this (cubic: every "delete" x every "from" x
# the rest of the text); RE2 scans it once.
ADVERSARIAL_12KB = ("delete from " * 1000)[:12_000]


def sql_rules(pattern: str = CATASTROPHIC, before: int = 0) -> str:
    """``before`` rules that scan the whole statement and never match, then a deny on ``pattern``,
    then an allow for everything else (so a deny that cannot finish must not fall through to it)."""
    filler = "".join(
        f'[[rules]]\nid = "filler-{i}"\ndecision = "deny"\nargs = {{ statement = {{ regex = \'{pattern}{i}x\' }} }}\n'
        for i in range(before)
    )
    return (
        filler
        + f'[[rules]]\nid = "no-deletes"\ndecision = "deny"\nargs = {{ statement = {{ regex = \'{pattern}\' }} }}\n'
        + '[[rules]]\nid = "anything-else"\ndecision = "allow"\n'
    )


def test_catastrophic_regex_against_12kb_argument_is_linear() -> None:
    rules = parse_config(sql_rules()).rules
    start = time.perf_counter()
    verdict = evaluate(rules, "sql_execute", {"statement": ADVERSARIAL_12KB}, explain=False)
    took = time.perf_counter() - start
    print(f"\n{CATASTROPHIC} against {len(ADVERSARIAL_12KB):,} adversarial characters: {took * 1000:.2f} ms")
    assert took < 2.0
    assert verdict.rule is not None and verdict.rule.id == "anything-else"  # no "where": not a delete
    # and the rule still does its job on the same text when it is one
    denied = evaluate(rules, "sql_execute", {"statement": ADVERSARIAL_12KB + " WHERE 1=1"}, explain=False)
    assert denied.rule is not None and denied.rule.id == "no-deletes"


async def test_catastrophic_regex_through_the_machine_denies_in_time(configured: MachineFactory) -> None:
    m = configured(sql_rules())
    await m.start_task("t")
    task = await m.request_approval(
        "t", "clean up", action="sql_execute", args={"statement": ADVERSARIAL_12KB + " where id = 1"}
    )
    assert task.state == TaskState.REJECTED and task.decision.actor.id == "policy:no-deletes"


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [(r"(a)\1", "invalid escape sequence: \\1"), ("(?=x)", "invalid perl operator: (?=")],
)
def test_pattern_re2_cannot_take_is_refused_with_file_line_and_key(tmp_path: Path, pattern: str, refused: str) -> None:
    path = tmp_path / "hitl.toml"
    path.write_text(
        '[[rules]]\nid = "fine"\ndecision = "allow"\naction = "read_*"\n\n'
        '[[rules]]\nid = "bad"\ndecision = "deny"\n'
        f"args = {{ statement = {{ regex = '{pattern}' }} }}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert (error.path, error.line, error.key) == (str(path), 9, "rules[1].args.statement.regex")
    assert refused in error.problem and "no backreferences or lookaround" in error.problem
    assert str(error).startswith(f"{path}, line 9: rules[1].args.statement.regex: not a regular expression RE2")


def test_python_only_end_anchor_is_refused_with_the_re2_spelling() -> None:
    with pytest.raises(ConfigError, match=r"line 3: rules\[0\]\.args\.s\.regex: .*RE2 spells Python's \\Z as \\z"):
        parse_config('[[rules]]\nid = "x"\nargs = { s = { regex = "end\\\\Z" } }\ndecision = "deny"\n')


def _request(args: dict[str, object]) -> tuple[TaskContext, InterruptPoint]:
    interrupt = InterruptPoint(reason="why", action=Action(name="sql_execute", args=args), interrupt_id="i1")
    return TaskContext(task_id="t", state=TaskState.AWAITING_APPROVAL, interrupt_point=interrupt), interrupt


async def test_rule_evaluation_does_not_block_the_event_loop() -> None:
    # 100 patterns that each scan a 900 kB statement (under the 1 MiB payload limit) to its end:
    # about a second of work. On the loop it would stall every agent for all of it.
    rules = parse_config(sql_rules(before=100)).rules
    statement = ("delete from " * 75_000)[:900_000]
    task, interrupt = _request({"statement": statement + " WHERE 1=1"})
    start = time.perf_counter()
    assert evaluate(rules, "sql_execute", {"statement": statement}, explain=False).rule is not None
    blocking = time.perf_counter() - start

    plugin = RulesPlugin(rules, timeout=120)
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    decision = await plugin.hitl_auto_decide(task, interrupt)
    took = time.perf_counter() - start
    done.set()
    await ticking
    during = [t for t in ticks if start <= t <= start + took]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    print(
        f"\nevaluation {took * 1000:.0f} ms (in place, on the loop, it takes {blocking * 1000:.0f} ms); "
        f"{len(during)} ticks meanwhile, longest gap {max(gaps) * 1000:.1f} ms"
    )
    assert decision is not None and decision.actor.id == "policy:no-deletes"  # it did finish, and deny
    assert len(during) >= 3
    assert max(gaps) < min(0.3, blocking)


async def test_unfinishable_evaluation_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    from hitl_core import HITLStateMachine

    rules = parse_config(sql_rules(before=100)).rules
    args = {"statement": ("delete from " * 75_000)[:900_000] + " WHERE 1=1"}
    # A budget no evaluation of 100 patterns over 900 kB can meet: the deny never gets to answer,
    # and the allow after it must not decide in its place.
    hurried = RulesPlugin(rules, timeout=0.001)
    async with HITLStateMachine("memory://", plugins=(hurried,), load_entrypoints=False) as m:
        await m.start_task("t")
        task = await m.request_approval("t", "clean up", action="sql_execute", args=args)
        assert task.state == TaskState.AWAITING_APPROVAL and task.decision is None
        assert hurried.undecided == 1
        assert "no rule could decide, a person will (the rules took over 0.001s to evaluate)" in caplog.text
    # given the time, the same rules deny it
    async with HITLStateMachine("memory://", plugins=(RulesPlugin(rules, timeout=120),), load_entrypoints=False) as m:
        await m.start_task("t")
        task = await m.request_approval("t", "clean up", action="sql_execute", args=args)
        assert task.state == TaskState.REJECTED and task.decision.actor.id == "policy:no-deletes"


async def test_argument_longer_than_the_matched_bound_goes_to_a_person(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = parse_config(sql_rules()).rules
    plugin = RulesPlugin(rules)
    too_long = "x" * (MAX_MATCHED_CHARS + 1)  # only a machine whose payload limit was raised accepts it
    async with HITLStateMachine(
        "memory://", plugins=(plugin,), load_entrypoints=False, max_payload_bytes=4 * MAX_MATCHED_CHARS
    ) as m:
        await m.start_task("t")
        task = await m.request_approval("t", "x", action="sql_execute", args={"statement": too_long})
        assert task.state == TaskState.AWAITING_APPROVAL and plugin.undecided == 1  # not "anything-else"
    verdict = evaluate(rules, "sql_execute", {"statement": too_long})
    assert verdict.rule is None and verdict.decision == "ask"
    assert (
        verdict.undecided
        == "rule no-deletes: args.statement is 1,048,577 characters, over the 1,048,576 a rule matches"
    )
    path = tmp_path / "hitl.toml"
    path.write_text(sql_rules(), encoding="utf-8")
    code = main(["policy", "test", str(path), "--action", "sql_execute", "--args", json.dumps({"statement": too_long})])
    assert code == 0
    assert "undecided: rule no-deletes: args.statement is 1,048,577 characters" in capsys.readouterr().out


def test_regex_dialect_is_re2_whose_perl_classes_are_ascii() -> None:
    # \s is [\t\n\f\r ]: a deny rule meant to catch "DROP<any space>" must say so, or an agent's
    # non-breaking space or vertical tab walks past it.
    def matches(pattern: str, text: str) -> bool:
        config = parse_config(f'[[rules]]\nid = "r"\ndecision = "deny"\nargs = {{ s = {{ regex = \'{pattern}\' }} }}\n')
        return evaluate(config.rules, "a", {"s": text}).rule is not None

    assert matches(r"(?i)drop\s", "DROP TABLE")
    assert not matches(r"drop\s", "drop\u00a0table") and not matches(r"drop\s", "drop\vtable")
    assert matches(r"drop[\s\v\pZ]", "drop\u00a0table") and matches(r"drop[\s\v\pZ]", "drop\vtable")
    assert matches(r"(?s)drop.table", "drop\ntable") and not matches(r"drop.table", "drop\ntable")
    assert matches(r"a.b", "a\ud800b")  # a lone surrogate is a character, not a way around "."
