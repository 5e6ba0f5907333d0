"""Auto-decision rules: first match wins, allow/deny decide at once as policy:<rule>, ask leaves it to a person."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import DecisionType, InterruptPoint, TaskContext, TaskState, hookimpl
from hitl_core.cli import main
from hitl_core.policies import evaluate, parse_config

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
