"""The ``hitl`` verbs that need no UI: ``ls``, ``show``, ``approve``, ``reject``, ``resume``,
``audit export``, ``audit verify``, ``audit keygen``, ``audit checkpoint`` and ``store info``.

Each verb opens the store named by ``--store``, else ``$HITL_STORE``, else the SQLite file under
the user data directory (``hitl store info`` prints which), does one thing and exits with a code
that says what went wrong, so scripts can tell "not found" from "somebody else decided first".
Errors are one line on stderr; ``HITL_DEBUG=1`` adds the traceback.

Everything a verb prints that came from an agent or the store — ids, names, reasons, errors —
goes through ``hitl_core.text.visible``, clipped *before* it is escaped, so a hostile string
neither drives the terminal nor makes ``hitl ls`` slow; ``--json`` output escapes the same
characters as ``\\uXXXX`` (``hitl_core.text.json_text``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from . import settings
from .errors import (
    AlreadyDecidedError,
    ConflictError,
    HITLError,
    InvalidTransitionError,
    NotAuthorizedError,
    PayloadError,
    StoreError,
    TaskNotFoundError,
)
from .machine import HITLStateMachine
from .models import TaskContext, TaskState
from .records import TaskRecord
from .text import dumps, json_text, visible

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_ILLEGAL = 5
EXIT_STORE = 6
EXIT_NOT_AUTHORIZED = 7
EXIT_AUDIT_FAILED = 8

EXIT_CODES_HELP = """\
exit codes:
  0  ok
  1  any other error
  2  usage or invalid input (bad arguments, empty message, payload refused)
  3  task not found
  4  conflict: somebody else changed or decided the task first (the message names who)
  5  illegal transition (e.g. approving a task that is not awaiting approval)
  6  store error (cannot open, corrupt, locked, newer schema)
  7  not authorized (a policy plugin refused the decision)
  8  audit verify found an altered, missing or reordered event, an edited snapshot or a
     checkpoint the log does not match (audit checkpoint: refused to sign such a log)
  9  hitl ask: rejected (-- CMD was not run)
 10  hitl ask: nobody decided before --timeout; the default, reject, applied
130/143  hitl ask: withdrawn by Ctrl-C / SIGTERM (recorded as failed, not as a decision)

store: --store URL, else $HITL_STORE, else the SQLite file under the user data directory
(`hitl store info` prints where)."""

SOURCE = "cli"


def resolve_store_url(cli_value: str | None) -> str:
    """``--store``, else ``HITL_STORE``, else the user-data SQLite file (the CLI's durable default)."""
    if cli_value:
        return cli_value
    from_env = settings.store_url_from_env()
    if from_env:
        return from_env
    from .stores.sqlite import default_store_url

    return default_store_url()


def exit_code_for(exc: BaseException) -> int:
    # Order matters: AlreadyDecidedError is both a conflict and an illegal transition.
    if isinstance(exc, TaskNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, (AlreadyDecidedError, ConflictError)):
        return EXIT_CONFLICT
    if isinstance(exc, InvalidTransitionError):
        return EXIT_ILLEGAL
    if isinstance(exc, StoreError):
        return EXIT_STORE
    if isinstance(exc, NotAuthorizedError):
        return EXIT_NOT_AUTHORIZED
    if isinstance(exc, PayloadError):
        return EXIT_USAGE
    from .audit import AuditKeyError, CheckpointError

    if isinstance(exc, AuditKeyError):
        return EXIT_USAGE
    if isinstance(exc, CheckpointError):
        return EXIT_AUDIT_FAILED
    return EXIT_ERROR


#: The longest value ``hitl show`` prints of one field; the rest is counted, not printed.
SHOW_LIMIT = 4000


def printable(text: Any, limit: int = SHOW_LIMIT) -> str:
    """Agent-supplied text made safe for a terminal (``visible``), clipped to ``limit`` first."""
    return visible(text, limit=limit)


Action = Callable[[HITLStateMachine, argparse.Namespace, IO[str]], Awaitable[int]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    """Wrap a verb: open the machine on the chosen store, map errors to exit codes, close."""

    def handler(args: argparse.Namespace) -> int:
        out = sys.stdout

        async def main() -> int:
            # A hitl.toml's policies (who may decide, …) apply to the CLI's decisions too.
            from .policies import found_config

            async with HITLStateMachine(
                resolve_store_url(getattr(args, "store", None)), config=found_config(sweep=False)
            ) as machine:
                return await action(machine, args, out)

        try:
            return asyncio.run(main())
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `hitl audit export | head`
            return EXIT_OK
        except HITLError as exc:
            return _fail(exc, exit_code_for(exc))
        except Exception as exc:  # no traceback wall for an operator; HITL_DEBUG shows it
            return _fail(exc, EXIT_ERROR, f"{type(exc).__name__}: {exc}")

    return handler


def _fail(exc: BaseException, code: int, message: str | None = None) -> int:
    # HITLError messages are already rendered; anything else (a driver's error quoting a value)
    # is made inert here. Backslashes are kept: in a rendered message they are escapes already.
    print(f"hitl: error: {visible(message or str(exc), limit=4000, escape_backslash=False)}", file=sys.stderr)
    if os.environ.get("HITL_DEBUG"):
        traceback.print_exception(exc)
    return code


# -- verbs ------------------------------------------------------------------------------------------


def _when(record: TaskRecord) -> datetime:
    from .canonical import us_to_datetime

    return us_to_datetime(record.updated_at)


def _age(since: datetime, now: datetime) -> str:
    seconds = max(int((now - since).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cell(value: Any, width: int) -> str:
    """A table cell: clipped to ``width`` characters *before* escaping (a 10 MB reason costs what
    its first ``width`` characters cost), then clipped again, since escaping lengthens it."""
    text = str(value)
    shown = visible(text[:width])
    if len(text) > width or len(shown) > width:
        return shown[: width - 1] + "…"
    return shown


async def _ls(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    # Straight from the store so that --limit limits what is read, not only what is printed.
    records = await machine.store.query(TaskState(args.state) if args.state else None, limit=args.limit)
    if args.json:
        out.write(dumps([r.to_context().to_dict() for r in records], indent=2) + "\n")
        return EXIT_OK
    if not records:
        print(f"no tasks{' in state ' + args.state if args.state else ''}", file=out)
        return EXIT_OK
    now = datetime.now(UTC)
    rows = [("ID", "STATE", "SEVERITY", "AGE", "AGENT", "REASON")]
    for r in records:  # the records themselves: a row needs six fields, not a whole snapshot model
        ip = r.interrupt
        rows.append(
            (
                _cell(r.task_id, 36),
                r.state.value,
                ip.severity.value if ip else "-",
                _age(_when(r), now),
                _cell(r.agent or "-", 16),
                _cell(ip.reason, 60) if ip else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1], file=out)
    return EXIT_OK


async def _task(machine: HITLStateMachine, task_id: str) -> TaskContext:
    task = await machine.get_task(task_id)
    if task is None:
        raise TaskNotFoundError(task_id)
    return task


async def _show(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    task = await _task(machine, args.task_id)
    if args.json:
        out.write(json_text(task.model_dump_json(indent=2)) + "\n")
        return EXIT_OK
    p = lambda label, value: print(f"{label:<10} {printable(value)}", file=out)  # noqa: E731
    # JSON fields: json.dumps already escapes quotes, backslashes and C0 controls inside strings,
    # so only what it leaves (C1, bidi, zero-width) needs making visible; backslashes stay single.
    pj = lambda label, value: print(  # noqa: E731
        f"{label:<10} {visible(json.dumps(value, ensure_ascii=False), limit=SHOW_LIMIT, escape_backslash=False)}",
        file=out,
    )
    p("task", task.task_id)
    p("state", task.state.value)
    p("version", task.version)
    for label, value in (
        ("agent", task.agent),
        ("framework", task.framework),
        ("step", task.current_step),
        ("run", task.run_id),
        ("parent", task.parent_id),
        ("error", task.error),
    ):
        if value:
            p(label, value)
    p("created", task.created_at.isoformat())
    p("updated", task.updated_at.isoformat())
    if task.metadata:
        pj("metadata", task.metadata)
    ip = task.interrupt_point
    if ip is not None:
        p("reason", ip.reason)
        p("kind", ip.kind.value)
        p("severity", ip.severity.value)
        if ip.action is not None:
            args_json = json.dumps(ip.action.args, ensure_ascii=False)
            print(
                f"{'action':<10} {printable(ip.action.name, 200)} "
                f"{visible(args_json, limit=SHOW_LIMIT, escape_backslash=False)}",
                file=out,
            )
        if ip.context:
            pj("context", ip.context)
        p("options", ", ".join(visible(o, limit=200) for o in ip.options[:50]) + (" …" if len(ip.options) > 50 else ""))
        if ip.assignees:
            p("assignees", ", ".join(visible(a, limit=200) for a in ip.assignees[:50]))
        if ip.deadline is not None:
            p("deadline", ip.deadline.isoformat())
    if task.decision is not None:
        d = task.decision
        print(
            f"{'decision':<10} {d.type.value} by {printable(d.actor.id, 200)} ({printable(d.actor.source, 40)})"
            + (f": {printable(d.message)}" if d.message else ""),
            file=out,
        )
    if task.result is not None:
        pj("result", task.result)
    print("history", file=out)
    for h in task.history:
        extra = h.get("reason") or h.get("message") or h.get("error") or ""
        print(
            f"  {h['seq']:>6}  {h['at'][:19]}  {h['action']:<17} {h['from'] or 'new':>17} -> {h['to']:<17} "
            f"{printable(h.get('actor') or '-', 200)}" + (f"  {printable(extra, 200)}" if extra else ""),
            file=out,
        )
    return EXIT_OK


def _actor(args: argparse.Namespace) -> str:
    return args.actor or settings.os_user()


async def _approve(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    task = await machine.approve(args.task_id, _actor(args), message=args.message, option=args.option, source=SOURCE)
    who = task.decision.actor.id if task.decision else _actor(args)
    if task.state is TaskState.AWAITING_APPROVAL:
        print(
            f"recorded the first approval of task {printable(task.task_id)} by {printable(who)}; "
            "it waits for a second approver",
            file=out,
        )
    else:
        print(f"approved task {printable(task.task_id)} as {printable(who)}; state {task.state.value}", file=out)
    return EXIT_OK


async def _reject(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    if not args.message or not args.message.strip():
        raise PayloadError("a rejection needs a message (--message TEXT): the agent is told why")
    task = await machine.reject(args.task_id, _actor(args), args.message, option=args.option, source=SOURCE)
    print(f"rejected task {printable(task.task_id)} as {printable(_actor(args))}; state {task.state.value}", file=out)
    return EXIT_OK


async def _resume(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    task = await machine.resume(args.task_id, actor=_actor(args))
    print(f"resumed task {printable(task.task_id)} as {printable(_actor(args))}; state {task.state.value}", file=out)
    return EXIT_OK


async def _export(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    store = machine.store
    # The CLI's event loop runs this one command: a blocking open() delays nobody.
    target: IO[str] = open(args.output, "w", encoding="utf-8") if args.output else out  # noqa: SIM115, ASYNC230
    try:
        after, count, first = args.after, 0, True
        if args.format == "json":
            target.write("[")
        from .stats_cli import read_check_field

        with_read_check = read_check_field()
        while True:
            batch = await store.events(after_seq=after, limit=5000, task_id=args.task)
            if not batch:
                break
            for record in batch:
                line = json_text(record.to_event().model_dump_json())  # bidi/C1 as \uXXXX: inert, same value
                line = with_read_check(record, line)  # hitl_core.stats_cli: the rubber-stamp flag
                if args.format == "json":
                    target.write(("\n" if first else ",\n") + line)
                else:
                    target.write(line + "\n")
                first = False
                count += 1
            after = batch[-1].seq
        if args.format == "json":
            target.write("\n]\n")
    finally:
        if args.output:
            target.close()
    if args.output:
        print(f"exported {count} events to {args.output}", file=sys.stderr)
    return EXIT_OK


async def _verify(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    from . import audit

    if args.expect_checkpoint_at and not args.pubkey:
        raise PayloadError("--expect-checkpoint-at needs --pubkey: only a signed checkpoint counts")
    public_key = audit.load_public_key(args.pubkey) if args.pubkey else None
    report = await audit.verify(machine.store, public_key, expect_at=args.expect_checkpoint_at or ())
    chain = report.chain
    if not report.ok:
        problems = report.all_problems
        print(f"hitl: audit verify FAILED: {visible(problems[0], limit=4000, escape_backslash=False)}", file=sys.stderr)
        for problem in problems[1:]:
            print(f"  also: {visible(problem, limit=4000, escape_backslash=False)}", file=sys.stderr)
        return EXIT_AUDIT_FAILED
    print(
        f"ok: {chain.events} events, the hash chain is intact; {chain.tasks} tasks, every snapshot "
        f"equals the replay of its events ({machine.store.url})",
        file=out,
    )
    if chain.audit_records:
        print(f"ok: {chain.audit_records} server audit records, their hash chain is intact", file=out)
    if public_key is not None:
        after = chain.last_seq - report.covered_seq
        print(
            f"ok: {report.valid_checkpoints} checkpoint(s) signed by key {report.key} vouch for events "
            f"1-{report.covered_seq}" + (f"; {after} later event(s) are not checkpointed yet" if after else ""),
            file=out,
        )
    return EXIT_OK


async def _checkpoint(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    from . import audit

    made, _ = await audit.checkpoint(machine.store, audit.load_private_key(args.key))
    print(f"checkpoint: seq {made.seq}, hash {made.hash}, signed by key {made.key} at {made.signed_at}", file=out)
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    """Needs no store: it only writes two files."""
    from . import audit

    try:
        private, public, key = audit.generate_keypair(args.out)
    except HITLError as exc:
        return _fail(exc, EXIT_USAGE)
    print(f"wrote {private} (private, mode 0600: keep it away from agents) and {public}; key id {key}")
    return EXIT_OK


async def _store_info(machine: HITLStateMachine, args: argparse.Namespace, out: IO[str]) -> int:
    store = machine.store
    info_of = getattr(store, "info", None)
    if callable(info_of):
        info: dict[str, Any] = await info_of()
    else:
        counts = await store.count_by_state()
        info = {
            "backend": type(store).__name__,
            "url": store.url,
            "tasks": sum(counts.values()),
            "last_seq": await store.last_seq(),
            "by_state": {s.value: n for s, n in counts.items()},
        }
    if args.json:
        out.write(dumps(info, indent=2, default=str) + "\n")
        return EXIT_OK
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        print(f"{key.replace('_', ' '):<16} {printable(value)}", file=out)
    return EXIT_OK


# -- the parser -------------------------------------------------------------------------------------


class _RetiredFlag(argparse.Action):
    """A flag renamed by the glossary (``docs/glossary.md``): still sets the new flag's value, and
    says on stderr which flag to use instead."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        print(f"hitl: {option} is deprecated: use {self.new} (docs/glossary.md)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _retired_flag(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    parser.add_argument(old, dest=new.lstrip("-"), action=_RetiredFlag, new=new, help=argparse.SUPPRESS)


def _state(value: str) -> str:
    aliases = {"waiting": "awaiting_approval", "pending_approval": "awaiting_approval"}
    value = aliases.get(value.lower(), value.lower())
    if value not in {s.value for s in TaskState}:
        raise argparse.ArgumentTypeError(f"unknown state {value!r}; one of: {', '.join(s.value for s in TaskState)}")
    return value


def add_commands(sub: Any) -> None:
    """Add the store verbs to the ``hitl`` parser's subparsers (called by ``hitl_core.cli``)."""
    store_opt = argparse.ArgumentParser(add_help=False)
    store_opt.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="store URL (default: $HITL_STORE, else the user-data SQLite file)",
    )

    def verb(name: str, action: Action, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            parents=[store_opt],
            description=help,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=_run(action))
        return parser

    ls = verb("ls", _ls, "list tasks, oldest change first")
    ls.add_argument("--state", type=_state, help="only tasks in this state (e.g. awaiting_approval, or: waiting)")
    ls.add_argument("--limit", type=int, help="at most this many")
    ls.add_argument("--json", action="store_true", help="a JSON array of task snapshots")

    show = verb("show", _show, "one task: its request, decision and history")
    show.add_argument("task_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the task snapshot as JSON")

    approve = verb("approve", _approve, "approve a task that awaits approval")
    approve.add_argument("task_id", metavar="ID")
    approve.add_argument("--as", dest="actor", metavar="NAME", help="who approves (default: the OS user)")
    approve.add_argument("--message", help="a note recorded with the approval (the agent reads it)")
    _retired_flag(approve, "--comment", "--message")
    approve.add_argument("--option", help="which of the request's options")

    reject = verb("reject", _reject, "reject a task that awaits approval; the agent is told the reason")
    reject.add_argument("task_id", metavar="ID")
    reject.add_argument("--message", help="why (required; the agent sees it)")
    _retired_flag(reject, "--reason", "--message")
    reject.add_argument("--as", dest="actor", metavar="NAME", help="who rejects (default: the OS user)")
    reject.add_argument("--option", help="which of the request's options")

    resume = verb("resume", _resume, "move an approved or rejected task back to running")
    resume.add_argument("task_id", metavar="ID")
    resume.add_argument("--as", dest="actor", metavar="NAME", help="who resumes (default: the OS user)")

    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    export = audit_sub.add_parser(
        "export",
        help="every event, oldest first",
        parents=[store_opt],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--format", choices=("jsonl", "json"), default="jsonl", help="default: jsonl")
    export.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--task", metavar="ID", help="only this task's events")
    export.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after this seq")
    export.set_defaults(handler=_run(_export))
    check = audit_sub.add_parser(
        "verify",
        help="walk the hash chain and replay every task; with --pubkey, check every signed checkpoint",
        parents=[store_opt],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--pubkey", type=Path, metavar="FILE", help="the checkpoint public key (hitl audit keygen)")
    check.add_argument(
        "--expect-checkpoint-at",
        type=int,
        action="append",
        metavar="SEQ",
        help="fail unless a valid checkpoint at this seq is in the store (repeatable; needs --pubkey)",
    )
    check.set_defaults(handler=_run(_verify))
    keygen = audit_sub.add_parser("keygen", help="make an Ed25519 key pair for signing checkpoints")
    keygen.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where to write it (default: .)")
    keygen.set_defaults(handler=_keygen)
    sign = audit_sub.add_parser(
        "checkpoint",
        help="verify the store, then sign its chain head and keep the checkpoint in the store",
        parents=[store_opt],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sign.add_argument("--key", type=Path, required=True, metavar="FILE", help="the private key (hitl audit keygen)")
    sign.set_defaults(handler=_run(_checkpoint))

    store = sub.add_parser("store", help="the store itself")
    store_sub = store.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    info = store_sub.add_parser("info", help="where the store is, its schema version and counts", parents=[store_opt])
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_run(_store_info))
