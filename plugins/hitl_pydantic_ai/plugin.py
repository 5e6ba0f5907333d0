"""The entry point hitl loads (group ``hitl``, name ``pydantic_ai``).

It must stay cheap: every ``HITLStateMachine`` in every process loads it, most of them in
programs that never touch Pydantic AI. So it imports nothing from Pydantic AI and implements no
hook; it only tells hitl what this adapter can carry back.
"""

from __future__ import annotations

from .capabilities import CAPABILITIES

__all__ = ["CAPABILITIES"]
