"""A console's follow path in its own process, against the ``hitl serve`` named by HITL_STORE.

``proof_follower.py`` runs what the console's ``_follow_store`` runs: ``machine.store.follow(0)``
(the server's SSE stream, resumed from the last seq after a dropped connection) and, for each
event, ``store.get`` of its task. It prints one JSON line per event: ``{"seq", "task_id",
"action", "version"}``; the test compares them with the store's log.
"""

from __future__ import annotations

import asyncio
import json

from hitl_core import HITLStateMachine


async def main() -> None:
    machine = HITLStateMachine()
    print(f"machine {type(machine).__name__}", flush=True)
    async for event in machine.store.follow(0):
        record = await machine.store.get(event.task_id)
        line = {"seq": event.seq, "task_id": event.task_id, "action": event.action, "version": event.version}
        line["read_version"] = record.version if record is not None else None
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
