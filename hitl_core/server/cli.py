"""``hitl serve`` and ``hitl token create|ls|revoke``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import HITLError


def _missing(*modules: str) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _fail(message: str, code: int) -> int:
    print(f"hitl: error: {message}", file=sys.stderr)
    return code


def _serve(args: argparse.Namespace) -> int:
    from ..cli_commands import exit_code_for, resolve_store_url
    from .run import ServeError, ServeOptions, serve

    if args.socket is None and args.listen is None:
        return _fail("give --socket PATH and/or --listen HOST:PORT (with --tls-cert and --tls-key)", 2)
    if args.web and args.listen is None:
        return _fail("--web needs --listen HOST:PORT with TLS: browsers get Secure cookies only over HTTPS", 2)
    missing = _missing("uvicorn", "starlette", "argon2")
    if missing:
        return _fail(f"hitl serve needs {', '.join(missing)}: pip install 'hitl[server]'", 2)
    secret = None
    if args.oidc_issuer or args.oidc_client_id:
        if not args.web:
            return _fail("--oidc-issuer is a way to log in to --web: give --web too", 2)
        if not (args.oidc_issuer and args.oidc_client_id):
            return _fail("OpenID Connect needs both --oidc-issuer URL and --oidc-client-id ID", 2)
        if _missing("authlib", "joserfc"):
            return _fail("--oidc-issuer needs authlib: pip install 'hitl[web]'", 2)
        from .web.oidc import check_options

        try:
            secret = check_options(args.oidc_issuer, args.oidc_client_secret_env, args.oidc_ca_bundle)
        except HITLError as exc:
            return _fail(str(exc), 2)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config: Any = args.config if args.config is not None else True
    every = None
    if args.checkpoint_every is not None:
        from .tokens import parse_duration

        if args.checkpoint_key is None:
            return _fail("--checkpoint-every needs --checkpoint-key FILE (the key that signs)", 2)
        try:
            every = parse_duration(args.checkpoint_every).total_seconds()
        except HITLError as exc:
            return _fail(f"--checkpoint-every: {exc}", 2)
    options = ServeOptions(
        store=resolve_store_url(args.store),
        socket_path=Path(args.socket) if args.socket else None,
        socket_group=args.socket_group,
        listen=args.listen,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        config=config,
        tokens=Path(args.tokens) if args.tokens else None,
        agent_users=frozenset(args.agent_user or ()),
        web=args.web,
        web_url=args.web_url,
        oidc_issuer=args.oidc_issuer,
        oidc_client_id=args.oidc_client_id,
        oidc_client_secret=secret,
        oidc_ca_bundle=args.oidc_ca_bundle,
        oidc_user_claim=args.oidc_user_claim,
        metrics_public=args.metrics_public,
        checkpoint_key=Path(args.checkpoint_key) if args.checkpoint_key else None,
        checkpoint_every=every,
        refusal_audit_limit=args.refusal_audit_limit,
        auth_failure_limit=args.auth_failure_limit,
    )
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        return 0
    except ServeError as exc:
        return _fail(str(exc), 2)
    except HITLError as exc:
        return _fail(str(exc), exit_code_for(exc))
    return 0


def _tokens(args: argparse.Namespace) -> Any:
    from .tokens import TokenStore, default_tokens_path

    return TokenStore(Path(args.tokens) if args.tokens else default_tokens_path())


def _server_url(args: argparse.Namespace) -> str | None:
    """The server to manage tokens through (as an admin), or None for the local token file."""
    from ..client import is_server_url
    from ..settings import store_url_from_env

    if args.tokens:
        return None
    url = getattr(args, "store", None) or store_url_from_env()
    return url if is_server_url(url) else None


def _remote(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from ..client import RemoteMachine

    async def call() -> Any:
        async with RemoteMachine(url) as machine:
            return await machine._call(method, path, body)

    return asyncio.run(call())


def _token_create(args: argparse.Namespace) -> int:
    from .tokens import parse_duration

    url = _server_url(args)
    if url is not None:
        body = {"name": args.name, "role": args.role, "expires": args.expires, "impersonate": args.impersonate}
        try:
            made = _remote(url, "POST", "/v1/tokens", body)
        except HITLError as exc:
            return _fail(str(exc), _code(exc))
        print(made["token"])
        print(
            f"token {made['name']!r} ({made['role']}), expires {made['expires_at'] or 'never'}: shown once.",
            file=sys.stderr,
        )
        return 0
    try:
        expires = parse_duration(args.expires) if args.expires else None
        secret, info = _tokens(args).create(args.name, args.role, expires=expires, impersonate=args.impersonate)
    except HITLError as exc:
        return _fail(str(exc), 2)
    print(secret)
    until = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
    print(
        f"token {info.name!r} ({info.role.value}{', impersonate' if info.impersonate else ''}), expires {until}."
        " It is shown once: store it now.",
        file=sys.stderr,
    )
    return 0


def _code(exc: BaseException) -> int:
    from ..cli_commands import exit_code_for
    from .problems import KINDS

    kind = getattr(exc, "problem_kind", None)
    return KINDS[kind][2] if kind in KINDS and kind != "error" else exit_code_for(exc)


def _token_ls(args: argparse.Namespace) -> int:
    from .tokens import Role, TokenInfo

    url = _server_url(args)
    try:
        if url is not None:
            tokens = [
                TokenInfo(
                    "",
                    t["name"],
                    Role(t["role"]),
                    t["impersonate"],
                    datetime.fromisoformat(t["created_at"]),
                    datetime.fromisoformat(t["expires_at"]) if t["expires_at"] else None,
                    datetime.fromisoformat(t["revoked_at"]) if t["revoked_at"] else None,
                )
                for t in _remote(url, "GET", "/v1/tokens")
            ]
        else:
            tokens = _tokens(args).list()
    except HITLError as exc:
        return _fail(str(exc), _code(exc))
    now = datetime.now(UTC)
    rows = [("NAME", "ROLE", "IMPERSONATE", "STATUS", "CREATED", "EXPIRES")]
    for t in tokens:
        rows.append(
            (
                t.name,
                t.role.value,
                "yes" if t.impersonate else "no",
                t.status(now),
                t.created_at.isoformat(timespec="seconds"),
                t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    url = _server_url(args)
    try:
        if url is not None:
            _remote(url, "POST", f"/v1/tokens/{quote(args.name, safe='')}/revoke")
        else:
            _tokens(args).revoke(args.name)
    except HITLError as exc:
        return _fail(str(exc), _code(exc))
    print(f"revoked token {args.name!r}")
    return 0


def add_server_commands(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the hitl server: the one authority between agents, operators and the store",
        description="Own the store, enforce the server's policy, authenticate every caller.",
    )
    serve.add_argument(
        "--store", metavar="URL", default=argparse.SUPPRESS, help="the store this server owns (as hitl --store)"
    )
    serve.add_argument("--socket", metavar="PATH", help="listen on a Unix socket (mode 0660; peers named by the OS)")
    serve.add_argument("--socket-group", metavar="GROUP", help="group that may connect to the socket")
    serve.add_argument("--listen", metavar="HOST:PORT", help="listen on TCP with TLS (needs --tls-cert, --tls-key)")
    serve.add_argument("--tls-cert", metavar="FILE")
    serve.add_argument("--tls-key", metavar="FILE")
    serve.add_argument("--config", metavar="FILE", help="the policy in force (default: the hitl.toml found)")
    serve.add_argument("--tokens", metavar="FILE", help="token file (default: $HITL_TOKENS or the user data dir)")
    serve.add_argument(
        "--agent-user",
        action="append",
        metavar="USER",
        help="an OS user that runs agents only: over the socket it may not decide (repeatable)",
    )
    serve.add_argument(
        "--web", action="store_true", help="also serve browsers on --listen: login, console, status page, action links"
    )
    serve.add_argument(
        "--web-url", metavar="URL", help="the https://host[:port] browsers reach (for action links; default: --listen)"
    )
    serve.add_argument(
        "--oidc-issuer", metavar="URL", help="also log in through this OpenID Connect provider (https://; see docs)"
    )
    serve.add_argument("--oidc-client-id", metavar="ID", help="this server's client id at the provider")
    serve.add_argument(
        "--oidc-client-secret-env", metavar="VAR", help="the environment variable holding the client secret, if any"
    )
    serve.add_argument("--oidc-ca-bundle", metavar="FILE", help="PEM file of the CAs of the provider's certificate")
    serve.add_argument(
        "--oidc-user-claim",
        default="preferred_username",
        metavar="CLAIM",
        help="claim naming the local user when the subject is linked to none (preferred_username; email needs email_verified)",
    )
    serve.add_argument(
        "--metrics-public",
        action="store_true",
        help="serve /metrics without authentication (default: any token, or the Unix socket)",
    )
    serve.add_argument(
        "--checkpoint-key",
        metavar="FILE",
        help="sign checkpoints of the audit chain with this Ed25519 key (hitl audit keygen; 0600, owned by this user)",
    )
    serve.add_argument(
        "--checkpoint-every", metavar="DURATION", help="how often to sign a checkpoint, e.g. 10m (default: 10m)"
    )
    serve.add_argument(
        "--refusal-audit-limit",
        type=_positive,
        default=10,
        metavar="N",
        help="refusals recorded in the audit chain per principal (or address) a minute; more are counted (10)",
    )
    serve.add_argument(
        "--auth-failure-limit",
        type=_positive,
        default=10,
        metavar="N",
        help="failed token checks per address a minute before it gets 429 until the minute ends (10)",
    )
    serve.set_defaults(handler=_serve)

    token = sub.add_parser(
        "token",
        help="bearer tokens for remote callers of hitl serve",
        description="With --store (or HITL_STORE) naming a hitl server, through its API (admins only);"
        " otherwise on the token file of a server on this host.",
    )
    token.add_argument("--tokens", metavar="FILE", help="token file (default: $HITL_TOKENS or the user data dir)")
    verbs = token.add_subparsers(dest="token_command", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="make a token (printed once)")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["agent", "operator", "admin"])
    create.add_argument("--expires", metavar="DURATION", help="e.g. 30d, 12h, 90m (default: never)")
    create.add_argument(
        "--impersonate", action="store_true", help="may act for a named person (recorded as 'person via NAME')"
    )
    create.set_defaults(handler=_token_create)
    verbs.add_parser("ls", help="list tokens (never their secrets)").set_defaults(handler=_token_ls)
    revoke = verbs.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_token_revoke)

    from .web.cli import add_user_commands

    add_user_commands(sub)
