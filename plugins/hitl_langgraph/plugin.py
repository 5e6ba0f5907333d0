"""The entry point hitl loads (group ``hitl``, name ``langgraph``).

It must stay cheap: every ``HITLStateMachine`` in every process loads it, most of them in
programs that never touch LangGraph. So it imports nothing from LangGraph and implements no
hook; it only tells hitl (and ``hitl plugins``-style listings) what this adapter can carry back.
"""

from __future__ import annotations

from .capabilities import CAPABILITIES

__all__ = ["CAPABILITIES"]
