"""``hitl policy test`` (which rule decides this call, and why not the others), ``hitl policy check``,
and ``hitl policy apply`` / ``show`` (the policy a ``hitl serve`` enforces, through its API)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..models import Severity
from .config import ConfigError, find_config, load_config
from .rules import evaluate

EXIT_OK = 0
EXIT_USAGE = 2


def _config_path(value: str | None) -> Path:
    if value:
        return Path(value)
    found = find_config()
    if found is None:
        raise ConfigError(
            "hitl.toml", None, None, "no config: not in $HITL_CONFIG, ./hitl.toml or the user config directory"
        )
    return found


def _test(args: argparse.Namespace) -> int:
    try:
        parsed: Any = json.loads(args.args) if args.args else {}
    except json.JSONDecodeError as exc:
        print(f"hitl policy test: --args is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(parsed, dict):
        print("hitl policy test: --args must be a JSON object", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"hitl policy test: {exc}", file=sys.stderr)
        return EXIT_USAGE
    verdict = evaluate(config.rules, args.action, parsed, args.agent or "", args.severity)
    for rule_id, why in verdict.checked:
        print(f"  skip  {rule_id}: {why}")
    if verdict.undecided is not None:
        print(f"undecided: {verdict.undecided}: ask (a person decides)")
    elif verdict.rule is None:
        print(f"no rule matches: ask (a person decides) — {len(config.rules)} rules checked")
    else:
        rule = verdict.rule
        effect = {"allow": "approved at once", "deny": "rejected at once", "ask": "a person decides"}[rule.decision]
        print(f"  match {rule.id}")
        print(
            f"{rule.decision}: {effect}, recorded as policy:{rule.id}" + (f" — {rule.message}" if rule.message else "")
        )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    try:
        path = _config_path(args.file)
        config = load_config(path)
    except ConfigError as exc:
        print(f"hitl policy check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    auth = config.authorization
    print(f"ok: {path}")
    print(f"  rules        {len(config.rules)}")
    print(
        f"  deadlines    sweep every {config.deadlines.sweep_interval:g}s, warn {config.deadlines.warn_before:g}s "
        f"ahead, defaults {', '.join(f'{k.value} {v:g}s' for k, v in config.deadlines.default_timeout.items()) or '-'}"
    )
    print(f"  escalation   {len(config.escalation.levels) if config.escalation else 0} levels")
    print(
        f"  authorize    {'on' if auth else 'off'}"
        + (
            f" (four eyes: {', '.join(s.value for s in auth.four_eyes) or '-'}; {len(config.roles.actors)} actors "
            "with roles)"
            if auth
            else ""
        )
    )
    notify = config.notify
    print(
        f"  notify       terminal {'on' if notify.terminal else 'off'}, desktop {'on' if notify.desktop else 'off'}, "
        f"{len(notify.webhooks)} webhooks"
    )
    return EXIT_OK


def _server(args: argparse.Namespace) -> str:
    from ..client import is_server_url
    from ..settings import store_url_from_env

    url = getattr(args, "store", None) or store_url_from_env()
    if not url or not is_server_url(url):
        raise ConfigError(
            "hitl policy",
            None,
            None,
            "the policy in force is kept by hitl serve: name the server with --store URL or HITL_STORE"
            " (hitl+unix:///path or https://host:port)",
        )
    return url


def _remote(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    # The server package's one HTTP helper (hitl token uses it too): no machine internals here.
    from ..server.cli import _remote as call

    return call(url, method, path, body)


def _fail(verb: str, exc: Exception) -> int:
    from ..errors import HITLError
    from ..server.cli import _code

    print(f"hitl policy {verb}: {exc}", file=sys.stderr)
    return _code(exc) if isinstance(exc, HITLError) and not isinstance(exc, ConfigError) else EXIT_USAGE


def _apply(args: argparse.Namespace) -> int:
    from ..errors import HITLError

    try:
        url = _server(args)
        text = Path(args.file).read_text(encoding="utf-8")
        load_config(args.file)  # a clear error here, with line numbers, before anything is sent
        made = _remote(url, "PUT", "/v1/policy", {"text": text, "source": Path(args.file).name})
    except OSError as exc:
        print(f"hitl policy apply: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except HITLError as exc:
        return _fail("apply", exc)
    print(f"applied: version {made['version']}, sha256 {made['hash']}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from ..errors import HITLError

    try:
        shown = _remote(_server(args), "GET", "/v1/policy")
    except HITLError as exc:
        return _fail("show", exc)
    if shown.get("version") is None:
        print("no policy applied: the server runs with the built-in defaults")
        return EXIT_OK
    print(f"version {shown['version']}")
    print(f"sha256  {shown['hash']}")
    print(
        f"applied {shown['applied_at']} by {shown['applied_by']}"
        + (f" from {shown['source']}" if shown.get("source") else "")
    )
    print()
    print(shown["text"], end="" if shown["text"].endswith("\n") else "\n")
    return EXIT_OK


def add_policy_commands(sub: Any) -> None:
    """Add ``hitl policy test|check`` to the ``hitl`` parser (called by ``hitl_core.cli``)."""
    policy = sub.add_parser("policy", help="auto-decision rules and the hitl.toml config")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    test = policy_sub.add_parser("test", help="which rule of FILE decides a call, and why the others do not")
    test.add_argument("file", metavar="FILE", help="a hitl.toml (or any TOML file with [[rules]])")
    test.add_argument("--action", required=True, help="the action (tool) name")
    test.add_argument("--args", default="{}", help="the action's arguments as a JSON object")
    test.add_argument("--agent", default="", help="the agent's name")
    test.add_argument("--severity", default="medium", choices=[s.value for s in Severity])
    test.set_defaults(handler=_test)
    check = policy_sub.add_parser("check", help="validate a hitl.toml (default: the one hitl would use)")
    check.add_argument("file", metavar="FILE", nargs="?")
    check.set_defaults(handler=_check)
    apply = policy_sub.add_parser(
        "apply", help="make FILE the policy a hitl server enforces (admin; through --store/HITL_STORE)"
    )
    apply.add_argument("file", metavar="FILE")
    apply.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="the hitl server")
    apply.set_defaults(handler=_apply)
    show = policy_sub.add_parser("show", help="the policy a hitl server enforces: version, sha256 and text")
    show.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="the hitl server")
    show.set_defaults(handler=_show)
