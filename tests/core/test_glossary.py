"""One word per concept (docs/glossary.md): the public API uses the glossary's words, every retired
word the README showed still works with a DeprecationWarning naming the new one, and a store made
before the renames opens, verifies and keeps its stored names."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import warnings
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState, models
from hitl_core.client import RemoteMachine
from hitl_core.glossary import RETIRED, RETIRED_KEYWORDS
from hitl_core.sync import SyncHITL

ROOT = Path(__file__).resolve().parents[2]
OLD_STORE = Path(__file__).parent / "data" / "store_before_glossary.db"


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _words(name: str) -> set[str]:
    return set(name.split("_"))


@pytest.mark.parametrize("cls", [HITLStateMachine, SyncHITL, RemoteMachine])
def test_public_methods_take_only_glossary_words(cls: type) -> None:
    methods = _public_methods(cls)
    assert {"approve", "reject", "edit", "respond"} <= set(methods)
    for name, signature in methods.items():
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                continue  # where retired keywords arrive (and warn)
            retired = _words(param.name) & set(RETIRED)
            assert not retired, f"{cls.__name__}.{name}({param.name}=…): use {RETIRED[retired.pop()]!r}"


def test_model_fields_use_only_glossary_words() -> None:
    from pydantic import BaseModel

    classes = [c for c in vars(models).values() if isinstance(c, type) and issubclass(c, BaseModel)]
    assert {"Decision", "TaskContext", "InterruptPoint", "Event", "Actor"} <= {c.__name__ for c in classes}
    for cls in classes:
        for field in cls.model_fields:
            assert not _words(field) & set(RETIRED), f"{cls.__name__}.{field}"


def test_the_glossary_page_lists_every_retired_word() -> None:
    page = (ROOT / "docs" / "glossary.md").read_text()
    for old, new in RETIRED.items():
        assert f"`{old}`" in page and f"`{new}`" in page, old
    renamed_names = ("GraphRun", "AgentRunPaused", "PendingRun", "AdkRunPaused", "PausedRun")
    for renamed in (*renamed_names, "hitl approve --comment", "hitl reject --reason", "hitl reject --message"):
        assert f"`{renamed}`" in page, renamed


# -- every retired keyword still works, and warns naming the new word ------------------------

CASES = [(verb, old, new) for verb, words in RETIRED_KEYWORDS.items() for old, new in words.items()]


async def _waiting(machine: HITLStateMachine, task_id: str) -> None:
    await machine.start_task(task_id)
    kind = "question" if task_id.startswith("respond") else "approval"
    await machine.request_approval(task_id, "why", kind=kind, action="act", args={"n": 1})


def _call(machine: Any, verb: str, task_id: str, **kwargs: Any) -> Awaitable[Any] | Any:
    if verb == "edit":
        return machine.edit(task_id, {"n": 2}, **kwargs)
    if verb == "respond":
        return machine.respond(task_id, "an answer", **kwargs)
    return getattr(machine, verb)(task_id, **kwargs)


async def _decide_with(machine: HITLStateMachine, verb: str, old: str, value: str) -> Any:
    task_id = f"{verb}-{old}"
    await _waiting(machine, task_id)
    with pytest.warns(DeprecationWarning, match=rf"{verb}\({old}=…\) is deprecated: the word is now '(actor|message)'"):
        return await _call(machine, verb, task_id, **{old: value})


@pytest.mark.parametrize(("verb", "old", "new"), CASES)
async def test_a_retired_keyword_still_works_and_warns(verb: str, old: str, new: str) -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        task = await _decide_with(machine, verb, old, "alice" if new == "actor" else "a note")
        assert task.decision is not None
        if new == "actor":
            assert task.decision.actor.id == "alice"
        else:
            assert task.decision.message == "a note"
            assert task.decision.actor.id  # the OS user, as before


@pytest.mark.parametrize(("verb", "old", "new"), CASES)
def test_a_retired_keyword_still_works_and_warns_through_the_sync_facade(verb: str, old: str, new: str) -> None:
    machine = HITLStateMachine("memory://", load_entrypoints=False)
    sync = machine.sync
    task_id = f"{verb}-{old}"
    sync.start_task(task_id)
    sync.request_approval(task_id, "why", kind="question" if verb == "respond" else "approval", action="a", args={})
    value = "alice" if new == "actor" else "a note"
    with pytest.warns(DeprecationWarning, match=rf"{verb}\({old}=…\)"):
        task = _call(sync, verb, task_id, **{old: value})
    assert task.decision is not None
    assert (task.decision.actor.id if new == "actor" else task.decision.message) == value
    sync.close()


async def test_the_new_words_do_not_warn() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        for verb in ("approve", "reject", "edit", "respond"):
            await _waiting(machine, f"{verb}-new")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await machine.approve("approve-new", actor="alice", message="ok")
            await machine.reject("reject-new", "bob", "no")
            await machine.edit("edit-new", {"n": 2}, actor="carol", message="capped")
            await machine.respond("respond-new", "yes", actor="dana")


async def test_an_old_and_a_new_keyword_for_one_value_is_refused() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await _waiting(machine, "t")
        with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="both approver= and actor="):
            await machine.approve("t", actor="alice", approver="mallory")
        task = await machine.get_task("t")
        assert task is not None and task.state is TaskState.AWAITING_APPROVAL  # nothing decided


async def test_an_unknown_keyword_is_still_a_type_error() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        await _waiting(machine, "t")
        with pytest.raises(TypeError, match="unexpected keyword argument 'aprover'"):
            await machine.approve("t", aprover="alice")


# -- the CLI's retired flags ----------------------------------------------------------------


def _hitl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hitl_core.cli", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("verb", "old"), [("approve", "--comment"), ("reject", "--reason")])
def test_a_retired_cli_flag_still_works_and_says_which_flag_to_use(verb: str, old: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    machine = HITLStateMachine(url, load_entrypoints=False)
    machine.sync.start_task("t")
    machine.sync.request_approval("t", "why")
    machine.sync.close()
    done = _hitl("--store", url, verb, "t", "--as", "alice", old, "the text")
    assert done.returncode == 0, done.stderr
    assert f"hitl: {old} is deprecated: use --message" in done.stderr
    machine = HITLStateMachine(url, load_entrypoints=False)
    task = machine.sync.get_task("t")
    machine.sync.close()
    assert task is not None and task.decision is not None and task.decision.message == "the text"


# -- the renamed paused-run types ------------------------------------------------------------

PAUSED_RUNS = [
    ("hitl_langgraph", "GraphRun"),
    ("hitl_pydantic_ai", "AgentRunPaused"),
    ("hitl_openai_agents", "PendingRun"),
    ("hitl_adk", "AdkRunPaused"),
]


@pytest.mark.parametrize(("package", "old"), PAUSED_RUNS)
def test_a_retired_paused_run_name_is_the_paused_run_and_warns(package: str, old: str) -> None:
    import importlib

    module = importlib.import_module(package)
    adapter = importlib.import_module(f"{package}.adapter")
    for where in (module, adapter):
        with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated: use {package}.PausedRun"):
            retired = getattr(where, old)
        assert retired is module.PausedRun is adapter.PausedRun


# -- a store made before the renames ---------------------------------------------------------


@pytest.fixture
def old_store(tmp_path: Path) -> str:
    copy = tmp_path / "hitl.db"
    shutil.copyfile(OLD_STORE, copy)
    copy.chmod(0o600)
    return f"sqlite:///{copy}"


async def test_a_store_made_before_the_renames_opens_and_verifies(old_store: str) -> None:
    from hitl_core import audit

    async with HITLStateMachine(old_store, load_entrypoints=False) as machine:
        report = await audit.verify(machine.store)
        assert report.ok, report.all_problems
        assert report.chain.tasks == 6
        approved = await machine.get_task("approved")
        rejected = await machine.get_task("rejected")
        edited = await machine.get_task("edited")
        answered = await machine.get_task("answered")
        assert approved is not None and rejected is not None and edited is not None and answered is not None
        # stored names are hashed into the chain: they stay as they were written
        assert approved.approval_data is not None and rejected.approval_data is not None
        assert (approved.approval_data["approver"], approved.approval_data["notes"]) == ("alice", "window is open")
        assert (rejected.approval_data["rejector"], rejected.approval_data["reason"]) == ("bob", "never on a Friday")
        assert approved.state is TaskState.COMPLETED and approved.decision is not None
        assert approved.decision.message == "window is open"
        assert edited.decision is not None and edited.decision.actor.id == "carol" and edited.decision.message == "cap"
        assert answered.decision is not None and answered.decision.actor.id == "dana"
        # and it goes on with today's words, the chain still intact
        await machine.reject("waiting", actor="erin", message="keep the backups")
        report = await audit.verify(machine.store)
        assert report.ok and report.chain.events > 0


def test_hitl_audit_verify_accepts_a_store_made_before_the_renames(old_store: str) -> None:
    done = _hitl("--store", old_store, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ") and "6 tasks" in done.stdout
