"""Integrations that block in place: a person in front of a shell command (``hitl ask``), a
coding agent's tool call (``hitl hook claude-code``) and, in ``plugins/hitl_mcp``, any MCP client.

Each is an ``hitl_core.adapters.Adapter`` (the shared lifecycle: ask, wait with a deadline, claim
by compare-and-set, finish) plus the mapping of its caller's protocol; ``blocking.ask_in_place``
adds the one thing they share beyond the base: the caller can go away while a person decides
(Ctrl-C, SIGTERM, a client that disconnects), and then the request is withdrawn — the task is
FAILED "withdrawn by the caller", recorded, never a decision.

Nothing here imports more than ``hitl_core`` itself: ``hitl ask`` and the Claude Code hook start
a fresh interpreter for every call, so their import cost is their latency.
"""
