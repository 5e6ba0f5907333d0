"""An agent process for the cross-process tests: ``python lg_agent_process.py run|start STORE THREAD``.

``run`` blocks until the graph is done (decisions come from other processes) and prints its
output as JSON; ``start`` runs to the first pause, prints the pending task ids, and exits.
"""

from __future__ import annotations

import json
import sys

from hitl_langgraph import GraphApprovals
from lg_support import DONE, graph_from_env

from hitl_core import HITLStateMachine


def main() -> int:
    mode, store, thread = sys.argv[1:4]
    adapter = GraphApprovals(HITLStateMachine(store), agent=f"agent-{mode}")
    config = {"configurable": {"thread_id": thread}}
    graph = graph_from_env()
    if mode == "run":
        out = adapter.run(graph, {"answers": []}, config, wait_timeout=60)
        print(json.dumps({"answers": out["answers"], "done": DONE}), flush=True)
    else:
        paused = adapter.start(graph, {"answers": []}, config)
        print(json.dumps({"done": paused.done, "task_ids": paused.task_ids}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
