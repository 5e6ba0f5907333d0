"""The ``hitl`` command line. Verbs that need no UI live here; ``hitl console`` loads hitl_tui."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hitl", description="The human-in-the-loop control plane for AI agents.")
    parser.add_argument("--version", action="version", version=f"hitl {__version__}")
    parser.add_subparsers(dest="command")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
