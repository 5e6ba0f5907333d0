"""``hitl ask``: a person in front of any command — shell, Makefile, CI job, cron task.

``hitl ask "Drop staging tables" --action sql --args '{"db": "staging"}' --severity high``
records a request, waits for the decision (from any console or ``hitl approve``/``reject``) and
exits 0 for approve, ``EXIT_REJECTED`` for reject and ``EXIT_TIMED_OUT`` when nobody decided by
``--timeout`` (the default, reject, applied). ``hitl ask … -- CMD ARGS`` runs CMD only when
approved, with the approved (possibly edited) args as JSON in ``$HITL_ARGS``, and exits with
CMD's code. SIGINT / SIGTERM withdraw the request (``blocking.WITHDRAWN``) and exit 128 + n.

Everything the caller typed is checked before the store is touched, so bad input records
nothing; a store that cannot be opened is ``EXIT_STORE`` with nothing recorded either.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from typing import Any

from .. import settings
from ..adapters import Adapter, Capabilities, Request
from ..canonical import checked_copy
from ..errors import HITLError, PayloadError
from ..models import Action, Decision, Severity
from ..text import dumps, quoted, visible
from .blocking import SignalWithdrawal, Withdrawn, ask_in_place, effective_args, parse_duration, timed_out

#: A person rejected the request (the reason is on stderr, or in --json).
EXIT_REJECTED = 9
#: Nobody decided before --timeout; the request's default (reject) applied.
EXIT_TIMED_OUT = 10
#: CMD (after ``--``) could not be started (not found, not executable): as a shell reports it.
EXIT_CANNOT_RUN = 127


class ShellApprovals(Adapter):
    """The caller is a process that blocks in place: ask, wait, claim, run, deliver."""

    capabilities = Capabilities(
        framework="shell",
        decisions=("approve", "reject", "edit"),
        rejection_reason="yes: on stderr (and in --json), exit code 9",
        partial_decisions="one request per call",
        cross_process_resume=False,
        notes="edited args reach CMD as $HITL_ARGS",
    )


def _fail_usage(message: str) -> int:
    from ..cli_commands import EXIT_USAGE

    print(f"hitl ask: {message}", file=sys.stderr)
    return EXIT_USAGE


def _parse(args: argparse.Namespace) -> tuple[dict[str, Any], float | None, list[str]] | str:
    """The call's args, timeout and command, or what is wrong with them (checked before any I/O)."""
    try:
        parsed = json.loads(args.args) if args.args is not None else {}
    except json.JSONDecodeError as exc:
        return f"--args is not JSON: {exc}"
    if not isinstance(parsed, dict):
        return f"--args must be a JSON object, got {type(parsed).__name__}"
    try:
        parsed = checked_copy(parsed, "--args", settings.max_payload_bytes())
    except PayloadError as exc:
        return str(exc)
    if not args.reason.strip():
        return "the reason must not be empty"
    try:
        timeout = parse_duration(args.timeout) if args.timeout is not None else None
    except ValueError as exc:
        return f"--timeout: {exc}"
    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    if args.command and not command:
        return "nothing to run after --"
    return parsed, timeout, command


def decision_json(task_id: str, decision: Decision, call_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "approved": decision.approved,
        "decision": decision.effective_type.value,
        "type": decision.type.value,
        "timed_out": timed_out(decision),
        "by": decision.actor.id,
        "message": decision.message,
        "option": decision.option,
        "args": effective_args(decision, call_args),
        "edited": decision.edited_args is not None,
        "response": decision.response,
    }


async def _run_command(command: list[str], env: dict[str, str], signals: SignalWithdrawal) -> tuple[int, str | None]:
    """CMD's exit code (a signal forwarded to it while it runs), or 127 and why it could not start."""
    try:
        process = await asyncio.create_subprocess_exec(*command, env=env)
    except OSError as exc:
        return EXIT_CANNOT_RUN, f"cannot run {quoted(command[0])}: {visible(exc.strerror or exc)}"
    signals.task = None  # from now on a signal is CMD's business: forward it, keep waiting
    loop = asyncio.get_running_loop()
    for sig in signals.SIGNALS:
        loop.add_signal_handler(sig, process.send_signal, sig)
    return await process.wait(), None


async def ask_command(args: argparse.Namespace, store_url: str) -> int:
    from ..cli_commands import EXIT_OK, exit_code_for, printable
    from ..machine import HITLStateMachine
    from ..policies import found_config

    parsed = _parse(args)
    if isinstance(parsed, str):
        return _fail_usage(parsed)
    call_args, timeout, command = parsed
    base_id = f"shell:{args.id}" if args.id else f"shell:{uuid.uuid4().hex}"
    request = Request(
        reason=args.reason,
        action=Action(name=args.action or (command[0] if command else "ask"), args=call_args),
        context={"command": command} if command else {},
        options=list(args.option) if args.option else None,
        severity=args.severity,
        step=args.action or "ask",
        allowed_decisions=("approve", "reject", "edit"),
    )
    with SignalWithdrawal(asyncio.current_task()) as signals:
        try:
            async with HITLStateMachine(store_url, config=found_config(sweep=False)) as machine:
                adapter = ShellApprovals(machine, agent=args.agent, timeout=timeout)
                try:
                    task_id, decision = await ask_in_place(
                        adapter, base_id, args.run, request, parent=args.run is not None, why_cancelled=signals.why
                    )
                except Withdrawn as exc:
                    print(f"hitl ask: {exc}", file=sys.stderr)
                    return 128 + (signals.signal_number or 2)
                result = decision_json(task_id, decision, call_args)
                if args.json:
                    print(dumps(result), flush=True)
                who = printable(decision.actor.id)
                if not decision.approved:
                    await adapter.delivered([task_id], {"carried": "rejection"})
                    why = printable(decision.message or "no reason given")
                    what = "nobody decided in time: rejected" if timed_out(decision) else f"rejected by {who}"
                    print(f"hitl ask: {what}: {why}", file=sys.stderr)
                    return EXIT_TIMED_OUT if timed_out(decision) else EXIT_REJECTED
                if not args.json:
                    print(f"hitl ask: {decision.effective_type.value} by {who} ({task_id})", file=sys.stderr)
                if not command:
                    await adapter.delivered([task_id], {"carried": decision.effective_type.value})
                    return EXIT_OK
                env = {
                    **os.environ,
                    "HITL_ARGS": json.dumps(result["args"], ensure_ascii=False),
                    "HITL_TASK_ID": task_id,
                    "HITL_DECIDED_BY": decision.actor.id,
                }
                code, error = await _run_command(command, env, signals)
                if error is not None:
                    print(f"hitl ask: {error}", file=sys.stderr)
                await adapter.delivered([task_id], {"exit_code": code, **({"error": error} if error else {})})
                return code
        except HITLError as exc:
            print(f"hitl ask: {exc}", file=sys.stderr)
            return exit_code_for(exc)
        except asyncio.CancelledError:  # a signal before anything was asked: nothing to withdraw
            return 128 + (signals.signal_number or 2)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--action", help="the action's name (rules match on it; default: CMD's name)")
    parser.add_argument("--args", help="the action's arguments, a JSON object (a person may edit them)")
    parser.add_argument("--severity", default=Severity.MEDIUM.value, choices=[s.value for s in Severity])
    parser.add_argument("--timeout", help="give up after this long (90s, 10m, 1h): the default decision, reject")
    parser.add_argument("--option", action="append", help="an option the person may pick (repeatable)")
    parser.add_argument("--agent", default="shell", help="the requester's name (default: shell)")
    parser.add_argument("--run", help="group requests of one job under this run id (a parent task)")
    parser.add_argument("--id", help="a stable id: asking again with it finds the same request and its decision")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON on stdout")
    parser.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="store URL (default: $HITL_STORE)")


def add_ask_command(sub: Any, epilog: str) -> None:
    ask = sub.add_parser(
        "ask",
        help="ask a person before a command runs; exit 0 approve, 9 reject, 10 timeout",
        description=(
            "Record a request and wait for a person's decision (from any console or `hitl approve`). "
            "With `-- CMD ARGS`, run CMD only when approved (args as JSON in $HITL_ARGS) and exit with its code."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ask.add_argument("reason", help="what the person is asked to approve")
    _add_options(ask)
    ask.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS: run only when approved")
    ask.set_defaults(handler=_handler)


def _split_remainder(args: argparse.Namespace) -> None:
    """argparse's REMAINDER also swallows the options typed after the reason (``hitl ask "x"
    --args '{}' -- CMD``): parse those here, up to ``--``, and keep only what follows as CMD."""
    rest = list(args.command or [])
    if not rest or rest[0] == "--" or not rest[0].startswith("-"):
        return  # only CMD (argparse may have taken the "--" already)
    cut = rest.index("--") if "--" in rest else len(rest)
    options = argparse.ArgumentParser(prog="hitl ask", add_help=False)
    _add_options(options)
    options.parse_args(rest[:cut], namespace=args)
    args.command = rest[cut:]


def _handler(args: argparse.Namespace) -> int:
    from ..cli_commands import resolve_store_url

    _split_remainder(args)
    return asyncio.run(ask_command(args, resolve_store_url(getattr(args, "store", None))))
