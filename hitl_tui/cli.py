"""``hitl console`` and ``hitl demo`` (dispatched from ``hitl_core.cli``)."""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
from pathlib import Path

from hitl_core import HITLError, HITLStateMachine

from .app import ConsoleApp
from .fleet import Fleet
from .keymap import KeymapError, keymap_path, load_keymap


def _operator(args: argparse.Namespace) -> str:
    actor = getattr(args, "actor", None)
    if actor:
        return str(actor)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def known_binding_ids() -> list[str]:
    from .widgets import TaskTable

    return [b.id for b in [*ConsoleApp.BINDINGS, *TaskTable.BINDINGS] if getattr(b, "id", None)]  # type: ignore[union-attr]


def _keymap() -> dict[str, str]:
    return load_keymap(keymap_path(), known_binding_ids())


def run_console(args: argparse.Namespace) -> int:
    """The console on ``--store``, ``$HITL_STORE``, or the CLI's default SQLite file under the user
    data directory (the same default as ``hitl ls``), following other processes' transitions."""
    try:
        keymap = _keymap()
        from hitl_core.cli_commands import resolve_store_url
        from hitl_core.policies import found_config

        # the hitl.toml's policies apply to the console's decisions, and its sweeper runs here
        machine = HITLStateMachine(resolve_store_url(getattr(args, "store", None)), config=found_config())
    except (KeymapError, HITLError) as exc:
        print(f"hitl console: {exc}", file=sys.stderr)
        return 2
    app = ConsoleApp(
        machine, actor=_operator(args), readonly=bool(getattr(args, "readonly", False)), follow=True, keymap=keymap
    )
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
    except KeymapError as exc:
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
        app = ConsoleApp(machine, actor=_operator(args), follow=False, keymap=keymap, background=fleet.run)
        app.run()
    return 0
