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


def _fail(message: str, code: int) -> int:
    print(f"hitl: error: {message}", file=sys.stderr)
    return code


def _serve(args: argparse.Namespace) -> int:
    from ..cli_commands import exit_code_for, resolve_store_url
    from .run import ServeError, ServeOptions, serve

    if args.socket is None and args.listen is None:
        return _fail("give --socket PATH and/or --listen HOST:PORT (with --tls-cert and --tls-key)", 2)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config: Any = args.config if args.config is not None else True
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


def _token_create(args: argparse.Namespace) -> int:
    from .tokens import parse_duration

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


def _token_ls(args: argparse.Namespace) -> int:
    try:
        tokens = _tokens(args).list()
    except HITLError as exc:
        return _fail(str(exc), 6)
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
    try:
        info = _tokens(args).revoke(args.name)
    except HITLError as exc:
        return _fail(str(exc), 3 if "no token" in str(exc) else 4)
    print(f"revoked token {info.name!r}")
    return 0


def add_server_commands(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the hitl server: the one authority between agents, operators and the store",
        description="Own the store, enforce the server's policy, authenticate every caller.",
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
    serve.set_defaults(handler=_serve)

    token = sub.add_parser("token", help="bearer tokens for remote callers of hitl serve")
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
