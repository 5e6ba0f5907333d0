"""The ``hitl`` command line.

Verbs that need no UI live in ``hitl_core``; ``console`` and ``demo`` import ``hitl_tui`` only
when they are run, so the core stays importable without Textual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from . import __version__

Handler = Callable[[argparse.Namespace], int]


def _console(args: argparse.Namespace) -> int:
    from hitl_tui.cli import run_console

    return run_console(args)


def _demo(args: argparse.Namespace) -> int:
    from hitl_tui.cli import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    from .cli_commands import EXIT_CODES_HELP, add_commands

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

    console = sub.add_parser("console", help="the operator console")
    # Also after the verb (`hitl console --store URL`, as the README shows). SUPPRESS: when absent
    # here, the value given before the verb (or None) stands.
    console.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="store URL (default: $HITL_STORE, else the user-data SQLite file)",
    )
    console.add_argument("--as", dest="actor", metavar="NAME", help="operator name recorded on decisions")
    console.add_argument("--readonly", action="store_true", help="observe only: no deciding keys")
    console.set_defaults(handler=_console)

    demo = sub.add_parser("demo", help="the console on a temporary store with a simulated agent fleet")
    demo.add_argument("--agents", type=int, default=8, help="simulated agents")
    demo.add_argument("--rate", type=float, default=1.0, help="new tasks per second across the fleet")
    demo.add_argument("--as", dest="actor", metavar="NAME", help="operator name recorded on decisions")
    demo.set_defaults(handler=_demo)

    add_commands(sub)  # ls, show, approve, reject, resume, audit, store (hitl_core.cli_commands)
    from .policies.cli import add_policy_commands

    add_policy_commands(sub)  # policy test, policy check (hitl_core.policies)
    from .server.cli import add_server_commands

    add_server_commands(sub)  # serve, token (hitl_core.server)
    from .stats_cli import add_stats_command

    add_stats_command(sub)  # stats (hitl_core.stats_cli)

    from .integrations.cli import add_integration_commands

    add_integration_commands(sub, EXIT_CODES_HELP)  # ask, hook claude-code, mcp-proxy
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
