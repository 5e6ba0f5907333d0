"""``KeyFooter``: the keys possible right now, on one line, from the table of actions."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ..actions import ACTIONS
from ..theme import scheme_of


class KeyFooter(Widget):
    """The keys possible right now, on one line (what ``check_action`` allows).

    Textual's ``Footer`` rebuilds a widget per key whenever bindings change — with the selected
    task changing state several times a second that cost a layout per change. This draws the
    same information as one line of text and only repaints.
    """

    DEFAULT_CSS = "KeyFooter { height: 1; background: $footer-background; }"

    def render(self) -> Text:
        app = self.app
        seen: set[str] = set()
        keys: list[tuple[str, str]] = []
        # its own screen's bindings: drawn while a dialog is up, the footer still tells the truth
        # about the main screen (not the dialog's keys)
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            keys.append((app.get_key_display(binding), binding.description))
        # Help and quit go last and stay (the table's ``footer_last``); when the line is too
        # narrow the view keys go first, in the table's ``shed`` order (help lists them), then
        # the remaining descriptions shrink to a few letters.
        labels = {a.label: a for a in ACTIONS}
        last_labels = {a.label for a in ACTIONS if a.footer_last}
        last = [k for k in keys if k[1] in last_labels]
        first = [k for k in keys if k not in last]
        width = self.size.width or 200
        scheme = scheme_of(app)
        text = Text()
        attempts: list[tuple[list[tuple[str, str]], int | None]] = [(first, None)]
        shown_keys = list(first)
        for shed in sorted((a for a in ACTIONS if a.shed), key=lambda a: -a.shed):
            shown_keys = [k for k in shown_keys if labels.get(k[1]) is not shed]
            attempts.append((shown_keys, None))
        attempts += [(shown_keys, 5), (shown_keys, 0)]
        for chosen, cut in attempts:
            text = Text(no_wrap=True, overflow="ellipsis")
            for key, description in [*chosen, *last]:
                shown = description if cut is None or description in last_labels else description[:cut]
                text.append(f" {key}", style=scheme.key)
                text.append(f" {shown} " if shown else " ", style=scheme.label)
            if text.cell_len <= width:
                break
        return text
