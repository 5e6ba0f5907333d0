"""What reaches the operator's terminal and logs from a real SQLite store is inert and bounded.

The hostile values here got into the store the ways they can: a config file, an older version
of hitl that did not check names (``older_version``), or text the agent may legitimately send
(a reason may hold anything). Each test runs the real ``hitl`` command line — in its own process
where the terminal is the point — and looks at the bytes it writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from older_version import ask_as_older_version, commit_as_older_version, start_as_older_version

from hitl_core import HITLStateMachine, TaskState
from hitl_core.cli import build_parser, main
from hitl_core.errors import InvalidTransitionError
from hitl_core.models import Actor, Decision, DecisionType
from hitl_core.records import approval_data

ROOT = Path(__file__).resolve().parents[2]
OSC_TITLE = "\x1b]0;pwned\x07"  # sets the terminal window's title
FAKE_SUCCESS = "\r\x1b[2K\x1b[32mapproved\x1b[0m"  # erases the error line and prints a green lie


def hitl_env(tmp_path: Path, config: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HITL_STORE", "HITL_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user-level hitl.toml sneaks in
    if config is not None:
        env["HITL_CONFIG"] = str(config)
    return env


def run_hitl(
    tmp_path: Path, *args: str, config: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """The real ``hitl`` in its own process; bytes out, so no decoding hides an escape."""
    return subprocess.run(
        [sys.executable, "-m", "hitl_core.cli", *args],
        capture_output=True,
        env=hitl_env(tmp_path, config),
        cwd=tmp_path,
        timeout=timeout,
    )


# The child reports its own peak (VmHWM of its own address space, read as it exits): the rusage of
# a forked child also counts the pages it shared with this test process before exec, which grows
# with whatever the worker ran before.
_MEASURED = """
import atexit, runpy, sys
where = sys.argv[1]
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(where, "w").write(line.split()[1])
atexit.register(peak)
sys.argv = ["hitl", *sys.argv[2:]]
runpy.run_module("hitl_core.cli", run_name="__main__")
"""


def run_hitl_measured(tmp_path: Path, *args: str) -> tuple[int, bytes, bytes, float, float]:
    """``run_hitl``, plus the wall time and the peak memory (MB) of that one child process."""
    out_path, err_path, peak_path = tmp_path / "out", tmp_path / "err", tmp_path / "peak-kb"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(peak_path), *args],
            stdout=out,
            stderr=err,
            env=hitl_env(tmp_path),
            cwd=tmp_path,
            check=False,
        )
        took = time.monotonic() - started
    return proc.returncode, out_path.read_bytes(), err_path.read_bytes(), took, int(peak_path.read_text()) / 1024


def no_control_bytes(output: bytes) -> bool:
    """True when ``output`` holds no byte a terminal acts on besides the newline."""
    text = output.decode("utf-8")
    return not any(
        ch in text
        for ch in ("\x1b", "\x07", "\r", "\x08", "\x9b", "\x9d", "\u202e", "\u2066", "\u200b", "\x00", "\x7f")
    )


async def waiting_task(url: str, task_id: str, reason: str = "deploy to production?", **kwargs: object) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        await machine.start_task(task_id, agent="ops-bot")
        await machine.request_approval(task_id, reason, **kwargs)  # type: ignore[arg-type]


# -- error paths ------------------------------------------------------------------------------


def test_osc_escape_in_assignee_is_inert_in_refusal_message(tmp_path: Path, db_url: str) -> None:
    # The assignee comes from the operator's own config (an escalation level); the refusal names it.
    config = tmp_path / "hitl.toml"
    config.write_text(
        """
[deadlines]
sweep = false

[authorization]
enforce_assignees = true

[escalation]
severities = ["high"]

[[escalation.levels]]
assignees = ["\\u001b]0;pwned\\u0007", "ops\\r\\u001b[2K\\u001b[32mapproved"]
wait = 3600
""",
        encoding="utf-8",
    )

    async def escalated() -> list[str]:
        async with HITLStateMachine(db_url, load_entrypoints=False, config=config) as machine:
            await machine.start_task("deploy", agent="ops-bot")
            await machine.request_approval("deploy", "deploy v2?", severity="high", timeout=0.01)
            deadline = time.monotonic() + 30
            while True:  # the deadline passes, then the escalation chain hands it to level 1
                task = await machine.get_task("deploy")
                assert task is not None and task.interrupt_point is not None
                if task.interrupt_point.assignees:
                    return task.interrupt_point.assignees
                with contextlib.suppress(InvalidTransitionError):  # not yet past the deadline
                    await machine.expire("deploy")
                assert time.monotonic() < deadline, "the request never escalated"
                await asyncio.sleep(0.05)

    assert asyncio.run(escalated())[0] == OSC_TITLE
    refused = run_hitl(tmp_path, "approve", "deploy", "--store", db_url, "--as", "bob", config=config)
    print(refused.stderr.decode())
    assert refused.returncode == 7, refused.stderr
    assert b"\x1b" not in refused.stderr and no_control_bytes(refused.stderr)
    assert b"only the assignees may decide (\\x1b]0;pwned\\x07, ops\\r\\x1b[2K" in refused.stderr
    assert refused.stderr.count(b"\n") == 1  # one line: nothing in it can end it early or overwrite it


def test_escape_in_actor_is_inert_in_already_decided_message(tmp_path: Path, db_url: str) -> None:
    async def decided_by_hostile_actor() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            await machine.start_task("deploy", agent="ops-bot")
            await machine.request_approval("deploy", "deploy v2?")
            record = await machine.store.get("deploy")
            assert record is not None and record.interrupt is not None
            decision = Decision(
                type=DecisionType.REJECT,
                actor=Actor(id=OSC_TITLE + FAKE_SUCCESS, source="cli"),
                message="no" + FAKE_SUCCESS,
                interrupt_id=record.interrupt.interrupt_id,
            )
            await commit_as_older_version(
                machine,
                "deploy",
                "reject",
                decision.actor,
                {"decision": decision},
                decision=decision,
                approval=approval_data(decision),
            )

    asyncio.run(decided_by_hostile_actor())
    late = run_hitl(tmp_path, "approve", "deploy", "--store", db_url, "--as", "bob")
    print(late.stderr.decode())
    assert late.returncode == 4, late.stderr
    assert b"\x1b" not in late.stderr and no_control_bytes(late.stderr)
    assert b"already decided by \\x1b]0;pwned\\x07\\r\\x1b[2K\\x1b[32mapproved\\x1b[0m (reject)" in late.stderr
    shown = run_hitl(tmp_path, "show", "deploy", "--store", db_url)
    assert shown.returncode == 0 and no_control_bytes(shown.stdout), shown.stdout


def test_unknown_id_with_escapes_is_inert_in_not_found_message(tmp_path: Path, db_url: str) -> None:
    asyncio.run(waiting_task(db_url, "deploy"))
    missing = run_hitl(tmp_path, "approve", "x" + OSC_TITLE + FAKE_SUCCESS, "--store", db_url)
    assert missing.returncode == 3 and no_control_bytes(missing.stderr), missing.stderr
    assert b"task 'x\\x1b]0;pwned\\x07\\r\\x1b[2K" in missing.stderr


def test_actor_name_with_escapes_is_refused_and_the_refusal_is_inert(tmp_path: Path, db_url: str) -> None:
    asyncio.run(waiting_task(db_url, "deploy"))
    refused = run_hitl(tmp_path, "approve", "deploy", "--store", db_url, "--as", "bob" + FAKE_SUCCESS)
    assert refused.returncode == 2 and no_control_bytes(refused.stderr), refused.stderr
    assert b"actor id" in refused.stderr and b"unprintable" in refused.stderr

    async def state() -> TaskState:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            task = await machine.get_task("deploy")
            assert task is not None
            return task.state

    assert asyncio.run(state()) is TaskState.AWAITING_APPROVAL  # nothing written


# -- look-alikes ------------------------------------------------------------------------------


def test_lookalike_ids_newline_vs_backslash_n_print_differently(tmp_path: Path, db_url: str) -> None:
    real_newline, backslash_n = "deploy\nprod", "deploy\\nprod"

    async def both() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            # The decoy: an id with a real newline, as an older version accepted it.
            await start_as_older_version(machine, real_newline, agent="ops-bot")
            await ask_as_older_version(machine, real_newline, "the decoy")
            await machine.start_task(backslash_n, agent="ops-bot")  # printable: still accepted
            await machine.request_approval(backslash_n, "the real one")

    asyncio.run(both())
    listed = run_hitl(tmp_path, "ls", "--store", db_url)
    rows = listed.stdout.decode().splitlines()[1:]
    print(listed.stdout.decode())
    assert len(rows) == 2, rows  # the real newline did not split its row in two
    ids = [row.split()[0] for row in rows]
    assert ids == ["deploy\\nprod", "deploy\\\\nprod"] and ids[0] != ids[1]

    approved = run_hitl(tmp_path, "approve", backslash_n, "--store", db_url, "--as", "alice")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.decode().startswith("approved task deploy\\\\nprod as alice")

    async def states() -> dict[str, TaskState]:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            return {t.task_id: t.state for t in await machine.get_all_tasks()}

    assert asyncio.run(states()) == {real_newline: TaskState.AWAITING_APPROVAL, backslash_n: TaskState.APPROVED}
    # The stored look-alike stays decidable by its exact id.
    decoy = run_hitl(tmp_path, "reject", real_newline, "--store", db_url, "--as", "alice", "--message", "decoy")
    assert decoy.returncode == 0 and decoy.stdout.decode().startswith("rejected task deploy\\nprod as alice")
    assert asyncio.run(states())[real_newline] is TaskState.REJECTED


# -- size -------------------------------------------------------------------------------------


def test_hitl_ls_with_a_ten_megabyte_field_in_the_store_stays_fast(tmp_path: Path, db_url: str) -> None:
    huge = ("A\x1b[31m" * 1_700_000)[:10_000_000]

    async def written_directly() -> None:
        async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
            await start_as_older_version(machine, "big", agent="b" * 1_000_000, current_step="s")
            await ask_as_older_version(machine, "big", huge, options=["go", "o" * 1_000_000])

    asyncio.run(written_directly())
    assert Path(db_url.removeprefix("sqlite:///")).stat().st_size > 10_000_000
    code, stdout, stderr, took, peak_mb = run_hitl_measured(tmp_path, "ls", "--store", db_url)
    print(f"hitl ls with a 10 MB reason, a 1 MB agent name and a 1 MB option: {took:.2f} s, peak RSS {peak_mb:.0f} MB")
    assert code == 0, stderr
    out = stdout.decode()
    assert len(out) < 2000 and no_control_bytes(stdout)
    assert "big" in out and "A\\x1b[31m" in out
    # Generous for a loaded 2-core machine (an empty store takes ~2 s there, mostly start-up); before
    # the fix it took ~19 s: the whole field was escaped character by character, then clipped.
    assert took < 10, f"hitl ls took {took:.1f} s"
    assert peak_mb < 400, f"hitl ls peaked at {peak_mb:.0f} MB"

    shown = run_hitl(tmp_path, "show", "big", "--store", db_url)
    assert shown.returncode == 0 and no_control_bytes(shown.stdout)
    text = shown.stdout.decode()
    assert len(text) < 40_000
    assert "more characters)" in text and f"({10_000_000 - 4000:,} more characters)" in text


# -- JSON -------------------------------------------------------------------------------------


def test_json_output_escapes_bidi_and_c1(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    reason = "pay invoice\u202e fdp.exe\x85 next line\u2066x\u2069\u200b\x9b31m"
    asyncio.run(waiting_task(db_url, "pay", reason, context={"note": reason}))
    unsafe = ("\u202e", "\x85", "\u2066", "\u2069", "\u200b", "\x9b")

    for args in (
        ("ls", "--json"),
        ("show", "pay", "--json"),
        ("audit", "export"),
        ("audit", "export", "--format", "json"),
    ):
        code = main([*args, "--store", db_url])
        out = capsys.readouterr().out
        assert code == 0
        assert not any(ch in out for ch in unsafe), (args, out)
        assert "\\u202e" in out and "\\u0085" in out
        if args[0] == "ls":
            parsed = json.loads(out)[0]["interrupt_point"]
        elif args[0] == "show":
            parsed = json.loads(out)["interrupt_point"]
        elif "--format" in args:
            parsed = next(e["data"]["interrupt"] for e in json.loads(out) if e["action"] == "request_approval")
        else:
            events = [json.loads(line) for line in out.splitlines()]
            parsed = next(e["data"]["interrupt"] for e in events if e["action"] == "request_approval")
        assert parsed["reason"] == reason and parsed["context"] == {"note": reason}  # the exact original


# -- logs -------------------------------------------------------------------------------------


def test_log_records_render_hostile_ids_inert(db_url: str) -> None:
    hostile = "job" + OSC_TITLE + FAKE_SUCCESS
    lookalikes = ("deploy\nprod", "deploy\\nprod")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    structured = io.StringIO()  # a formatter that prints hitl's extra= fields too
    by_field = logging.StreamHandler(structured)
    by_field.setFormatter(logging.Formatter("task=%(task_id)s action=%(action)s"))
    by_field.addFilter(lambda record: hasattr(record, "task_id") and hasattr(record, "action"))
    logger = logging.getLogger("hitl")
    logger.addHandler(handler)
    logger.addHandler(by_field)
    logger.setLevel(logging.INFO)
    try:

        async def transitions() -> None:
            async with HITLStateMachine(db_url, load_entrypoints=False) as machine:
                for task_id in (hostile, lookalikes[0]):  # stored by an older version
                    await start_as_older_version(machine, task_id, agent="ops-bot")
                    await ask_as_older_version(machine, task_id, "ok?")
                    await machine.approve(task_id, "alice")  # logged: "<id> approve: …"
                await machine.start_task(lookalikes[1])

        asyncio.run(transitions())
        # A child logger, a mapping argument and an exception's text, as a plugin would log them.
        logging.getLogger("hitl.policies").warning("refused %s", hostile)
        logging.getLogger("hitl.audit").warning("%(actor)s refused", {"actor": hostile})
        try:
            raise RuntimeError(hostile)
        except RuntimeError:
            logging.getLogger("hitl.plugins").exception("observer failed on %s", hostile)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(by_field)
        logger.setLevel(logging.NOTSET)
    fields = structured.getvalue()
    assert "task=job\\x1b]0;pwned\\x07\\r\\x1b[2K" in fields and "\x1b" not in fields and "\r" not in fields
    output = stream.getvalue()
    print(output)
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output
    assert "job\\x1b]0;pwned\\x07\\r\\x1b[2K" in output
    assert "hitl.policies WARNING refused job\\x1b]0;pwned" in output
    assert "hitl.audit WARNING job\\x1b]0;pwned" in output
    assert "RuntimeError: job\\x1b]0;pwned" in output  # the traceback too
    lines = output.splitlines()
    assert any(line.startswith("hitl INFO deploy\\nprod approve:") for line in lines)
    assert any(line.startswith("hitl INFO deploy\\\\nprod start:") for line in lines)


def test_every_hitl_logger_renders_its_records() -> None:
    import importlib
    import pkgutil

    import hitl_core
    import hitl_tui
    from hitl_core.text import RenderFilter

    for package in (hitl_core, hitl_tui):  # every module, so every logger a module creates exists
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)

    names = [
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if (name == "hitl" or name.startswith("hitl.")) and isinstance(logger, logging.Logger)
    ]
    assert "hitl.policies" in names and "hitl.audit" in names
    for name in names:
        logger = logging.getLogger(name)
        assert any(isinstance(f, RenderFilter) for f in logger.filters), f"{name} has no RenderFilter"


# -- the console's --store ----------------------------------------------------------------------


def test_console_store_option_parses_after_the_verb_and_before() -> None:
    parser = build_parser()
    after = parser.parse_args(["console", "--store", "sqlite:///after.db", "--readonly"])
    assert after.store == "sqlite:///after.db" and after.readonly
    before = parser.parse_args(["--store", "sqlite:///before.db", "console"])
    assert before.store == "sqlite:///before.db"
    neither = parser.parse_args(["console"])
    assert neither.store is None
    both = parser.parse_args(["--store", "sqlite:///before.db", "console", "--store", "sqlite:///after.db"])
    assert both.store == "sqlite:///after.db"  # the one nearer the verb wins, as for ls and approve
