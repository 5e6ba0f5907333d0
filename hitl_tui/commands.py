"""``hitl console`` and ``hitl demo``: the console's verbs, registered on ``hitl``'s command line
through the ``hitl_register_commands`` hook (entry point ``console`` in group ``hitl``).

Loading this module (every ``hitl`` call does) imports neither Textual nor the app: the handlers
import ``hitl_tui.cli`` only when one of these verbs runs.
"""

from __future__ import annotations

import argparse

from hitl_core import hookimpl


def _console(args: argparse.Namespace) -> int:
    from .cli import run_console

    return run_console(args)


def _demo(args: argparse.Namespace) -> int:
    from .cli import run_demo

    return run_demo(args)


@hookimpl
def hitl_register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = subparsers.add_parser("console", help="the operator console")
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
    console.add_argument(
        "--finished",
        type=int,
        metavar="EVENTS",
        # None: hitl_tui.app.RECENT_FINISHED_EVENTS (not imported here: `hitl --help` stays light)
        help="load the finished tasks whose last event is among the newest EVENTS (default 10,000; 0: all);"
        " every unfinished task is always loaded",
    )
    console.set_defaults(handler=_console)

    demo = subparsers.add_parser("demo", help="the console on a temporary store with a simulated agent fleet")
    demo.add_argument("--agents", type=int, default=8, help="simulated agents")
    demo.add_argument("--rate", type=float, default=1.0, help="new tasks per second across the fleet")
    demo.add_argument("--as", dest="actor", metavar="NAME", help="operator name recorded on decisions")
    demo.set_defaults(handler=_demo)
