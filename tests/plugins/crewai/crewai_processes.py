"""A command line the CrewAI cross-process tests run as separate OS processes.

    python crewai_processes.py decide <store-url> <approve|reject|edit|respond> [text-or-json]
        decide the first pending task, as a console would (imports hitl_core only)
    python crewai_processes.py resume-flow <store-url> <flow-db> <flow-id>
        wait for the decision on the paused PublishFlow, then resume it with Flow.from_pending

Each prints one JSON line with what happened, for the test to read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from hitl_core import HITLStateMachine


def decide(machine: HITLStateMachine, kind: str, arg: str | None) -> dict[str, Any]:
    sync = machine.sync
    while not (pending := sync.get_pending_approvals()):
        time.sleep(0.05)
    task_id = pending[0].task_id
    if kind == "approve":
        sync.approve(task_id, "console-user", source="console")
    elif kind == "reject":
        sync.reject(task_id, "console-user", arg, source="console")
    elif kind == "edit":
        sync.edit(task_id, json.loads(arg or "{}"), "console-user", source="console")
    else:
        sync.respond(task_id, arg, "console-user", source="console")
    return {"pid": os.getpid(), "decided": task_id}


def resume(machine: HITLStateMachine, flow_db: str, flow_id: str) -> dict[str, Any]:
    import conftest  # noqa: F401  (telemetry and tracing off, before CrewAI is imported)
    from crewai.flow import flow_config
    from crewai.flow.persistence import SQLiteFlowPersistence
    from hitl_crewai import FlowFeedbackViaHITL, resume_flow
    from publish_flow import PublishFlow

    flow_config.hitl_provider = FlowFeedbackViaHITL(machine)
    result = resume_flow(PublishFlow, machine, flow_id, SQLiteFlowPersistence(flow_db))
    return {"pid": os.getpid(), "result": str(result)}


def main(argv: list[str]) -> dict[str, Any]:
    command, store = argv[0], argv[1]
    # Left open on purpose: the process exits right after, and the store loses nothing acknowledged.
    machine = HITLStateMachine(store, load_entrypoints=False)
    if command == "decide":
        return decide(machine, argv[2], argv[3] if len(argv) > 3 else None)
    if command == "resume-flow":
        return resume(machine, argv[2], argv[3])
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)
