"""``[deadlines] allow_default_approve``: off unless the file says so, and only a TOML boolean."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, PayloadError, TaskState
from hitl_core.policies import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hitl.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_allow_default_approve_is_off_unless_the_file_says_so(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[deadlines]\nwarn_before = 10\n")).deadlines.allow_default_approve is False
    assert load_config(write(tmp_path, "")).deadlines.allow_default_approve is False
    on = load_config(write(tmp_path, "[deadlines]\nallow_default_approve = true\n"))
    assert on.deadlines.allow_default_approve is True


@pytest.mark.parametrize("value", ['"true"', '"yes"', "1"])
def test_allow_default_approve_that_is_not_a_boolean_is_refused_with_its_line(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"[deadlines]\nsweep = false\nallow_default_approve = {value}\n")
    with pytest.raises(ConfigError, match=r"line 3: deadlines\.allow_default_approve: Input should be a valid boolean"):
        load_config(path)


def test_misspelt_allow_default_approve_is_refused_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "[deadlines]\nallow_default_aprove = true\n")
    with pytest.raises(ConfigError, match=r"line 2: deadlines\.allow_default_aprove: unknown key"):
        load_config(path)


async def test_default_approve_follows_the_loaded_file(tmp_path: Path) -> None:
    for allowed in (False, True):
        path = write(tmp_path, f"[deadlines]\nsweep = false\nallow_default_approve = {str(allowed).lower()}\n")
        async with HITLStateMachine("memory://", load_entrypoints=False, config=path) as m:
            await m.start_task("t")
            if allowed:
                task = await m.request_approval("t", "why", timeout=60, default_decision="approve")
                assert task.state == TaskState.AWAITING_APPROVAL
            else:
                with pytest.raises(PayloadError, match="allow_default_approve"):
                    await m.request_approval("t", "why", timeout=60, default_decision="approve")
