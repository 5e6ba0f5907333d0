"""The entry point hitl loads (group ``hitl``, name ``crewai``).

Every ``HITLStateMachine`` in every process loads it, most of them in programs that never touch
CrewAI (whose import alone takes seconds), so it imports nothing from CrewAI and implements no
hook: it only names what this adapter can carry back.
"""

from __future__ import annotations

from . import CAPABILITIES, FRAMEWORK

__all__ = ["CAPABILITIES", "FRAMEWORK"]
