"""Stores, chosen by URL: ``memory://``, ``sqlite:///path.db``, ``postgresql://…``.

Backends are registered through the ``hitl_register_stores`` hook — the built-in ones exactly
like a third-party plugin's — so ``open_store`` knows only schemes, never classes.
"""

from __future__ import annotations

from .base import Store, StoredCheckpoint, StoredTask, VerifyReport
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoredCheckpoint", "StoredTask", "VerifyReport"]
