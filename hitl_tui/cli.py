"""``hitl console`` and ``hitl demo`` (registered by ``hitl_tui.commands``; run only when one is called)."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

from textual.binding import Binding

from hitl_core import HITLError, HITLStateMachine

from .app import DWELL_SECONDS, RECENT_FINISHED_EVENTS, ConsoleApp
from .fleet import Fleet
from .keymap import KeymapError, keymap_path, load_keymap
from .terminal_watch import exit_when_terminal_closes


def _operator(args: argparse.Namespace) -> str:
    actor = getattr(args, "actor", None)
    if actor:
        return str(actor)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def known_binding_ids() -> list[str]:
    return list(default_keys())


def default_keys() -> dict[str, str]:
    """Binding id -> default keys, for every binding of the main screen (one key press reaches all)."""
    from .widgets import TaskTable

    return {b.id: b.key for b in [*ConsoleApp.BINDINGS, *TaskTable.BINDINGS] if isinstance(b, Binding) and b.id}


def console_dwell() -> float:
    """Seconds the detail pane must show a task before a deciding key acts on it: ``$HITL_CONSOLE_DWELL``
    or ``DWELL_SECONDS``. A value that is not a number from 0 to 5 is an error naming it."""
    raw = os.environ.get("HITL_CONSOLE_DWELL")
    if raw is None or not raw.strip():
        return DWELL_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 5:
        raise HITLConsoleConfigError(f"HITL_CONSOLE_DWELL={raw!r}: must be a number of seconds from 0 to 5")
    return value


class HITLConsoleConfigError(ValueError):
    """A console setting from the environment can't be used; the message names it."""


def _keymap() -> dict[str, str]:
    return load_keymap(keymap_path(), default_keys())


def run_console(args: argparse.Namespace) -> int:
    """The console on ``--store``, ``$HITL_STORE``, or the CLI's default SQLite file under the user
    data directory (the same default as ``hitl ls``), following other processes' transitions."""
    finished = getattr(args, "finished", None)
    finished = RECENT_FINISHED_EVENTS if finished is None else finished
    if finished < 0:
        print("hitl console: --finished must be 0 (all) or a positive number of events", file=sys.stderr)
        return 2
    try:
        keymap = _keymap()
        dwell = console_dwell()
        from hitl_core.cli_commands import resolve_store_url
        from hitl_core.policies import found_config

        # the hitl.toml's policies apply to the console's decisions, and its sweeper runs here
        machine = HITLStateMachine(resolve_store_url(getattr(args, "store", None)), config=found_config())
    except (KeymapError, HITLConsoleConfigError, HITLError) as exc:
        print(f"hitl console: {exc}", file=sys.stderr)
        return 2
    app = ConsoleApp(
        machine,
        actor=_operator(args),
        readonly=bool(getattr(args, "readonly", False)),
        follow=True,
        keymap=keymap,
        dwell=dwell,
        advance=True,
        settle_heap=True,
        recent_finished_events=finished or None,
    )
    exit_when_terminal_closes(sys.__stdin__.fileno() if sys.__stdin__ else 0)
    app.run()
    return 0


def demo_store_url(directory: Path, machine_schemes: set[str]) -> str:
    """A temporary SQLite file when the SQLite store is installed, else memory."""
    if "sqlite" in machine_schemes:
        return f"sqlite:///{directory / 'demo.db'}"
    return "memory://"


def run_demo(args: argparse.Namespace) -> int:
    """The console in-process with a simulated fleet on a temporary store (deleted on exit)."""
    try:
        keymap = _keymap()
        dwell = console_dwell()
    except (KeymapError, HITLConsoleConfigError) as exc:
        print(f"hitl demo: {exc}", file=sys.stderr)
        return 2
    agents = int(getattr(args, "agents", 8) or 8)
    rate = float(getattr(args, "rate", 1.0) or 1.0)
    if agents < 1 or rate <= 0:
        print("hitl demo: --agents must be at least 1 and --rate positive", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hitl-demo-") as tmp:
        probe = HITLStateMachine("memory://")
        url = getattr(args, "store", None) or demo_store_url(Path(tmp), set(probe.plugins.store_factories()))
        from hitl_core.policies.demo import DEMO_COLLEAGUE, demo_config

        # deadlines, escalation, four eyes and rules, tuned so a minute of the demo shows each
        machine = HITLStateMachine(url, config=demo_config(_operator(args)))
        fleet = Fleet(machine, agents=agents, rate=rate)
        fleet.colleague = DEMO_COLLEAGUE
        app = ConsoleApp(
            machine,
            actor=_operator(args),
            follow=False,
            keymap=keymap,
            background=fleet.run,
            dwell=dwell,
            advance=True,
            quit_warning=f"The demo's store ({url}) is deleted when it quits.",
            settle_heap=True,
        )
        exit_when_terminal_closes(
            sys.__stdin__.fileno() if sys.__stdin__ else 0, cleanup=partial(shutil.rmtree, tmp, ignore_errors=True)
        )
        app.run()
    return 0
