"""``examples/crewai_publish.py`` against ``hitl serve``, as tests/server/test_proof_examples.py runs
the other adapters' examples: the example is its own process, told where the server is by its
environment alone (``HITL_STORE=https://…``, ``HITL_TOKEN`` of an agent token named ``editor``, the
crew agent's role, and ``HITL_CA_BUNDLE``); the real ``hitl`` command approves and rejects through
the server's Unix socket; the crew finishes. Offline (the adapter's ``OfflineToolLLM``).

The server is tests/server/conftest.py's ``ServerProcess``, run with this environment's Python
(``make test-crewai`` installs the ``server`` extra here too).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The example process imports CrewAI: on a loaded 2-core machine that alone can take a minute.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
HITL = [sys.executable, "-m", "hitl_core.cli"]


def _server_fixtures():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("hitl_server_fixtures", ROOT / "tests" / "server" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_crewai_example_through_the_server() -> None:
    fixtures = _server_fixtures()
    directory = fixtures.server_directory()
    server = fixtures.ServerProcess(directory, listen=True)
    crew = None
    try:
        server.start()
        env = fixtures.child_env(
            HITL_STORE=server.https_url,
            HITL_TOKEN=server.token("editor", "agent"),
            HITL_CA_BUNDLE=str(server.cert),
            HOME=str(directory),
        )
        crew = subprocess.Popen(
            [sys.executable, "examples/crewai_publish.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        cli_env = fixtures.child_env()
        waiting: list[dict[str, object]] = []
        deadline = time.monotonic() + 200
        while len(waiting) < 2:  # CrewAI runs the turn's two calls on two threads: both wait at once
            if crew.poll() is not None:
                out, err = crew.communicate()
                raise AssertionError(f"the example exited ({crew.returncode}) early:\n{out}\n{err[-3000:]}")
            assert time.monotonic() < deadline, "the example's publish calls never reached the server"
            listed = subprocess.run(
                [*HITL, "--store", server.unix_url, "ls", "--state", "waiting", "--json"],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 0, listed.stderr
            waiting = json.loads(listed.stdout)
            time.sleep(0.2)
        by_section = {t["interrupt_point"]["action"]["args"]["section"]: t for t in waiting}  # type: ignore[index]
        assert by_section["news"]["agent"] == "editor" and by_section["news"]["framework"] == "crewai"
        for command in (
            ["approve", str(by_section["news"]["task_id"])],
            ["reject", str(by_section["blog"]["task_id"]), "--reason", "legal has not read it"],
        ):
            decided = subprocess.run(
                [*HITL, "--store", server.unix_url, *command], env=cli_env, capture_output=True, text=True, timeout=60
            )
            assert decided.returncode == 0, decided.stderr
        out, err = crew.communicate(timeout=200)
        assert crew.returncode == 0, err
        assert "tool: published 'hitl 1.0 is out' in news" in out
        assert "tool: Tool call rejected by root: legal has not read it" in out
    finally:
        if crew is not None and crew.poll() is None:
            crew.kill()
            crew.wait(10)
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
