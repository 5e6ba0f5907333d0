"""``hitl hook claude-code``: Claude Code's PreToolUse hook (and the tools that copy its protocol).

Claude Code runs the hook as a process for each matching tool call, the event as JSON on stdin
(``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name``, ``tool_name``,
``tool_input``, ``tool_use_id``), and reads the answer from stdout (exit 0)::

    {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow" | "deny",
                            "permissionDecisionReason": "…", "updatedInput": {…}}}

(https://code.claude.com/docs/en/hooks, "PreToolUse decision control"). The reason of a deny is
what the model reads; ``updatedInput`` replaces the tool's input (a person's edit).

Each session is a run (parent task ``claude-code:<session_id>``); each tool call a task
``claude-code:<session_id>:<tool_use_id>`` whose action is the tool and its input. The rules of
``hitl.toml`` decide first (action = the tool name, e.g. ``Bash``, ``Edit``, ``mcp__github__…``);
when they say ask, a person decides. Nobody deciding within ``--timeout`` applies the request's
default, reject: the call is denied, never silently allowed.

A broken hook must never let a call through. Claude Code treats exit codes other than 0 and 2
as a non-blocking error — the call would go ahead — so every failure here ends as a deny:
a PreToolUse deny on stdout when the event is known to be PreToolUse, else exit 2 with the
reason on stderr (which blocks). Input that is not JSON, lacks fields or names an unknown event
goes through only if a rule allows the action ``hitl:bad-hook-input``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import IO, Any

from .. import settings
from ..adapters import Adapter, Capabilities, Request
from ..canonical import checked_copy
from ..errors import HITLError, PayloadError
from ..models import Action, Decision, DecisionType, Severity
from ..text import quoted
from .blocking import SignalWithdrawal, Withdrawn, ask_in_place, effective_args

EVENT = "PreToolUse"
#: The action name rules see for input the hook cannot use (allow it only if you mean it).
BAD_INPUT_ACTION = "hitl:bad-hook-input"
#: Exit code that makes Claude Code block the call and show stderr to the model.
EXIT_BLOCK = 2
#: Seconds hitl waits for a person by default: under the 60 s default hook timeout of some
#: Claude Code versions, so hitl's own deny reaches Claude Code before it gives up on the hook.
DEFAULT_TIMEOUT = 50.0
REQUIRED = ("session_id", "tool_name", "tool_input", "tool_use_id")


class ClaudeCodeApprovals(Adapter):
    """Tool calls of a Claude Code session; the caller blocks in place until decided."""

    capabilities = Capabilities(
        framework="claude-code",
        decisions=("approve", "reject", "edit"),
        rejection_reason="yes: permissionDecisionReason, which the model reads",
        partial_decisions="one tool call per hook call",
        cross_process_resume=False,
        notes="edits reach the tool as updatedInput",
    )


class BadHookInput(HITLError):
    """The hook's stdin is not a usable Claude Code event."""


def answer(decision: str, reason: str, updated_input: dict[str, Any] | None = None) -> dict[str, Any]:
    """The PreToolUse answer Claude Code reads from stdout."""
    out: dict[str, Any] = {
        "hookEventName": EVENT,
        "permissionDecision": decision,
        "permissionDecisionReason": reason,
    }
    if updated_input is not None:
        out["updatedInput"] = updated_input
    return {"hookSpecificOutput": out}


def parse_event(raw: bytes) -> dict[str, Any]:
    """The event, or ``BadHookInput`` naming what is wrong (size, JSON, fields, event)."""
    limit = settings.max_payload_bytes()
    if len(raw) > limit:
        raise BadHookInput(
            f"the hook input is {len(raw):,} bytes, over the limit of {limit:,} (HITL_MAX_PAYLOAD_BYTES)"
        )
    try:
        event = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadHookInput(f"the hook input is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise BadHookInput(f"the hook input must be a JSON object, got {type(event).__name__}")
    name = event.get("hook_event_name")
    if name not in (EVENT, "SessionEnd"):
        raise BadHookInput(f"unknown hook event {quoted(name)}: hitl answers PreToolUse (and SessionEnd)")
    if name == EVENT:
        missing = [f for f in REQUIRED if event.get(f) in (None, "")]
        if missing:
            raise BadHookInput(f"the PreToolUse input lacks {', '.join(missing)}")
        if not isinstance(event["tool_input"], dict):
            raise BadHookInput("tool_input must be a JSON object")
        for field in ("session_id", "tool_name", "tool_use_id"):
            if not isinstance(event[field], str):
                raise BadHookInput(f"{field} must be a string")
    elif not isinstance(event.get("session_id"), str):
        raise BadHookInput("the SessionEnd input lacks session_id")
    return event


def describe(tool: str, tool_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the person reads (the reason) and sees beside the args (a diff for edits)."""
    context: dict[str, Any] = {}
    if tool == "Bash" and isinstance(tool_input.get("command"), str):
        reason = f"Bash: {tool_input['command']}"
    elif isinstance(tool_input.get("file_path"), str):
        reason = f"{tool}: {tool_input['file_path']}"
        old, new = tool_input.get("old_string"), tool_input.get("new_string", tool_input.get("content"))
        if isinstance(new, str):
            import difflib  # only for edits: 10 ms of every hook call's start otherwise

            before = old.splitlines(keepends=True) if isinstance(old, str) else []
            context["diff"] = "".join(
                difflib.unified_diff(
                    before, new.splitlines(keepends=True), tool_input["file_path"], tool_input["file_path"]
                )
            )
    else:
        reason = f"{tool}: {json.dumps(tool_input, ensure_ascii=False, sort_keys=True)}"
    return (reason if len(reason) <= 300 else reason[:299] + "…"), context


def _reason_for(decision: Decision, timeout: float | None) -> str:
    if decision.type is DecisionType.TIMEOUT:
        outcome = "allowed" if decision.approved else "denied"
        waited = f" within {timeout:g}s" if timeout else ""
        return f"No person decided{waited}; the request's default applied: {outcome} by hitl."
    if not decision.approved:
        return decision.rejection_text()
    who = f"{decision.actor.id}" + (f": {decision.message}" if decision.message else "")
    if decision.effective_type is DecisionType.EDIT:
        return f"Approved by {who}, with the input edited by that person (the edited input is what runs)."
    return f"Approved by {who}."


async def _bad_input_allowed(why: str) -> bool:
    """Does a rule allow the action ``hitl:bad-hook-input``? Only then does bad input pass."""
    from ..policies import found_config
    from ..policies.rules import evaluate

    try:
        config = found_config(sweep=False)
        if config is None:
            return False
        verdict = evaluate(config.rules, BAD_INPUT_ACTION, {"error": why}, "claude-code", explain=False)
    except Exception:
        return False  # a config that cannot be read cannot allow anything
    return verdict.rule is not None and verdict.rule.decision == "allow" and verdict.undecided is None


async def run_hook(raw: bytes, store_url: str, timeout: float | None, severity: str, out: IO[str]) -> int:
    """One hook call: the exit code; the answer (if any) written to ``out``."""
    try:
        event = parse_event(raw)
    except BadHookInput as exc:
        if await _bad_input_allowed(str(exc)):
            return 0
        reason = f"hitl denied the call: {exc}"
        try:
            pre_tool_use = json.loads(raw).get("hook_event_name") == EVENT
        except Exception:
            pre_tool_use = False
        if pre_tool_use:
            out.write(json.dumps(answer("deny", reason)) + "\n")
            return 0
        print(reason, file=sys.stderr)
        return EXIT_BLOCK
    from ..machine import HITLStateMachine
    from ..policies import found_config

    session = event["session_id"]
    with SignalWithdrawal(asyncio.current_task()) as signals:
        try:
            async with HITLStateMachine(store_url, config=found_config(sweep=False)) as machine:
                adapter = ClaudeCodeApprovals(machine, agent="claude-code", severity=severity, timeout=timeout)
                if event["hook_event_name"] == "SessionEnd":
                    await adapter.finish_run(session)
                    return 0
                tool, tool_input = event["tool_name"], event["tool_input"]
                checked_copy(tool_input, "tool_input", machine.max_payload_bytes)
                reason, context = describe(tool, tool_input)
                context["cwd"] = event.get("cwd")
                request = Request(
                    reason=reason,
                    action=Action(name=tool, args=tool_input),
                    context=context,
                    allowed_decisions=("approve", "reject", "edit"),
                    step=tool,
                )
                metadata = {"transcript_path": event.get("transcript_path"), "tool_use_id": event["tool_use_id"]}
                task_id, decision = await ask_in_place(
                    adapter,
                    f"claude-code:{session}:{event['tool_use_id']}",
                    session,
                    request,
                    metadata=metadata,
                    parent=True,
                    why_cancelled=signals.why,
                )
                edited = effective_args(decision, tool_input) if decision.approved else None
                updated = edited if decision.effective_type is DecisionType.EDIT else None
                text = _reason_for(decision, timeout)
                out.write(json.dumps(answer("allow" if decision.approved else "deny", text, updated)) + "\n")
                await adapter.delivered([task_id], {"permissionDecision": "allow" if decision.approved else "deny"})
                return 0
        except Withdrawn as exc:
            print(f"hitl: {exc}", file=sys.stderr)
            return EXIT_BLOCK
        except asyncio.CancelledError:
            print("hitl: the hook was stopped before it could ask", file=sys.stderr)
            return EXIT_BLOCK
        except (HITLError, PayloadError) as exc:
            out.write(json.dumps(answer("deny", f"hitl could not ask a person, so the call is denied: {exc}")) + "\n")
            return 0


def add_hook_command(sub: Any, epilog: str) -> None:
    hook = sub.add_parser("hook", help="agent hooks: hitl decides (or asks a person) before a tool runs")
    hook_sub = hook.add_subparsers(dest="hook_command", metavar="AGENT", required=True)
    claude = hook_sub.add_parser(
        "claude-code",
        help="Claude Code's PreToolUse hook: reads the event on stdin, answers allow/deny on stdout",
        description="Claude Code's PreToolUse hook (see the README for the settings.json entry).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    claude.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a person, then deny (default {DEFAULT_TIMEOUT:g}; keep it under the hook's "
        "own timeout in settings.json)",
    )
    claude.add_argument("--severity", default=Severity.MEDIUM.value, choices=[s.value for s in Severity])
    claude.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="store URL (default: $HITL_STORE)")
    claude.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    from ..cli_commands import resolve_store_url

    try:
        raw = sys.stdin.buffer.read(settings.max_payload_bytes() + 1)
        return asyncio.run(
            run_hook(raw, resolve_store_url(getattr(args, "store", None)), args.timeout, args.severity, sys.stdout)
        )
    except BaseException as exc:  # whatever broke, the call is blocked, never let through
        if isinstance(exc, SystemExit) and exc.code in (0, EXIT_BLOCK):
            raise
        print(f"hitl hook failed, so the call is blocked: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BLOCK
