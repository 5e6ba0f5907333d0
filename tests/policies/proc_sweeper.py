"""Run as its own OS process by test_deadlines.py: a machine with a hitl.toml whose sweeper runs.

    python proc_sweeper.py URL CONFIG GO_FILE SECONDS

Waits for GO_FILE to exist (so that both sweepers start together), lets the machine's background
sweeper run for SECONDS, then prints one JSON line: the tasks this process expired and escalated.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from hitl_core import Event, HITLStateMachine, TaskContext, hookimpl
from hitl_core.policies import load_config


async def main(url: str, config_path: str, go_file: str, seconds: float) -> None:
    config = load_config(config_path)
    machine = HITLStateMachine(url, load_entrypoints=False, config=config)
    assert machine.policies is not None and machine.policies.sweeper is not None
    sweeper = machine.policies.sweeper
    expired: list[str] = []
    escalated: list[str] = []

    class Committed:
        """hitl_transition runs only in the process whose append committed: what this one did."""

        @hookimpl
        def hitl_transition(self, event: Event, task: TaskContext) -> None:
            if event.action == "escalate":
                escalated.append(event.task_id)
            elif event.actor is not None and event.actor.source == "timeout":
                expired.append(event.task_id)

    machine.plugins.register(Committed())
    async with machine:  # opening the store starts the sweeper
        await asyncio.sleep(seconds)
    print(
        json.dumps({"pid": os.getpid(), "expired": expired, "escalated": escalated, "errors": sweeper.errors}),
        flush=True,
    )


def wait_for(go_file: str) -> None:
    while not os.path.exists(go_file):
        time.sleep(0.005)


if __name__ == "__main__":
    wait_for(sys.argv[3])
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
