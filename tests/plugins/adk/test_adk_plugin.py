"""The entry point every hitl machine loads must not import Google ADK."""

from __future__ import annotations

import subprocess
import sys

from hitl_adk import CAPABILITIES


def test_loading_the_plugin_does_not_import_adk() -> None:
    code = (
        "import sys, hitl_adk, hitl_adk.plugin\n"
        "from hitl_core import HITLStateMachine\n"
        "HITLStateMachine('memory://')\n"  # loads every installed entry point, ours included
        "from hitl_core.plugins import _entrypoint_plugins\n"
        "assert 'adk' in _entrypoint_plugins(), sorted(_entrypoint_plugins())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.adk', 'google.genai'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_capabilities_match_what_the_tests_show() -> None:
    assert CAPABILITIES.framework == "adk"
    assert CAPABILITIES.decisions == ("approve", "reject", "edit")
    assert "respond" not in CAPABILITIES.decisions
    assert CAPABILITIES.cross_process_resume
