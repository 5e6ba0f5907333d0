"""``KeyCapture``: keys typed after an input-opening key, held until that input has focus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual import events


@dataclass
class KeyCapture:
    """Keys typed after an input-opening key, held until the input has focus."""

    opener: str
    started: float
    last_key: float
    #: True once the keys may go on (the input has focus, or the filter box has given it back).
    ready: Callable[[], bool]
    keys: list[events.Key] = field(default_factory=list)
    #: The opening key was refused: drop the rest of the burst instead of holding it.
    dropping: bool = False
    dropped: int = 0
