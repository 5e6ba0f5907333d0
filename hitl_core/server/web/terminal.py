"""The Textual console in the browser: ``/web/terminal`` (the page) and ``/web/terminal/ws``.

One ``hitl console`` process per open tab, as textual-serve does, but behind our own login on
the server's own port (no second server, no second login): the WebSocket handshake must carry
a live session cookie and our Origin, else it is refused before anything is spawned.

The process is the ordinary console (``python -m hitl_core.cli console``) with Textual's web
driver (``TEXTUAL_DRIVER=textual.drivers.web_driver:WebDriver``): it writes framed packets to
stdout (``D`` terminal bytes, ``M`` JSON meta) and reads the same frames on stdin. It talks to
this server through the server's own client (``RemoteMachine`` over HTTPS) with a token made
for this tab: it acts as the logged-in web user (``tokens.create_session``: principal = the
user, source ``web``, role = the user's, expiry = the session's). Its environment is built
from an allow-list, so nothing of the server's (a store URL with a password, ``PG*``, a
token) reaches it. The token is revoked when the tab closes, at logout, and the process is
killed then too.

The browser side is textual-serve's ``textual.js`` (MIT), served from the installed package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...text import hitl_logger
from ..tokens import Role, TokenStore
from .accounts import Session, WebRole
from .app import SESSION_COOKIE

log = hitl_logger("hitl.server")
audit_log = hitl_logger("hitl.audit")

#: What the console process may inherit from the server's environment: nothing that names or
#: opens the store (HITL_STORE, PG*, DATABASE_URL, HITL_TOKEN(S) are all left out).
ENV_ALLOW = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "XDG_CONFIG_HOME",
    "HITL_CONSOLE_DWELL",
)
#: Token roles for web roles. An admin's console decides; it needs no token administration.
_TOKEN_ROLE = {WebRole.OBSERVER: Role.OBSERVER, WebRole.OPERATOR: Role.OPERATOR, WebRole.ADMIN: Role.OPERATOR}
_MAX_SIZE = 500  # columns/rows a browser may ask for
_MAX_FRAME = 64 * 1024

_CSP = (
    # textual.js (webpack's style-loader, xterm) adds <style> elements: 'unsafe-inline' styles on
    # this page only. No inline script, nothing from another origin.
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self';"
    " img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hitl console — {user}</title>
<link rel="stylesheet" href="/web/terminal/static/xterm.css">
<link rel="stylesheet" href="/web/terminal/static/terminal.css">
<script src="/web/terminal/static/textual.js"></script>
</head><body data-user="{user}" data-role="{role}">
<div id="terminal" class="textual-terminal" data-session-websocket-url="{ws_url}" data-font-size="15"></div>
<div class="closed-note">Console ended (logged out, or the tab's session closed). <a href="/web/terminal">Reconnect</a></div>
</body></html>
"""

_CSS = """@font-face { font-family: 'Roboto Mono'; src: url('/web/terminal/static/RobotoMono.ttf'); }
body { background: #0c181f; margin: 0; }
.closed-note { display: none; color: #eee; font: 16px sans-serif; padding: 1em; }
body.-closed .closed-note { display: block; }
body.-closed .textual-terminal { display: none; }
"""


def _asset(*parts: str) -> bytes:
    return resources.files("textual_serve").joinpath("static", *parts).read_bytes()


@dataclass
class Console:
    """One browser tab's console process and the token it runs with."""

    user: str
    session_hash: str
    token_name: str
    process: asyncio.subprocess.Process
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def _die_with_parent() -> None:
    """In the child, before exec: if the server dies, the kernel ends the console too (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Terminals:
    """The console processes of every open tab, by session."""

    def __init__(self, web: Any, tokens: TokenStore, store_url: str, ca_bundle: str | None) -> None:
        self.web = web  # the Web: sessions, the origin, refusals
        self.tokens = tokens
        self.store_url = store_url
        self.ca_bundle = ca_bundle
        self.consoles: dict[int, Console] = {}

    # -- lifetime ----------------------------------------------------------------------------------

    def environment(self, token: str, width: int, height: int) -> dict[str, str]:
        env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
        env.update(
            {
                "HITL_TOKEN": token,
                "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",
                "TEXTUAL_COLOR_SYSTEM": "truecolor",
                "TERM_PROGRAM": "textual",
                "COLUMNS": str(width),
                "ROWS": str(height),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.ca_bundle:
            env["HITL_CA_BUNDLE"] = self.ca_bundle
        return env

    async def spawn(self, session: Session, width: int, height: int) -> Console:
        key = f"{session.id_hash[:12]}.{secrets.token_hex(4)}"
        lifetime = session.expires_at - datetime.now(UTC)
        token, info = self.tokens.create_session(session.name, _TOKEN_ROLE[session.role], key, lifetime)
        command = [sys.executable, "-m", "hitl_core.cli", "console", "--store", self.store_url, "--as", session.name]
        if not session.role.may_decide:
            command.append("--readonly")
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(token, width, height),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except BaseException:
            self.tokens.revoke(info.name)
            raise
        console = Console(session.name, session.id_hash, info.name, process)
        self.consoles[process.pid] = console
        audit_log.warning(
            "web console: %s (%s) opened a console, pid %d, token %s",
            session.name,
            session.role.value,
            process.pid,
            info.name,
        )
        return console

    async def end(self, console: Console) -> None:
        """Kill the process (if alive) and revoke its token: idempotent."""
        self.consoles.pop(console.process.pid, None)
        if console.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                console.process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(console.process.wait(), 10)
        with contextlib.suppress(Exception):
            self.tokens.revoke(console.token_name)

    async def end_session(self, session: Session) -> int:
        """At logout: every console of this session ends, and every token made for it is revoked."""
        ended = [c for c in list(self.consoles.values()) if c.session_hash == session.id_hash]
        for console in ended:
            await self.end(console)
        self.tokens.revoke_session(session.name, session.id_hash[:12])
        return len(ended)

    # -- routes ------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        session = self.web.session(request)
        if session is None:
            return self.web.to_login(request)
        scheme = "wss" if self.web.origin.startswith("https") else "ws"
        ws_url = f"{scheme}://{self.web.origin.split('://', 1)[1]}/web/terminal/ws"
        body = _PAGE.format(user=escape(session.name), role=escape(session.role.value), ws_url=escape(ws_url))
        return HTMLResponse(body, headers=_HEADERS)

    async def socket(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        session = self.web.accounts.session(websocket.cookies.get(SESSION_COOKIE))
        peer = websocket.client.host if websocket.client else ""
        if origin != self.web.origin:
            await self.web.refuse(
                session.name if session else "-",
                session.role.value if session else "-",
                "open a console",
                f"the WebSocket came from another site ({origin})",
                peer=peer,
            )
            await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        if session is None:
            await self.web.refuse("-", "-", "open a console", "no live session", peer=peer)
            await websocket.close(code=1008)
            return
        width = _size(websocket.query_params.get("width"), 80)
        height = _size(websocket.query_params.get("height"), 24)
        await websocket.accept()
        console = await self.spawn(session, width, height)
        relay = asyncio.create_task(self._relay_out(websocket, console))
        try:
            await self._relay_in(websocket, console)
        except WebSocketDisconnect:
            pass
        finally:
            await self.end(console)
            relay.cancel()
            with contextlib.suppress(BaseException):
                await relay
            with contextlib.suppress(Exception):
                await websocket.close()

    async def _relay_in(self, websocket: WebSocket, console: Console) -> None:
        """Browser -> process: keys (``stdin``), size, focus; also ends when the session does."""
        stdin = console.process.stdin
        assert stdin is not None
        while console.process.returncode is None:
            try:
                message = await asyncio.wait_for(websocket.receive(), 5.0)
            except TimeoutError:
                if self.web.accounts.session(websocket.cookies.get(SESSION_COOKIE)) is None:
                    return  # logged out elsewhere, expired, or the user was removed
                continue
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not text or len(text) > _MAX_FRAME:
                continue
            try:
                envelope = json.loads(text)
                kind = envelope[0]
            except (ValueError, IndexError, KeyError, TypeError):
                continue
            if kind == "stdin" and isinstance(envelope[1], str):
                stdin.write(_packet(b"D", envelope[1].encode("utf-8")))
            elif kind == "resize" and isinstance(envelope[1], dict):
                width = _size(envelope[1].get("width"), 80)
                height = _size(envelope[1].get("height"), 24)
                stdin.write(_packet(b"M", json.dumps({"type": "resize", "width": width, "height": height}).encode()))
            elif kind == "ping":
                await websocket.send_text(json.dumps(["pong", str(envelope[1])[:32]]))
                continue
            elif kind in ("focus", "blur"):
                stdin.write(_packet(b"M", json.dumps({"type": kind}).encode()))
            else:
                continue
            try:
                await stdin.drain()
            except (ConnectionError, RuntimeError):
                return

    async def _relay_out(self, websocket: WebSocket, console: Console) -> None:
        """Process -> browser: terminal bytes. Meta packets other than exit are dropped (no
        ``open_url``: the console has no business steering the operator's browser)."""
        stdout = console.process.stdout
        stderr = console.process.stderr
        assert stdout is not None and stderr is not None
        tail = bytearray()

        async def drain_errors() -> None:  # always read: a full stderr pipe would stall the console
            while chunk := await stderr.read(4096):
                tail.extend(chunk)
                del tail[:-2000]

        errors = asyncio.create_task(drain_errors())
        try:
            for _ in range(50):  # Textual's prelude; anything before it is noise
                line = await stdout.readline()
                if not line or line == b"__GANGLION__\n":
                    break
            while True:
                kind = await stdout.readexactly(1)
                size = int.from_bytes(await stdout.readexactly(4), "big")
                payload = await stdout.readexactly(size)
                if kind == b"D":
                    await websocket.send_bytes(payload)
                elif kind == b"M" and json.loads(payload).get("type") == "exit":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            errors.cancel()
            if tail:
                log.warning("web console of %s wrote: %s", console.user, tail.decode(errors="replace"))
            with contextlib.suppress(Exception):
                await websocket.close()

    def routes(self) -> list[BaseRoute]:
        def static(body: bytes, media: str) -> Any:
            async def serve(request: Request) -> Response:
                return Response(body, media_type=media, headers={**_HEADERS, "Cache-Control": "max-age=300"})

            return serve

        return [
            Route("/web/terminal", self.page, methods=["GET"]),
            WebSocketRoute("/web/terminal/ws", self.socket),
            Route("/web/terminal/static/textual.js", static(_asset("js", "textual.js"), "text/javascript")),
            Route("/web/terminal/static/xterm.css", static(_asset("css", "xterm.css"), "text/css")),
            Route("/web/terminal/static/terminal.css", static(_CSS.encode(), "text/css")),
            Route(
                "/web/terminal/static/RobotoMono.ttf",
                static(_asset("fonts", "RobotoMono-VariableFont_wght.ttf"), "font/ttf"),
            ),
        ]


def _packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def _size(raw: object, default: int) -> int:
    try:
        value = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
    return value if 1 <= value <= _MAX_SIZE else default


def console_store_url(listen: str | None, public_url: str) -> str:
    """Where the console process reaches this server: the TLS listener, on loopback when it
    listens on every address (the certificate must name that address; see docs/architecture.md)."""
    if listen is None:
        return public_url
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


__all__ = ["Terminals", "console_store_url"]
