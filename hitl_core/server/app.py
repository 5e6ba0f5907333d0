"""The ASGI app of ``hitl serve``: authenticate, check the role, call the server's own machine.

Why Starlette and not FastAPI: Starlette is already installed with the agent frameworks' MCP
support, our bodies are pydantic models we validate ourselves (``extra="forbid"``, size limits,
problem+json errors in one place), and the OpenAPI document comes from the same route table
(``api.py``). FastAPI would add a dependency to generate what 18 routes do not need.

Every check about *who* happens here or in the machine the server runs (with the server's
policy config): the caller's identity comes from the connection (peer credentials or token),
never from the body; a body naming somebody else is refused unless the token may impersonate.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import HITLError, NotAuthorizedError, PayloadError, StoreError, TaskNotFoundError
from ..limits import DEFAULT_LIMITS
from ..machine import HITLStateMachine
from ..models import TaskContext, TaskState
from ..policies import PolicyConfig, install_policies
from ..records import EventRecord, TaskRecord
from ..text import clip, hitl_logger
from . import api
from .auth import Authenticator, Principal, presented_token_id
from .problems import PROBLEM_JSON, RateLimitedError, UnauthenticatedError, problem_of
from .tokens import Role, TokenStore, parse_duration
from .trail import (
    RATE_LIMITED,
    AuthThrottle,
    RefusalAudit,
    StoredPolicy,
    apply_policy,
    policy_in_force,
)

log = hitl_logger("hitl.server")
audit_log = hitl_logger("hitl.audit")

KEEPALIVE_SECONDS = 15.0
#: How often an open stream re-checks its caller's token (at most; on the next event or keepalive).
RECHECK_SECONDS = 1.0
STREAM_QUEUE = 10_000
#: How often the server's clock runs: ends refusal windows, looks for a policy a replica applied.
POLICY_POLL_SECONDS = 1.0


def loggable(text: str, limit: int = 300) -> str:
    """Caller-supplied text (task ids, paths, reasons) for a log line, bounded. Escaping control
    characters is the hitl loggers' rendering filter's job (``hitl_core.text``), done once there."""
    return clip(str(text), limit)[0]


class _Subscriber:
    __slots__ = ("overflowed", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[EventRecord] = asyncio.Queue(STREAM_QUEUE)
        self.overflowed = False


class Hub:
    """One follower of the store, fanned out to every live stream (not one store follower each)."""

    def __init__(self, machine: HITLStateMachine) -> None:
        self.machine = machine
        self.subscribers: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hitl-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        self.subscribers.discard(sub)

    async def _run(self) -> None:
        store = self.machine.store
        after = await store.last_seq()
        backoff = 0.05
        while True:
            try:
                async for event in store.follow(after):
                    after = event.seq
                    backoff = 0.05
                    for sub in list(self.subscribers):
                        try:
                            sub.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            # A stream that fell this far behind is closed; its client resumes from
                            # its last seq and catches up from the log.
                            sub.overflowed = True
                            self.subscribers.discard(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("following the store failed (%r); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.decisions: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.streams = 0
        self.rate_limited = 0
        self.checkpoints = 0
        self.checkpoint_errors = 0


class Server:
    """The state behind the app: the machine (store + policies), who is who, the stream hub, the
    audit of refusals, the policy in force."""

    def __init__(
        self,
        machine: HITLStateMachine,
        authenticator: Authenticator,
        *,
        max_body_bytes: int | None = None,
        metrics_public: bool = False,
        throttle: AuthThrottle | None = None,
        refusal_audit: RefusalAudit | None = None,
    ) -> None:
        self.machine = machine
        self.auth = authenticator
        self.hub = Hub(machine)
        self.metrics = Metrics()
        self.max_body_bytes = max_body_bytes or machine.max_payload_bytes * 2 + 65536
        self.metrics_public = metrics_public
        self.throttle = throttle or AuthThrottle()
        self.refusal_audit = refusal_audit or RefusalAudit(machine.store)
        #: The policy record in force (None: nothing applied yet, the built-in defaults apply).
        self.policy: StoredPolicy | None = None
        self._policy_lock = asyncio.Lock()

    async def start(self) -> None:
        await self.machine.__aenter__()  # opens the store (the policies are installed by use_policy)
        self.hub.start()

    def start_clock(self, *, checkpoint_key: Any = None, checkpoint_every: float | None = None) -> None:
        """The server's own time-driven work besides the deadline sweeper (which the policy in force
        runs): refusal windows, a replica's newly applied policy, signed checkpoints."""
        self._clock = asyncio.get_running_loop().create_task(
            self._tick(checkpoint_key, checkpoint_every), name="hitl-server-clock"
        )

    async def _tick(self, key: Any, every: float | None) -> None:
        loop = asyncio.get_running_loop()
        next_checkpoint = loop.time() + every if key is not None and every else None
        while True:
            await asyncio.sleep(POLICY_POLL_SECONDS)
            for step in (self.refusal_audit.tick, self.refresh_policy):
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("server clock: %s failed: %r", step.__name__, exc)
            if next_checkpoint is not None and loop.time() >= next_checkpoint:
                next_checkpoint = loop.time() + every  # type: ignore[operator]
                await self.checkpoint(key)

    async def checkpoint(self, key: Any) -> None:
        """Sign the chain head with the server's key, if events were committed since the last checkpoint."""
        from ..audit import checkpoint

        store = self.machine.store
        try:
            existing = await store.checkpoints()
            if await store.last_seq() <= (existing[-1].seq if existing else 0):
                return
            made, _ = await checkpoint(store, key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.checkpoint_errors += 1
            log.error("could not make a signed checkpoint: %s", exc)
            return
        self.metrics.checkpoints += 1
        log.warning("signed checkpoint at seq %d (key %s)", made.seq, made.key)

    async def stop(self) -> None:
        clock = getattr(self, "_clock", None)
        if clock is not None:
            clock.cancel()
            try:
                await clock
            except (asyncio.CancelledError, Exception):
                pass
        await self.hub.stop()
        await self.machine.close()

    # -- the policy in force --------------------------------------------------------------

    async def use_policy(self, stored: StoredPolicy | None, config: PolicyConfig) -> None:
        """Make ``config`` the machine's policies (authorization, rules, deadlines, notifiers),
        replacing the ones installed before; the deadline sweeper restarts with it."""
        machine = self.machine
        old = machine.policies
        if old is not None:
            await old.stop()
            for plugin in old.plugins:
                machine.plugins.unregister(plugin)
        machine.policies = install_policies(machine, config)
        machine.limits = DEFAULT_LIMITS.updated(config.limits.model_dump())
        if machine.policies is not None:
            machine.policies.start()
        self.policy = stored

    async def apply_policy(self, text: str, applied_by: str, source: str | None) -> StoredPolicy:
        async with self._policy_lock:
            stored, config = await apply_policy(self.machine.store, text, applied_by, source)
            await self.use_policy(stored, config)
        audit_log.warning("policy v%d (sha256 %s) applied by %s", stored.version, stored.hash[:16], applied_by)
        return stored

    async def refresh_policy(self) -> None:
        """Pick up a policy another server (a replica) applied to the same store."""
        from .trail import parse_policy

        newest = await policy_in_force(self.machine.store)
        if newest is None or (self.policy is not None and newest.seq == self.policy.seq):
            return
        async with self._policy_lock:
            try:
                config = parse_policy(newest.text, newest.source or "<applied policy>")
            except HITLError as exc:  # it was valid when applied; a newer hitl may have changed the rules
                log.error("the policy v%d in the store cannot be loaded here: %s", newest.version, exc)
                return
            await self.use_policy(newest, config)
        log.warning(
            "now enforcing policy v%d (sha256 %s), applied by %s", newest.version, newest.hash[:16], newest.applied_by
        )

    # -- refusals -------------------------------------------------------------------------

    async def audit_refusal(
        self, request: Request, principal: Principal | None, exc: NotAuthorizedError, status: int
    ) -> None:
        peer = _peer(request)
        what = getattr(exc, "what", None) or request.url.path.rstrip("/").rsplit("/", 1)[-1]
        data: dict[str, Any] = {
            "status": status,
            "method": request.method,
            "path": loggable(request.url.path, 256),
            "what": loggable(what, 64),
            "reason": loggable(getattr(exc, "reason", "") or str(exc), 500),
            "task_id": loggable(getattr(exc, "task_id", "") or "", 256) or None,
            "principal": principal.name if principal else None,
            "role": principal.role.value if principal else None,
            "channel": principal.channel if principal else None,
            "peer": peer,
        }
        token_id = presented_token_id(request.scope) if principal is None else None
        if token_id is not None:
            data["token_id"] = token_id
        key = f"principal:{principal.name}" if principal else f"peer:{peer}"
        await self.refusal_audit.refused(key, principal.name if principal else None, data)

    # -- checks ----------------------------------------------------------------------------

    # -- checks ----------------------------------------------------------------------------

    def refuse(self, principal: Principal | None, what: str, reason: str, task_id: str = "") -> NotAuthorizedError:
        who = principal.name if principal else "-"
        self.metrics.refusals[what] += 1
        audit_log.warning(
            "refused: %s (%s) may not %s %s: %s",
            who,
            principal.role.value if principal else "-",
            what,
            loggable(task_id or "-"),
            loggable(reason),
            extra={"task_id": task_id, "actor": who},
        )
        refusal = NotAuthorizedError(task_id, who, reason)
        refusal.counted = True  # type: ignore[attr-defined]
        refusal.what = what  # type: ignore[attr-defined]
        return refusal

    def need(self, principal: Principal, role: Role, what: str, task_id: str = "") -> None:
        if not principal.role.at_least(role):
            raise self.refuse(
                principal,
                what,
                f"{what} needs the {role.value} role ({principal.name!r} is {principal.role.value})",
                task_id,
            )

    def acting(self, principal: Principal, requested: str | None, what: str, task_id: str = "") -> tuple[str, str]:
        try:
            return principal.acting_as(requested)
        except NotAuthorizedError as exc:
            raise self.refuse(principal, what, exc.reason, task_id) from None

    async def record(self, task_id: str) -> TaskRecord:
        record = await self.machine.store.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record

    def may_see(self, principal: Principal, agent: str | None) -> bool:
        return principal.role.at_least(Role.OBSERVER) or agent == principal.name

    async def owned(self, principal: Principal, task_id: str, what: str, *, operators_too: bool = False) -> TaskRecord:
        """The task, if ``principal`` created it (or, with ``operators_too``, is an operator)."""
        record = await self.record(task_id)
        if record.agent == principal.name or (operators_too and principal.role.at_least(Role.OPERATOR)):
            return record
        if principal.role is Role.ADMIN:
            return record
        raise self.refuse(principal, what, f"only the agent that created task {task_id!r} may {what} it", task_id)


# -- plumbing: bodies, errors, responses -----------------------------------------------------


def problem_response(exc: BaseException, instance: str | None = None) -> Response:
    status, body = problem_of(exc, instance)
    if status == 500:
        log.error("internal error on %s", instance, exc_info=exc)
    headers = {"WWW-Authenticate": 'Bearer realm="hitl"'} if status == 401 else None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _peer(request: Request) -> str | None:
    """The TCP peer's address (None on the Unix socket, where the kernel names the caller)."""
    client = request.scope.get("client")
    if not client or request.scope.get("state", {}).get("hitl.peer") is not None:
        return None
    return str(client[0])


def _has_credentials(request: Request) -> bool:
    return any(key == b"authorization" for key, _ in request.scope.get("headers", ()))


async def authenticate(server: Server, request: Request) -> Principal | Response:
    """The caller, or the 401/429 response (audited) that refuses it."""
    peer = _peer(request)
    retry = server.throttle.retry_after(peer) if peer is not None else None
    try:
        return server.auth.authenticate(request.scope, cached_only=retry is not None)
    except RateLimitedError as exc:
        exc.retry_after = max(1, math.ceil(retry or 1))
        server.metrics.rate_limited += 1
        audit_log.warning("refused: %s is locked out after failed token checks", loggable(str(peer)))
        data = {"peer": peer, "path": loggable(request.url.path, 256), "retry_after": exc.retry_after}
        data["limit"], data["window_seconds"] = server.throttle.limit, server.throttle.window
        await server.refusal_audit.once(RATE_LIMITED, str(peer), None, data)
        return problem_response(exc, request.url.path)
    except HITLError as exc:
        server.metrics.refusals["authenticate"] += 1
        audit_log.warning("refused: unauthenticated request to %s: %s", loggable(request.url.path), exc)
        if peer is not None and _has_credentials(request):
            server.throttle.failed(peer)
        if isinstance(exc, NotAuthorizedError):
            exc.what = "authenticate"  # type: ignore[attr-defined]
            await server.audit_refusal(request, None, exc, 401)
        return problem_response(exc, request.url.path)


def invalid(detail: str, errors: list[dict[str, Any]] | None = None) -> Response:
    status, body = problem_of(PayloadError(detail))
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


class _BadBody(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and neither does the audit log.
    raise ValueError(f"{name} is not JSON")


async def read_body(request: Request, model: type[BaseModel], limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BadBody(invalid(f"the request body is {declared} bytes, over the limit of {limit}"))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadBody(invalid(f"the request body is over the limit of {limit} bytes"))
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raw = b"{}"
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _BadBody(invalid(f"the request body is not valid JSON: {exc}")) from None
    if not isinstance(data, dict):
        raise _BadBody(invalid(f"the request body must be a JSON object, got {type(data).__name__}"))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors[:5])
        raise _BadBody(invalid(f"invalid {model.__name__}: {summary}", errors)) from None


def task_json(task: TaskContext) -> Response:
    return Response(task.model_dump_json(), media_type="application/json")


Handler = Callable[[Server, Request, Principal, Any], Awaitable[Response]]


def endpoint(
    server: Server, handler: Handler, body: type[BaseModel] | None
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        principal = await authenticate(server, request)
        if isinstance(principal, Response):
            return principal
        try:
            parsed = await read_body(request, body, server.max_body_bytes) if body is not None else None
            return await handler(server, request, principal, parsed)
        except _BadBody as bad:
            return bad.response
        except HITLError as exc:
            if isinstance(exc, NotAuthorizedError) and not getattr(exc, "counted", False):
                # Refused by the policy (assignees, roles, self-approval, four eyes): the plugin
                # or the machine logged it on hitl.audit; count it with the server's own refusals.
                server.metrics.refusals["policy"] += 1
            if isinstance(exc, NotAuthorizedError):
                await server.audit_refusal(
                    request, principal, exc, 401 if isinstance(exc, UnauthenticatedError) else 403
                )
            return problem_response(exc, request.url.path)
        except Exception as exc:
            return problem_response(exc, request.url.path)

    return run


# -- handlers ------------------------------------------------------------------------------


def _tid(request: Request) -> str:
    return request.path_params["task_id"]


async def whoami(server: Server, request: Request, p: Principal, body: None) -> Response:
    return JSONResponse({"name": p.name, "role": p.role.value, "channel": p.channel, "impersonate": p.impersonate})


async def list_tasks(server: Server, request: Request, p: Principal, body: None) -> Response:
    state_text = request.query_params.get("state")
    try:
        state = TaskState(state_text) if state_text else None
    except ValueError:
        raise PayloadError(f"state must be one of {[s.value for s in TaskState]}") from None
    limit = _int_param(request, "limit", None)
    if limit is not None and limit < 0:
        raise PayloadError("limit must be 0 or more")  # SQLite reads -1 as no limit, a list slice otherwise
    after = _int_param(request, "after", None)
    records = await server.machine.store.query(state, limit=limit, after=after)
    tasks = [r.to_context().to_dict() for r in records if server.may_see(p, r.agent)]
    return JSONResponse(tasks)


async def get_task(server: Server, request: Request, p: Principal, body: None) -> Response:
    record = await server.record(_tid(request))
    if not server.may_see(p, record.agent):
        raise server.refuse(p, "read", "an agent may read only the tasks it created", record.task_id)
    return task_json(record.to_context())


def _start_fields(server: Server, p: Principal, body: api.StartBody, task_id: str) -> dict[str, Any]:
    agent, _ = server.acting(p, body.agent, "start", task_id)
    return {
        "metadata": body.metadata,
        "step": body.step,
        "agent": agent,
        "framework": body.framework,
        "run_id": body.run_id,
        "parent_id": body.parent_id,
    }


async def create_task(server: Server, request: Request, p: Principal, body: api.CreateBody) -> Response:
    fields = _start_fields(server, p, body, body.task_id)
    if body.start:
        return task_json(await server.machine.start_task(body.task_id, **fields))
    return task_json(await server.machine.create_task(body.task_id, **fields))


async def start_task(server: Server, request: Request, p: Principal, body: api.StartBody) -> Response:
    task_id = _tid(request)
    fields = _start_fields(server, p, body, task_id)
    existing = await server.machine.store.get(task_id)
    if existing is not None and existing.agent != fields["agent"] and p.role is not Role.ADMIN:
        raise server.refuse(p, "start", f"only the agent that created task {task_id!r} may start it", task_id)
    return task_json(await server.machine.start_task(task_id, **fields))


async def request_approval(server: Server, request: Request, p: Principal, body: api.RequestBody) -> Response:
    task_id = _tid(request)
    await server.owned(p, task_id, "request approval on")
    values = body.model_dump(exclude_unset=True)
    if body.action is not None:
        values["action"] = body.action.name
        values["args"] = body.action.args if body.args is None else body.args
    return task_json(await server.machine.request_approval(task_id, **values))


async def pause(server: Server, request: Request, p: Principal, body: api.PauseBody) -> Response:
    task_id = _tid(request)
    server.need(p, Role.OPERATOR, "pause", task_id)
    actor, _ = server.acting(p, body.as_, "pause", task_id)
    return task_json(
        await server.machine.pause(task_id, actor, body.reason, severity=body.severity, context=body.context)
    )


async def _decide(server: Server, p: Principal, task_id: str, what: str, requested: str | None) -> tuple[str, str]:
    server.need(p, Role.OPERATOR, what, task_id)
    return server.acting(p, requested, what, task_id)


async def approve(server: Server, request: Request, p: Principal, body: api.DecideBody) -> Response:
    task_id = _tid(request)
    actor, source = await _decide(server, p, task_id, "approve", body.as_)
    task = await server.machine.approve(
        task_id,
        actor,
        option=body.option,
        message=body.comment,
        source=source,
        interrupt_id=body.interrupt_id,
        args_fingerprint=body.args_fingerprint,
    )
    server.metrics.decisions["approve"] += 1
    return task_json(task)


async def reject(server: Server, request: Request, p: Principal, body: api.RejectBody) -> Response:
    task_id = _tid(request)
    actor, source = await _decide(server, p, task_id, "reject", body.as_)
    task = await server.machine.reject(
        task_id, actor, body.reason, option=body.option, source=source, interrupt_id=body.interrupt_id
    )
    server.metrics.decisions["reject"] += 1
    return task_json(task)


async def edit(server: Server, request: Request, p: Principal, body: api.EditBody) -> Response:
    task_id = _tid(request)
    actor, source = await _decide(server, p, task_id, "edit", body.as_)
    task = await server.machine.edit(
        task_id,
        body.edited_args,
        actor,
        message=body.comment,
        source=source,
        interrupt_id=body.interrupt_id,
        args_fingerprint=body.args_fingerprint,
    )
    server.metrics.decisions["edit"] += 1
    return task_json(task)


async def respond(server: Server, request: Request, p: Principal, body: api.RespondBody) -> Response:
    task_id = _tid(request)
    actor, source = await _decide(server, p, task_id, "respond", body.as_)
    task = await server.machine.respond(task_id, body.response, actor, source=source, interrupt_id=body.interrupt_id)
    server.metrics.decisions["respond"] += 1
    return task_json(task)


async def resume(server: Server, request: Request, p: Principal, body: api.ResumeBody) -> Response:
    task_id = _tid(request)
    record = await server.owned(p, task_id, "resume", operators_too=True)
    if record.agent == p.name and body.as_ is None:
        actor = None  # the agent goes on: recorded as the agent, as a local resume() is
    else:
        actor, _ = server.acting(p, body.as_, "resume", task_id)
    return task_json(await server.machine.resume(task_id, body.step, actor=actor))


async def complete(server: Server, request: Request, p: Principal, body: api.CompleteBody) -> Response:
    task_id = _tid(request)
    await server.owned(p, task_id, "complete")
    return task_json(await server.machine.complete(task_id, body.result))


async def fail(server: Server, request: Request, p: Principal, body: api.FailBody) -> Response:
    task_id = _tid(request)
    record = await server.owned(p, task_id, "fail", operators_too=True)
    task = await server.machine.fail(task_id, body.error)
    if record.agent != p.name:
        # The machine's fail event has no actor; who stopped somebody else's task goes in the audit log.
        audit_log.warning("task %s failed by %s (%s, %s)", loggable(task_id), p.name, p.role.value, p.channel)
    return task_json(task)


def _token_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "role": info.role.value,
        "impersonate": info.impersonate,
        "status": info.status(),
        "created_at": info.created_at.isoformat(),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }


def _tokens(server: Server, p: Principal, what: str) -> TokenStore:
    server.need(p, Role.ADMIN, what)
    if server.auth.tokens is None:
        raise StoreError("this server has no token file")
    return server.auth.tokens


async def list_tokens(server: Server, request: Request, p: Principal, body: None) -> Response:
    return JSONResponse([_token_json(t) for t in _tokens(server, p, "list tokens").list()])


async def create_token(server: Server, request: Request, p: Principal, body: api.TokenBody) -> Response:
    tokens = _tokens(server, p, "create tokens")
    expires = parse_duration(body.expires) if body.expires else None
    secret, info = tokens.create(body.name, body.role, expires=expires, impersonate=body.impersonate)
    audit_log.warning("token %r (%s) created by %s", info.name, info.role.value, p.name)
    return JSONResponse({"token": secret, **_token_json(info)}, headers={"Cache-Control": "no-store"})


async def revoke_token(server: Server, request: Request, p: Principal, body: None) -> Response:
    tokens = _tokens(server, p, "revoke tokens")
    name = request.path_params["name"]
    info = tokens.revoke(name)
    audit_log.warning("token %s revoked by %s", loggable(repr(name)), p.name)
    return JSONResponse(_token_json(info))


async def show_policy(server: Server, request: Request, p: Principal, body: None) -> Response:
    server.need(p, Role.OPERATOR, "read the policy")
    await server.refresh_policy()
    stored = server.policy
    if stored is None:
        return JSONResponse({"version": None, "hash": None, "text": None})
    return JSONResponse({**stored.summary(), "text": stored.text})


async def put_policy(server: Server, request: Request, p: Principal, body: api.PolicyBody) -> Response:
    server.need(p, Role.ADMIN, "apply a policy")
    stored = await server.apply_policy(body.text, p.name, body.source)
    return JSONResponse(stored.summary())


async def audit_records(server: Server, request: Request, p: Principal, body: None) -> Response:
    server.need(p, Role.OPERATOR, "read the audit trail")
    after = _int_param(request, "after", 0) or 0
    limit = min(_int_param(request, "limit", 1000) or 1000, 5000)
    kind = request.query_params.get("kind") or None
    records = await server.machine.store.audit_records(after_seq=after, limit=limit, kind=kind)
    out = [
        {
            "seq": r.seq,
            "kind": r.kind,
            "actor": r.actor,
            "at": r.at,
            "data": r.data,
            "prev_hash": r.prev_hash,
            "hash": r.hash,
        }
        for r in records
    ]
    return JSONResponse({"records": out, "next_after": records[-1].seq if records else after})


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PayloadError(f"{name} must be an integer, got {raw!r}") from None
    # The stores keep 64-bit integers: a bigger one would reach SQLite as an OverflowError (a 500).
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise PayloadError(f"{name} must be an integer between {_INT64_MIN} and {_INT64_MAX}")
    return value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Visibility:
    """Which events a principal may see: everything for observers and up, its own tasks for an agent."""

    def __init__(self, server: Server, principal: Principal) -> None:
        self.server = server
        self.principal = principal
        self.owners: dict[str, str | None] = {}

    async def allows(self, event: EventRecord) -> bool:
        if self.principal.role.at_least(Role.OBSERVER):
            return True
        owner = self.owners.get(event.task_id, "")
        if owner == "":
            record = await self.server.machine.store.get(event.task_id)
            owner = self.owners[event.task_id] = record.agent if record is not None else None
        return owner == self.principal.name


async def events(server: Server, request: Request, p: Principal, body: None) -> Response:
    after = _int_param(request, "after", 0) or 0
    limit = min(_int_param(request, "limit", 1000) or 1000, 5000)
    task_id = request.query_params.get("task_id") or None
    visible = _Visibility(server, p)
    batch = await server.machine.store.events(after_seq=after, limit=limit, task_id=task_id)
    out = [json.loads(e.to_event().model_dump_json()) for e in batch if await visible.allows(e)]
    return JSONResponse({"events": out, "next_after": batch[-1].seq if batch else after})


def _sse(event: EventRecord) -> str:
    return f"id: {event.seq}\nevent: transition\ndata: {event.to_event().model_dump_json()}\n\n"


async def stream(server: Server, request: Request, p: Principal, body: None) -> Response:
    """Every visible event after ``after`` (or ``Last-Event-ID``), then live; none twice, none missed.

    The subscription to the live hub starts before the backlog is read from the log, and events
    are sent only in increasing ``seq``: whatever arrives both ways is sent once.
    """
    after = _int_param(request, "after", None)
    if after is None:
        last_id = request.headers.get("last-event-id")
        after = int(last_id) if last_id and last_id.isdigit() else None
    store = server.machine.store
    sub = server.hub.subscribe()
    head = await store.last_seq()
    cursor = head if after is None else after
    visible = _Visibility(server, p)

    loop = asyncio.get_running_loop()

    async def body_iter() -> AsyncIterator[str]:
        nonlocal cursor
        server.metrics.streams += 1
        try:
            yield f"event: hello\ndata: {json.dumps({'last_seq': head, 'principal': p.name})}\n\n"
            while True:
                batch = await store.events(after_seq=cursor, limit=1000)
                if not batch:
                    break
                for event in batch:
                    cursor = event.seq
                    if await visible.allows(event):
                        yield _sse(event)
            checked = loop.time()
            while True:
                if sub.overflowed:
                    return
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    event = None
                if loop.time() - checked >= RECHECK_SECONDS or event is None:
                    # A token revoked (or expired) while its stream is open stops being served
                    # here; the client's reconnect then gets the 401.
                    checked = loop.time()
                    try:
                        server.auth.authenticate(request.scope)
                    except HITLError:
                        audit_log.warning("stream of %s closed: its credentials are no longer valid", p.name)
                        return
                if event is None:
                    yield ": keepalive\n\n"
                    continue
                if event.seq <= cursor:
                    continue
                if event.seq > cursor + 1:
                    # The hub skipped nothing, but this stream's backlog read may have ended just
                    # before events the hub delivered earlier: read the gap from the log.
                    for missed in await store.events(after_seq=cursor, limit=event.seq - cursor - 1):
                        cursor = missed.seq
                        if await visible.allows(missed):
                            yield _sse(missed)
                cursor = event.seq
                if await visible.allows(event):
                    yield _sse(event)
        finally:
            server.metrics.streams -= 1
            server.hub.unsubscribe(sub)

    return StreamingResponse(
        body_iter(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


# -- unauthenticated routes --------------------------------------------------------------------


async def healthz(server: Server, request: Request) -> Response:
    try:
        seq = await server.machine.store.last_seq()
    except Exception as exc:
        return problem_response(exc if isinstance(exc, HITLError) else HITLError(str(exc)), "/healthz")
    return JSONResponse({"status": "ok", "last_seq": seq})


async def metrics(server: Server, request: Request, p: Principal | None = None, body: None = None) -> Response:
    waiting: Counter[str] = Counter()
    for record in await server.machine.store.query(TaskState.AWAITING_APPROVAL):
        if record.interrupt is not None:
            waiting[record.interrupt.severity.value] += 1
    lines = ["# TYPE hitl_waiting_tasks gauge"]
    for severity in ("low", "medium", "high", "critical"):
        lines.append(f'hitl_waiting_tasks{{severity="{severity}"}} {waiting[severity]}')
    lines.append("# TYPE hitl_decisions_total counter")
    for kind in ("approve", "reject", "edit", "respond"):
        lines.append(f'hitl_decisions_total{{type="{kind}"}} {server.metrics.decisions[kind]}')
    lines.append("# TYPE hitl_refusals_total counter")
    lines.append(f"hitl_refusals_total {sum(server.metrics.refusals.values())}")
    lines.append("# TYPE hitl_live_streams gauge")
    lines.append(f"hitl_live_streams {server.metrics.streams}")
    audit = server.refusal_audit
    lines.append("# TYPE hitl_rate_limited_total counter")
    lines.append(f"hitl_rate_limited_total {server.metrics.rate_limited}")
    lines.append("# TYPE hitl_audit_records_total counter")
    lines.append(f"hitl_audit_records_total {audit.written}")
    lines.append("# TYPE hitl_audit_suppressed_total counter")
    lines.append(f"hitl_audit_suppressed_total {audit.suppressed}")
    lines.append("# TYPE hitl_audit_write_errors_total counter")
    lines.append(f"hitl_audit_write_errors_total {audit.failed}")
    lines.append("# TYPE hitl_checkpoints_total counter")
    lines.append(f"hitl_checkpoints_total {server.metrics.checkpoints}")
    lines.append("# TYPE hitl_checkpoint_errors_total counter")
    lines.append(f"hitl_checkpoint_errors_total {server.metrics.checkpoint_errors}")
    lines.append("# TYPE hitl_policy_version gauge")
    lines.append(f"hitl_policy_version {server.policy.version if server.policy else 0}")
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def openapi(server: Server, request: Request) -> Response:
    return JSONResponse(api.openapi_document())


_HANDLERS: dict[str, Handler] = {
    "whoami": whoami,
    "list_tasks": list_tasks,
    "create_task": create_task,
    "get_task": get_task,
    "start_task": start_task,
    "request_approval": request_approval,
    "pause": pause,
    "approve": approve,
    "reject": reject,
    "edit": edit,
    "respond": respond,
    "resume": resume,
    "complete": complete,
    "fail": fail,
    "events": events,
    "stream": stream,
    "list_tokens": list_tokens,
    "create_token": create_token,
    "revoke_token": revoke_token,
    "show_policy": show_policy,
    "put_policy": put_policy,
    "audit_records": audit_records,
    "metrics": metrics,
}

_OPEN = {"healthz": healthz}


def create_app(server: Server) -> Starlette:
    """The app. Its lifespan is the caller's business (``run.py`` starts and stops ``server``)."""

    def open_route(fn: Callable[[Server, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await fn(server, request)

        return run

    routes = []
    for method, path, op_id, body, _summary in api.ROUTES:
        if op_id in _OPEN:
            routes.append(Route(path, open_route(_OPEN[op_id]), methods=[method]))
        elif op_id == "metrics" and server.metrics_public:
            routes.append(Route(path, open_route(metrics), methods=[method]))
        else:
            routes.append(Route(path, endpoint(server, _HANDLERS[op_id], body), methods=[method]))
    routes.append(Route("/openapi.json", open_route(openapi), methods=["GET"]))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        body = {
            "type": "about:blank",
            "title": "Not Found" if status == 404 else "Method Not Allowed",
            "status": status,
        }
        return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
