"""A client of ``hitl serve`` with the machine's API: ``connect(url)`` → ``RemoteMachine``.

``HITLStateMachine("hitl+unix:///run/hitl/hitl.sock")`` or ``HITLStateMachine("https://host:8443",
token=…)`` (or ``HITL_STORE`` set to such a URL) returns a ``RemoteMachine``: the same methods,
the same exceptions (each problem+json mapped back to its ``HITLError``), ``wait_for_decision``
and callbacks over the server's event stream, which resumes from the last sequence number after
a reconnect. So the CLI, the decorators and the adapters work unchanged in server mode.

Why not a "remote store": a store appends events the *caller* built, so the caller would decide
who the actor is and which policy applies — exactly what server mode takes away from it. Here
the client sends intents (approve task X); the server authenticates, authorizes and commits.

What the client never does: apply a local ``hitl.toml`` (``config=`` is ignored: the policy in
force is the server's) or run plugins on the server's transitions (``plugins=`` are accepted and
only see the stream through ``add_callback``-style dispatch in this process).

Differences from a local machine, on purpose: callbacks run when the stream delivers the event,
shortly after the call returned, not before; ``expire``/``escalate`` are the server's (its sweeper).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import threading
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import settings
from .callbacks import Callback, CallbackRegistry
from .canonical import datetime_to_us
from .errors import (
    DecisionTimeoutError,
    HITLError,
    InvalidTransitionError,
    NotAuthorizedError,
    StoreError,
    TaskFailedError,
    TaskNotFoundError,
)
from .glossary import renamed_keywords
from .models import Action, Decision, DecisionType, Event, InterruptKind, Severity, TaskContext, TaskState
from .records import EventRecord, TaskRecord
from .text import hitl_logger

if TYPE_CHECKING:
    import httpx

    from .sync import SyncHITL

log = hitl_logger("hitl.client")

_STOPPED = (TaskState.AWAITING_APPROVAL, TaskState.APPROVED, TaskState.REJECTED)
ENV_TOKEN = "HITL_TOKEN"
ENV_CA = "HITL_CA_BUNDLE"
SERVER_SCHEMES = ("hitl+unix", "https", "hitl+https")


def is_server_url(url: object) -> bool:
    """True for a URL that names a ``hitl serve`` (not a store)."""
    return isinstance(url, str) and url.partition("://")[0].lower() in SERVER_SCHEMES and "://" in url


def connect(url: str, *, token: str | None = None, ca: str | None = None, **options: Any) -> RemoteMachine:
    """A ``RemoteMachine`` for the server at ``url`` (``hitl+unix:///path.sock`` or ``https://host:port``)."""
    return RemoteMachine(url, token=token, ca=ca, **options)


def _decision_of(task: TaskContext) -> Decision | None:
    """What a waiter gets for ``task`` (the local machine's rule), None to keep waiting."""
    if task.state is TaskState.FAILED:
        raise TaskFailedError(task.task_id, task.error)
    if task.state is TaskState.AWAITING_APPROVAL:
        return None
    if task.decision is not None:
        return task.decision
    if task.state is TaskState.COMPLETED:
        raise InvalidTransitionError(
            task.task_id, task.state.value, "wait_for_decision", "the task completed without asking for a decision"
        )
    return None


class _RemoteTaskRecord(TaskRecord):
    """A real ``TaskRecord`` (what a store's ``get``/``query`` return, so the CLI and the console
    read it as they read any store's) built from the server's snapshot; ``to_context`` returns the
    snapshot itself, history included."""

    __slots__ = ("_context",)

    def to_context(self) -> TaskContext:
        return self._context


def _record_of(task: TaskContext) -> TaskRecord:
    history = task.history
    record = _RemoteTaskRecord(
        task_id=task.task_id,
        state=task.state,
        version=task.version,
        created_at=datetime_to_us(task.created_at),
        updated_at=datetime_to_us(task.updated_at),
        current_step=task.current_step,
        metadata=task.metadata or None,
        interrupt=task.interrupt_point,
        decision=task.decision,
        approvals=tuple(task.approvals),
        error=task.error,
        result=task.result,
        agent=task.agent,
        framework=task.framework,
        run_id=task.run_id,
        parent_id=task.parent_id,
        last_seq=int(history[-1]["seq"]) if history else 0,
    ).with_approval()
    record._context = task
    return record


_ON_THE_SERVERS_HOST = (
    "{what} reads the store itself: run it on the server's host with the store's URL"
    " (hitl --store sqlite:///… or postgresql://… audit …), not through the server"
)


class RemoteStoreView:
    """``machine.store`` of a remote machine: reads through the server's API; writes refused.

    Reads are authorized by the server too (an agent sees its own tasks only).
    """

    shared = True

    def __init__(self, machine: RemoteMachine) -> None:
        self.machine = machine
        self.url = machine.url

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def append(self, *args: Any, **kwargs: Any) -> None:
        raise NotAuthorizedError("", "-", "in server mode every write goes through the server's API")

    async def get(self, task_id: str) -> TaskRecord | None:
        task = await self.machine.get_task(task_id)
        return _record_of(task) if task is not None else None

    async def query(
        self, state: TaskState | None = None, limit: int | None = None, after: int | None = None
    ) -> list[TaskRecord]:
        return [_record_of(t) for t in await self.machine._list(state, limit, after)]

    async def events(
        self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None
    ) -> list[EventRecord]:
        return [EventRecord.from_event(e) for e in await self.machine.events(after_seq, limit, task_id)]

    async def last_seq(self) -> int:
        return await self.machine.last_seq()

    async def count_by_state(self) -> dict[TaskState, int]:
        counts: dict[TaskState, int] = {}
        for task in await self.machine._list(None, None):
            counts[task.state] = counts.get(task.state, 0) + 1
        return counts

    async def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        async for event in self.machine.follow(after_seq):
            yield EventRecord.from_event(event)

    async def verify(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError(_ON_THE_SERVERS_HOST.format(what="audit verify"))

    async def checkpoints(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError(_ON_THE_SERVERS_HOST.format(what="audit checkpoints"))

    async def add_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError(_ON_THE_SERVERS_HOST.format(what="audit checkpoint"))


class RemoteMachine:
    """The machine's public API against a ``hitl serve``. See the module docstring."""

    def __init__(
        self,
        url: str,
        plugins: Iterable[object] = (),
        *,
        token: str | None = None,
        ca: str | None = None,
        agent: str | None = None,
        framework: str | None = None,
        load_entrypoints: bool = True,
        max_payload_bytes: int | None = None,
        config: Any = None,
        timeout: float = 30.0,
    ) -> None:
        if not is_server_url(url):
            raise StoreError(f"{url!r} is not a hitl server URL (hitl+unix:///path.sock or https://host:port)")
        from .plugins import PluginHost

        self.url = url
        parts = urlsplit(url)
        self._uds: str | None = unquote(parts.path) if parts.scheme == "hitl+unix" else None
        if self._uds is not None and not self._uds:
            raise StoreError(f"{url!r}: a hitl+unix URL names the socket's path: hitl+unix:///run/hitl/hitl.sock")
        self._base = "http://hitl" if self._uds else f"https://{parts.netloc}"
        self._token = token or os.environ.get(ENV_TOKEN) or None
        self._ca = ca or os.environ.get(ENV_CA) or None
        self._timeout = timeout
        self.default_agent = agent
        self.default_framework = framework
        self.plugins = PluginHost(plugins, load_entrypoints=load_entrypoints)
        self.policies = None  # the server's policy applies; a local hitl.toml has no say
        self.store = RemoteStoreView(self)
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        # Each waiter's future gets the event that woke it (None: re-read the task, e.g. after a reconnect).
        self._waiters: dict[str, list[asyncio.Future[Event | None]]] = {}
        self._followers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._callbacks: CallbackRegistry | None = None
        self._pause_flags: dict[str, threading.Event] = {}
        self._sync: SyncHITL | None = None
        self._problem: str | None = None

    def __repr__(self) -> str:
        return f"RemoteMachine({self.url!r})"

    # -- transport -------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = self._clients[loop] = self._make_client()
        return client

    def _make_client(self) -> httpx.AsyncClient:
        try:
            import httpx
        except ImportError:
            raise StoreError(f"talking to a hitl server ({self.url}) needs httpx: pip install 'hitl[server]'") from None

        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        if self._uds is not None:
            transport = httpx.AsyncHTTPTransport(uds=self._uds)
        else:
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self._ca) if self._ca else True
            transport = httpx.AsyncHTTPTransport(verify=verify)
        return httpx.AsyncClient(
            transport=transport, base_url=self._base, headers=headers, timeout=httpx.Timeout(self._timeout)
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        client = self._client()  # first: a clear StoreError if httpx is missing
        import httpx

        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = await client.request(method, path, json=body, params=query or None)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the hitl server at {self.url}: {exc or type(exc).__name__}") from None
        if response.status_code >= 400:
            _raise_problem(response.status_code, response.content)
        return response.json()

    async def _task_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> TaskContext:
        task = TaskContext.model_validate(await self._call(method, path, body))
        # Our own transition is known now, before the stream brings its event: keep a pause flag
        # current at once (as the local machine does on commit), or a checkpoint right after a
        # resume would still see the task stopped.
        flag = self._pause_flags.get(task.task_id)
        if flag is not None:
            if task.state in _STOPPED:
                flag.set()
            else:
                flag.clear()
        return task

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> RemoteMachine:
        """Nothing to open: each call connects (the local machine's ``open`` opens its store)."""
        return self

    async def __aenter__(self) -> RemoteMachine:
        return self

    @property
    def problem(self) -> str | None:
        """Why the server's event stream is down right now (a console's banner), or None."""
        return self._problem

    async def last_seq(self) -> int:
        """The sequence number of the last committed event the server has."""
        return int((await self._call("GET", "/healthz"))["last_seq"])

    async def stats(self, since_seconds: float = 24 * 3600, *, now: int | None = None, settings: Any = None) -> Any:
        """``HITLStateMachine.stats``, folded here from the server's events and task lists (what
        this principal may read), never from the store."""
        from .stats import load_stats

        return await load_stats(RemoteStoreView(self), since_seconds=since_seconds, now=now, settings=settings)

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, task in list(self._followers.items()):
            if loop is running:
                task.cancel()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self._followers.clear()
        if self._sync is not None and not self._sync.is_own_thread():
            self._sync.close()
            self._sync = None
        for loop, client in list(self._clients.items()):
            if loop is running:
                await client.aclose()
        self._clients.clear()

    @property
    def sync(self) -> SyncHITL:
        sync = self._sync
        if sync is None:
            from .sync import facade_of

            sync = facade_of(self)
        return sync

    async def whoami(self) -> dict[str, Any]:
        """The principal the server authenticated this client as."""
        return await self._call("GET", "/v1/whoami")

    # -- the machine's methods --------------------------------------------------------------

    def _start_body(self, metadata: Any, step: Any, agent: Any, framework: Any, run_id: Any, parent_id: Any) -> dict:
        body = {
            "metadata": metadata,
            "step": step,
            "agent": agent or self.default_agent,
            "framework": framework or self.default_framework,
            "run_id": run_id,
            "parent_id": parent_id,
        }
        return {k: v for k, v in body.items() if v is not None}

    async def create_task(
        self,
        task_id: str,
        metadata: dict[str, Any] | None = None,
        *,
        step: str | None = None,
        agent: str | None = None,
        framework: str | None = None,
        run_id: str | None = None,
        parent_id: str | None = None,
    ) -> TaskContext:
        body = {"task_id": task_id, **self._start_body(metadata, step, agent, framework, run_id, parent_id)}
        return await self._task_call("POST", "/v1/tasks", body)

    async def start_task(
        self,
        task_id: str,
        metadata: dict[str, Any] | None = None,
        step: str | None = None,
        *,
        agent: str | None = None,
        framework: str | None = None,
        run_id: str | None = None,
        parent_id: str | None = None,
    ) -> TaskContext:
        body = self._start_body(metadata, step, agent, framework, run_id, parent_id)
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/start", body)

    async def request_approval(
        self,
        task_id: str,
        reason: str,
        context: dict[str, Any] | None = None,
        options: list[str] | None = None,
        severity: Severity | str = Severity.MEDIUM,
        *,
        kind: InterruptKind | str = InterruptKind.APPROVAL,
        action: Action | str | None = None,
        args: dict[str, Any] | None = None,
        allowed_decisions: Iterable[str] | None = None,
        response_schema: dict[str, Any] | None = None,
        deadline: datetime | None = None,
        timeout: float | None = None,
        default_decision: str = "reject",
        assignees: Iterable[str] | None = None,
        required_approvals: int = 1,
        step: str | None = None,
        requested_by: str | None = None,
    ) -> TaskContext:
        body: dict[str, Any] = {
            "reason": reason,
            "severity": str(Severity(severity).value) if isinstance(severity, str) else severity.value,
            "kind": InterruptKind(kind).value,
            "default_decision": default_decision,
            "required_approvals": required_approvals,
        }
        if isinstance(action, Action):
            body["action"] = {"name": action.name, "args": action.args}
        elif isinstance(action, str):
            body["action"] = {"name": action, "args": args or {}}
        elif args is not None:
            body["args"] = args
        for key, value in (
            ("context", context),
            ("options", list(options) if options is not None else None),
            ("allowed_decisions", list(allowed_decisions) if allowed_decisions is not None else None),
            ("response_schema", response_schema),
            ("deadline", deadline.isoformat() if deadline is not None else None),
            ("timeout", timeout),
            ("assignees", list(assignees) if assignees is not None else None),
            ("step", step),
        ):
            if value is not None:
                body[key] = value
        # ``requested_by`` is the server's to record (the authenticated caller); not sent.
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/request", body)

    async def pause(
        self,
        task_id: str,
        actor: str | None,
        reason: str,
        *,
        severity: Severity | str = Severity.MEDIUM,
        context: dict[str, Any] | None = None,
    ) -> TaskContext:
        body = {"as": _named(actor), "reason": reason, "severity": Severity(severity).value, "context": context}
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/pause", _compact(body))

    async def approve(
        self,
        task_id: str,
        actor: str | None = None,
        *,
        option: str | None = None,
        message: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        args_fingerprint: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        """``actor``: None (or the caller's own name) records the authenticated caller; another
        name is refused unless the server lets this caller impersonate. Retired keywords as the
        machine's (``hitl_core.glossary``)."""
        if retired:
            words = renamed_keywords("approve", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        body = {
            "as": _named(actor),
            "option": option,
            "comment": message,  # the API's field name (v1), unchanged
            "interrupt_id": interrupt_id,
            "args_fingerprint": args_fingerprint,
        }
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/approve", _compact(body))

    async def reject(
        self,
        task_id: str,
        actor: str | None = None,
        message: str | None = None,
        *,
        option: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        if retired:
            words = renamed_keywords("reject", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        body = {"as": _named(actor), "reason": message, "option": option, "interrupt_id": interrupt_id}
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/reject", _compact(body))

    async def edit(
        self,
        task_id: str,
        edited_args: dict[str, Any],
        actor: str | None = None,
        *,
        message: str | None = None,
        source: str = "api",
        interrupt_id: str | None = None,
        args_fingerprint: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        if retired:
            words = renamed_keywords("edit", retired, actor=actor, message=message)
            actor, message = words["actor"], words["message"]
        body = {
            "as": _named(actor),
            "edited_args": edited_args,
            "comment": message,
            "interrupt_id": interrupt_id,
            "args_fingerprint": args_fingerprint,
        }
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/edit", _compact(body))

    async def respond(
        self,
        task_id: str,
        response: Any,
        actor: str | None = None,
        *,
        source: str = "api",
        interrupt_id: str | None = None,
        **retired: Any,
    ) -> TaskContext:
        if retired:
            actor = renamed_keywords("respond", retired, actor=actor)["actor"]
        body = {"as": _named(actor), "response": response, "interrupt_id": interrupt_id}
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/respond", _compact(body, keep=("response",)))

    async def decide(
        self, task_id: str, decision: Decision, *, interrupt_id: str | None = None, args_fingerprint: str | None = None
    ) -> TaskContext:
        """A person's decision. ``timeout``/``policy`` decisions are the server's own, never a client's."""
        who = decision.actor.id
        interrupt_id = interrupt_id or decision.interrupt_id
        kind = decision.type
        if kind is DecisionType.APPROVE:
            return await self.approve(
                task_id,
                who,
                option=decision.option,
                message=decision.message,
                interrupt_id=interrupt_id,
                args_fingerprint=args_fingerprint,
            )
        if kind is DecisionType.REJECT:
            return await self.reject(task_id, who, decision.message, option=decision.option, interrupt_id=interrupt_id)
        if kind is DecisionType.EDIT:
            return await self.edit(
                task_id,
                decision.edited_args or {},
                who,
                message=decision.message,
                interrupt_id=interrupt_id,
                args_fingerprint=args_fingerprint,
            )
        if kind is DecisionType.RESPOND:
            return await self.respond(task_id, decision.response, who, interrupt_id=interrupt_id)
        raise NotAuthorizedError(task_id, who, f"a {kind.value} decision is made by the server, not by a client")

    async def resume(self, task_id: str, step: str | None = None, *, actor: str | None = None) -> TaskContext:
        return await self._task_call(
            "POST", f"/v1/tasks/{_seg(task_id)}/resume", _compact({"as": _named(actor), "step": step})
        )

    async def complete(self, task_id: str, result: Any = None) -> TaskContext:
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/complete", {"result": result})

    async def fail(self, task_id: str, error: str) -> TaskContext:
        return await self._task_call("POST", f"/v1/tasks/{_seg(task_id)}/fail", {"error": str(error)})

    async def get_task(self, task_id: str) -> TaskContext | None:
        try:
            return await self._task_call("GET", f"/v1/tasks/{_seg(task_id)}")
        except TaskNotFoundError:
            return None

    async def _list(
        self, state: TaskState | str | None, limit: int | None, after: int | None = None
    ) -> list[TaskContext]:
        data = await self._call(
            "GET", "/v1/tasks", state=TaskState(state).value if state else None, limit=limit, after=after
        )
        return [TaskContext.model_validate(t) for t in data]

    async def get_pending_approvals(self) -> list[TaskContext]:
        return await self._list(TaskState.AWAITING_APPROVAL, None)

    async def get_tasks_by_state(self, state: TaskState | str) -> list[TaskContext]:
        return await self._list(state, None)

    async def get_all_tasks(self) -> list[TaskContext]:
        return await self._list(None, None)

    async def get_tasks(
        self, states: Iterable[TaskState | str] | None = None, *, changed_after: int | None = None
    ) -> list[TaskContext]:
        """As the local machine's: one request a state (the API lists one state or all)."""
        if states is None:
            return await self._list(None, None, changed_after)
        out: list[TaskContext] = []
        for state in dict.fromkeys(TaskState(s) for s in states):
            out.extend(await self._list(state, None, changed_after))
        return out

    async def events(self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None) -> list[Event]:
        data = await self._call("GET", "/v1/events", after=after_seq, limit=limit, task_id=task_id)
        return [Event.model_validate(e) for e in data["events"]]

    # -- callbacks ---------------------------------------------------------------------------

    def add_callback(self, callback: Callback, task_id: str = "*", *, state: TaskState | str | None = None) -> Callback:
        """As the local machine's, but called when the server's stream delivers the event."""
        if self._callbacks is None:
            self._callbacks = CallbackRegistry()
        self._callbacks.add(callback, task_id, TaskState(state) if state is not None else None)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self._ensure_follower())
        return callback

    def remove_callback(self, callback: Callback) -> None:
        if self._callbacks is not None:
            self._callbacks.remove(callback)

    # -- the stream ----------------------------------------------------------------------------

    async def follow(self, after_seq: int | None = 0, *, hello: asyncio.Event | None = None) -> AsyncIterator[Event]:
        """Every visible event after ``after_seq`` (None: from now), forever; reconnects by itself.

        After a dropped connection it asks again from the last seq it yielded: nothing is missed
        and nothing is yielded twice.
        """
        import httpx

        after = after_seq
        backoff = 0.05
        while True:
            try:
                client = self._client()
                params = {"after": after} if after is not None else {}
                timeout = httpx.Timeout(self._timeout, read=60.0)
                async with client.stream("GET", "/v1/stream", params=params, timeout=timeout) as response:
                    if response.status_code >= 400:
                        _raise_problem(response.status_code, await response.aread())
                    name, data = "", []
                    async for line in response.aiter_lines():
                        if line:
                            if line.startswith("event:"):
                                name = line[6:].strip()
                            elif line.startswith("data:"):
                                data.append(line[5:].removeprefix(" "))
                            continue
                        if name == "hello":
                            self._problem = None
                            if after is None:
                                after = int(json.loads("\n".join(data))["last_seq"])
                            backoff = 0.05
                            if hello is not None:
                                hello.set()
                        elif name == "transition" and data:
                            event = Event.model_validate_json("\n".join(data))
                            if after is None or event.seq > after:
                                after = event.seq
                                yield event
                        name, data = "", []
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except HITLError as exc:
                if isinstance(exc, NotAuthorizedError):
                    raise
                log.warning("the event stream from %s failed (%s); reconnecting in %.2fs", self.url, exc, backoff)
                self._problem = str(exc)
            except Exception as exc:
                log.info("the event stream from %s dropped (%r); reconnecting in %.2fs", self.url, exc, backoff)
                self._problem = f"the event stream from {self.url} dropped: {type(exc).__name__}"
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _ensure_follower(self) -> None:
        """One stream per event loop, waking this process's waiters and running its callbacks.

        Returns once the stream is connected (so nothing committed afterwards can be missed);
        raises what stopped it if it cannot connect for good (a revoked token: 401).
        """
        loop = asyncio.get_running_loop()
        task = self._followers.get(loop)
        if task is None or task.done():
            started = asyncio.Event()
            task = self._followers[loop] = loop.create_task(self._dispatch(started), name="hitl-remote-follow")
            waiting = loop.create_task(started.wait())
            try:
                await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()
            if task.done():
                task.result()  # raises what ended it

    async def _dispatch(self, started: asyncio.Event) -> None:
        hello = asyncio.Event()
        connected = False

        async def watch_hello() -> None:
            nonlocal connected
            while True:
                await hello.wait()
                hello.clear()
                if connected:
                    self._wake_all()  # reconnected: let every waiter re-read its task
                connected = True
                started.set()

        watcher = asyncio.get_running_loop().create_task(watch_hello())
        try:
            async for event in self.follow(None, hello=hello):
                self._wake(event.task_id, event.to_state, event)
                if self._callbacks is not None:
                    try:
                        task = await self.get_task(event.task_id)
                        if task is not None:
                            await self._callbacks.hitl_transition(event, task)
                    except Exception as exc:
                        log.warning("a callback on %s raised: %r", event.task_id, exc)
        except Exception as exc:
            # The stream stopped for good (e.g. the token was revoked): nobody waits forever.
            for futures in list(self._waiters.values()):
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            raise
        finally:
            watcher.cancel()

    def _wake(self, task_id: str, to_state: TaskState | None = None, event: Event | None = None) -> None:
        flag = self._pause_flags.get(task_id)
        if flag is not None and to_state is not None:
            if to_state in _STOPPED:
                flag.set()
            else:
                flag.clear()
        for future in self._waiters.get(task_id, ()):
            if not future.done():
                future.set_result(event)

    def _wake_all(self) -> None:
        for task_id in list(self._waiters):
            self._wake(task_id)

    async def wait_for_decision(self, task_id: str, timeout: float | None = None) -> Decision:
        """As the local machine's: returns the decision, woken by the server's stream (no polling)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future: asyncio.Future[Event | None] = loop.create_future()
            self._waiters.setdefault(task_id, []).append(future)
            try:
                await self._ensure_follower()
                task = await self._get_for_wait(task_id, deadline)
                outcome = _decision_of(task)
                if outcome is not None:
                    return outcome
                remaining = None if deadline is None else max(deadline - loop.time(), 0)
                try:
                    event = await asyncio.wait_for(future, remaining)
                except TimeoutError:
                    raise DecisionTimeoutError(task_id, timeout or 0) from None
                pushed = _decision_pushed(event, task.version)
                if pushed is not None:
                    return pushed
            finally:
                waiters = self._waiters.get(task_id)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)
                    if not waiters:
                        del self._waiters[task_id]

    async def wait_for_state(
        self, task_id: str, states: Iterable[TaskState], timeout: float | None = None
    ) -> TaskContext:
        """Block until the task is in one of ``states``."""
        wanted = {TaskState(s) for s in states}
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future: asyncio.Future[Event | None] = loop.create_future()
            self._waiters.setdefault(task_id, []).append(future)
            try:
                await self._ensure_follower()
                task = await self._get_for_wait(task_id, deadline)
                if task.state in wanted:
                    return task
                remaining = None if deadline is None else max(deadline - loop.time(), 0)
                try:
                    await asyncio.wait_for(future, remaining)
                except TimeoutError:
                    raise DecisionTimeoutError(task_id, timeout or 0) from None
            finally:
                waiters = self._waiters.get(task_id)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)
                    if not waiters:
                        del self._waiters[task_id]

    async def watch_pause(self, task_id: str) -> threading.Event:
        """A flag set while the task is stopped for a person, kept current by the server's stream."""
        flag = self._pause_flags.setdefault(task_id, threading.Event())
        await self._ensure_follower()
        task = await self.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        if task.state in _STOPPED:
            flag.set()
        return flag

    def unwatch_pause(self, task_id: str) -> None:
        self._pause_flags.pop(task_id, None)

    def _check_default_decision(self, default_decision: Any, task_id: str | None = None) -> None:
        """Whether an approving default is allowed is the server's config: it refuses the request
        (``PayloadError``) if not. Nothing to check here before asking."""

    async def expire(self, task_id: str, *, force: bool = False) -> TaskContext:
        """Deadlines are the server's: its sweeper records the timeout when the deadline passes.

        A client cannot record a timeout (it is not a person's decision), so this returns the task
        as it is; a caller that then waits gets the server's timeout decision once it is made
        (``@requires_approval(timeout=…)`` sends its timeout as the request's deadline).
        """
        task = await self.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    async def _get_for_wait(self, task_id: str, deadline: float | None) -> TaskContext:
        """Read the task; while the server is unreachable, keep trying (a restart is not an answer)."""
        loop = asyncio.get_running_loop()
        backoff = 0.05
        while True:
            try:
                task = await self.get_task(task_id)
            except StoreError:
                if deadline is not None and loop.time() >= deadline:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if task is None:
                raise TaskNotFoundError(task_id)
            return task


def _decision_pushed(event: Event | None, seen_version: int) -> Decision | None:
    """The decision a stream event carries, if it is the final decision on the task after the
    version the waiter read: then the waiter returns it without reading the task again (one
    request less on the round trip). Anything else (a partial approval, an older event, a
    reconnect) and the waiter reads the task as before."""
    if event is None or event.version <= seen_version or event.action not in ("approve", "reject"):
        return None
    if event.to_state not in (TaskState.APPROVED, TaskState.REJECTED):
        return None
    raw = event.data.get("decision")
    if not isinstance(raw, dict):
        return None
    try:
        return Decision.model_validate(raw)
    except ValueError:
        return None


def _named(name: str | None) -> str | None:
    """The name to send as ``as``: None for the caller's own login name.

    Local callers (the CLI, the console) fill in the OS login name when nobody was named; in
    server mode that default means "whoever I am authenticated as", which the server knows better
    (a token's principal is not the login name). Any other name is sent, and the server refuses
    it unless this caller may impersonate.
    """
    if name is None or name == settings.os_user():
        return None
    return name


def _seg(task_id: str) -> str:
    from urllib.parse import quote

    if not isinstance(task_id, str) or not task_id:
        from .errors import PayloadError

        raise PayloadError(f"task id must be a non-empty string, got {task_id!r}")
    return quote(task_id, safe="")


def _compact(body: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None or k in keep}


def _raise_problem(status: int, content: bytes) -> None:
    from .server.problems import error_of

    try:
        body = json.loads(content)
    except ValueError:
        body = {"detail": content[:200].decode("utf-8", "replace") or f"HTTP {status}"}
    raise error_of(status, body)
