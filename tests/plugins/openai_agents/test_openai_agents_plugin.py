"""The entry point every hitl machine loads must not import the Agents SDK."""

from __future__ import annotations

import subprocess
import sys

from hitl_openai_agents import CAPABILITIES


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys, hitl_openai_agents, hitl_openai_agents.plugin\n"
        "from hitl_core import HITLStateMachine\n"
        "HITLStateMachine('memory://')\n"  # loads every installed entry point, ours included
        "from hitl_core.plugins import _entrypoint_plugins\n"
        "assert 'openai_agents' in _entrypoint_plugins(), sorted(_entrypoint_plugins())\n"
        "print(sorted(m for m in sys.modules if m in ('agents', 'openai') or m.startswith(('agents.', 'openai.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_capabilities_offer_only_what_the_sdk_can_apply() -> None:
    assert CAPABILITIES.framework == "openai-agents"
    assert CAPABILITIES.decisions == ("approve", "reject")
    assert "edit" not in CAPABILITIES.decisions and "respond" not in CAPABILITIES.decisions
    assert CAPABILITIES.cross_process_resume
