"""What the policies cost: a request with and without a hitl.toml, one rule evaluation, one sweep.

Run with ``python benchmarks/bench_policies.py [N]`` (N waiting tasks for the sweep, default
10000). Prints a table; never pass/fail. Each figure is the best of ``REPEATS`` runs because the
2-core machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hitl_core import HITLStateMachine
from hitl_core.policies import DeadlineSweeper, evaluate, parse_config
from hitl_core.policies.config import DeadlinesConfig

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3

POLICY = (
    (ROOT / "examples" / "hitl.toml")
    .read_text(encoding="utf-8")
    .split("[notify.terminal]")[0]
    .replace('roles_file = "roles.toml"', "")
    .replace('refusals_log = "hitl-refusals.jsonl"', "")
)


def many_rules(n: int) -> str:
    filler = "".join(
        f'[[rules]]\nid = "r{i}"\ndecision = "deny"\naction = "tool_{i}_*"\nargs = {{ amount = {{ gt = {i} }} }}\n'
        for i in range(n)
    )
    return filler + '[[rules]]\nid = "last"\ndecision = "allow"\naction = "web_search"\n'


async def best(run: Callable[[], Awaitable[float]]) -> float:
    return min([await run() for _ in range(REPEATS)])


async def requests_per_second(config: Any, n: int, action: str) -> float:
    async def once() -> float:
        machine = HITLStateMachine("memory://", load_entrypoints=False, config=config)
        async with machine:
            for i in range(n):
                await machine.start_task(f"t{i}", agent="billing-bot")
            start = time.perf_counter()
            for i in range(n):
                await machine.request_approval(
                    f"t{i}", "why", action=action, args={"query": "x", "amount": 5}, severity="high"
                )
            return time.perf_counter() - start

    return n / await best(once)


ADVERSARIAL_RULE = (
    '[[rules]]\nid = "no-deletes"\ndecision = "deny"\n'
    "args = { statement = { regex = '(?i)(delete|drop)\\s.*from.*where' } }\n"
)
ADVERSARIAL_ARGS = {"statement": ("delete from " * 1000)[:12_000]}  # cubic for a backtracking engine


def rule_evaluations_per_second(
    rules_toml: str, action: str, n: int = 20000, args: dict[str, Any] | None = None
) -> float:
    rules = parse_config(rules_toml).rules
    args = args if args is not None else {"query": "x", "amount": 5}
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n):
            evaluate(rules, action, args, "research-1", "low", explain=False)
        timings.append(time.perf_counter() - start)
    return n / min(timings)


async def sweep_ms(url: str, n: int) -> tuple[float, float]:
    """A sweep over n waiting tasks whose deadlines are far away: the steady state (nothing changed
    since the last sweep: an incremental read and a pass over the deadline index), and the first
    sweep (a full read of the waiting tasks, as every ``rescan_interval``)."""
    machine = HITLStateMachine(url, load_entrypoints=False)
    async with machine:
        for i in range(n):
            await machine.start_task(f"w{i}")
            await machine.request_approval(f"w{i}", "why", timeout=3600)
        sweeper = DeadlineSweeper(machine, DeadlinesConfig(warn_before=0))
        timings = []
        for _ in range(REPEATS + 1):
            start = time.perf_counter()
            await sweeper.sweep_once()
            timings.append(time.perf_counter() - start)
    return min(timings[1:]) * 1000, timings[0] * 1000


async def main(n: int) -> None:
    print(
        f"hitl policies benchmark — Python {platform.python_version()}, {platform.machine()}; "
        f"best of {REPEATS}; a shared 2-core machine, so figures are noisy"
    )
    print()
    rows: list[tuple[str, str]] = []
    base = await requests_per_second(None, 2000, "web_search")
    rows.append(("request_approval, no config", f"{base:,.0f} /s"))
    asked = await requests_per_second(parse_config(POLICY), 2000, "deploy")
    rows.append(("request_approval, example hitl.toml, a person decides", f"{asked:,.0f} /s"))
    auto = await requests_per_second(
        parse_config(POLICY.replace('severity = ["low", "medium"]', "")), 2000, "web_search"
    )
    rows.append(("request_approval + auto-approval by a rule", f"{auto:,.0f} /s"))
    rows.append(
        ("rule evaluation, 4 rules (match on rule 2)", f"{rule_evaluations_per_second(POLICY, 'web_search'):,.0f} /s")
    )
    rows.append(
        (
            "rule evaluation, 201 rules (match on the last)",
            f"{rule_evaluations_per_second(many_rules(200), 'web_search'):,.0f} /s",
        )
    )
    rows.append(
        (
            "rule evaluation, (?i)(delete|drop)\\s.*from.*where vs 12 kB adversarial arg",
            f"{rule_evaluations_per_second(ADVERSARIAL_RULE, 'sql', 2000, ADVERSARIAL_ARGS):,.0f} /s",
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        for url in ("memory://", f"sqlite:///{tmp}/bench.db"):
            steady, first = await sweep_ms(url, n)
            rows.append(
                (
                    f"one sweep over {n:,} waiting tasks, {url.split(':')[0]}",
                    f"{steady:,.1f} ms (full read {first:,.1f} ms)",
                )
            )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 28}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))
