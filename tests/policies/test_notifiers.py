"""Notifiers: a signed webhook checked by a real local HTTP server, notify-send, the terminal bell."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hitl_core import TaskState
from hitl_core.policies import DesktopNotifier, Notice, TerminalNotifier
from hitl_core.policies.config import DesktopNotifyConfig, TerminalNotifyConfig

from .conftest import MachineFactory

SECRET = "correct horse battery staple"


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that checks each POST's signature like a real receiver would."""

    def __init__(self, fail_first: int = 1, status: int = 500) -> None:
        self.fail_first = fail_first
        self.status = status
        self.attempts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-Hitl-Signature", ""), expected)
                receiver.attempts.append(
                    {
                        "signed": signed,
                        "attempt": self.headers.get("X-Hitl-Attempt"),
                        "delivery": self.headers.get("X-Hitl-Delivery"),
                    }
                )
                if not signed:
                    self.send_response(401)
                elif len(receiver.attempts) <= receiver.fail_first:
                    self.send_response(receiver.status)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/hitl"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def webhook_toml(url: str, **extra: Any) -> str:
    lines = [
        f'url = "{url}"',
        f'secret = "{SECRET}"',
        "backoff = 0.05",
        'min_severity = "high"',
        'link = "https://hitl.example.com/tasks/{task_id}"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "[deadlines]\nsweep = false\n[[notify.webhooks]]\n" + "\n".join(lines) + "\n"


async def test_webhook_is_signed_retried_and_links_back_to_the_task(configured: MachineFactory) -> None:
    with Receiver(fail_first=1) as receiver:
        m = configured(webhook_toml(receiver.url))
        await m.start_task("deploy/42", agent="deploy-pilot")
        await m.request_approval(
            "deploy/42",
            "Deploy 1.42 to eu-west",
            severity="critical",
            action="deploy",
            args={"version": "1.42"},
            timeout=600,
        )
        await m.start_task("quiet")
        await m.request_approval("quiet", "low stakes", severity="low")  # under min_severity: not sent
        assert m.policies is not None and m.policies.notifier is not None
        await m.policies.notifier.drain()
    assert [a["signed"] for a in receiver.attempts] == [True, True]
    assert [a["attempt"] for a in receiver.attempts] == ["1", "2"]  # the first got a 500 and was retried
    assert receiver.attempts[0]["delivery"] == receiver.attempts[1]["delivery"]  # same delivery id
    [payload] = receiver.accepted
    assert payload["kind"] == "requested" and payload["task_id"] == "deploy/42"
    assert payload["severity"] == "critical" and payload["agent"] == "deploy-pilot" and payload["action"] == "deploy"
    assert payload["link"] == "https://hitl.example.com/tasks/deploy%2F42"
    assert payload["deadline"] is not None and payload["body"] == "Deploy 1.42 to eu-west"


async def test_failing_webhook_gives_up_without_breaking_the_machine(
    configured: MachineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver(fail_first=100) as receiver:
        m = configured(webhook_toml(receiver.url, retries=2))
        await m.start_task("t")
        task = await m.request_approval("t", "why", severity="high")
        assert task.state == TaskState.AWAITING_APPROVAL
        await m.policies.notifier.drain()
    assert len(receiver.attempts) == 3
    assert m.policies.notifier.failures == 1 and "failed after 3 attempts" in caplog.text
    assert (await m.approve("t", approver="alice")).state == TaskState.APPROVED


async def test_webhook_refused_with_4xx_is_not_retried(configured: MachineFactory) -> None:
    with Receiver(fail_first=100, status=403) as receiver:
        m = configured(webhook_toml(receiver.url, retries=3))
        await m.start_task("t")
        await m.request_approval("t", "why", severity="high")
        await m.policies.notifier.drain()
    assert len(receiver.attempts) == 1 and m.policies.notifier.failures == 1


async def test_escalation_and_expiry_are_notified(configured: MachineFactory) -> None:
    with Receiver(fail_first=0) as receiver:
        toml = (
            webhook_toml(receiver.url).replace("sweep = false", "sweep_interval = 0.02\nwarn_before = 0")
            + '[escalation]\nlevels = [{ assignees = ["manager"], wait = 0.1 }]\n'
        )
        m = configured(toml)
        await m.start_task("t")
        await m.request_approval("t", "why", severity="critical", timeout=0.1)
        await m.wait_for_decision("t", timeout=10)
        await m.policies.notifier.drain()
    kinds = [p["kind"] for p in receiver.accepted]
    assert sorted(kinds) == ["escalated", "expired", "requested"]
    assert next(p for p in receiver.accepted if p["kind"] == "escalated")["assignees"] == ["manager"]


def _fake_notify_send(directory: Path, record: Path) -> None:
    script = directory / "notify-send"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


NOTICE = Notice(
    kind="requested", task_id="t", severity="critical", title="critical request waiting: t", body="Grant admin role"
)


async def test_desktop_notifier_runs_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "args.txt"
    _fake_notify_send(tmp_path, record)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    notifier = DesktopNotifier(DesktopNotifyConfig())
    assert notifier.available
    await notifier.send(NOTICE)
    assert record.read_text().splitlines() == [
        "--app-name=hitl",
        "--urgency=critical",
        "critical request waiting: t",
        "Grant admin role",
    ]


async def test_desktop_notifier_is_skipped_cleanly_without_notify_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no notify-send here
    notifier = DesktopNotifier(DesktopNotifyConfig())
    assert not notifier.available
    await notifier.send(NOTICE)  # nothing to run, nothing raised


async def test_terminal_notifier_rings_the_bell_with_control_characters_made_visible() -> None:
    stream = io.StringIO()
    notifier = TerminalNotifier(TerminalNotifyConfig(), stream=stream)
    await notifier.send(
        Notice(kind="warning", task_id="t", severity="high", title="t: deadline in 30s", body="reply \x1b[31mnow")
    )
    assert stream.getvalue() == "\ahitl: t: deadline in 30s: reply \\x1b[31mnow\n"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # urllib honours *_proxy variables; the receiver is local.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    yield


def test_webhook_secret_from_a_missing_environment_variable_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hitl_core import HITLStateMachine
    from hitl_core.policies import ConfigError

    monkeypatch.delenv("HITL_TEST_NO_SUCH_SECRET", raising=False)
    path = tmp_path / "hitl.toml"
    path.write_text(
        '[[notify.webhooks]]\nurl = "http://127.0.0.1:9/x"\nsecret_env = "HITL_TEST_NO_SUCH_SECRET"\n', encoding="utf-8"
    )
    with pytest.raises(
        ConfigError,
        match=r"notify\.webhooks\.secret_env: the environment variable "
        r"HITL_TEST_NO_SUCH_SECRET is not set",
    ) as info:
        HITLStateMachine("memory://", load_entrypoints=False, config=path)
    assert info.value.path == str(path.resolve())


async def test_close_does_not_wait_forever_for_a_hanging_webhook(configured: MachineFactory) -> None:
    import asyncio
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        m = configured(webhook_toml(url, timeout=30))
        await m.start_task("t")
        await m.request_approval("t", "why", severity="high")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await m.policies.notifier.drain(timeout=0.3)
        assert loop.time() - start < 5 and m.policies.notifier.failures == 1
    finally:
        listener.close()
