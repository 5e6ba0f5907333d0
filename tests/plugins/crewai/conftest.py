# ruff: noqa: E402 (the environment must be set before CrewAI is imported)
"""Fixtures for the CrewAI adapter: offline, no key, telemetry and tracing off, storage in a temp dir.

These tests run in their own virtualenv (``make test-crewai``: CrewAI pins openai<3 and
pydantic<2.13, which the main environment's OpenAI Agents SDK cannot share).
"""

from __future__ import annotations

import os
import tempfile

# Before CrewAI is imported: it reads these at import time.
_CREWAI_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",  # anonymous usage telemetry
    "OTEL_SDK_DISABLED": "true",  # OpenTelemetry exporters
    "CREWAI_TRACING_ENABLED": "false",  # execution traces to the CrewAI platform
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",  # no PyPI look-up
    "CREWAI_TESTING": "true",
}
os.environ.update(_CREWAI_ENV)
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="hitl-crewai-"))

import threading
from collections.abc import Callable, Iterator

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import tool
from hitl_crewai import OfflineToolLLM

from hitl_core import HITLStateMachine, TaskContext

#: What the publish tool really did, in order (the tests check that blocked calls never ran).
PUBLISHED: list[str] = []


@tool("publish")
def publish(title: str) -> str:
    """Publish an article with this title."""
    PUBLISHED.append(title)
    return f"published {title}"


@tool("word_count")
def word_count(text: str) -> str:
    """Count the words of a text (harmless: needs no approval)."""
    return f"{len(text.split())} words"


def make_crew(*turns: list[tuple[str, dict[str, object]]], human_input: bool = False) -> Crew:
    """A one-agent, one-task crew on the offline LLM, which makes the calls ``turns``."""
    llm = OfflineToolLLM(turns)
    agent = Agent(
        role="editor",
        goal="publish articles",
        backstory="an editor",
        llm=llm,
        tools=[publish, word_count],
        verbose=False,
    )
    task = Task(description="publish the article", expected_output="a report", agent=agent, human_input=human_input)
    return Crew(agents=[agent], tasks=[task], verbose=False)


@pytest.fixture
def published() -> list[str]:
    PUBLISHED.clear()
    return PUBLISHED


class Person:
    """Decides pending tasks from another thread, as someone at the console would."""

    def __init__(self, machine: HITLStateMachine) -> None:
        self.machine = machine
        self.seen: list[TaskContext] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def when_pending(self, count: int, decide: Callable[[list[TaskContext]], None], timeout: float = 60.0) -> None:
        """In the background: once ``count`` tasks wait, call ``decide`` with them."""
        stop = threading.Event()

        def run() -> None:
            try:
                waited = 0.0
                while not stop.wait(0.02):
                    waited += 0.02
                    pending = self.machine.sync.get_pending_approvals()
                    if len(pending) >= count:
                        self.seen.extend(pending)
                        decide(pending)
                        return
                    if waited > timeout:
                        raise AssertionError(f"expected {count} pending, saw {len(pending)}")
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def when(
        self, match: Callable[[TaskContext], bool], decide: Callable[[TaskContext], None], timeout: float = 60.0
    ) -> None:
        """In the background: once a pending task matches, call ``decide`` with it."""

        def pick(pending: list[TaskContext]) -> list[TaskContext]:
            return [t for t in pending if match(t)]

        def run() -> None:
            try:
                waited = 0.0
                while True:
                    found = pick(self.machine.sync.get_pending_approvals())
                    if found:
                        self.seen.append(found[0])
                        decide(found[0])
                        return
                    if waited > timeout:
                        raise AssertionError("no matching task became pending")
                    threading.Event().wait(0.02)
                    waited += 0.02
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def person(machine: HITLStateMachine) -> Iterator[Person]:
    someone = Person(machine)
    yield someone
    someone.join()


@pytest.fixture(name="make_crew")
def make_crew_fixture() -> Callable[..., Crew]:
    return make_crew
