"""Fixtures for the web tests: one ``hitl serve --web`` per module (TLS, a webhook receiver, web
users made with the real ``hitl user add``), one Chromium per module driven by Playwright.

Chromium is Debian's (``/usr/bin/chromium``, ``make chromium``); Playwright never downloads a
browser. Under CI=true a missing chromium fails the tests; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hitl_core.server.web.accounts import WebAccounts
from tests.server.conftest import ROOT, ServerProcess, child_env, hitl_cli, server_directory

CHROMIUM = os.environ.get("HITL_CHROMIUM", "/usr/bin/chromium")
PASSWORDS = {
    "alice": "alice-correct-horse",
    "bob": "bob-battery-staple",
    "olga": "olga-observes-only",
    "sam": "sam-session-expiry",
    "tina": "tina-totp-enabled",
    "rita": "rita-rate-limited",
}
ROLES = {
    "alice": "operator",
    "bob": "operator",
    "olga": "observer",
    "sam": "operator",
    "tina": "operator",
    "rita": "operator",
}
WEBHOOK_SECRET = "web-test-webhook-secret"


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"chromium is not installed at {CHROMIUM} (make chromium installs Debian's package)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + ": the web tests must run under CI")
    pytest.skip(message)


class Receiver:
    """A local HTTP server that keeps every webhook body it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def notice_for(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        """The latest ``requested`` notice for ``task_id`` (waits for it)."""
        return self.notices_for(task_id, 1, timeout)[-1]

    def notices_for(self, task_id: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [b for b in list(self.bodies) if b.get("task_id") == task_id and b.get("kind") == "requested"]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no webhook notice #{count} for {task_id} within {timeout}s: {self.bodies[-5:]}")
            time.sleep(0.05)

    def close(self) -> None:
        self.httpd.shutdown()


class WebServer(ServerProcess):
    """``hitl serve --web`` with TLS on 127.0.0.1."""

    def args(self) -> list[str]:
        # one server serves a whole module of attacks, most by alice: record every refusal (the
        # default bound of 10 a minute per person is tested in tests/server)
        return [*super().args(), "--web", "--refusal-audit-limit", "1000"]

    @property
    def url(self) -> str:
        return self.https_url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30) -> str:
        """The first line of the server's log matching ``pattern`` (a regex), waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}: {self.log_text()[-3000:]}")
            time.sleep(0.05)

    def refusal_records(self) -> list[dict[str, Any]]:
        """The ``refused`` records of the store's audit chain (read over the Unix socket)."""
        with self.unix_client() as client:
            response = client.get("/v1/audit", params={"kind": "refused"})
            response.raise_for_status()
            return list(response.json()["records"])

    def wait_refusal(self, **match: Any) -> dict[str, Any]:
        """The first web refusal in the audit chain whose data has every ``match`` item, waiting for it."""
        deadline = time.monotonic() + 30
        while True:
            for record in self.refusal_records():
                data = record["data"]
                if data.get("channel") == "web" and all(data.get(k) == v for k, v in match.items()):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"no web refusal with {match} in the audit chain: {self.refusal_records()[-5:]}")
            time.sleep(0.05)

    def ask(
        self, task_id: str, reason: str, *, severity: str = "high", args: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Start ``task_id`` and ask for approval over the Unix socket (this process as the agent)."""
        with self.unix_client() as client:
            path = f"/v1/tasks/{quote(task_id, safe='/')}"
            client.post(f"{path}/start", json={}).raise_for_status()
            body = {
                "reason": reason,
                "severity": severity,
                "action": {"name": "refund", "args": args or {"amount": 7}},
                **extra,
            }
            response = client.post(f"{path}/request", json=body)
            response.raise_for_status()
            return response.json()

    def task(self, task_id: str) -> dict[str, Any]:
        with self.unix_client() as client:
            response = client.get(f"/v1/tasks/{quote(task_id, safe='/')}")
            response.raise_for_status()
            return response.json()

    def agent(self, task_id: str, reason: str, severity: str = "high") -> subprocess.Popen[str]:
        """``web_agent.py`` in its own process, against this server's socket."""
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("web_agent.py")), task_id, reason, severity],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(HITL_STORE=self.unix_url),
            cwd=ROOT,
        )


def read_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60) -> str:
    """The agent's next output line starting with ``prefix`` (a reader thread: no blocking forever)."""
    box: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(prefix):
                box.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        proc.kill()
        raise AssertionError(f"the agent printed no {prefix!r} line within {timeout}s")
    return box[0]


@pytest.fixture(scope="module")
def web_server() -> Iterator[WebServer]:
    receiver = Receiver()
    directory = server_directory()
    config = directory / "hitl.toml"
    config.write_text(
        "[authorization]\nenforce_assignees = true\n"
        "[[notify.webhooks]]\n"
        f'url = "{receiver.url}"\nsecret = "{WEBHOOK_SECRET}"\nmin_severity = "low"\nevents = ["requested"]\n'
    )
    server = WebServer(directory, config=config, listen=True)
    # The first user through the real command line (password on stdin), the rest directly.
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_core.cli",
            "user",
            "--tokens",
            str(server.token_file),
            "add",
            "alice",
            "--role",
            "operator",
            "--password-stdin",
        ],
        input=PASSWORDS["alice"] + "\n",
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    accounts = WebAccounts(server.token_file)
    for name, role in ROLES.items():
        if name != "alice":
            secret = accounts.add(name, role, PASSWORDS[name], totp=name == "tina")
            if secret is not None:
                server.totp_secret = secret  # type: ignore[attr-defined]
    server.receiver = receiver  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.kill()
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    # generous: agents are real processes on a loaded 2-core machine (a deadline, not a sleep)
    expect.set_options(timeout=30_000)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--disable-gpu", "--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any, web_server: WebServer) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=…)``: a page in a fresh context (its own cookies), closed at the end."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(ignore_https_errors=True, base_url=web_server.url, **options)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(
    page: Any, name: str, password: str | None = None, totp: str | None = None, next_path: str = "/web/"
) -> None:
    page.goto(f"/web/login?next={next_path}")
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name] if password is None else password)
    if totp is not None:
        page.fill("#totp", totp)
    page.click("#login")
    page.wait_for_load_state()


def https_client(server: WebServer) -> httpx.Client:
    return server.https_client()


__all__ = ["hitl_cli"]  # the fixture, shared with tests/server
