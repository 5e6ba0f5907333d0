"""Entry point (group ``hitl``): refuses decisions the gateway cannot carry back. Imports no ``mcp``."""

from __future__ import annotations

from hitl_core.adapters import CapabilityGuard

from . import CAPABILITIES

hitl_authorize = CapabilityGuard(CAPABILITIES).hitl_authorize
