"""The hooks a hitl plugin can implement (pluggy project ``hitl``, entry-point group ``hitl``).

Grouped by when they run. Built-in behaviour — the stores, ``add_callback``, the console —
implements these hooks exactly as a third-party plugin does. Any implementation may be a
coroutine function; the machine awaits what it returns. Every call goes through pluggy's caller,
so ``tryfirst``/``trylast`` and wrappers (``wrapper=True``, old-style ``hookwrapper=True``) work
as pluggy documents them; a wrapper's ``yield`` gives it the list of answers (coroutines for async
implementations, awaited by the machine afterwards). ``docs/hooks.md`` documents each one with
its signature and ``tests/core/test_hooks.py`` holds a ``test_hook_<name>`` for each: a test there
fails if either is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from .models import Actor, Decision, Escalation, Event, InterruptPoint, TaskContext
    from .stores.base import Store

PROJECT = "hitl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

StoreFactory = Callable[[str], "Store"]


# -- set-up -----------------------------------------------------------------------------------


@hookspec
def hitl_register_stores(register: Callable[[str, StoreFactory], None]) -> None:
    """Called once when a machine opens its store, to collect backends by URL scheme.

    Call ``register("scheme", factory)``; ``factory(url)`` returns an unopened ``Store``. A later
    registration of the same scheme replaces an earlier one (so a plugin may override a
    built-in). Returns nothing.
    """


@hookspec
def hitl_register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Called once when the ``hitl`` command line builds its parser, to collect its verbs.

    Call ``subparsers.add_parser("verb", help=…)``, add its arguments and
    ``set_defaults(handler=fn)``; ``fn(args)`` returns the exit code. The built-in verbs
    (``ls``, ``approve``, ``policy``, ``serve``, ``stats``, ``ask``…) and the console's
    (``console``, ``demo``, from ``hitl_tui``) register through this hook like any plugin. A verb
    name (or alias) that another plugin already registered is an error naming both plugins.
    Import what a verb needs inside its handler: every ``hitl`` call builds the parser, so a
    heavy import here slows every verb. Returns nothing.
    """


# -- before a task waits ----------------------------------------------------------------------


@hookspec
def hitl_assess(task: TaskContext, interrupt: InterruptPoint) -> dict[str, Any] | None:
    """Called in ``request_approval`` before the request is committed: risk scoring.

    Return None, or a dict with ``severity`` (only ever raised, never lowered: the highest of
    all answers wins), ``deadline`` (a datetime; the earliest wins) and/or ``required_approvals``
    (2 for four eyes; only ever raised). While the answers raise the severity, every
    implementation is asked again with the raised interrupt (so a policy keyed on severity sees
    it). An implementation that raises fails closed: the interrupt becomes critical.
    """


@hookspec
def hitl_auto_decide(task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
    """Called right after a request is committed: may a policy decide without a person?

    The first answer that is not None, in pluggy's call order, wins (awaited first for an async
    implementation: not a pluggy ``firstresult``, whose coroutine would win even when it resolves
    to None). Return a ``Decision`` — recorded as type ``policy`` with ``outcome`` approve or
    reject, by actor ``policy:<rule-id>`` (an actor id without the ``policy:`` prefix gets it) —
    or None to leave it to a person. An implementation that raises, or answers something that is
    not a Decision, fails closed: the request is rejected by ``policy:error``.
    """


@hookspec
def hitl_approval_requested(task: TaskContext, interrupt: InterruptPoint) -> None:
    """Called after a task starts waiting for a person (not when a policy decided it at once).

    For notifiers. Observer: an exception is logged and counted and changes nothing.
    """


# -- deciding ---------------------------------------------------------------------------------


@hookspec
def hitl_authorize(actor: Actor, task: TaskContext, decision: Decision) -> bool | None:
    """Called before a decision is committed: may ``actor`` make ``decision`` on ``task``?

    Return False (or raise) to refuse; True or None to have no objection. Any refusal wins and
    raises ``NotAuthorizedError`` to the caller; nothing is committed. An implementation that
    raises refuses (fail closed), with its exception as the reason.
    """


@hookspec
def hitl_deadline_expired(task: TaskContext, interrupt: InterruptPoint) -> Decision | Escalation | None:
    """Called when a waiting task's deadline has passed and somebody asks to expire it.

    The first answer that is not None, in pluggy's call order, wins (as for
    ``hitl_auto_decide``). Return a ``Decision`` to apply — recorded as type ``timeout`` with
    ``outcome`` approve or reject, by a ``timeout:<name>`` actor unless its id is already a
    ``policy:``/``timeout:`` one —, an ``Escalation`` (new assignees and deadline, applied by the
    machine and recorded by ``escalation:level-N``), or None to apply the interrupt's
    ``default_decision``, recorded as ``Decision(type="timeout")`` by ``hitl:timeout`` — never
    as a person's decision.
    """


@hookspec
def hitl_deadline_warning(task: TaskContext, interrupt: InterruptPoint, seconds_left: float) -> None:
    """Called by a deadline sweeper (``hitl_core.policies``) once per interrupt and deadline, when
    the deadline is ``warn_before`` seconds away or less and nobody has decided yet.

    For notifiers: the last chance for a person to decide before the deadline's outcome applies.
    Observer: an exception is logged and counted and changes nothing.
    """


# -- after every transition -------------------------------------------------------------------


@hookspec
def hitl_transition(event: Event, task: TaskContext) -> None:
    """Called after every committed transition, with the event and the task's new snapshot.

    The console, the audit export, notifiers and ``add_callback`` callbacks all implement this.
    In the process that made the transition it runs before the machine's call returns; a
    console following the store from another process re-emits each event it reads through
    this same hook. Observer: an exception is logged and counted, and the transition stands.
    """
