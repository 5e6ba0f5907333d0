"""Loading the adapters (as every machine does, through the entry points) must not import their frameworks."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("langgraph", "langchain", "langchain_core", "pydantic_ai")


@pytest.mark.parametrize("package", ["hitl_langgraph", "hitl_pydantic_ai"])
def test_importing_the_adapter_and_its_plugin_loads_no_framework(package: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({package!r})\n"
        f"importlib.import_module({package + '.plugin'!r})\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_machine_loading_every_entry_point_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from hitl_core import HITLStateMachine\n"
        "machine = HITLStateMachine('memory://')\n"
        "names = dict(machine.plugins.pm.list_name_plugin())\n"
        "assert 'langgraph' in names and 'pydantic_ai' in names, sorted(names)\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
