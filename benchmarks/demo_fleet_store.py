"""A store with a few minutes of ``hitl demo`` in it, for the README's stats pictures.

``python benchmarks/demo_fleet_store.py PATH [--seconds 120]`` runs the demo's fleet
(``hitl_tui.fleet.Fleet`` under the demo's policy: deadlines, escalations, four eyes, rules) on
a SQLite file, with three simulated operators deciding what waits: alice reads carefully, bob
is quicker, and "speedy" approves within half a second — the rubber stamp ``hitl stats`` flags.
Then ``hitl --store sqlite:///PATH stats --png docs/stats.png`` draws it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_core.policies.demo import DEMO_COLLEAGUE, demo_config
from hitl_tui.fleet import Fleet

#: operator -> (seconds before they decide: low, high; share of rejections)
OPERATORS = {"alice": (8.0, 30.0, 0.2), "bob": (4.0, 15.0, 0.1), "speedy": (0.2, 0.6, 0.0)}


async def operator(machine: HITLStateMachine, name: str, rng: random.Random, claimed: set[str]) -> None:
    """Take a waiting task nobody else has taken, look at it for a while, decide."""
    low, high, reject_share = OPERATORS[name]
    while True:
        waiting = [t for t in await machine.get_tasks_by_state(TaskState.AWAITING_APPROVAL) if t.task_id not in claimed]
        # speedy is on call only now and then; alice and bob work the queue
        if not waiting or (name == "speedy" and rng.random() < 0.7):
            await asyncio.sleep(1.0)
            continue
        task = rng.choice(waiting)
        claimed.add(task.task_id)
        try:
            await asyncio.sleep(rng.uniform(low, high))
            ip = task.interrupt_point
            if ip is None:
                continue
            with contextlib.suppress(HITLError):
                if ip.kind.value == "question" and "respond" in ip.allowed_decisions:
                    await machine.respond(
                        task.task_id, "yes, go ahead", name, interrupt_id=ip.interrupt_id, source="console"
                    )
                elif rng.random() < reject_share and "reject" in ip.allowed_decisions:
                    await machine.reject(task.task_id, name, "not like this", interrupt_id=ip.interrupt_id)
                elif "approve" in ip.allowed_decisions:
                    await machine.approve(task.task_id, name, interrupt_id=ip.interrupt_id, source="console")
        finally:
            claimed.discard(task.task_id)


async def run(path: Path, seconds: float) -> None:
    machine = HITLStateMachine(f"sqlite:///{path}", config=demo_config("alice"), load_entrypoints=False)
    async with machine:
        fleet = Fleet(machine, agents=10, rate=2.0)
        fleet.colleague = DEMO_COLLEAGUE
        rng = random.Random(3)
        claimed: set[str] = set()
        jobs = [asyncio.create_task(fleet.run())]
        jobs += [
            asyncio.create_task(operator(machine, name, random.Random(rng.random()), claimed)) for name in OPERATORS
        ]
        await asyncio.sleep(seconds)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    asyncio.run(run(args.path, args.seconds))
    print(f"wrote {args.path}")


if __name__ == "__main__":
    main()
