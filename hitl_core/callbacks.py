"""``add_callback``: the seed's callbacks, as a built-in plugin on ``hitl_transition``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .hookspecs import hookimpl
from .models import Event, TaskContext, TaskState

Callback = Callable[[TaskContext, TaskState | None, TaskState], Any | Awaitable[Any]]


class CallbackRegistry:
    """Calls ``fn(task, old_state, new_state)`` for matching transitions, each in isolation.

    One failing callback does not stop the others: all failures are raised together as an
    ``ExceptionGroup`` after every callback ran, and the plugin host logs and counts each one.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[Callback, str, TaskState | None]] = []

    def add(self, callback: Callback, task_id: str, state: TaskState | None) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._entries.append((callback, task_id, state))

    def remove(self, callback: Callback) -> None:
        self._entries = [e for e in self._entries if e[0] is not callback]

    @hookimpl
    async def hitl_transition(self, event: Event, task: TaskContext) -> None:
        errors: list[Exception] = []
        for callback, task_id, state in list(self._entries):
            if task_id != "*" and task_id != event.task_id:
                continue
            if state is not None and state is not event.to_state:
                continue
            try:
                result = callback(task, event.from_state, event.to_state)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("callbacks raised", errors)
