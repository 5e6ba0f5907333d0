"""Comments and docstrings that point somewhere must point at something that exists: a renamed
test file or doc otherwise leaves the reader a dead end (``hookspecs.py`` once named a test path
that had moved)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*ROOT.glob("hitl_core/**/*.py"), *ROOT.glob("hitl_tui/**/*.py"), *ROOT.glob("plugins/*/*.py")]
PATH = re.compile(r"\b((?:tests|docs|benchmarks|examples)/[\w./-]+\.(?:py|md|toml|db))\b")


def test_every_repository_path_named_in_the_source_exists() -> None:
    assert len(SOURCES) > 50
    missing = [
        f"{source.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(1)}"
        for source in SOURCES
        for text in [source.read_text()]
        for m in PATH.finditer(text)
        if not (ROOT / m.group(1)).exists()
    ]
    assert missing == []


def test_every_hitl_core_module_named_in_the_source_exists() -> None:
    dotted = re.compile(r"``(hitl_core(?:\.[a-z_]+)+)")
    missing = []
    for source in SOURCES:
        text = source.read_text()
        for m in dotted.finditer(text):
            parts = m.group(1).split(".")
            # the longest prefix that is a module or package, then the rest must be defined in it
            for cut in range(len(parts), 0, -1):
                base = ROOT.joinpath(*parts[:cut])
                module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
                if module.exists():
                    rest = parts[cut:]
                    body = module.read_text()
                    if rest and not re.search(rf"\b{re.escape(rest[0])}\b", body):
                        missing.append(f"{source.relative_to(ROOT)}: {m.group(1)}")
                    break
            else:
                missing.append(f"{source.relative_to(ROOT)}: {m.group(1)}")
    assert missing == []
