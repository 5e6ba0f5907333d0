"""The entry point every hitl machine loads must not import CrewAI (seconds of import, and its telemetry)."""

from __future__ import annotations

import subprocess
import sys

from hitl_crewai import CAPABILITIES, TOOL_DECISIONS


def test_loading_the_plugin_does_not_import_crewai() -> None:
    code = (
        "import sys, hitl_crewai, hitl_crewai.plugin\n"
        "from hitl_core import HITLStateMachine\n"
        "HITLStateMachine('memory://')\n"  # loads every installed entry point, ours included
        "from hitl_core.plugins import _entrypoint_plugins\n"
        "assert 'crewai' in _entrypoint_plugins(), sorted(_entrypoint_plugins())\n"
        "print(sorted(m for m in sys.modules if m == 'crewai' or m.startswith('crewai.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_capabilities_name_every_decision_the_hooks_carry_back() -> None:
    assert CAPABILITIES.framework == "crewai"
    assert CAPABILITIES.decisions == TOOL_DECISIONS == ("approve", "reject", "edit", "respond")
    assert CAPABILITIES.cross_process_resume
