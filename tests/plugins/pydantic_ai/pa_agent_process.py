"""An agent process for the cross-process tests: ``python pa_agent_process.py run|start|resume STORE RUN_ID``.

``run`` blocks until the run is done (decisions come from other processes); ``start`` runs to the
first pause and exits; ``resume`` continues a run another process paused. Each prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from hitl_pydantic_ai import AgentApprovals, PausedRun
from pa_support import DONE, SEEN, support_agent

from hitl_core import HITLStateMachine


async def main() -> int:
    mode, store, run_id = sys.argv[1:4]
    adapter = AgentApprovals(HITLStateMachine(store), agent=f"support-{mode}")
    agent = support_agent(("refund", {"order": "A-1001", "amount": 500}), ("close_account", {"customer": "c-9"}))
    if mode == "run":
        result = await adapter.run(agent, "refund and close", run_id=run_id, wait_timeout=60)
    elif mode == "start":
        result = await adapter.start(agent, "refund and close", run_id=run_id)
    else:
        result = await adapter.resume(agent, run_id, wait=False)
    if isinstance(result, PausedRun):
        print(json.dumps({"paused": result.task_ids}), flush=True)
    else:
        print(
            json.dumps({"output": result.output, "done": DONE, "seen": {k: str(v[0]) for k, v in SEEN.items()}}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
