"""hitl_core must never load a UI library or an agent framework (DESIGN §1)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import hitl_core

FORBIDDEN = (
    "textual",
    "rich",
    "langgraph",
    "langchain",
    "langchain_core",
    "pydantic_ai",
    "agents",
    "crewai",
    "openai",
    "psycopg",
)


def test_importing_every_core_module_loads_no_ui_or_framework() -> None:
    modules = ["hitl_core"] + [m.name for m in pkgutil.walk_packages(hitl_core.__path__, prefix="hitl_core.")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"hitl_core loaded: {out.stdout.strip()}"
    assert len(modules) > 10
