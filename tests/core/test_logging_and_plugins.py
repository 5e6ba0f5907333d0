"""Transition logging and entry-point plugin loading."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from hitl_core import HITLStateMachine, plugins


async def test_every_transition_is_logged_with_task_id_and_action(caplog: pytest.LogCaptureFixture) -> None:
    m = HITLStateMachine("memory://", load_entrypoints=False)
    with caplog.at_level(logging.INFO, logger="hitl"):
        await m.start_task("t")
        await m.request_approval("t", "why")
        await m.approve("t", actor="alice")
    records = [r for r in caplog.records if r.name == "hitl"]
    assert [(r.task_id, r.action) for r in records] == [  # type: ignore[attr-defined]
        ("t", "start"),
        ("t", "request_approval"),
        ("t", "approve"),
    ]
    assert "by alice" in records[-1].getMessage()


def test_logging_is_silent_by_default() -> None:
    code = (
        "import asyncio; from hitl_core import HITLStateMachine\n"
        "m = HITLStateMachine(load_entrypoints=False)\n"
        "asyncio.run(m.start_task('t'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_hitl_plugins_env_limits_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "_ENTRYPOINT_CACHE", None)
    monkeypatch.setenv("HITL_PLUGINS", "")
    m = HITLStateMachine("memory://")
    names = {name for name, _ in m.plugins.pm.list_name_plugin()}
    assert names == {"hitl.builtin_stores"}
    monkeypatch.setattr(plugins, "_ENTRYPOINT_CACHE", None)


def test_a_plugin_that_fails_to_load_stops_the_machine_naming_it(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    broken = EntryPoint(name="broken_auth", value="hitl_no_such_module:plugin", group="hitl")
    monkeypatch.setattr(plugins, "_ENTRYPOINT_CACHE", None)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken])
    monkeypatch.delenv("HITL_PLUGINS", raising=False)
    with pytest.raises(plugins.HITLError, match=r"plugin 'broken_auth' .* failed to load"):
        HITLStateMachine("memory://")
    monkeypatch.setattr(plugins, "_ENTRYPOINT_CACHE", None)
