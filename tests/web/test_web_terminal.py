"""The Textual console in the browser (``/web/terminal``) in a real Chromium: the real console
process per tab, acting as the logged-in web user through the server's own client.

What the page shows is drawn on a canvas (xterm.js), so the tests read what the console process
sends: the WebSocket frames Chromium receives, stripped of escape codes.
"""

from __future__ import annotations

import re
import ssl
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.sync.client import connect as ws_connect

from hitl_core.server.web.accounts import WebAccounts

from .conftest import ROOT, WebServer, log_in, read_line

DOCS = ROOT / "docs"
_ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def tid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class Screen:
    """Everything a page's terminal WebSocket received, as text without escape codes."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.chunks: list[bytes] = []
        self.closed = False

        def on_socket(ws: Any) -> None:
            if ws.url.endswith("/web/terminal/ws") or "/web/terminal/ws?" in ws.url:
                ws.on("framereceived", lambda payload: self.chunks.append(_bytes(payload)))
                ws.on("close", lambda _ws: setattr(self, "closed", True))

        page.on("websocket", on_socket)

    def text(self) -> str:
        return _ANSI.sub("", b"".join(self.chunks).decode("utf-8", errors="replace"))

    def mark(self) -> int:
        """Where the stream is now: ``wait_for(..., since=mark)`` looks only at what comes after."""
        return len(self.chunks)

    def wait_for(self, needle: str, *, since: int = 0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = _ANSI.sub("", b"".join(self.chunks[since:]).decode("utf-8", errors="replace"))
            if needle in seen:
                return
            if time.monotonic() > deadline:
                lines = [line.strip() for line in seen.splitlines() if line.strip()]
                raise AssertionError(f"{needle!r} not on the terminal within {timeout}s; its last lines: {lines[-40:]}")
            self.page.wait_for_timeout(100)  # pumps Playwright's events; the deadline decides

    def wait_closed(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed:
            if time.monotonic() > deadline:
                raise AssertionError("the terminal WebSocket stayed open")
            self.page.wait_for_timeout(100)


def _bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else payload.encode("utf-8")


def open_terminal(new_page: Any, name: str, **options: Any) -> tuple[Any, Screen]:
    page = new_page(**options)
    screen = Screen(page)
    log_in(page, name, next_path="/web/terminal")
    assert page.url.endswith("/web/terminal"), page.url
    screen.wait_for(" hitl ")
    return page, screen


def select_task(page: Any, screen: Screen, task_id: str, detail: str) -> None:
    """Filter the console to ``task_id`` (``/``, the id, Enter): its only row is then the selected
    one. Waits until the detail pane shows ``detail`` and the console's dwell (0.3 s) has passed."""
    page.locator(".xterm-helper-textarea").focus()  # xterm's keyboard input, without a mouse click
    mark = screen.mark()
    page.keyboard.press("/")
    page.keyboard.type(task_id)
    page.keyboard.press("Enter")
    screen.wait_for("showing 1 ", since=mark)  # the header: the filter left one row, the selected one
    screen.wait_for(detail)
    page.wait_for_timeout(600)  # the dwell: a deciding key acts only on a task shown that long


def console_of(server: WebServer, user: str, after: int = 0) -> tuple[int, str]:
    """(pid, token) of ``user``'s newest console process, from the server's audit line and the
    process's own environment (the test runs as the server's OS user, as an attacker on the host would)."""
    deadline = time.monotonic() + 60
    while True:
        pids = [
            int(m) for m in re.findall(rf"web console: {user} \(\w+\) opened a console, pid (\d+)", server.log_text())
        ]
        pids = [p for p in pids if p not in _seen_pids][after:]
        if pids:
            pid = pids[-1]
            _seen_pids.add(pid)
            env = dict(
                item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
            )
            return pid, env["HITL_TOKEN"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no console process for {user}: {server.log_text()[-2000:]}")
        time.sleep(0.1)


_seen_pids: set[int] = set()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def ssl_context(server: WebServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert))


def ws_url(server: WebServer) -> str:
    return server.url.replace("https://", "wss://") + "/web/terminal/ws"


def session_cookie(page: Any) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "__Host-hitl_session")


def test_without_a_login_the_terminal_page_redirects_and_the_socket_is_refused(web_server: WebServer) -> None:
    with web_server.https_client() as client:
        response = client.get("/web/terminal")
        assert response.status_code == 303 and response.headers["location"].startswith("/web/login")
        forged = client.get("/web/terminal", headers={"Cookie": "__Host-hitl_session=forged-session-id"})
        assert forged.status_code == 303
    for headers in ({"Origin": web_server.url}, {"Origin": web_server.url, "Cookie": "__Host-hitl_session=forged"}):
        with pytest.raises(InvalidStatus) as refused:
            try:
                ws_connect(ws_url(web_server), ssl=ssl_context(web_server), additional_headers=headers, open_timeout=30)
            except TimeoutError:
                # Seen once in a loaded run (no answer to the handshake in 30 s), cause unknown:
                # next time, say what the server was doing.
                raise AssertionError(
                    f"no handshake answer in 30 s; the server's log ends:\n{web_server.log_text()[-4000:]}"
                ) from None
        assert refused.value.response.status_code == 403
    web_server.wait_log(r"refused: - \(-, web\) may not open a console -: no live session")
    assert "opened a console" not in web_server.log_text()


def test_a_cross_site_websocket_with_a_live_session_cookie_is_refused(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, "bob")
    cookie = session_cookie(page)
    for origin in ("https://evil.example", "null", web_server.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(
                ws_url(web_server),
                ssl=ssl_context(web_server),
                additional_headers={"Origin": origin, "Cookie": f"__Host-hitl_session={cookie}"},
                open_timeout=30,
            )
        assert refused.value.response.status_code == 403
    web_server.wait_log(
        r"bob \(operator, web\) may not open a console -: the WebSocket came from another site \(https://evil.example\)"
    )
    record = web_server.wait_refusal(principal="bob", what="open a console")  # a record in the audit chain too
    assert "another site" in record["data"]["reason"]
    assert "web console: bob" not in web_server.log_text()


def open_socket(web_server: WebServer, url: str, headers: dict[str, str]) -> Any:
    """A console WebSocket the server accepts, trying a second time if the first handshake got no answer.

    Seen in a fresh-clone CI run under full load (2026-12-01; not in 3 runs of this file beside two
    busy processes): the server closed the connection before any HTTP response ("connection
    closed while reading HTTP status line"), cause not found yet. This test is about what happens after the handshake, so a
    second try is allowed, and said: the warning carries the server's log for whoever looks next.
    Two failures in a row fail the test with the log.
    """
    for attempt in (1, 2):
        try:
            return ws_connect(url, ssl=ssl_context(web_server), additional_headers=headers, open_timeout=30)
        except InvalidMessage as exc:
            log = web_server.log_text()[-4000:]
            if attempt == 2:
                raise AssertionError(f"no handshake answer twice ({exc}); the server's log ends:\n{log}") from None
            warnings.warn(
                f"web console handshake closed without an answer ({exc}); retried. Server log:\n{log}", stacklevel=2
            )
    raise AssertionError("unreachable")


def test_malformed_socket_messages_are_ignored_and_the_console_keeps_running(
    web_server: WebServer, new_page: Any
) -> None:
    page = new_page()
    log_in(page, "bob")
    headers = {"Origin": web_server.url, "Cookie": f"__Host-hitl_session={session_cookie(page)}"}
    url = ws_url(web_server) + "?width=99999&height=-3"  # out of range: the defaults instead
    with open_socket(web_server, url, headers) as socket:
        for garbage in (
            "not json",
            "[]",
            '{"stdin": "a"}',
            '["stdin", 42]',
            '["resize", "wide"]',
            '["resize", {"width": "x", "height": 1e99}]',
            '["open_url", {"url": "https://evil.example"}]',
            '["stdin", "' + "x" * 70_000 + '"]',
        ):
            socket.send(garbage)
        socket.send(b"\x00binary frames are not input")
        socket.send('["ping", "after-the-garbage"]')
        deadline = time.monotonic() + 60
        while True:
            message = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            if message == '["pong", "after-the-garbage"]':
                break
        pid, _token = console_of(web_server, "bob")
        assert alive(pid)


def test_operator_console_renders_and_a_approves_for_the_agent_process_as_the_web_user(
    web_server: WebServer, new_page: Any
) -> None:
    task_id = tid("term")
    agent = web_server.agent(task_id, "refund 420 EUR from the browser console", "high")
    try:
        assert read_line(agent, "waiting") == "waiting"
        page, screen = open_terminal(new_page, "alice", viewport={"width": 1280, "height": 720})
        screen.wait_for(task_id)
        screen.wait_for("alice")
        pid, token = console_of(web_server, "alice")
        select_task(page, screen, task_id, "from the browser console")
        # the process holds a session token, not the store: it is alice over the server's API
        with web_server.https_client(token) as client:
            who = client.get("/v1/whoami").json()
        assert (who["name"], who["role"], who["channel"]) == ("alice", "operator", "web")
        env = Path(f"/proc/{pid}/environ").read_text()
        assert "tokens.db" not in env and "hitl.db" not in env and "HITL_STORE=" not in env
        page.keyboard.press("a")
        assert read_line(agent, "decided") == "decided approve alice | web | None"
    finally:
        try:
            agent.wait(30)
        except Exception:
            agent.kill()
    with web_server.unix_client() as client:
        events = client.get("/v1/events", params={"task_id": task_id}).json()["events"]
    assert [e["actor"] for e in events if e["action"] == "approve"] == [{"id": "alice", "source": "web"}]


def test_a_critical_task_needs_the_confirm_in_the_browser_too_focused_on_cancel(
    web_server: WebServer, new_page: Any
) -> None:
    task_id = tid("crit")
    agent = web_server.agent(task_id, "drop the production database replica", "critical")
    try:
        assert read_line(agent, "waiting") == "waiting"
        page, screen = open_terminal(new_page, "bob", viewport={"width": 1280, "height": 720})
        screen.wait_for(task_id)
        select_task(page, screen, task_id, "database replica")
        mark = screen.mark()
        page.keyboard.press("a")
        screen.wait_for("Approve a critical task", since=mark)
        page.keyboard.press("Enter")  # the dialog's focus is on Cancel
        screen.wait_for(f"cancelled: {task_id} was not approved")
        assert web_server.task(task_id)["state"] == "awaiting_approval"
        mark = screen.mark()
        page.keyboard.press("a")
        screen.wait_for("Approve a critical task", since=mark)
        page.keyboard.press("Shift+Tab")  # to "Approve"
        page.keyboard.press("Enter")
        assert read_line(agent, "decided") == "decided approve bob | web | None"
    finally:
        try:
            agent.wait(30)
        except Exception:
            agent.kill()


def test_observer_console_is_read_only_and_its_credential_cannot_decide(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("observed")
    web_server.ask(task_id, "refund 13 EUR (an observer looks)", severity="high")
    page, screen = open_terminal(new_page, "olga")
    screen.wait_for(task_id)
    screen.wait_for("READ-ONLY")
    _pid, token = console_of(web_server, "olga")
    select_task(page, screen, task_id, "an observer looks")
    page.keyboard.press("a")
    # keys are handled in order: once the help screen (pressed after "a") is drawn, "a" was handled
    page.keyboard.press("?")
    screen.wait_for("id (for the keymap)")
    assert web_server.task(task_id)["state"] == "awaiting_approval"
    assert not re.search(r"refused: olga .*may not approve", web_server.log_text())  # nor was it tried
    # the observer's own credential, used directly against the API: it reads, it cannot decide
    with web_server.https_client(token) as client:
        assert client.get(f"/v1/tasks/{task_id}").status_code == 200
        refused = client.post(f"/v1/tasks/{task_id}/approve", json={})
        assert refused.status_code == 403, refused.text
        forged = client.post(f"/v1/tasks/{task_id}/approve", json={"as": "alice"})
        assert forged.status_code == 403, forged.text
    assert web_server.task(task_id)["state"] == "awaiting_approval"


def test_logout_ends_the_console_process_and_revokes_its_credential(web_server: WebServer, new_page: Any) -> None:
    page, screen = open_terminal(new_page, "sam")
    pid, token = console_of(web_server, "sam")
    assert alive(pid)
    with web_server.https_client(token) as client:
        assert client.get("/v1/whoami").status_code == 200
    other = page.context.new_page()  # the same browser session, on the HTML console
    other.goto("/web/")
    expect(other.locator("#terminal-link")).to_have_attribute("href", "/web/terminal")
    other.click("#logout")
    other.wait_for_load_state()
    assert "/web/login" in other.url
    screen.wait_closed()
    deadline = time.monotonic() + 30
    while alive(pid):
        assert time.monotonic() < deadline, f"console process {pid} still runs after logout"
        time.sleep(0.1)
    with web_server.https_client(token) as client:
        assert client.get("/v1/whoami").status_code == 401
    expect(page.locator("body")).to_have_class(re.compile("-closed"))


def test_removing_the_web_user_ends_their_console_and_revokes_its_credential(
    web_server: WebServer, new_page: Any
) -> None:
    WebAccounts(web_server.token_file).add("tom", "operator", "tom-is-removed-soon")
    page = new_page()
    screen = Screen(page)
    log_in(page, "tom", password="tom-is-removed-soon", next_path="/web/terminal")
    screen.wait_for(" hitl ")
    pid, token = console_of(web_server, "tom")
    with web_server.https_client(token) as client:
        assert client.get("/v1/whoami").json()["name"] == "tom"
    WebAccounts(web_server.token_file).remove("tom")  # what `hitl user remove tom` does, on the server's host
    screen.wait_closed()  # the endpoint re-checks the session every 5 s
    deadline = time.monotonic() + 30
    while alive(pid):
        assert time.monotonic() < deadline, f"console process {pid} still runs after its user was removed"
        time.sleep(0.1)
    with web_server.https_client(token) as client:
        assert client.get("/v1/whoami").status_code == 401


def test_terminal_screenshot(web_server: WebServer, new_page: Any) -> None:
    for name, reason, severity in (
        ("deploy", "deploy build 1842 to production", "high"),
        ("email", "send the weekly report to 1,200 customers", "medium"),
        ("cleanup", "delete 14 stale preview environments", "low"),
    ):
        web_server.ask(tid(name), reason, severity=severity)
    page, screen = open_terminal(new_page, "alice", viewport={"width": 1280, "height": 720})
    screen.wait_for("stale preview")
    expect(page.locator("body")).to_have_class(re.compile("-first-byte"))
    page.wait_for_timeout(1000)  # let xterm paint the last frames onto its canvas before the picture
    page.screenshot(path=str(DOCS / "web-terminal.png"))
