"""The ``hitl`` command line: one parser, every verb registered through ``hitl_register_commands``.

The built-in verb groups (the store verbs, ``policy``, ``serve``/``token``, ``stats``,
``ask``/``hook``/``mcp-proxy``) are the hook implementations of ``BuiltinCommands`` below; the
console's ``console`` and ``demo`` are ``hitl_tui``'s, found through its entry point (group
``hitl``) like any third-party plugin's verbs. So ``hitl_core`` imports no UI: without
``hitl_tui`` installed, ``hitl`` simply has no ``console`` verb.

Two verbs (or aliases) of the same name are refused with ``CommandClashError`` naming both
plugins: argparse would otherwise let the later one silently replace the earlier.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pluggy

from . import hookspecs
from .errors import HITLError
from .hookspecs import hookimpl

Handler = Callable[[argparse.Namespace], int]

#: The name the built-in verbs register under (what a clash message names).
BUILTIN = "hitl.builtin_commands"


class CommandClashError(HITLError):
    """Two plugins registered the same ``hitl`` verb; the message names the verb and both plugins."""


def _store_verbs(sub: Any) -> None:
    from .cli_commands import add_commands

    add_commands(sub)


def _policy_verbs(sub: Any) -> None:
    from .policies.cli import add_policy_commands

    add_policy_commands(sub)


def _server_verbs(sub: Any) -> None:
    from .server.cli import add_server_commands

    add_server_commands(sub)


def _stats_verbs(sub: Any) -> None:
    from .stats_cli import add_stats_command

    add_stats_command(sub)


def _integration_verbs(sub: Any) -> None:
    from .cli_commands import EXIT_CODES_HELP

    # `hitl ask` and the hook start a process per call: each imports only its own module
    verb = sub.name if isinstance(sub, _OneVerb) else None
    if verb == "ask":
        from .integrations.ask import add_ask_command

        add_ask_command(sub, EXIT_CODES_HELP)
    elif verb == "hook":
        from .integrations.claude_code import add_hook_command

        add_hook_command(sub, EXIT_CODES_HELP)
    else:
        from .integrations.cli import add_integration_commands

        add_integration_commands(sub, EXIT_CODES_HELP)


#: The built-in verb groups: the function that adds a group's verbs to a subparsers action, and each
#: verb's one-line help for ``hitl --help``. A verb's own arguments are added only when it runs (or
#: its ``--help`` is asked): ``hitl ask`` must not import the stats, the server and the audit verbs
#: to parse its line. ``test_every_built_in_verb_parses_as_its_module_defines_it`` keeps the
#: lines here equal to the modules' own.
BUILTIN_VERBS: tuple[tuple[Callable[[Any], None], dict[str, str]], ...] = (
    (
        _store_verbs,
        {
            "ls": "list tasks, oldest change first",
            "show": "one task: its request, decision and history",
            "approve": "approve a task that awaits approval",
            "reject": "reject a task that awaits approval; the agent is told the reason",
            "resume": "move an approved or rejected task back to running",
            "audit": "the tamper-evident audit trail",
            "store": "the store itself",
        },
    ),
    (_policy_verbs, {"policy": "auto-decision rules and the hitl.toml config"}),
    (
        _server_verbs,
        {
            "serve": "run the hitl server: the one authority between agents, operators and the store",
            "token": "bearer tokens for remote callers of hitl serve",
            "user": "local accounts for hitl serve --web (passwords argon2-hashed, optional TOTP)",
        },
    ),
    (_stats_verbs, {"stats": "how the queue and its deciders are doing: waiting, times, operators, rubber stamps"}),
    (
        _integration_verbs,
        {
            "ask": "ask a person before a command runs; exit 0 approve, 9 reject, 10 timeout",
            "hook": "agent hooks: hitl decides (or asks a person) before a tool runs",
            "mcp-proxy": "an MCP server in front of another: every tools/call passes hitl's rules (and a person)",
        },
    ),
)


class BuiltinCommands:
    """The verbs that ship with ``hitl_core``, registered through the same hook as a plugin's."""

    def __init__(self, *, lazy: bool = True) -> None:
        self.lazy = lazy

    @hookimpl
    def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        for add_group, verbs in BUILTIN_VERBS:
            if not self.lazy:
                add_group(subparsers)
                continue
            for name, help in verbs.items():
                add_lazy_parser(subparsers, name, help, add_group)


class _LazyParser(argparse.ArgumentParser):
    """A verb's parser whose arguments are added the first time it parses or prints its help."""

    _fill: Callable[[argparse.ArgumentParser], None] | None = None

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._filled()
        return super().format_help()

    def format_usage(self) -> str:
        self._filled()
        return super().format_usage()


class _OneVerb:
    """What a group's add function gets when one of its verbs is filled in: ``add_parser`` of that
    verb configures the lazy parser itself; the group's other verbs go to throwaway parsers."""

    def __init__(self, name: str, parser: argparse.ArgumentParser) -> None:
        self.name = name
        self.parser = parser

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name != self.name:
            return argparse.ArgumentParser(prog=name)
        parser = self.parser
        for parent in kwargs.get("parents", ()):
            # what ArgumentParser(parents=[…]) does
            parser._add_container_actions(parent)
            parser._defaults.update(parent._defaults)
        for key in ("description", "epilog", "formatter_class", "usage"):
            if key in kwargs:
                setattr(parser, key, kwargs[key])
        return parser


def add_lazy_parser(subparsers: Any, name: str, help: str, add_group: Callable[[Any], None]) -> argparse.ArgumentParser:
    """Register verb ``name`` (listed with ``help``) whose arguments ``add_group(subparsers)`` adds —
    called only when the verb is parsed, with a stand-in that keeps only ``name``'s parser."""
    action = getattr(subparsers, "_action", subparsers)
    parser_class = action._parser_class
    action._parser_class = _LazyParser
    try:
        parser = subparsers.add_parser(name, help=help)
    finally:
        action._parser_class = parser_class
    parser._fill = lambda p: add_group(_OneVerb(name, p))
    return parser


class _Subparsers:
    """What one plugin's ``hitl_register_commands`` gets: argparse's subparsers action, with every
    ``add_parser`` checked against the names other plugins registered first."""

    def __init__(self, action: argparse._SubParsersAction[argparse.ArgumentParser], owners: dict[str, str]) -> None:
        self._action = action
        self._owners = owners
        self.plugin = BUILTIN

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        names = [name, *kwargs.get("aliases", ())]
        for each in names:
            owner = self._owners.get(each)
            if owner is not None:
                raise CommandClashError(
                    f"hitl plugin {self.plugin!r} registers the command {each!r}, which plugin {owner!r} "
                    f"already registers; uninstall one of them, or leave one out with HITL_PLUGINS=<the plugins you want>"
                )
        parser = self._action.add_parser(name, **kwargs)
        for each in names:
            self._owners[each] = self.plugin
        return parser

    def __getattr__(self, item: str) -> Any:
        return getattr(self._action, item)


def _command_plugins(load_entrypoints: bool, lazy: bool) -> Iterator[tuple[str, object]]:
    yield BUILTIN, BuiltinCommands(lazy=lazy)
    if load_entrypoints:
        from .plugins import entrypoint_plugins

        yield from entrypoint_plugins().items()


def register_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    plugins: Iterable[tuple[str, object]],
) -> None:
    """Ask each plugin, in order, for its verbs through pluggy's caller (so ``HITL_TRACE_PLUGINS``
    shows the calls); one plugin at a time, so a clash names who registered each name."""
    from .plugins import trace_if_asked

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    trace_if_asked(pm)
    names: list[str] = []
    for name, plugin in plugins:
        if pm.get_plugin(name) is None and not pm.is_registered(plugin):
            pm.register(plugin, name=name)
            names.append(name)
    registrar = _Subparsers(subparsers, {})
    for name in names:
        others = [pm.get_plugin(n) for n in names if n != name]
        registrar.plugin = name
        pm.subset_hook_caller("hitl_register_commands", remove_plugins=others)(subparsers=registrar)


def build_parser(
    *, load_entrypoints: bool = True, plugins: Iterable[tuple[str, object]] = (), lazy: bool = True
) -> argparse.ArgumentParser:
    """The whole ``hitl`` parser: the built-in verbs, then each installed plugin's, then ``plugins``
    (name, plugin) pairs given here (tests). ``load_entrypoints=False``: the built-ins only.
    ``lazy=False`` adds every built-in verb's arguments now (tests compare the two)."""
    from . import __version__
    from .cli_commands import EXIT_CODES_HELP

    parser = argparse.ArgumentParser(
        prog="hitl",
        description="The human-in-the-loop control plane for AI agents.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hitl {__version__}")
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="store URL (memory://, sqlite:///path.db, postgresql://…); default: $HITL_STORE",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_commands(sub, [*_command_plugins(load_entrypoints, lazy), *plugins])
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except HITLError as exc:  # a plugin failed to load, or two plugins claim one verb
        print(f"hitl: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
