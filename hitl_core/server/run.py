"""``hitl serve``: bind the socket(s), open the machine with the server's config, serve until told to stop.

Sockets are bound here, not by uvicorn: uvicorn makes a Unix socket world-writable (0666), and
who may connect is the point. The Unix socket is 0660 and owned by ``--socket-group``. A Unix
socket and a TLS listener may run together: two uvicorn servers on one event loop sharing one
app and one machine (uvicorn applies TLS to every socket of a server).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import signal
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HITLError
from ..text import hitl_logger

log = hitl_logger("hitl.server")


class ServeError(HITLError):
    """``hitl serve`` cannot start: a socket path, group, address or certificate is wrong."""


@dataclass
class ServeOptions:
    store: str
    socket_path: Path | None = None
    socket_group: str | None = None
    listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    config: Any = None  # a path, or True to look for hitl.toml
    tokens: Path | None = None
    agent_users: frozenset[str] = frozenset()
    web: bool = False
    web_url: str | None = None
    oidc_issuer: str | None = None  # OpenID Connect login (web/oidc.py); the rest only with it
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_ca_bundle: str | None = None
    oidc_user_claim: str = "preferred_username"
    metrics_public: bool = False
    checkpoint_key: Path | None = None
    checkpoint_every: float | None = None  # seconds; default 10 minutes when a key is given
    refusal_audit_limit: int = 10  # refusal records per principal (or address) a minute
    auth_failure_limit: int = 10  # failed token checks per address a minute before 429


def bind_unix(path: Path, group: str | None) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0660, group ``group`` (default: ours). Clear errors."""
    parent = path.parent
    if not parent.is_dir():
        raise ServeError(f"cannot listen on {path}: the directory {parent} does not exist")
    gid: int | None = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ServeError(f"cannot listen on {path}: no group named {group!r}") from None
    if path.exists() or path.is_symlink():
        info = path.lstat()
        if not stat.S_ISSOCK(info.st_mode):
            raise ServeError(f"cannot listen on {path}: it exists and is not a socket (refusing to replace it)")
        want_gid = gid if gid is not None else os.getegid()
        if info.st_uid != os.geteuid() or info.st_gid != want_gid:
            # Somebody else's socket (another server, another deployment's group): replacing it
            # would hand its callers to us, or ours to whoever can reach that group.
            raise ServeError(
                f"cannot listen on {path}: the socket there is owned by {_owner(info.st_uid, info.st_gid)},"
                f" not {_owner(os.geteuid(), want_gid)}; remove it if it is stale, or check --socket-group"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a socket nobody listens on: left by a server that died
        else:
            raise ServeError(f"cannot listen on {path}: another server is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # the socket is never, even for an instant, connectable by others
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    try:
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    except OSError as exc:
        sock.close()
        path.unlink(missing_ok=True)
        raise ServeError(
            f"cannot give {path} to group {group!r}: {exc.strerror} (is this user in that group?)"
        ) from None
    sock.listen(256)
    sock.setblocking(False)
    return sock


def _owner(uid: int, gid: int) -> str:
    import pwd

    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid {uid}"
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = f"gid {gid}"
    return f"user {user}, group {group}"


def load_checkpoint_key(path: Path) -> Any:
    """The server's checkpoint signing key: an Ed25519 PEM, mode 0600 (no group or other bits) and
    owned by the user the server runs as; ``ServeError`` saying which otherwise."""
    from ..audit import AuditKeyError, load_private_key

    try:
        info = path.stat()
    except FileNotFoundError:
        raise ServeError(f"--checkpoint-key {path}: no such file (make one with hitl audit keygen)") from None
    except OSError as exc:
        raise ServeError(f"--checkpoint-key {path}: {exc.strerror}") from None
    if info.st_uid != os.geteuid():
        raise ServeError(
            f"--checkpoint-key {path} is owned by {_owner(info.st_uid, info.st_gid).split(',')[0]}, not by the user"
            f" this server runs as ({_owner(os.geteuid(), os.getegid()).split(',')[0]}): chown it"
        )
    try:
        return load_private_key(path)
    except AuditKeyError as exc:
        raise ServeError(f"--checkpoint-key: {exc}") from None


def bind_tcp(listen: str) -> socket.socket:
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ServeError(f"--listen {listen!r} must be HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they
    # are TCP, and with Nagle on every small response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port_text)))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {listen}: {exc.strerror}") from None
    sock.listen(256)
    sock.setblocking(False)
    return sock


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    return context


@contextlib.contextmanager
def _quiet_signals() -> Iterator[None]:
    yield


async def serve(options: ServeOptions) -> None:
    import uvicorn

    from ..machine import HITLStateMachine
    from ..policies import find_config
    from .app import Server, create_app
    from .auth import Authenticator, PeerCredentialsProtocol
    from .tokens import TokenStore, default_tokens_path
    from .trail import AuthThrottle, RefusalAudit, parse_policy

    if options.socket_path is None and options.listen is None:
        raise ServeError("nothing to listen on: give --socket PATH and/or --listen HOST:PORT")
    if options.listen is not None and (options.tls_cert is None or options.tls_key is None):
        raise ServeError("--listen needs --tls-cert and --tls-key: tokens are never sent in the clear")
    # A policy file is read (and refused, if invalid) before any socket exists; the checkpoint key too.
    explicit = options.config is not None and options.config is not True
    path = Path(options.config) if explicit else find_config()
    file_text = _read_policy_file(path) if path is not None else None
    if file_text is not None:
        parse_policy(file_text, str(path))
    key = load_checkpoint_key(options.checkpoint_key) if options.checkpoint_key is not None else None
    machine = HITLStateMachine(options.store)
    context = tls_context(options.tls_cert, options.tls_key) if options.listen else None  # type: ignore[arg-type]
    sockets: list[tuple[socket.socket, ssl.SSLContext | None]] = []
    try:
        if options.socket_path is not None:
            sockets.append((bind_unix(options.socket_path, options.socket_group), None))
        if options.listen is not None:
            sockets.append((bind_tcp(options.listen), context))
        tokens = TokenStore(options.tokens or default_tokens_path())
        server = Server(
            machine,
            Authenticator(tokens, agent_users=options.agent_users),
            metrics_public=options.metrics_public,
            throttle=AuthThrottle(limit=options.auth_failure_limit),
            refusal_audit=RefusalAudit(machine.store, per_key=options.refusal_audit_limit),
        )
        await server.start()
        try:
            await _policy_at_start(server, file_text, path, explicit)
        except BaseException:
            await server.stop()
            raise
    except BaseException:
        _release(sockets, options)
        raise
    server.start_clock(checkpoint_key=key, checkpoint_every=options.checkpoint_every or (600.0 if key else None))
    app = create_app(server)
    if options.web:
        from .web.serve import enable_web

        enable_web(app, server, tokens, options)
    servers: list[uvicorn.Server] = []
    for _sock, ctx in sockets:
        config = uvicorn.Config(
            app,
            http=PeerCredentialsProtocol,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
            access_log=False,
            # uvicorn would build its own context from file names; ours is already loaded and checked.
            ssl_context_factory=(lambda c: lambda _config, _default: c)(ctx) if ctx is not None else None,
        )
        userver = uvicorn.Server(config)
        userver.capture_signals = _quiet_signals  # type: ignore[method-assign]
        servers.append(userver)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    stored = server.policy
    policy = (
        f"policy v{stored.version} (sha256 {stored.hash[:16]})" if stored else "no policy applied (deadlines are swept)"
    )
    where = [str(options.socket_path)] if options.socket_path else []
    if options.listen:
        where.append(f"https://{options.listen}")
    log.warning("hitl serve: store %s, %s, listening on %s", machine.store.url, policy, ", ".join(where))
    try:
        tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, (sock, _) in zip(servers, sockets, strict=True)]
        await asyncio.gather(*tasks)
    finally:
        await server.stop()
        _release(sockets, options)


def _read_policy_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServeError(f"cannot read the policy file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ServeError(f"the policy file {path} is not UTF-8 text") from None


async def _policy_at_start(server: Any, file_text: str | None, path: Path | None, explicit: bool) -> None:
    """Which policy this server enforces: the one in force in the store; a ``--config`` file only
    when the store has none yet (it is then applied as version 1). A ``--config`` that differs from
    the store's policy is refused: a restarted or added replica must never roll the policy back."""
    from ..policies import PolicyConfig
    from .trail import parse_policy, policy_hash, policy_in_force

    store = server.machine.store
    stored = await policy_in_force(store)
    if stored is not None:
        if explicit and file_text is not None and policy_hash(file_text) != stored.hash:
            raise ServeError(
                f"--config {path} differs from the policy in force in the store (v{stored.version}, sha256"
                f" {stored.hash[:16]}…, applied by {stored.applied_by}): apply it with `hitl policy apply {path}`"
                " through a running server, or start without --config"
            )
        if file_text is not None and policy_hash(file_text) != stored.hash:
            log.warning("ignoring %s: the store's policy v%d is in force", path, stored.version)
        await server.use_policy(stored, parse_policy(stored.text, stored.source or "<applied policy>"))
        return
    if file_text is not None and path is not None:
        await server.apply_policy(file_text, "hitl serve --config", str(path))
        return
    # No policy at all: the server still sweeps deadlines (in server mode nobody else records a timeout).
    await server.use_policy(None, PolicyConfig())


def _release(sockets: list[tuple[socket.socket, ssl.SSLContext | None]], options: ServeOptions) -> None:
    for sock, _ in sockets:
        if sock.family == socket.AF_UNIX and options.socket_path is not None:
            options.socket_path.unlink(missing_ok=True)  # ours: bound by this process
        sock.close()
