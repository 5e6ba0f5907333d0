"""The entry point hitl loads (group ``hitl``, name ``openai_agents``).

Every ``HITLStateMachine`` in every process loads it, most of them in programs that never touch
the Agents SDK, so it imports nothing from the SDK and implements no hook: it only names what
this adapter can carry back.
"""

from __future__ import annotations

from . import CAPABILITIES, FRAMEWORK

__all__ = ["CAPABILITIES", "FRAMEWORK"]
