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
from collections.abc import Callable, Iterator
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


class BuiltinCommands:
    """The verbs that ship with ``hitl_core``, registered through the same hook as a plugin's."""

    @hookimpl
    def hitl_register_commands(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        from .cli_commands import EXIT_CODES_HELP, add_commands
        from .integrations.cli import add_integration_commands
        from .policies.cli import add_policy_commands
        from .server.cli import add_server_commands
        from .stats_cli import add_stats_command

        add_commands(subparsers)  # ls, show, approve, reject, resume, audit, store
        add_policy_commands(subparsers)  # policy test, policy check
        add_server_commands(subparsers)  # serve, token
        add_stats_command(subparsers)  # stats
        add_integration_commands(subparsers, EXIT_CODES_HELP)  # ask, hook claude-code, mcp-proxy


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


def _command_plugins(load_entrypoints: bool) -> Iterator[tuple[str, object]]:
    yield BUILTIN, BuiltinCommands()
    if load_entrypoints:
        from .plugins import entrypoint_plugins

        yield from entrypoint_plugins().items()


def register_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    plugins: Iterator[tuple[str, object]] | list[tuple[str, object]],
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


def build_parser(*, load_entrypoints: bool = True, plugins: list[tuple[str, object]] = ()) -> argparse.ArgumentParser:  # type: ignore[assignment]
    """The whole ``hitl`` parser: the built-in verbs, then each installed plugin's, then ``plugins``
    (name, plugin) pairs given here (tests). ``load_entrypoints=False``: the built-ins only."""
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
    register_commands(sub, [*_command_plugins(load_entrypoints), *plugins])
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
