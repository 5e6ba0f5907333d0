"""Run every example in turn (``make demo`` until the console exists)."""

from __future__ import annotations

import importlib
import sys

EXAMPLES = [
    "examples.basic_approval",
    "examples.parallel_deployments",
    "examples.rejection",
    "examples.persistence",
    "examples.decorators",
]


def main() -> int:
    for name in EXAMPLES:
        print(f"\n=== {name} ===")
        module = importlib.import_module(name)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
