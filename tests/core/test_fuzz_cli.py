"""Hostile arguments to every ``hitl`` verb that needs no UI: an exit code from the documented set,
never a traceback, and nothing on the terminal that a terminal would interpret.

Run in-process through ``hitl_core.cli.main`` (the console script calls exactly that), against a
real SQLite store that holds a waiting task, so approve/reject/resume meet real state.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hitl_core import HITLStateMachine
from hitl_core.cli import main

EXIT_CODES = set(range(0, 9))  # EXIT_CODES_HELP: 0 ok … 8 audit verify failed
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")

hostile = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["", "-", "--", "\x1b]0;pwned\x07", "deploy\nprod", "\u202etxt", "-x", "--json", "9" * 40]),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli-fuzz') / 'hitl.db'}"

    async def seed() -> None:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            for i in range(3):
                await m.start_task(f"t{i}", agent="agent")
                await m.request_approval(f"t{i}", "reason with \x1b[31m red", args={"x": "\u202e"})

    asyncio.run(seed())
    return url


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue() + err.getvalue()


VERBS: list[Any] = [
    lambda a, b: ["ls", "--state", a],
    lambda a, b: ["ls", "--limit", a],
    lambda a, b: ["ls", "--json"],
    lambda a, b: ["show", a],
    lambda a, b: ["show", a, "--json"],
    lambda a, b: ["approve", a, "--as", b],
    lambda a, b: ["approve", "t0", "--as", a, "--message", b],
    lambda a, b: ["approve", "t1", "--option", a],
    lambda a, b: ["reject", a, "--message", b],
    lambda a, b: ["reject", "t2", "--message", a, "--as", b],
    lambda a, b: ["resume", a, "--as", b],
    lambda a, b: ["audit", "export", "--task", a],
    lambda a, b: ["audit", "export", "--after", a],
    lambda a, b: ["audit", "verify", "--expect-checkpoint-at", a],
    lambda a, b: ["store", "info", "--json"],
    lambda a, b: ["policy", "test", a, "--action", b],
]


@settings(max_examples=60, deadline=None)
@given(verb=st.sampled_from(range(len(VERBS))), a=hostile, b=hostile)
def test_every_verb_with_hostile_arguments_exits_with_a_documented_code_and_prints_nothing_live(
    store: str, verb: int, a: str, b: str
) -> None:
    argv = [*VERBS[verb](a, b), "--store", store]
    if argv[0] == "policy":
        argv = argv[:-2]  # policy test reads a file, not a store
    code, printed = _run(argv)
    assert code in EXIT_CODES, (argv, code, printed[-2000:])
    assert "Traceback" not in printed, printed[-2000:]
    for ch in UNSAFE:
        assert ch not in printed, (argv, ch, printed[-500:])


def test_the_store_still_verifies_after_the_fuzzing(store: str, tmp_path: Path) -> None:
    code, printed = _run(["audit", "verify", "--store", store])
    assert code == 0, printed
