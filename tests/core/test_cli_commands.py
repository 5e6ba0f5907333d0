"""The ``hitl`` command line is one shape: every verb comes through ``hitl_register_commands``.

hitl_core imports no UI: the console's verbs are ``hitl_tui``'s, found through its entry point.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hitl_core
from hitl_core import hookimpl
from hitl_core.cli import BUILTIN, CommandClashError, build_parser, main

UI = ("textual", "rich", "hitl_tui")


def _loaded_after(code: str, **env: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {UI!r})))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return {m for m in out.stdout.strip().split(",") if m}


def test_importing_the_cli_loads_no_ui() -> None:
    assert _loaded_after("import hitl_core.cli") == set()


def test_building_the_parser_loads_no_textual_and_only_the_console_verbs_module() -> None:
    loaded = _loaded_after("import hitl_core.cli\nhitl_core.cli.build_parser()")
    assert loaded == {"hitl_tui", "hitl_tui.commands"}, loaded


def test_building_the_parser_without_the_console_plugin_loads_nothing_of_hitl_tui() -> None:
    loaded = _loaded_after("import hitl_core.cli\nhitl_core.cli.build_parser()", HITL_PLUGINS="langgraph")
    assert loaded == set()


def test_building_the_built_in_parser_loads_no_ui() -> None:
    assert _loaded_after("import hitl_core.cli\nhitl_core.cli.build_parser(load_entrypoints=False)") == set()


def test_no_hitl_core_module_imports_hitl_tui() -> None:
    root = Path(hitl_core.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "import hitl_tui" in path.read_text() or "from hitl_tui" in path.read_text()
    ]
    assert offenders == []


def test_hitl_console_help_still_works() -> None:
    out = subprocess.run([sys.executable, "-m", "hitl_core.cli", "console", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--readonly" in out.stdout and "--store URL" in out.stdout


def test_hitl_demo_is_registered_by_the_console_plugin() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--agents", "3"])
    assert args.agents == 3 and args.handler.__module__ == "hitl_tui.commands"


def test_every_built_in_verb_group_is_registered_through_the_hook() -> None:
    parser = build_parser(load_entrypoints=False)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) >= {
        "ls",
        "show",
        "approve",
        "reject",
        "resume",
        "audit",
        "store",
        "policy",
        "serve",
        "token",
        "stats",
        "ask",
        "hook",
        "mcp-proxy",
    }
    assert "console" not in sub.choices  # the console's verbs are hitl_tui's, not the core's


class _Hello:
    @hookimpl
    def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        hello = subparsers.add_parser("hello", help="say hello")
        hello.add_argument("--to", default="world")
        hello.set_defaults(handler=lambda args: print(f"hello {args.to}") or 0)


def test_hook_hitl_register_commands_adds_a_plugins_verb(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser(plugins=[("hello-plugin", _Hello())])
    args = parser.parse_args(["hello", "--to", "alice"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out == "hello alice\n"


class _Clash:
    @hookimpl
    def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        subparsers.add_parser("approve", help="my own approve")


class _AliasClash:
    @hookimpl
    def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        subparsers.add_parser("greet", aliases=["console"], help="an alias that is taken")


def test_a_plugin_verb_that_clashes_with_a_built_in_names_both_plugins() -> None:
    with pytest.raises(CommandClashError) as caught:
        build_parser(plugins=[("my-plugin", _Clash())])
    message = str(caught.value)
    assert "'approve'" in message and "'my-plugin'" in message and repr(BUILTIN) in message


def test_a_plugin_alias_that_clashes_with_the_console_names_both_plugins() -> None:
    with pytest.raises(CommandClashError) as caught:
        build_parser(plugins=[("alias-plugin", _AliasClash())])
    message = str(caught.value)
    assert "'console'" in message and "'alias-plugin'" in message and "already registers" in message


def test_hitl_main_reports_a_clash_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hitl_core import plugins

    monkeypatch.setattr(plugins, "_ENTRYPOINT_CACHE", {"my-plugin": _Clash()})
    assert main(["ls"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hitl: hitl plugin 'my-plugin' registers the command 'approve'")


def _verbs(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_built_in_verb_parses_as_its_module_defines_it() -> None:
    """The verbs are listed from ``BUILTIN_VERBS`` and filled in only when used: the listing and
    every verb's help and defaults must be exactly what its module's own parser says."""
    lazy, eager = _verbs(build_parser(load_entrypoints=False)), _verbs(build_parser(load_entrypoints=False, lazy=False))
    assert [(a.dest, a.help) for a in lazy._choices_actions] == [(a.dest, a.help) for a in eager._choices_actions]
    for name, parser in eager.choices.items():
        assert lazy.choices[name].format_help() == parser.format_help(), name
        assert _named(lazy.choices[name]._defaults) == _named(parser._defaults), name


def _named(defaults: dict[str, object]) -> dict[str, object]:
    """A parser's defaults with each handler as the names of what it runs (closures differ per build)."""

    def name(value: object) -> object:
        if not callable(value):
            return value
        inner = [name(c.cell_contents) for c in getattr(value, "__closure__", None) or () if callable(c.cell_contents)]
        return (getattr(value, "__qualname__", repr(value)), *inner)

    return {key: name(value) for key, value in defaults.items()}


def test_a_verb_parses_only_its_own_group(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom hitl_core.cli import build_parser\n"
        "build_parser(load_entrypoints=False).parse_args(['policy', 'check'])\n"
        "print(sorted(m for m in ('hitl_core.stats_cli', 'hitl_core.server.cli', 'hitl_core.policies.cli') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['hitl_core.policies.cli']"
