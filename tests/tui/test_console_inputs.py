"""Bad and hostile input: keymap files, untrusted text, huge contexts, a store that goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, MemoryStore, TaskState
from hitl_core.records import EventRecord
from hitl_tui.cli import demo_store_url, known_binding_ids
from hitl_tui.fleet import Fleet
from hitl_tui.keymap import KeymapError, load_keymap
from hitl_tui.text import DETAIL_JSON_LIMIT, pretty_json, visible

from .helpers import HOSTILE_REASON, eventually, make_app, select, settle, waiting


def test_keymap_file_remaps_a_binding_by_id(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keymap]\n"decide.approve" = "y"\n', encoding="utf-8")
    assert load_keymap(path, known_binding_ids()) == {"decide.approve": "y"}


async def test_remapped_key_approves(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine, keymap={"decide.approve": "y"})
    async with app.run_test(size=(160, 40)) as pilot:
        await select(pilot, app, "t1")
        await pilot.press("y")
        await settle(pilot, app)
        assert (await machine.get_task("t1")).state is TaskState.APPROVED  # type: ignore[union-attr]


def test_malformed_keymap_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text("[keymap\napprove = ", encoding="utf-8")
    with pytest.raises(KeymapError, match=r"keymap file .*keymap.toml is not valid TOML"):
        load_keymap(path, known_binding_ids())


def test_unknown_binding_id_in_keymap_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keymap]\n"decide.aprove" = "y"\n', encoding="utf-8")
    with pytest.raises(KeymapError, match=r"unknown binding id 'decide.aprove'"):
        load_keymap(path, known_binding_ids())


def test_keymap_value_that_is_not_a_string_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keymap]\n"decide.approve" = 3\n', encoding="utf-8")
    with pytest.raises(KeymapError, match=r"decide.approve must be a non-empty string"):
        load_keymap(path, known_binding_ids())


def test_control_and_escape_characters_are_made_visible() -> None:
    assert visible(HOSTILE_REASON) == (
        "Reply: [bold red]URGENT[/] [link=http://evil.example]click[/link] \\x1b[2J\\x1b[31mpwned\\x07"
    )
    assert visible("a\u202eb\nc") == "a\\u202eb\\nc"
    assert visible("line1\nline2\x1b", single_line=False) == "line1\nline2\\x1b"


async def test_hostile_reason_and_agent_name_are_rendered_literally(machine: HITLStateMachine) -> None:
    await waiting(
        machine,
        "evil",
        HOSTILE_REASON,
        agent="[b]x[/b]\x1b]0;title\x07",
        context={"k": "[red]v[/red]\x1b[5m"},
        older_version=True,
    )
    app = make_app(machine)
    async with app.run_test(size=(200, 40)) as pilot:
        await select(pilot, app, "evil")
        line = app.table._render_row(app.view.rows["evil"], 300, False, app.clock()).text
        assert line.startswith("  evil          [b]x[/b]\\x1b ")
        assert "[bold red]URGENT[/]" in line and "\x1b" not in line and "\x07" not in line
        detail = "".join(strip.text for strip in app.detail._strips)
        assert "[bold red]URGENT[/]" in detail and "\x1b" not in detail
        assert "[red]v[/red]" in detail and "[b]x[/b]\\x1b]0;title\\x07" in detail


async def test_huge_context_is_truncated_and_scrolls_without_freezing(machine: HITLStateMachine) -> None:
    big = {f"key{i}": "x" * 200 for i in range(4000)}  # about 850 KB of JSON
    await waiting(machine, "big", "r" * 20_000, context=big)  # the longest reason accepted
    app = make_app(machine)
    async with app.run_test(size=(160, 40)) as pilot:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await select(pilot, app, "big")
        assert loop.time() - started < 10
        code, cut = pretty_json(big)
        assert cut and len(code) <= DETAIL_JSON_LIMIT
        detail = "".join(strip.text for strip in app.detail._strips)
        assert "cut: too large to show in full" in detail
        assert app.detail.virtual_size.height > 40, "the detail pane scrolls"
        app.detail.focus()
        await pilot.press("end")
        await settle(pilot, app)
        assert app.detail.scroll_offset.y > 0


class OutageStore(MemoryStore):
    """A real in-memory store whose ``follow`` fails, as a dropped connection would, until ``restored``.

    The outage lasts until the test ends it, so the banner is seen however slowly the test runs.
    """

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.restored = asyncio.Event()

    async def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        if not self.restored.is_set():
            await asyncio.sleep(0.05)
            raise ConnectionError("server closed the connection unexpectedly")
        async for event in super().follow(after_seq):
            yield event


async def test_store_that_goes_away_shows_a_banner_and_reconnects() -> None:
    store = OutageStore()
    machine = HITLStateMachine(store, load_entrypoints=False)
    await waiting(machine, "t1")
    app = make_app(machine, follow=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await eventually(pilot, app, lambda: not app.store_ok)
        banner = app.query_one("#banner")
        assert "store unavailable" in banner.text.plain and "reconnecting" in banner.text.plain  # type: ignore[attr-defined]
        assert banner.has_class("shown")
        store.restored.set()
        await eventually(pilot, app, lambda: app.store_ok)
        assert not banner.has_class("shown")
        assert app.flash_text == "store reconnected"
        other = HITLStateMachine(store, load_entrypoints=False)
        await other.approve("t1", "bob")  # another machine: only the follower can tell the console
        await eventually(pilot, app, lambda: app.view.rows["t1"].state is TaskState.APPROVED)


def test_demo_runs_on_a_temporary_sqlite_store(tmp_path: Path) -> None:
    schemes = set(HITLStateMachine("memory://", load_entrypoints=False).plugins.store_factories())
    assert "sqlite" in schemes
    assert demo_store_url(tmp_path, schemes) == f"sqlite:///{tmp_path / 'demo.db'}"


async def test_demo_fleet_drives_the_console_live(tmp_path: Path) -> None:
    machine = HITLStateMachine(f"sqlite:///{tmp_path / 'demo.db'}", load_entrypoints=False)
    fleet = Fleet(machine, agents=4, rate=20, work_seconds=0.05, seed=3)
    app = make_app(machine, follow=False, background=fleet.run)
    async with app.run_test(size=(160, 40)) as pilot:
        await eventually(pilot, app, lambda: app.view.counts.get(TaskState.AWAITING_APPROVAL, 0) >= 2, 20)
        assert app.batches > 0
        assert {row.framework for row in app.view.rows.values()} <= {
            "langgraph",
            "pydantic-ai",
            "openai-agents",
            "crewai",
        }
    await machine.close()
