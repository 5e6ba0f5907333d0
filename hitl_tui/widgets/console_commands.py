"""``ConsoleCommands``: the command palette's entries, from the table of actions."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..actions import palette_entries


class ConsoleCommands(Provider):
    """The palette: "namespace: verb" commands, offered only when the action is possible."""

    #: (palette name, action, help) of every entry, from the table of actions.
    COMMANDS: ClassVar[list[tuple[str, str, str]]] = [(a.palette or "", a.action, a.help) for a in palette_entries()]

    def _available(self) -> list[tuple[str, str, str]]:
        app: Any = self.app  # the ConsoleApp (its command_possible gates what is offered)
        return [
            (a.palette, a.action, a.help)
            for a in palette_entries()
            if a.palette is not None and app.command_possible(a.name)
        ]

    async def discover(self) -> Hits:
        for name, action, help_text in self._available():
            yield DiscoveryHit(name, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in self._available():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.run_action, action), help=help_text)
