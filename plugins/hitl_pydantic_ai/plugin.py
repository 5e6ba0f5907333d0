"""The entry point hitl loads (group ``hitl``, name ``pydantic_ai``).

Every ``HITLStateMachine`` in every process loads it, most of them in programs that never touch
Pydantic AI, so it imports nothing from LangGraph and implements no hook: it only names what this
adapter can carry back.
"""

from __future__ import annotations

from . import CAPABILITIES, FRAMEWORK

__all__ = ["CAPABILITIES", "FRAMEWORK"]
