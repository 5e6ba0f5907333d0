"""The one way untrusted text reaches a terminal or a log line: ``visible``.

Task ids, reasons, actor ids, assignees and agent names come from agents, from the store (which
an older version, or anyone who can write the file, may have filled) and from config files.
Agents relay what models and web pages wrote, so any of these may hold an escape sequence that
retitles the operator's window, sets the clipboard or overwrites an error with a fake success,
or a bidi override that reorders a line. ``visible`` shows such characters as escapes
(``\\x1b``, ``\\u202e``) and never lets the terminal obey them; it also doubles backslashes, so
the id ``deploy⏎prod`` (a real newline, shown ``deploy\\nprod``) never looks like the id
``deploy\\nprod`` (a backslash and an n, shown ``deploy\\\\nprod``).

Every sink uses it: CLI tables and errors, exception messages (``hitl_core.errors``), log
records (``RenderFilter`` on the ``hitl`` loggers) and, through ``hitl_tui.text``, the console.
``json_text`` is the same rule for JSON output: those characters become ``\\uXXXX`` escapes,
which parse back to the exact original string.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

# C0 and C1 controls and DEL; bidi embeddings, overrides, isolates and marks (U+061C, U+200E/F,
# U+202A-202E, U+2066-2069); zero-width and other invisible format characters (soft hyphen,
# U+200B-200D, word joiner and invisible operators U+2060-2064, deprecated format controls
# U+206A-206F, BOM, interlinear annotation, the Mongolian vowel separator, tag characters used to
# smuggle invisible text); line and paragraph separators (a terminal may break the line on them);
# lone surrogates (printing one raises). Everything of Unicode category Cc, Cf, Zl, Zp and Cs that a
# terminal could act on or hide; ``tests/core/test_names_and_limits.py`` checks none is missing.
_OTHER_UNSAFE = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE_CHARS = "\x00-\x1f" + _OTHER_UNSAFE
_BUT_NEWLINE = "\x00-\x09\x0b-\x1f" + _OTHER_UNSAFE
_UNSAFE = re.compile(f"[{_UNSAFE_CHARS}]")
# JSON text already escapes C0 controls inside strings; outside them, \n \t \r are whitespace.
_JSON_UNSAFE = re.compile(f"[{_OTHER_UNSAFE}]")
_PATTERNS = {  # (single_line, escape_backslash) -> what to escape
    (True, True): re.compile(f"[{_UNSAFE_CHARS}\\\\]"),
    (True, False): _UNSAFE,
    (False, True): re.compile(f"[{_BUT_NEWLINE}\\\\]"),
    (False, False): re.compile(f"[{_BUT_NEWLINE}]"),
}
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def has_unsafe(text: str) -> bool:
    """True when ``text`` holds a character ``visible`` would escape (other than a backslash)."""
    return _UNSAFE.search(text) is not None


def clip(text: str, limit: int) -> tuple[str, int]:
    """The first ``limit`` characters of ``text`` and how many were left off."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def visible(value: object, *, single_line: bool = True, limit: int | None = None, escape_backslash: bool = True) -> str:
    """``value`` as a string whose control, bidi and invisible characters are shown, not obeyed.

    ``single_line`` also shows newlines as ``\\n`` (a table cell, an error line); otherwise real
    newlines stay. ``limit`` cuts very long text *before* escaping — a 10 MB reason costs what
    its first ``limit`` characters cost — and says how much was cut: ``… (N more characters)``.
    ``escape_backslash=False`` is for text that is already rendered (an exception message built
    from ``visible`` parts, JSON): its backslashes are escapes already, and doubling them again
    would only make it harder to read; control characters are still made visible.
    """
    text = value if isinstance(value, str) else str(value)
    more = 0
    if limit is not None:
        text, more = clip(text, limit)
    text = _PATTERNS[single_line, escape_backslash].sub(_escape, text)
    return f"{text}… ({more:,} more characters)" if more else text


def quoted(value: object, limit: int = 200) -> str:
    """``visible`` in single quotes, for naming a value inside a message: ``task 'deploy\\nprod'``."""
    return f"'{visible(value, limit=limit)}'"


def listed(values: Any, limit: int = 200, count: int = 20) -> str:
    """A few values, each ``visible`` and clipped, comma-separated (assignees in a refusal)."""
    items = list(values)
    shown = ", ".join(visible(v, limit=limit) for v in items[:count])
    return shown + (f", … ({len(items) - count} more)" if len(items) > count else "")


# -- JSON ---------------------------------------------------------------------------------------


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(dumped: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)`` or pydantic) with every character
    ``visible`` would escape written as a ``\\uXXXX`` escape.

    Those characters can only occur inside JSON strings, where the escape means the same
    character, so the result parses back to exactly the same value — but a terminal or an editor
    showing it obeys nothing and reorders nothing. Other non-ASCII text stays readable.
    """
    return _JSON_UNSAFE.sub(_json_escape, dumped)


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose output is safe to print (see ``json_text``)."""
    kwargs.setdefault("ensure_ascii", False)
    return json_text(json.dumps(value, **kwargs))


# -- logs ---------------------------------------------------------------------------------------

#: Longest rendering of one log argument: a log line names a task, it does not carry its payload.
LOG_ARG_LIMIT = 2000

#: The loggers hitl writes to; ``render_logs`` puts ``RenderFilter`` on each (a logger's filters
#: only see records logged on that very logger, not on its children, so each needs its own).
HITL_LOGGERS = (
    "hitl",
    "hitl.audit",
    "hitl.plugins",
    "hitl.policies",
    "hitl.policies.notify",
    "hitl.policies.rules",
    "hitl.postgres",
    "hitl.sqlite",
    "hitl.crewai",
    "hitl.tui",
)


#: ``extra=`` attributes hitl puts on its records (a formatter may print them: ``%(task_id)s``).
LOG_EXTRA_FIELDS = ("task_id", "actor", "action")


def _render_arg(arg: Any) -> Any:
    if isinstance(arg, (int, float)) or arg is None:  # bool is an int; keeps %d and %.2f working
        return arg
    return visible(arg, limit=LOG_ARG_LIMIT)


class RenderFilter(logging.Filter):
    """Renders a record's arguments with ``visible`` before any handler formats it.

    ``log.info("%s approved", task_id)`` is then safe whatever handler the application installs:
    the arguments are rendered (look-alike ids stay distinguishable) and the message itself, in
    case a caller formatted untrusted text into it, has its control characters made visible.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hitl_rendered", False):
            return True
        record._hitl_rendered = True
        if isinstance(record.msg, str):
            record.msg = visible(record.msg, escape_backslash=False)
        args = record.args
        if isinstance(args, Mapping):
            record.args = {key: _render_arg(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_render_arg(arg) for arg in args)
        for name in LOG_EXTRA_FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = visible(value, limit=LOG_ARG_LIMIT)
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = visible(text, single_line=False, escape_backslash=False)
        return True


_FILTER = RenderFilter()


def render_logs(*names: str) -> None:
    """Put the rendering filter on hitl's loggers, on any ``hitl.*`` logger that exists already,
    and on ``names``. Idempotent. A module that adds a logger should use ``hitl_logger`` (or add
    its name above): ``test_every_hitl_logger_renders_its_records`` fails otherwise."""
    existing = [
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and (name == "hitl" or name.startswith("hitl."))
    ]
    for name in (*HITL_LOGGERS, *existing, *names):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def hitl_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the rendering filter on it: use it for a new hitl logger."""
    render_logs(name)
    return logging.getLogger(name)
