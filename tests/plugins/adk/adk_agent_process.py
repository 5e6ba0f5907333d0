"""An ADK agent process for the cross-process tests.

``python adk_agent_process.py start|resume HITL_STORE SESSIONS_DB SESSION_ID``: ``start`` runs to the
first pause and exits; ``resume`` continues a run another process paused, waiting for whatever is
not decided yet (it prints ``{"resuming": …}`` first, so a test knows it is running). ADK's
sessions live in the SQLite file SESSIONS_DB (``DatabaseSessionService``), hitl's tasks in
HITL_STORE. Prints JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import sys

from adk_support import CLOSE, DONE, PAY_BOB, PAY_EVE, runner, seen
from google.adk.sessions import DatabaseSessionService
from hitl_adk import AdkApprovals, PausedRun

from hitl_core import HITLStateMachine


async def main() -> int:
    mode, store, sessions_db, session_id = sys.argv[1:5]
    adk, model = runner(
        [PAY_BOB, PAY_EVE, CLOSE], sessions=DatabaseSessionService(f"sqlite+aiosqlite:///{sessions_db}")
    )
    machine = HITLStateMachine(store)
    adapter = AdkApprovals(machine, adk, agent=f"payer-{mode}")
    if mode == "start":
        result = await adapter.start("u1", "pay bob and eve, close c-9", session_id=session_id)
    else:
        print(json.dumps({"resuming": session_id}), flush=True)
        result = await adapter.resume("u1", session_id, wait_timeout=90)
    if isinstance(result, PausedRun):
        print(json.dumps({"paused": result.task_ids, "done": DONE}), flush=True)
    else:
        print(json.dumps({"text": result.text, "done": DONE, "seen": seen(model)}), flush=True)
    await machine.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
