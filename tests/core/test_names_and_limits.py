"""Names are printable and short, text is bounded, the whole request fits HITL_MAX_PAYLOAD_BYTES.

Each refusal is a ``PayloadError`` that names the field, the problem and the limit, raised
before anything is written. The attacker here is an agent (or whoever feeds it) calling the
public API directly.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, PayloadError, TaskState
from hitl_core.errors import AlreadyDecidedError, NotAuthorizedError, TaskNotFoundError
from hitl_core.policies import ConfigError, load_config, parse_config
from hitl_core.settings import MAX_ASSIGNEES, MAX_NAME_CHARS, MAX_OPTIONS, MAX_REASON_CHARS
from hitl_core.text import dumps, json_text, visible


@pytest.fixture
async def machine() -> Any:
    async with HITLStateMachine("memory://", load_entrypoints=False) as m:
        yield m


async def running(machine: HITLStateMachine, task_id: str = "t") -> None:
    await machine.start_task(task_id, agent="ops-bot")


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_id",
    ["deploy\nprod", "a\x1b]0;pwned\x07", "nul\x00", "del\x7f", "c1\x85", "csi\x9b2J", "cr\rfake"],
    ids=["newline", "osc", "nul", "del", "nel-c1", "csi-c1", "carriage-return"],
)
async def test_control_characters_in_task_id_are_refused(machine: HITLStateMachine, task_id: str) -> None:
    with pytest.raises(PayloadError, match=r"task id .* holds the unprintable character \\") as info:
        await machine.start_task(task_id)
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(PayloadError, match="task id"):
        await machine.create_task(task_id)
    assert await machine.get_all_tasks() == []  # nothing written


async def test_backslash_n_in_task_id_is_printable_and_accepted(machine: HITLStateMachine) -> None:
    task = await machine.start_task("deploy\\nprod")
    assert task.task_id == "deploy\\nprod" and visible(task.task_id) == "deploy\\\\nprod"


@pytest.mark.parametrize(
    "bidi", ["\u202e", "\u202a", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]
)
async def test_bidi_override_in_agent_name_is_refused(machine: HITLStateMachine, bidi: str) -> None:
    with pytest.raises(PayloadError, match=r"^agent 'evil.*' holds the unprintable character \\u") as info:
        await machine.start_task("t", agent=f"evil{bidi}gnp.exe")
    assert bidi not in str(info.value)
    assert await machine.get_task("t") is None


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041"])
async def test_zero_width_character_in_step_name_is_refused(machine: HITLStateMachine, invisible: str) -> None:
    with pytest.raises(PayloadError, match=r"^step 'dep"):
        await machine.start_task("t", step=f"dep{invisible}loy")


@pytest.mark.parametrize("field", ["framework", "run_id", "parent_id"])
async def test_control_character_in_framework_run_and_parent_ids_is_refused(
    machine: HITLStateMachine, field: str
) -> None:
    with pytest.raises(PayloadError, match=f"^{field} "):
        await machine.start_task("t", **{field: "x\x1b[2Jy"})


async def test_control_character_in_an_assignee_is_refused(machine: HITLStateMachine) -> None:
    await running(machine)
    with pytest.raises(PayloadError, match=r"^assignees\[1\] 'bo\\x1b\]0;x\\x07b' holds"):
        await machine.request_approval("t", "ok?", assignees=["alice", "bo\x1b]0;x\x07b"])
    assert (await machine.get_task("t")).state is TaskState.RUNNING  # type: ignore[union-attr]


async def test_bidi_override_in_an_option_name_is_refused(machine: HITLStateMachine) -> None:
    await running(machine)
    with pytest.raises(PayloadError, match=r"^options\[0\] 'approve\\u202e"):
        await machine.request_approval("t", "ok?", options=["approve\u202eevorppa", "reject"])


async def test_zero_width_space_in_approver_id_is_refused(machine: HITLStateMachine) -> None:
    await running(machine)
    await machine.request_approval("t", "ok?")
    with pytest.raises(PayloadError, match=r"^task 't': actor id 'ali\\u200bce' holds the unprintable character"):
        await machine.approve("t", "ali\u200bce")
    with pytest.raises(PayloadError, match="actor id"):
        await machine.reject("t", "bob\x1b[2K", "no")
    assert (await machine.get_task("t")).state is TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_control_character_in_pausing_actor_is_refused(machine: HITLStateMachine) -> None:
    await running(machine)
    with pytest.raises(PayloadError, match=r"^requested_by 'op"):
        await machine.pause("t", "op\x1b]0;x\x07", "hold on")


async def test_reason_and_message_may_hold_newlines_and_are_shown_escaped(machine: HITLStateMachine) -> None:
    # Free text is bounded, not restricted: a reason may span lines; every sink renders it.
    await running(machine)
    await machine.request_approval("t", "line one\nline two\x1b[2J")
    task = await machine.reject("t", "bob", "because\nof \x1b[31mthis")
    assert task.decision is not None and task.decision.message == "because\nof \x1b[31mthis"


# -- bounds -------------------------------------------------------------------------------------


async def test_oversized_reason_is_refused_naming_field_and_limit(machine: HITLStateMachine) -> None:
    await running(machine)
    with pytest.raises(PayloadError) as info:
        await machine.request_approval("t", "r" * (MAX_REASON_CHARS + 1))
    assert str(info.value) == (
        f"reason is {MAX_REASON_CHARS + 1:,} characters, over the limit of {MAX_REASON_CHARS:,} "
        "([limits] reason_chars in hitl.toml)"
    )
    assert (await machine.get_task("t")).state is TaskState.RUNNING  # type: ignore[union-attr]
    await machine.request_approval("t", "r" * MAX_REASON_CHARS)  # the limit itself is fine


async def test_ten_megabyte_reason_is_refused_under_a_small_payload_limit() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=1000) as machine:
        await running(machine)
        with pytest.raises(PayloadError, match=r"^reason is 10,000,000 characters, over the limit of 20,000"):
            await machine.request_approval("t", "x" * 10_000_000)
        with pytest.raises(PayloadError, match=r"is 1,\d\d\d bytes in all, over the limit of 1,000 bytes \(HITL_MAX"):
            await machine.request_approval("t", "x" * 1500)  # under reason_chars, over the whole request's bytes


async def test_whole_request_over_payload_limit_is_refused_even_when_each_part_fits() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=1000) as machine:
        await running(machine)
        part = {"blob": "x" * 400}  # each ~415 bytes: every part alone is within 1000
        with pytest.raises(PayloadError, match=r"^the request is .* bytes in all, over the limit of 1,000 bytes"):
            await machine.request_approval(
                "t", "ok?", context=part, args=part, response_schema={"description": "x" * 400}
            )
        await machine.request_approval("t", "ok?", context=part)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"options": [f"o{i}" for i in range(MAX_OPTIONS + 1)]},
            f"^options: more than {MAX_OPTIONS}, over the limit of {MAX_OPTIONS} \\(\\[limits\\] options",
        ),
        (
            {"options": ["ok", "o" * 201]},
            r"^options\[1\] is 201 characters, over the limit of 200 \(\[limits\] option_chars",
        ),
        (
            {"assignees": [f"a{i}" for i in range(MAX_ASSIGNEES + 1)]},
            f"^assignees: more than {MAX_ASSIGNEES}, over the limit of {MAX_ASSIGNEES} \\(\\[limits\\] assignees",
        ),
        (
            {"assignees": ["a" * 201]},
            r"^assignees\[0\] is 201 characters, over the limit of 200 \(\[limits\] assignee_chars",
        ),
        ({"action": "a" * 201}, r"^action name is 201 characters, over the limit of 200 \(\[limits\] name_chars"),
        ({"step": "s" * 201}, r"^task 't': step is 201 characters, over the limit of 200 \(\[limits\] name_chars"),
    ],
    ids=["option-count", "option-length", "assignee-count", "assignee-length", "action-name", "step"],
)
async def test_oversized_request_field_is_refused_naming_field_and_limit(
    machine: HITLStateMachine, kwargs: dict[str, Any], expected: str
) -> None:
    await running(machine)
    with pytest.raises(PayloadError, match=expected):
        await machine.request_approval("t", "ok?", **kwargs)
    assert (await machine.get_task("t")).state is TaskState.RUNNING  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["agent", "step", "framework", "run_id", "parent_id"])
async def test_oversized_task_name_is_refused_naming_field_and_limit(machine: HITLStateMachine, field: str) -> None:
    with pytest.raises(PayloadError, match=f"^{field} is 201 characters, over the limit of {MAX_NAME_CHARS} "):
        await machine.start_task("t", **{field: "n" * 201})
    assert await machine.get_task("t") is None


async def test_oversized_rejection_reason_is_refused_naming_field_and_limit(machine: HITLStateMachine) -> None:
    await running(machine)
    await machine.request_approval("t", "ok?")
    with pytest.raises(
        PayloadError,
        match=r"^task 't': message is 20,001 characters, over the limit of 20,000 \(\[limits\] message_chars",
    ):
        await machine.reject("t", "bob", "m" * 20_001)
    with pytest.raises(PayloadError, match="message is 10,000,000 characters"):
        await machine.approve("t", "bob", message="m" * 10_000_000)
    with pytest.raises(PayloadError, match=f"actor id is 201 characters, over the limit of {MAX_NAME_CHARS}"):
        await machine.approve("t", "b" * 201)
    assert (await machine.get_task("t")).state is TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]


# -- [limits] in hitl.toml ----------------------------------------------------------------------


async def test_limits_table_in_hitl_toml_sets_the_bounds(tmp_path: Path) -> None:
    config = tmp_path / "hitl.toml"
    config.write_text("[deadlines]\nsweep = false\n\n[limits]\nreason_chars = 10\nassignees = 1\nname_chars = 5\n")
    async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as machine:
        await machine.start_task("t", agent="bot")
        with pytest.raises(
            PayloadError, match=r"^reason is 11 characters, over the limit of 10 \(\[limits\] reason_chars"
        ):
            await machine.request_approval("t", "r" * 11)
        with pytest.raises(PayloadError, match=r"^assignees: more than 1"):
            await machine.request_approval("t", "ok?", assignees=["a", "b"])
        await machine.request_approval("t", "r" * 10, assignees=["a"])
        with pytest.raises(PayloadError, match="actor id is 6 characters, over the limit of 5"):
            await machine.approve("t", "alice2")


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("reason_chars = 0", "limits.reason_chars", "greater than 0"),
        ('options = "many"', "limits.options", "valid integer"),
        ("reason_charz = 5", "limits.reason_charz", "unknown key"),
    ],
)
def test_bad_limits_table_names_file_line_and_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    config = tmp_path / "hitl.toml"
    config.write_text(f"# limits\n\n[limits]\nmessage_chars = 100\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.line == 5 and info.value.key == key and problem in info.value.problem
    assert str(info.value).startswith(f"{config}, line 5: {key}: ")


def test_limits_table_is_optional_and_partial() -> None:
    assert parse_config("[limits]\nreason_chars = 5\n").limits.reason_chars == 5
    assert parse_config("").limits.options is None  # the default of hitl_core.settings applies


# -- rendering ----------------------------------------------------------------------------------


def _dangerous(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def test_every_control_bidi_and_invisible_character_is_made_visible() -> None:
    dangerous = [chr(c) for c in range(0x110000) if _dangerous(chr(c))]
    assert len(dangerous) > 2000  # C0, C1, the format characters, the tags, the surrogates
    shown = visible("".join(dangerous))
    assert not any(_dangerous(ch) for ch in shown)
    multi = visible("".join(dangerous), single_line=False)
    assert [ch for ch in multi if _dangerous(ch)] == ["\n"]  # only the real newline stays, in multi-line text
    json_shown = json_text(dumps("".join(dangerous)))
    assert not any(_dangerous(ch) for ch in json_shown)


def test_lookalikes_render_differently() -> None:
    pairs = [("a\nb", "a\\nb"), ("a\x1bb", "a\\x1bb"), ("a\u202eb", "a\\u202eb"), ("a\tb", "a\\tb")]
    for real, spelled in pairs:
        assert visible(real) != visible(spelled), (real, spelled)
    assert visible("a\nb") == "a\\nb" and visible("a\\nb") == "a\\\\nb"


def test_visible_clips_before_escaping_and_counts_what_it_cut() -> None:
    assert visible("\x1b" * 10_000_000, limit=3) == "\\x1b\\x1b\\x1b… (9,999,997 more characters)"
    assert visible("short", limit=10) == "short"


def test_json_escapes_parse_back_to_the_exact_string() -> None:
    original = "a\u202eb\x85c\u2066d\u200be\U000e0041f\ud800g\n\\n"
    text = dumps({"k": original})
    assert "\u202e" not in text and "\x85" not in text and "\\u202e" in text and "\\udb40\\udc41" in text
    import json

    assert json.loads(text) == {"k": original}


def test_error_messages_are_inert_whatever_built_them() -> None:
    assert "\x1b" not in str(PayloadError("caller wrote \x1b]0;x\x07 raw"))
    assert str(TaskNotFoundError("x\x1b[2J")) == "task 'x\\x1b[2J' not found"
    refusal = NotAuthorizedError("t\u202e", "bob\x07", "only (\x1b]0;x\x07)")
    assert str(refusal) == "bob\\x07 may not decide task 't\\u202e': only (\\x1b]0;x\\x07)"
    late = AlreadyDecidedError("t", "rejected", "approve", "eve\r\x1b[2K", "reject")
    assert "\r" not in str(late) and "eve\\r\\x1b[2K (reject)" in str(late)
    assert len(str(PayloadError("x" * 10_000_000))) < 5000


async def test_whitespace_in_agent_and_step_names_is_folded_not_refused(machine: HITLStateMachine) -> None:
    # A CrewAI role written as a YAML block keeps its trailing newline; it is a label, not an id.
    task = await machine.start_task("t", agent="Senior Data\nResearcher\n", step="draft\treply ", framework=" crewai")
    assert (task.agent, task.current_step, task.framework) == ("Senior Data Researcher", "draft reply", "crewai")
    assert task.history[0]["step"] == "draft reply"
    await machine.request_approval("t", "ok?", step="send\n")
    assert (await machine.get_task("t")).current_step == "send"  # type: ignore[union-attr]
    with pytest.raises(PayloadError, match=r"^run_id 'r"):  # ids are exact: refused, never tidied
        await machine.start_task("u", run_id="r\n1")


async def test_failing_is_never_refused_for_its_message(machine: HITLStateMachine) -> None:
    """An agent's failure path must land: a huge or unencodable error is clipped and escaped, not refused."""
    await machine.start_task("t1")
    task = await machine.fail("t1", "boom \ud800 " + "x" * 100_000)
    assert task.state is TaskState.FAILED
    assert task.error is not None and "\\ud800" in task.error and "more characters" in task.error
    assert len(task.error) < 100_000
