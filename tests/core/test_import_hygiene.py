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


def test_import_hitl_core_loads_its_public_names_on_first_use() -> None:
    """``hitl ask`` and the hook start a process per call: ``import hitl_core`` must not build the
    models or open the machine's imports before a name is used — and every public name must still
    be there, the very object its module defines."""
    code = (
        "import sys, importlib, hitl_core\n"
        "early = sorted(m for m in ('pydantic', 'hitl_core.machine', 'hitl_core.models', 'asyncio') if m in sys.modules)\n"
        "print(','.join(early))\n"
        "for name in hitl_core.__all__:\n"
        "    if name == '__version__':\n"
        "        continue\n"
        "    home = importlib.import_module('hitl_core.' + hitl_core._HOMES[name])\n"
        "    assert getattr(hitl_core, name) is getattr(home, name), name\n"
        "from hitl_core import *  # noqa\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unknown_name_of_hitl_core_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'HITLStateMachin'"):
        hitl_core.HITLStateMachin  # noqa: B018
