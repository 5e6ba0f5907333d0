"""The web routes of ``hitl serve --web``: login, the console, the status page, action links.

Mounted under ``/web`` on the server's own app (same process, same machine, same policy): a
decision made in a browser is ``machine.approve(task, <user>, source="web")``, checked by the
same ``hitl_authorize`` hooks as one made through the API, and recorded under the user's name.

Every page but the login form needs a session. Every POST needs the session's CSRF token (a
form field or ``X-CSRF-Token``) and, when the browser sends one, an ``Origin`` equal to the
server's; the session cookie is ``__Host-`` prefixed, HttpOnly, Secure and SameSite=Strict.
Every refusal is written to the ``hitl.audit`` log and counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from ...errors import ConflictError, HITLError, NotAuthorizedError
from ...models import InterruptPoint, TaskState
from ...records import TaskRecord
from ...text import hitl_logger
from ..app import Server, loggable
from . import pages
from .accounts import Session, WebAccounts
from .links import DEFAULT_TTL_SECONDS, ActionLinkError, check_current, read_link, sign_link
from .static import CSS, JS

audit_log = hitl_logger("hitl.audit")

SESSION_COOKIE = "__Host-hitl_session"
LOGIN_COOKIE = "__Host-hitl_login"
DECISION_ACTIONS = ("approve", "reject", "edit", "respond", "timeout", "policy")


@dataclass
class WebOptions:
    #: The origin links are made for (``https://host:port``), as a person's browser reaches the server.
    public_url: str
    session_lifetime: timedelta = timedelta(hours=12)
    link_ttl_seconds: float = DEFAULT_TTL_SECONDS
    #: Failed logins per user name (and, x4, per client address) within ``login_window`` before refusing.
    login_failures: int = 5
    login_window: timedelta = timedelta(minutes=15)


class LoginLimiter:
    """Failed logins per key in a sliding window; a key at the limit is refused, even with the right password."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def locked_for(self, key: str, limit: int) -> float:
        """Seconds until ``key`` may try again (0: it may now)."""
        now = time.monotonic()
        times = self._recent(key, now)
        return times[0] + self.window - now if len(times) >= limit else 0.0

    def failed(self, key: str) -> None:
        self._recent(key, time.monotonic()).append(time.monotonic())
        if len(self.failures) > 100_000:  # bounded: forget the quiet keys
            for stale in [k for k, v in self.failures.items() if not v][:50_000]:
                del self.failures[stale]

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)


_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # an action link is in the URL: it must not leave in a Referer to another site. (Not
    # no-referrer: Chromium then sends "Origin: null" on our own forms, which the check refuses.)
    "Referrer-Policy": "same-origin",
}


def html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


class Web:
    def __init__(self, server: Server, accounts: WebAccounts, options: WebOptions) -> None:
        self.server = server
        self.accounts = accounts
        self.options = options
        self.limiter = LoginLimiter(options.login_failures, options.login_window)
        self.origin = _origin(options.public_url)
        #: Called with the session at logout, after it is closed (the browser consoles end).
        self.on_logout: list[Callable[[Session], Awaitable[Any]]] = []
        #: OpenID Connect login (``oidc.py``), when the server has a provider.
        self.oidc: Any = None

    # -- audit -----------------------------------------------------------------------------------

    async def refuse(
        self, who: str, role: str, what: str, reason: str, task_id: str = "", *, peer: str = "", claimed: bool = False
    ) -> None:
        """Log, count and record a refusal in the store's audit chain, as the API's refusals are
        (bounded per person or address: a flood of bad logins cannot fill the store)."""
        self.server.metrics.refusals[f"web {what}"] += 1
        audit_log.warning(
            "refused: %s (%s, web) may not %s %s: %s",
            loggable(who),
            role,
            what,
            loggable(task_id or "-"),
            loggable(reason),
            extra={"task_id": task_id, "actor": who},
        )
        data: dict[str, Any] = {
            "channel": "web",
            "what": loggable(what, 64),
            "reason": loggable(reason, 500),
            "task_id": loggable(task_id, 256) or None,
            # a name typed into the login form is a claim, never the actor of the record
            "principal": loggable(who, 128) if who != "-" and not claimed else None,
            "claimed_name": loggable(who, 128) if claimed else None,
            "role": role if role != "-" else None,
            "peer": peer or None,
        }
        key = f"web:{who}" if data["principal"] else f"web-peer:{peer}"
        await self.server.refusal_audit.refused(key, data["principal"], data)

    # -- sessions and CSRF -------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.accounts.session(request.cookies.get(SESSION_COOKIE))

    def csrf(self, session: Session) -> str:
        return self.accounts.csrf_token(session)

    async def checked_post(
        self, request: Request, session: Session, what: str, task_id: str = ""
    ) -> dict[str, str] | Response:
        """The form of a POST whose CSRF token and Origin are right; a refusal page otherwise."""
        form = await _form(request)
        sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
        origin = request.headers.get("origin")
        problem = None
        if origin is not None and origin != self.origin:
            problem = f"the request came from another site ({origin})"
        elif not hmac.compare_digest(sent.encode(), self.csrf(session).encode()):
            problem = "the request lacks this session's CSRF token (a cross-site request?)"
        if problem is not None:
            await self.refuse(session.name, session.role.value, what, problem, task_id)
            return self.answer(request, 403, "refused", problem, "csrf", session)
        return form

    def answer(
        self, request: Request, status: int, title: str, message: str, problem: str, session: Session | None
    ) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(
                {"ok": status < 400, "problem": problem, "message": message}, status_code=status, headers=_HEADERS
            )
        csrf = self.csrf(session) if session is not None else None
        return html(
            pages.message_page(title, message, problem=problem, user=session.name if session else None, csrf=csrf),
            status,
        )

    def to_login(self, request: Request) -> Response:
        if "application/json" in request.headers.get("accept", "") or request.method != "GET":
            return JSONResponse(
                {"ok": False, "problem": "login", "message": "log in first"}, status_code=401, headers=_HEADERS
            )
        return RedirectResponse(f"/web/login?next={quote(request.url.path)}", status_code=303, headers=_HEADERS)

    # -- deciding ---------------------------------------------------------------------------------

    async def decide(self, session: Session, task_id: str, form: dict[str, str], what: str) -> tuple[int, str, str]:
        """Approve or reject as the session's user: (status, message, problem kind)."""
        # the URL's verb wins (/approve, /reject); the task page's one form names it (/decide)
        decision = what or form.get("decision") or ""
        if decision not in ("approve", "reject"):
            return 400, f"unknown decision {decision!r}: approve or reject", "invalid"
        if not session.role.may_decide:
            reason = f"{decision} needs the operator role ({session.name!r} is an observer)"
            await self.refuse(session.name, session.role.value, decision, reason, task_id)
            return 403, reason, "not-authorized"
        interrupt_id = form.get("interrupt_id") or None
        fingerprint = form.get("args_fingerprint") or None
        machine = self.server.machine
        try:
            if decision == "approve":
                await machine.approve(
                    task_id, session.name, source="web", interrupt_id=interrupt_id, args_fingerprint=fingerprint
                )
            else:
                reason = (form.get("reason") or "").strip()
                if not reason or len(reason) > 4000:
                    return 400, "a rejection needs a reason (1-4000 characters)", "invalid"
                await machine.reject(task_id, session.name, reason, source="web", interrupt_id=interrupt_id)
        except NotAuthorizedError as exc:
            self.server.metrics.refusals["policy"] += 1
            return 403, f"refused by the policy: {exc}", "not-authorized"
        except ConflictError as exc:
            return 409, f"not decided: {exc}", "conflict"
        except HITLError as exc:
            return 400, f"not decided: {exc}", "invalid"
        self.server.metrics.decisions[decision] += 1
        done = "approved" if decision == "approve" else "rejected"
        return 200, f"{done} {task_id} as {session.name}", "ok"

    # -- routes -----------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self._login(request, "", 200)

    def _login(self, request: Request, message: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        next_path = _next(request.query_params.get("next") or "/web/")
        oidc_label = self.oidc.label if self.oidc is not None else None
        response = html(pages.login_page(token, next_path, message, oidc_label), status)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        name = form.get("username", "")[:64]
        client = request.client.host if request.client else "-"
        sent, expected = form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            await self.refuse(
                name or "-", "-", "log in", "the login form's CSRF token is missing or wrong", peer=client, claimed=True
            )
            return self._login(request, "the login form expired or came from another site: try again", 403)
        wait = max(
            self.limiter.locked_for(f"user:{name}", self.options.login_failures),
            self.limiter.locked_for(f"addr:{client}", self.options.login_failures * 4),
        )
        if wait > 0:
            await self.refuse(
                name,
                "-",
                "log in",
                f"too many failed logins (from {client}); locked for {wait:.0f}s",
                peer=client,
                claimed=True,
            )
            return self._login(request, f"too many failed logins: try again in {max(1, round(wait / 60))} minutes", 429)
        user = await asyncio.to_thread(
            self.accounts.check_password, name, form.get("password", ""), form.get("totp") or None
        )
        if user is None:
            self.limiter.failed(f"user:{name}")
            self.limiter.failed(f"addr:{client}")
            await self.refuse(
                name,
                "-",
                "log in",
                f"wrong user name, password or one-time code (from {client})",
                peer=client,
                claimed=True,
            )
            return self._login(request, "wrong user name, password or one-time code", 401)
        self.limiter.succeeded(f"user:{name}")
        session_id = self.accounts.open_session(user, self.options.session_lifetime)
        audit_log.warning("web login: %s (%s) from %s", user.name, user.role.value, client)
        response = RedirectResponse(_next(form.get("next") or "/web/"), status_code=303, headers=_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(self.options.session_lifetime.total_seconds()),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        form = await self.checked_post(request, session, "log out")
        if isinstance(form, Response):
            return form
        self.accounts.close_session(session)
        for hook in self.on_logout:
            await hook(session)
        audit_log.warning("web logout: %s", session.name)
        response = RedirectResponse("/web/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def _waiting(self) -> list[TaskRecord]:
        return await self.server.machine.store.query(TaskState.AWAITING_APPROVAL)

    async def console(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        page = pages.console_page(
            await self._waiting(),
            user=session.name,
            role=session.role.value,
            csrf=self.csrf(session),
            may_decide=session.role.may_decide,
        )
        return html(page)

    async def rows(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        return html(pages.console_rows(await self._waiting()))

    async def status(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        store = self.server.machine.store
        head = await store.last_seq()
        recent = await store.events(after_seq=max(0, head - 2000), limit=2000)
        decisions = [e for e in recent if e.action in DECISION_ACTIONS][-10:][::-1]
        page = pages.status_page(await self._waiting(), decisions, user=session.name, csrf=self.csrf(session))
        return html(page)

    async def stream(self, request: Request) -> Response:
        """``change`` whenever the store commits something (the page re-reads its rows), ``bye`` when
        the session ends. One hub subscription per open console, as the API's stream."""
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        hub = self.server.hub
        sub = hub.subscribe()

        async def events() -> AsyncIterator[str]:
            try:
                yield "event: change\ndata: 0\n\n"  # anything committed between the page and now
                while True:
                    if sub.overflowed:
                        return
                    try:
                        event = await asyncio.wait_for(sub.queue.get(), 5.0)
                    except TimeoutError:
                        event = None
                    if self.accounts.session(request.cookies.get(SESSION_COOKIE)) is None:
                        yield "event: bye\ndata: session ended\n\n"
                        return
                    if event is None:
                        yield ": keepalive\n\n"
                        continue
                    while not sub.queue.empty():  # a burst is one re-read
                        event = sub.queue.get_nowait()
                    yield f"event: change\ndata: {event.seq}\n\n"
            finally:
                hub.unsubscribe(sub)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={**_HEADERS, "X-Accel-Buffering": "no"}
        )

    async def task_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        task_id = request.path_params["task_id"]
        record = await self.server.machine.store.get(task_id)
        if record is None:
            return self.answer(request, 404, "no such task", f"no task {task_id!r}", "not-found", session)
        page = pages.decide_page(
            record,
            user=session.name,
            csrf=self.csrf(session),
            may_decide=session.role.may_decide and record.state is TaskState.AWAITING_APPROVAL,
            action=f"/web/tasks/{quote(task_id, safe='')}/decide",
            via_link=False,
        )
        return html(page)

    async def task_decide(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        task_id = request.path_params["task_id"]
        what = request.path_params["what"]
        form = await self.checked_post(request, session, what, task_id)
        if isinstance(form, Response):
            return form
        status, message, problem = await self.decide(session, task_id, form, what if what != "decide" else "")
        return self.answer(request, status, "decided" if status == 200 else "not decided", message, problem, session)

    # -- action links -----------------------------------------------------------------------------

    async def link_refused(self, request: Request, session: Session, exc: ActionLinkError) -> Response:
        await self.refuse(session.name, session.role.value, "use an action link", f"{exc.problem}: {exc}", exc.task_id)
        titles = {
            "forged": "forged link",
            "expired": "expired link",
            "used": "link already used",
            "stale": "stale link",
        }
        return self.answer(
            request, 410 if exc.problem != "forged" else 400, titles[exc.problem], str(exc), exc.problem, session
        )

    async def _link(self, request: Request, session: Session) -> tuple[Any, TaskRecord | None]:
        link = read_link(self.accounts.key(), request.path_params["token"])
        used = self.accounts.link_used(link.nonce)
        if used is not None:
            raise ActionLinkError("used", f"this link was already used, by {used[0]} at {used[1]}", link.task_id)
        record = await self.server.machine.store.get(link.task_id)
        check_current(link, record)
        return link, record

    async def link_page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        try:
            link, record = await self._link(request, session)
        except ActionLinkError as exc:
            return await self.link_refused(request, session, exc)
        assert record is not None
        left = max(0, link.expires - int(time.time()))
        page = pages.decide_page(
            record,
            user=session.name,
            csrf=self.csrf(session),
            may_decide=session.role.may_decide,
            action=request.url.path,
            via_link=True,
            expires=f", for {left // 60}m {left % 60}s more",
        )
        return html(page)

    async def link_decide(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        form = await self.checked_post(request, session, "use an action link")
        if isinstance(form, Response):
            return form
        try:
            link, _ = await self._link(request, session)
            # What the page showed must be what the link names (the hidden fields are the browser's).
            form = {**form, "interrupt_id": link.interrupt_id, "args_fingerprint": link.args_fingerprint}
            if not self.accounts.claim_link(link.nonce, link.task_id, session.name):
                raise ActionLinkError("used", "this link was just used by somebody else", link.task_id)
        except ActionLinkError as exc:
            return await self.link_refused(request, session, exc)
        status, message, problem = await self.decide(session, link.task_id, form, "")
        if status != 200:
            self.accounts.release_link(link.nonce)  # nothing was decided: the link still names a live request
        return self.answer(request, status, "decided" if status == 200 else "not decided", message, problem, session)

    def link_for(self, task_id: str, state: TaskState, interrupt: InterruptPoint | None) -> str:
        """The full URL of a fresh action link for the task's current request."""
        return self.options.public_url.rstrip("/") + sign_link(
            self.accounts.key(), task_id, state, interrupt, ttl_seconds=self.options.link_ttl_seconds
        )

    def routes(self) -> list[BaseRoute]:
        def static(body: str, media: str) -> Callable[[Request], Awaitable[Response]]:
            async def serve(request: Request) -> Response:
                return Response(body, media_type=media, headers={**_HEADERS, "Cache-Control": "max-age=300"})

            return serve

        return [
            Mount(
                "/web",
                routes=[
                    Route("/", self.console, methods=["GET"]),
                    Route("/login", self.login_form, methods=["GET"]),
                    Route("/login", self.login, methods=["POST"]),
                    Route("/logout", self.logout, methods=["POST"]),
                    Route("/rows", self.rows, methods=["GET"]),
                    Route("/stream", self.stream, methods=["GET"]),
                    Route("/status", self.status, methods=["GET"]),
                    Route("/tasks/{task_id:path}/{what:str}", self.task_decide, methods=["POST"]),
                    Route("/tasks/{task_id:path}", self.task_page, methods=["GET"]),
                    Route("/a/{token}", self.link_page, methods=["GET"]),
                    Route("/a/{token}", self.link_decide, methods=["POST"]),
                    Route("/static/hitl.css", static(CSS, "text/css"), methods=["GET"]),
                    Route("/static/console.js", static(JS, "text/javascript"), methods=["GET"]),
                ],
            )
        ]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _next(path: str) -> str:
    """Only a path of ours: never an open redirect to another site."""
    if not path.startswith("/web/") or path.startswith("//") or "\\" in path:
        return "/web/"
    return path


async def _form(request: Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    body = await request.body()
    if len(body) > 65536:
        return {}
    from urllib.parse import parse_qsl

    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        return {}


def mount_web(app: Any, server: Server, accounts: WebAccounts, options: WebOptions) -> Web:
    """Add the web routes to the server's app; returns the ``Web`` (for ``link_for``)."""
    web = Web(server, accounts, options)
    app.router.routes[0:0] = web.routes()
    return web


__all__ = ["LoginLimiter", "Web", "WebOptions", "mount_web"]
