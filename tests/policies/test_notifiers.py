"""Notifiers: a signed webhook checked by a real local HTTP server (and attacked: replayed,
tampered, redirected), notify-send, the terminal bell."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import io
import json
import logging
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hitl_core import TaskState
from hitl_core.policies import DesktopNotifier, Notice, TerminalNotifier
from hitl_core.policies.config import DesktopNotifyConfig, TerminalNotifyConfig
from hitl_core.webhooks import WebhookSignatureError, verify_signature

from .conftest import MachineFactory

SECRET = "correct horse battery staple"


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that checks each POST's signature as a receiver would
    (``verify_signature``), answers ``status`` to the first ``fail_first`` and 204 after, and keeps
    every request's raw headers and body (an attacker's capture)."""

    def __init__(
        self, fail_first: int = 1, status: int = 500, tolerance: float = 300, location: str = "/elsewhere"
    ) -> None:
        self.fail_first = fail_first
        self.status = status
        self.tolerance = tolerance
        self.attempts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []  # why each refused request failed verification
        self.gets: list[str] = []  # a followed redirect would show up here
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("X-Hitl-Signature")
                try:
                    verify_signature(SECRET, header, body, tolerance=receiver.tolerance)
                    signed = True
                except WebhookSignatureError as exc:
                    signed = False
                    receiver.refused.append(exc.reason)
                receiver.attempts.append(
                    {
                        "signed": signed,
                        "signature": header,
                        "body": body,
                        "attempt": self.headers.get("X-Hitl-Attempt"),
                        "delivery": self.headers.get("X-Hitl-Delivery"),
                        "authorization": self.headers.get("Authorization"),
                        "path": self.path,
                    }
                )
                if not signed:
                    self.send_response(400)
                elif len(receiver.attempts) <= receiver.fail_first:
                    self.send_response(receiver.status)
                    if 300 <= receiver.status < 400:
                        self.send_header("Location", location)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                receiver.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/hitl"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def replay(self, signature: str | None, body: bytes) -> int:
        """POST captured bytes again, as an attacker would; the receiver's status code."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers["X-Hitl-Signature"] = signature
            connection.request("POST", "/hooks/hitl", body=body, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()


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
    assert payload["delivery"] == receiver.attempts[0]["delivery"]  # signed, so a receiver can dedupe on it


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
    assert (await m.approve("t", actor="alice")).state == TaskState.APPROVED


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


async def _capture(configured: MachineFactory, receiver: Receiver) -> dict[str, Any]:
    """One real delivery to ``receiver``; its request as captured on the wire."""
    m = configured(webhook_toml(receiver.url))
    await m.start_task("deploy/42", agent="deploy-pilot")
    await m.request_approval("deploy/42", "Deploy 1.42", severity="critical", action="deploy")
    await m.policies.notifier.drain()
    [captured] = receiver.attempts
    return captured


SIGNATURE = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


async def test_webhook_signature_has_timestamp_and_verifies(configured: MachineFactory) -> None:
    with Receiver(fail_first=0) as receiver:
        captured = await _capture(configured, receiver)
    assert captured["signed"] and receiver.refused == []
    header, body = captured["signature"], captured["body"]
    match = SIGNATURE.fullmatch(header)
    assert match is not None, header
    t, v1 = int(match.group(1)), match.group(2)
    assert abs(t - time.time()) < 120  # this request's time, not some fixed value
    # checked by hand, without hitl's helper: Stripe's scheme, HMAC-SHA256 over "t." + the raw body
    assert hmac.compare_digest(v1, hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest())
    assert verify_signature(SECRET, header, body) == t
    assert verify_signature([b"the new secret", SECRET], header, body) == t  # a receiver mid-rotation
    assert json.loads(body)["delivery"] == captured["delivery"]


async def test_each_retry_is_signed_at_its_own_time(configured: MachineFactory) -> None:
    with Receiver(fail_first=1) as receiver:
        m = configured(webhook_toml(receiver.url).replace("backoff = 0.05", "backoff = 1.05"))  # a later second
        await m.start_task("t")
        await m.request_approval("t", "why", severity="high")
        await m.policies.notifier.drain()
    first, second = (int(SIGNATURE.fullmatch(a["signature"]).group(1)) for a in receiver.attempts)
    assert second >= first + 1 and [a["signed"] for a in receiver.attempts] == [True, True]
    assert receiver.attempts[0]["delivery"] == receiver.attempts[1]["delivery"]


async def test_webhook_signed_with_the_previous_secret_too_while_rotating(configured: MachineFactory) -> None:
    with Receiver(fail_first=0) as receiver:
        toml = webhook_toml(receiver.url).replace(f'secret = "{SECRET}"', 'secret = "new secret"')
        m = configured(toml + f'previous_secret = "{SECRET}"\n')
        await m.start_task("t")
        await m.request_approval("t", "why", severity="critical")
        await m.policies.notifier.drain()
    [captured] = receiver.attempts
    assert captured["signed"]  # the receiver still has only the old secret
    assert len(re.findall(r"v1=", captured["signature"])) == 2
    assert verify_signature("new secret", captured["signature"], captured["body"])


async def test_webhook_replay_outside_the_window_is_refused(configured: MachineFactory) -> None:
    with Receiver(fail_first=0, tolerance=1) as receiver:
        captured = await _capture(configured, receiver)
        assert captured["signed"]
        header, body = captured["signature"], captured["body"]
        t = int(SIGNATURE.fullmatch(header).group(1))
        # the attacker waits until the capture is older than the receiver's window (1 s here)
        await asyncio.sleep(max(0.0, t + 2.5 - time.time()))
        assert receiver.replay(header, body) == 400  # the attacker's replay, on the wire
        assert receiver.refused == ["expired"] and len(receiver.accepted) == 1
    # the default window, 300 s, on either side of the receiver's clock
    assert verify_signature(SECRET, header, body, now=t + 299) == t
    with pytest.raises(WebhookSignatureError, match=r"signed 301s old, outside the 300s tolerance") as info:
        verify_signature(SECRET, header, body, now=t + 301)
    assert info.value.reason == "expired"
    with pytest.raises(WebhookSignatureError, match=r"301s in the future"):
        verify_signature(SECRET, header, body, now=t - 301)


async def test_tampered_body_fails_verification(configured: MachineFactory) -> None:
    with Receiver(fail_first=0) as receiver:
        captured = await _capture(configured, receiver)
        header, body = captured["signature"], captured["body"]
        t, v1 = SIGNATURE.fullmatch(header).groups()
        tampered = body.replace(b'"critical"', b'"low"')
        assert tampered != body
        assert receiver.replay(header, tampered) == 400
        # a fresh time on the old signature (to get past the window) breaks it as well
        assert receiver.replay(f"t={int(t) + 1},v1={v1}", body) == 400
        assert receiver.replay(None, body) == 400
        assert receiver.refused == ["mismatch", "mismatch", "missing"]
    with pytest.raises(WebhookSignatureError, match="no v1 signature matches this body") as info:
        verify_signature(SECRET, header, tampered)
    assert info.value.reason == "mismatch"
    with pytest.raises(WebhookSignatureError, match="no v1 signature matches") as info:
        verify_signature("another secret", header, body)
    for bad in (f"sha256={v1}", f"v1={v1}", f"t=soon,v1={v1}", f"t={t},t={t},v1={v1}", f"t={t}", "t=1,v1=é"):
        with pytest.raises(WebhookSignatureError) as info:
            verify_signature(SECRET, bad, body)
        assert info.value.reason == "malformed", bad
    with pytest.raises(WebhookSignatureError, match="no X-Hitl-Signature header") as info:
        verify_signature(SECRET, "", body)
    assert info.value.reason == "missing"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_not_delivery(
    configured: MachineFactory, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    with Receiver(fail_first=100, status=status) as receiver:
        m = configured(webhook_toml(receiver.url, retries=2))
        await m.start_task("t")
        await m.request_approval("t", "why", severity="high")
        await m.policies.notifier.drain()
    assert receiver.gets == [] and len(receiver.attempts) == 1 and receiver.accepted == []  # not followed
    assert m.policies.notifier.failures == 1 and m.policies.notifier.sent == 0
    assert f"answered HTTP {status}, a redirect: not followed and not a delivery" in caplog.text


@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_webhook_url_path_query_and_credentials_never_logged(
    configured: MachineFactory, caplog: pytest.LogCaptureFixture, scheme: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(fail_first=100, status=503) as receiver:
        # https to a plain-HTTP server: TLS fails; http: the server answers 503. Both are retried, logged.
        url = f"{scheme}://hookuser:hookpass@127.0.0.1:{receiver.port}/T000/B000/XXXX?token=supersecret#frag"
        m = configured(webhook_toml(url, retries=1))
        await m.start_task("t")
        await m.request_approval("t", "why", severity="high")
        await m.policies.notifier.drain()
    assert m.policies.notifier.failures == 1
    assert f"{scheme}://127.0.0.1:{receiver.port}/…" in caplog.text  # the origin is what names it
    assert "failed after 2 attempts" in caplog.text
    for secret in ("hookuser", "hookpass", "T000", "B000", "XXXX", "token", "supersecret", "frag"):
        assert secret not in caplog.text, secret
    if scheme == "http":  # the credentials went where they belong: the Authorization header
        expected = "Basic " + base64.b64encode(b"hookuser:hookpass").decode()
        assert [a["authorization"] for a in receiver.attempts] == [expected, expected]
        assert receiver.attempts[0]["path"] == "/T000/B000/XXXX?token=supersecret"


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


def test_verify_signature_module_needs_only_the_standard_library() -> None:
    import ast

    import hitl_core.webhooks

    tree = ast.parse(Path(hitl_core.webhooks.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "") if node.level else (node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {".errors"}
