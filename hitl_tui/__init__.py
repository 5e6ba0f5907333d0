"""hitl_tui: the operator console (Textual). Public: ``ConsoleApp``, ``ConsolePlugin``, ``Fleet``.

Imports only ``hitl_core``'s public API (plus ``hitl_core.records`` for the store's row type),
Textual and Rich. ``hitl console`` and ``hitl demo`` are registered by ``hitl_tui.commands``
(entry point ``console``, group ``hitl``) and start it through ``hitl_tui.cli``. The public names
load on first use: the ``hitl`` command line loads ``hitl_tui.commands`` on every call, and that
must not cost Textual's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import ConsoleApp, ConsolePlugin
    from .fleet import Fleet

__all__ = ["ConsoleApp", "ConsolePlugin", "Fleet"]


def __getattr__(name: str) -> Any:
    if name in ("ConsoleApp", "ConsolePlugin"):
        from . import app

        return getattr(app, name)
    if name == "Fleet":
        from .fleet import Fleet

        return Fleet
    raise AttributeError(f"module 'hitl_tui' has no attribute {name!r}")
