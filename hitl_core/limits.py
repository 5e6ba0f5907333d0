"""What a request may carry, checked where it enters: names printable and short, text bounded.

Names (task ids, actor ids, assignees, agent/framework/step names, run and parent ids, option
names) are what an operator reads to tell one task from another and types to decide it, so they
must be printable — no control, bidi or zero-width characters that would make two different ids
look the same — and short. Free text (a reason, a decision's message) may span lines but is
bounded. Every refusal is a ``PayloadError`` naming the field, the problem and the limit.

Data an older version wrote is never re-checked: it still loads, is shown safely by
``hitl_core.text.visible`` and stays decidable by its exact id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from . import settings
from .errors import PayloadError
from .text import has_unsafe, quoted, visible

if TYPE_CHECKING:
    from .models import Decision


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds in force on one machine: ``settings`` defaults, overridden by ``[limits]``."""

    reason_chars: int = settings.MAX_REASON_CHARS
    message_chars: int = settings.MAX_MESSAGE_CHARS
    options: int = settings.MAX_OPTIONS
    option_chars: int = settings.MAX_OPTION_CHARS
    assignees: int = settings.MAX_ASSIGNEES
    assignee_chars: int = settings.MAX_ASSIGNEE_CHARS
    name_chars: int = settings.MAX_NAME_CHARS

    def updated(self, overrides: dict[str, int | None]) -> Limits:
        """These limits with the given ones replaced (None: keep the default)."""
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if v is not None and k in known})


DEFAULT_LIMITS = Limits()


def _what(field: str, task_id: str | None) -> str:
    return f"task {quoted(task_id)}: {field}" if task_id is not None else field


def _over(what: str, size: int, limit: int, key: str | None) -> PayloadError:
    where = f" ([limits] {key} in hitl.toml)" if key else ""
    return PayloadError(f"{what} is {size:,} characters, over the limit of {limit:,}{where}")


def check_name(field: str, value: Any, limit: int, *, task_id: str | None = None, key: str | None = None) -> str:
    """``value`` if it is a non-empty, printable string of at most ``limit`` characters.

    ``key`` names the ``[limits]`` key that sets ``limit``, for the message.
    """
    # The message is built only on a refusal: these checks run several times per transition, and
    # quoting the task id for a message nobody reads cost ~9 % of an in-memory transition.
    if (
        isinstance(value, str)
        and len(value) <= limit
        and value.strip()
        and value.isprintable()
        and not has_unsafe(value)
    ):
        return value
    what = _what(field, task_id)
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be a string, got {type(value).__name__}")
    if not value or not value.strip():
        raise PayloadError(f"{what} must not be empty")
    if len(value) > limit:
        raise _over(what, len(value), limit, key)
    bad = next(ch for ch in value if not ch.isprintable() or has_unsafe(ch))
    raise PayloadError(
        f"{what} {quoted(value, 80)} holds the unprintable character {visible(bad)} "
        "(control, bidi, zero-width or other invisible characters are refused in names: "
        "they make two different names look the same)"
    )


_WHITESPACE_RUN = re.compile(r"\s+")


def check_label(field: str, value: Any, limit: int, *, task_id: str | None = None, key: str | None = None) -> str:
    """A descriptive name (agent, framework, step): runs of whitespace — a CrewAI role's trailing
    newline from YAML, a tab — become one space, then ``check_name`` applies.

    Labels are shown and matched by globs, never looked up, so folding their whitespace loses
    nothing; ids (task, actor, assignee, run, option) are exact and refused instead.
    """
    if isinstance(value, str):
        value = _WHITESPACE_RUN.sub(" ", value).strip()
    return check_name(field, value, limit, task_id=task_id, key=key)


def check_text(field: str, value: Any, limit: int, *, task_id: str | None = None, key: str | None = None) -> str:
    """``value`` if it is a string of at most ``limit`` characters (any characters: it is shown
    with ``visible``)."""
    if not isinstance(value, str):
        raise PayloadError(f"{_what(field, task_id)} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _over(_what(field, task_id), len(value), limit, key)
    try:
        value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: no store or JSON reader can take it back
        raise PayloadError(f"{_what(field, task_id)} is not valid Unicode ({exc.reason} at {exc.start})") from None
    return value


def check_names(
    field: str,
    values: Iterable[Any],
    count: int,
    each: int,
    *,
    task_id: str | None = None,
    keys: tuple[str, str] | None = None,
) -> list[str]:
    """A bounded list of names (options, assignees), each checked by ``check_name``.

    ``keys``: the ``[limits]`` keys of the count and of each name's length, for the messages.
    """
    if isinstance(values, str):
        raise PayloadError(f"{_what(field, task_id)} must be a list of strings, got one string")
    if isinstance(values, dict) or not isinstance(values, Iterable):
        raise PayloadError(f"{_what(field, task_id)} must be a list of strings, got {type(values).__name__}")
    names: list[str] = []
    for value in values:
        if len(names) >= count:
            where = f" ([limits] {keys[0]} in hitl.toml)" if keys else ""
            raise PayloadError(f"{_what(field, task_id)}: more than {count:,}, over the limit of {count:,}{where}")
        names.append(check_name(f"{field}[{len(names)}]", value, each, task_id=task_id, key=keys[1] if keys else None))
    return names


def check_decision(decision: Decision, limits: Limits, task_id: str) -> None:
    """A person's (or a policy's) decision: its actor id, option name and message."""
    check_name("actor id", decision.actor.id, limits.name_chars, task_id=task_id, key="name_chars")
    if decision.option is not None:
        check_name("option", decision.option, limits.option_chars, task_id=task_id, key="option_chars")
    if decision.message is not None:
        check_text("message", str(decision.message), limits.message_chars, task_id=task_id, key="message_chars")


def check_request_size(values: dict[str, Any], limit: int, *, task_id: str | None = None) -> None:
    """The whole request within ``HITL_MAX_PAYLOAD_BYTES``, not only each of its parts.

    ``values`` are the interrupt's fields, each already checked (the JSON ones are plain copies),
    so one plain ``json.dumps`` measures them: no canonical sorting, no pydantic dump — this runs
    on every request.
    """
    plain = dict(values)
    action = plain.get("action")
    if action is not None and not isinstance(action, dict):
        plain["action"] = {"name": action.name, "args": action.args}
    try:
        text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return  # each part was checked on its own; an unserialisable one was refused there
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise PayloadError(
            f"{_what('the request', task_id)} is {size:,} bytes in all, over the limit of {limit:,} bytes "
            "(HITL_MAX_PAYLOAD_BYTES)"
        )
