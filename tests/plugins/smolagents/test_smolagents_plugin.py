"""The entry point every hitl machine loads must not import smolagents; it refuses what cannot go back."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hitl_smolagents import CAPABILITIES

from hitl_core import HITLStateMachine, TaskState
from hitl_core.errors import NotAuthorizedError


def test_loading_the_plugin_does_not_import_smolagents() -> None:
    code = (
        "import sys, hitl_smolagents, hitl_smolagents.plugin\n"
        "from hitl_core import HITLStateMachine\n"
        "HITLStateMachine('memory://')\n"  # loads every installed entry point, ours included
        "from hitl_core.plugins import _entrypoint_plugins\n"
        "assert 'smolagents' in _entrypoint_plugins(), sorted(_entrypoint_plugins())\n"
        "print(sorted(m for m in sys.modules if m == 'smolagents' or m.startswith('smolagents.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_capabilities_say_what_the_guard_carries_back() -> None:
    assert CAPABILITIES.framework == "smolagents"
    assert CAPABILITIES.decisions == ("approve", "reject", "edit")
    assert not CAPABILITIES.cross_process_resume


async def test_an_answer_on_a_forged_smolagents_task_is_refused_by_the_entry_point() -> None:
    machine = HITLStateMachine("memory://")  # loads the adapters' entry points, this one included
    await machine.start_task("t", framework="smolagents")
    # Forged through the public API: an interrupt that allows all four, respond included.
    await machine.request_approval("t", "pay?", action="transfer", args={"to": "bob"})
    with pytest.raises(NotAuthorizedError, match="smolagents adapter cannot carry 'respond' back"):
        await machine.respond("t", "sent it myself", "mallory")
    assert (await machine.get_task("t")).state is TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]
    await machine.close()
