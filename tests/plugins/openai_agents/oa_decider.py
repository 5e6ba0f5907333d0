"""A stand-in console in its own OS process: decides every pending task of a store (hitl_core only).

    python oa_decider.py <store-url> <approve|reject> [reason]

Prints one JSON line with its pid and the tasks it decided. It imports no agent framework, so it
starts fast even on a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from hitl_core import HITLStateMachine


async def decide(store: str, kind: str, reason: str | None) -> dict[str, Any]:
    machine = HITLStateMachine(store, load_entrypoints=False)
    decided: list[str] = []
    try:
        while not decided:
            for task in await machine.get_pending_approvals():
                if kind == "approve":
                    await machine.approve(task.task_id, "console-user", source="console")
                else:
                    await machine.reject(task.task_id, "console-user", reason, source="console")
                decided.append(task.task_id)
            if not decided:
                await asyncio.sleep(0.05)
    finally:
        await machine.close()
    return {"pid": os.getpid(), "decided": decided}


if __name__ == "__main__":
    argv = sys.argv[1:]
    print(json.dumps(asyncio.run(decide(argv[0], argv[1], argv[2] if len(argv) > 2 else None))), flush=True)
