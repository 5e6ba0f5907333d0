"""The entry point hitl loads (group ``hitl``, name ``smolagents``): this adapter's one hook.

It implements ``hitl_authorize`` (``hitl_core.adapters.CapabilityGuard``): on this framework's
tasks it refuses a decision the adapter cannot carry back (``CAPABILITIES.decisions``), even when
a task's ``allowed_decisions`` were widened by hand in the store. Every ``HITLStateMachine`` in
every process loads it, most of them in programs that never touch smolagents, so it imports
nothing from the framework.
"""

from __future__ import annotations

from hitl_core.adapters import CapabilityGuard

from . import CAPABILITIES, FRAMEWORK

#: The hook implementation: a bound method of the guard, found by pluggy on this module.
hitl_authorize = CapabilityGuard(CAPABILITIES).hitl_authorize

__all__ = ["CAPABILITIES", "FRAMEWORK", "hitl_authorize"]
