"""``hitl user add|ls|remove``: the local web accounts of a ``hitl serve --web`` on this host."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from ...errors import HITLError


def _accounts(args: argparse.Namespace) -> Any:
    from ..tokens import default_tokens_path
    from .accounts import WebAccounts

    return WebAccounts(Path(args.tokens) if args.tokens else default_tokens_path())


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise HITLError("the two passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    try:
        # linked to an identity provider, an account needs no password unless one is given on stdin
        password = None if args.oidc_subject and not args.password_stdin else _password(args)
        secret = _accounts(args).add(args.name, args.role, password, totp=args.totp, oidc_subject=args.oidc_subject)
    except HITLError as exc:
        print(f"hitl: error: {exc}", file=sys.stderr)
        return 2
    linked = f", OIDC subject {args.oidc_subject!r}" if args.oidc_subject else ""
    print(f"web user {args.name!r} ({args.role}{linked}) added", file=sys.stderr)
    if secret is not None:
        import pyotp

        print(pyotp.TOTP(secret).provisioning_uri(name=args.name, issuer_name="hitl"))
        print("add this to an authenticator app now: it is shown once", file=sys.stderr)
    return 0


def _ls(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    for user in accounts.users():
        subject = accounts.oidc_subject(user.name)
        kinds = ["totp" if user.totp else "password"] if accounts.has_password(user.name) else []
        login = ",".join(kinds + ([f"oidc:{subject}"] if subject else []))
        print(f"{user.name}\t{user.role.value}\t{login}\t{user.created_at.isoformat(timespec='seconds')}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        _accounts(args).remove(args.name)
    except HITLError as exc:
        print(f"hitl: error: {exc}", file=sys.stderr)
        return 2
    print(f"web user {args.name!r} removed; their sessions are ended", file=sys.stderr)
    return 0


def add_user_commands(sub: Any) -> None:
    user = sub.add_parser(
        "user",
        help="local accounts for hitl serve --web (passwords argon2-hashed, optional TOTP)",
        description="Web accounts live in the server's token file; the name is the identity decisions are recorded under.",
    )
    user.add_argument("--tokens", metavar="FILE", help="token file (default: $HITL_TOKENS or the user data dir)")
    verbs = user.add_subparsers(dest="user_command", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["observer", "operator", "admin"])
    add.add_argument(
        "--totp", action="store_true", help="also require a one-time code (prints the otpauth:// URI once)"
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument(
        "--oidc-subject",
        metavar="SUB",
        help="link to this OpenID Connect subject (the IdP's sub claim); no password unless --password-stdin",
    )
    add.set_defaults(handler=_add)
    verbs.add_parser("ls", help="list users").set_defaults(handler=_ls)
    remove = verbs.add_parser("remove", help="remove a user and end their sessions")
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)
