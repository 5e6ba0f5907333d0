"""Notifiers: tell a person about a request without them staring at the console.

A ``Notifier`` gets a ``Notice`` (what happened to which task, how urgent, a deep link back).
Three ship here: the terminal (bell and a line on stderr, for a process without the console —
the console has its own toast and bell), the desktop (``notify-send`` when it is installed,
skipped cleanly when not) and a webhook (a JSON POST signed as Stripe signs, with a timestamp:
``hitl_core.webhooks``; retried with exponential backoff). ``NotifierPlugin`` turns hook calls
into notices and sends them in the background: a slow webhook never delays the agent's request.

A webhook URL is a credential (chat services put their token in its path or query), so logs and
errors name only its origin: ``scheme://host[:port]/…``. Credentials in the URL
(``https://user:pass@host/…``) are sent as HTTP Basic authorization, never in a log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..hookspecs import hookimpl
from ..models import Event, InterruptPoint, Severity, TaskContext
from ..webhooks import SIGNATURE_HEADER, sign
from .config import DesktopNotifyConfig, NotifyConfig, TerminalNotifyConfig, WebhookConfig

log = logging.getLogger("hitl.policies.notify")

NoticeKind = Literal["requested", "warning", "escalated", "expired"]


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    task_id: str
    severity: str
    title: str
    body: str
    agent: str | None = None
    action: str | None = None
    deadline: str | None = None
    assignees: tuple[str, ...] = ()
    #: A signed link to decide this request in a browser (``hitl serve --web``), when there is one.
    action_link: str | None = None

    def payload(self, link: str, delivery: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["assignees"] = list(self.assignees)
        data["link"] = link
        data["sent_at"] = datetime.now(UTC).isoformat()
        if delivery is not None:
            # in the signed body, so a receiver can drop replays within the tolerance by it
            data["delivery"] = delivery
        return data


class Notifier(Protocol):
    """Anything with a ``min_severity`` and an async ``send``; ``send`` may raise (it is logged)."""

    name: str
    min_severity: Severity

    async def send(self, notice: Notice) -> None: ...


class TerminalNotifier:
    """The bell and one line on a terminal stream (stderr by default)."""

    name = "terminal"

    def __init__(self, config: TerminalNotifyConfig, stream: IO[str] | None = None) -> None:
        self.min_severity = config.min_severity
        self.bell = config.bell
        self.stream = stream

    async def send(self, notice: Notice) -> None:
        stream = self.stream or sys.stderr
        # agent-supplied text: control characters are shown, never obeyed by the terminal
        text = "".join(
            ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
            for ch in f"hitl: {notice.title}: {notice.body}"
        )
        stream.write(("\a" if self.bell else "") + text + "\n")
        stream.flush()


class DesktopNotifier:
    """``notify-send`` (freedesktop notifications); absent → every notice is skipped, logged once."""

    name = "desktop"

    def __init__(self, config: DesktopNotifyConfig) -> None:
        self.min_severity = config.min_severity
        self.command = shutil.which(config.command)
        if self.command is None:
            log.info("desktop notifications off: %r is not installed", config.command)

    @property
    def available(self) -> bool:
        return self.command is not None

    async def send(self, notice: Notice) -> None:
        if self.command is None:
            return
        urgency = "critical" if notice.severity == "critical" else "normal"
        process = await asyncio.create_subprocess_exec(
            self.command,
            "--app-name=hitl",
            f"--urgency={urgency}",
            notice.title,
            notice.body,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=10)
        if process.returncode:
            raise RuntimeError(f"{self.command} exited {process.returncode}: {err.decode(errors='replace').strip()}")


class WebhookError(RuntimeError):
    """A delivery that will not succeed by retrying (a 3xx or 4xx answer), or the last failure."""


class _AttemptFailed(Exception):
    """One failed attempt worth retrying; the message is safe to log (no URL in it)."""


def url_origin(url: str) -> str:
    """``scheme://host[:port]/…``: how a webhook URL appears in logs and errors. Its path, query,
    fragment and credentials are where chat services keep the token, so they never appear."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}/…"


def _opener_without_redirects() -> Any:
    """urllib's opener, refusing redirects. Imported here, not at the top: urllib.request and
    http.client cost every ``hitl ask`` and hook call their import, and only a webhook uses them."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        # A redirected POST is not a delivery: urllib would re-send it as a GET without the body
        # (301/302/303) and count the GET's 200. Refusing to follow makes the 3xx an HTTPError.
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirects())


def _describe(exc: BaseException, secrets: list[str]) -> str:
    """A failed attempt, for a log line: what went wrong, with every part of the URL that may be a
    credential cut out (an exception's text may quote the URL, its host:port or its path)."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    text = str(exc.reason) if isinstance(exc, urllib.error.URLError) else f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        text = text.replace(secret, "…")
    return text


def _url_secrets(url: str) -> list[str]:
    """The parts of ``url`` a log must not show, longest first."""
    try:
        parts = urlsplit(url)
        found = [url, parts.netloc if "@" in parts.netloc else "", parts.path, parts.query, parts.fragment]
        found += [parts.username or "", parts.password or "", unquote(parts.password or "")]
    except ValueError:
        found = [url]
    return sorted({p for p in found if len(p) >= 3 and p != "/"}, key=len, reverse=True)


class WebhookNotifier:
    """POST each notice as JSON, signed with a timestamp (``hitl_core.webhooks``); retry
    connection errors, 429 and 5xx with backoff. A redirect or another 4xx fails at once."""

    name = "webhook"

    def __init__(self, config: WebhookConfig, source: Path | None = None) -> None:
        self.config = config
        self.min_severity = config.min_severity
        self.events = set(config.events)
        self.secrets = [_secret(config.secret, config.secret_env, "secret_env", source)]
        if config.previous_secret is not None or config.previous_secret_env is not None:
            self.secrets.append(
                _secret(config.previous_secret, config.previous_secret_env, "previous_secret_env", source)
            )
        self.origin = url_origin(config.url)
        self._secret_parts = _url_secrets(config.url)
        parts = urlsplit(config.url)
        self._authorization: str | None = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
            netloc = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=netloc)
        self._target = urlunsplit(parts)
        self._opener = _opener_without_redirects()
        self.attempts = 0

    def link(self, task_id: str) -> str:
        return self.config.link.replace("{task_id}", quote(task_id, safe=""))

    async def send(self, notice: Notice) -> None:
        if notice.kind not in self.events:
            return
        delivery = uuid.uuid4().hex
        payload = notice.payload(self.link(notice.task_id), delivery)
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            self.attempts += 1
            try:
                await asyncio.to_thread(self._post, body, delivery, attempt)
                return
            except _AttemptFailed as exc:
                if attempt == self.config.retries:
                    raise WebhookError(f"webhook {self.origin} failed after {attempt + 1} attempts: {exc}") from None
                log.warning(
                    "webhook %s attempt %d failed (%s); retrying in %.2fs", self.origin, attempt + 1, exc, delay
                )
                await asyncio.sleep(delay)
                delay *= 2

    def _post(self, body: bytes, delivery: str, attempt: int) -> None:
        import urllib.error
        import urllib.request

        headers = {
            "Content-Type": "application/json",
            "User-Agent": "hitl-webhook/1",
            # signed at each attempt: the time is that of this request, not of the first
            SIGNATURE_HEADER: sign(self.secrets, body),
            "X-Hitl-Delivery": delivery,
            "X-Hitl-Attempt": str(attempt + 1),
        }
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        request = urllib.request.Request(self._target, data=body, method="POST", headers=headers)
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 429 or exc.code >= 500:
                raise _AttemptFailed(f"HTTP {exc.code}") from None  # worth retrying
            if 300 <= exc.code < 400:
                raise WebhookError(
                    f"webhook {self.origin} answered HTTP {exc.code}, a redirect: not followed and not a "
                    "delivery (configure the URL it redirects to)"
                ) from None
            raise WebhookError(f"webhook {self.origin} refused the notice: HTTP {exc.code}") from None
        except Exception as exc:
            raise _AttemptFailed(_describe(exc, self._secret_parts)) from None


def _secret(value: str | None, env: str | None, key: str, source: Path | None) -> bytes:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            from .config import ConfigError

            raise ConfigError(
                source or "hitl.toml", None, f"notify.webhooks.{key}", f"the environment variable {env} is not set"
            )
    assert value is not None
    return value.encode("utf-8")


def build_notifiers(config: NotifyConfig, source: Path | None = None) -> list[Notifier]:
    notifiers: list[Notifier] = []
    if config.terminal is not None and config.terminal.enabled:
        notifiers.append(TerminalNotifier(config.terminal))
    if config.desktop is not None and config.desktop.enabled:
        notifiers.append(DesktopNotifier(config.desktop))
    for hook in config.webhooks:
        notifiers.append(WebhookNotifier(hook, source))
    return notifiers


def _notice(kind: NoticeKind, task: TaskContext, interrupt: InterruptPoint, title: str) -> Notice:
    return Notice(
        kind=kind,
        task_id=task.task_id,
        severity=interrupt.severity.value,
        title=title,
        body=interrupt.reason[:500],
        agent=task.agent,
        action=interrupt.action.name if interrupt.action else None,
        deadline=interrupt.deadline.isoformat() if interrupt.deadline else None,
        assignees=tuple(interrupt.assignees),
    )


class NotifierPlugin:
    """Hooks → notices → every notifier whose ``min_severity`` the notice reaches, in the background."""

    def __init__(self, notifiers: list[Notifier]) -> None:
        self.notifiers = notifiers
        self.pending: set[asyncio.Task[None]] = set()
        self.failures = 0
        self.sent = 0
        #: Set by ``hitl serve --web``: makes a signed action link for a waiting task's notices.
        self.action_links: Callable[[TaskContext, InterruptPoint], str | None] | None = None

    def _notice(self, kind: NoticeKind, task: TaskContext, interrupt: InterruptPoint, title: str) -> Notice:
        notice = _notice(kind, task, interrupt, title)
        if self.action_links is not None and kind != "expired":
            try:
                notice = replace(notice, action_link=self.action_links(task, interrupt))
            except Exception as exc:  # a notice without a link is still a notice
                log.error("no action link for task %s: %s", task.task_id, exc)
        return notice

    def dispatch(self, notice: Notice) -> None:
        rank = Severity(notice.severity).rank
        for notifier in self.notifiers:
            if rank >= notifier.min_severity.rank:
                task = asyncio.get_running_loop().create_task(self._send(notifier, notice))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)

    async def _send(self, notifier: Notifier, notice: Notice) -> None:
        try:
            await notifier.send(notice)
            self.sent += 1
        except Exception as exc:  # a notifier never breaks the machine
            self.failures += 1
            log.error("notifier %s failed for task %s: %s", notifier.name, notice.task_id, exc)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for every notice in flight (tests; a clean shutdown); after ``timeout`` seconds the
        rest are cancelled and counted as failures (a dead webhook must not hold up shutdown)."""
        loop = asyncio.get_running_loop()
        until = None if timeout is None else loop.time() + timeout
        while self.pending:
            left = None if until is None else max(until - loop.time(), 0)
            _, late = await asyncio.wait(list(self.pending), timeout=left)
            if late and until is not None and loop.time() >= until:
                for task in late:
                    task.cancel()
                self.failures += len(late)
                log.error("%d notices still in flight after %.0fs at shutdown were dropped", len(late), timeout)
                await asyncio.gather(*late, return_exceptions=True)
                return

    @hookimpl
    def hitl_approval_requested(self, task: TaskContext, interrupt: InterruptPoint) -> None:
        self.dispatch(
            self._notice("requested", task, interrupt, f"{interrupt.severity.value} request waiting: {task.task_id}")
        )

    @hookimpl
    def hitl_deadline_warning(self, task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
        self.dispatch(
            self._notice(
                "warning",
                task,
                interrupt,
                f"{task.task_id}: deadline in {seconds_left:.0f}s, then {interrupt.default_decision}",
            )
        )

    @hookimpl
    def hitl_transition(self, event: Event, task: TaskContext) -> None:
        interrupt = task.interrupt_point
        if event.action == "escalate" and interrupt is not None:
            level = event.data.get("level")
            self.dispatch(
                self._notice(
                    "escalated",
                    task,
                    interrupt,
                    f"{task.task_id} escalated to level {level}: {', '.join(interrupt.assignees)}",
                )
            )
        elif event.actor is not None and event.actor.source == "timeout" and interrupt is not None:
            outcome = task.decision.outcome if task.decision is not None else "the default"
            self.dispatch(
                self._notice("expired", task, interrupt, f"{task.task_id}: deadline passed, {outcome} applied")
            )
