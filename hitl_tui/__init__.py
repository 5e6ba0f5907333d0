"""hitl_tui: the operator console (Textual). Public: ``ConsoleApp``, ``ConsolePlugin``, ``Fleet``.

Imports only ``hitl_core``'s public API (the machine's methods, never its store),
Textual and Rich. ``hitl console`` and ``hitl demo`` start it through ``hitl_tui.cli``.
"""

from .app import ConsoleApp, ConsolePlugin
from .fleet import Fleet

__all__ = ["ConsoleApp", "ConsolePlugin", "Fleet"]
