"""Making agent-supplied text inert before it reaches the screen.

Reasons, contexts, args and agent names come from agents, and agents relay what models and web
pages wrote. Rendered as markup, ``[link=…]`` or ``[/]`` would restyle the console; written raw,
an escape sequence would drive the operator's terminal. So everything untrusted goes through
``visible`` (control, escape and bidi-override characters become ``\\x1b``-style escapes) and is
wrapped in ``rich.text.Text`` — never parsed as markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.style import Style
from rich.text import Text

# C0 and C1 controls, DEL, and the bidi overrides/isolates that can visually reorder a line.
_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_MULTI_LINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

#: Longest untrusted string the table looks at; the detail pane shows (a bounded part of) the rest.
TABLE_TEXT_LIMIT = 400
#: Longest pretty-printed JSON the detail pane highlights; beyond it the text is cut with a note.
DETAIL_JSON_LIMIT = 64_000


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object, *, single_line: bool = True, limit: int | None = None) -> str:
    """``value`` as a string whose control characters are shown, not obeyed.

    ``limit`` cuts very long text *before* escaping, so a megabyte reason costs nothing to show.
    """
    text = value if isinstance(value, str) else str(value)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    text = (_SINGLE_LINE if single_line else _MULTI_LINE).sub(_escape, text)
    return text + "…" if cut else text


def literal(value: object, style: str | Style = "", *, single_line: bool = True, limit: int | None = None) -> Text:
    """A ``Text`` that shows ``value`` literally: no markup, no live control characters."""
    return Text(visible(value, single_line=single_line, limit=limit), style=style)


def pretty_json(value: Any, limit: int = DETAIL_JSON_LIMIT) -> tuple[str, bool]:
    """Indented JSON for the detail pane, made inert, and whether it had to be cut."""
    try:
        dumped = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        dumped = repr(value)
    cut = len(dumped) > limit
    if cut:
        dumped = dumped[:limit]
    return visible(dumped, single_line=False), cut
