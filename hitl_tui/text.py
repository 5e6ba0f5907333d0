"""Making agent-supplied text inert before it reaches the screen.

Reasons, contexts, args and agent names come from agents, and agents relay what models and web
pages wrote. Rendered as markup, ``[link=…]`` or ``[/]`` would restyle the console; written raw,
an escape sequence would drive the operator's terminal. So everything untrusted goes through
``visible`` — the one rendering function of ``hitl_core.text``, shared with the CLI, errors and
logs — and is wrapped in ``rich.text.Text``, never parsed as markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.style import Style
from rich.text import Text

from hitl_core.text import visible

__all__ = ["DETAIL_JSON_LIMIT", "TABLE_TEXT_LIMIT", "literal", "pretty_json", "visible"]

#: Longest untrusted string the table looks at; the detail pane shows (a bounded part of) the rest.
TABLE_TEXT_LIMIT = 400
#: Longest pretty-printed JSON the detail pane highlights; beyond it the text is cut with a note.
DETAIL_JSON_LIMIT = 64_000


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
    # JSON (and repr) escape backslashes themselves; doubling them again would only blur the text.
    return visible(dumped, single_line=False, escape_backslash=False), cut
