"""Shared by the adapters in plugins/: what an adapter can carry back into its framework, and
how an adapter package exports its classes without importing its framework.

The console offers only the decisions an adapter declares, and the README's capability table
lists every adapter by these fields. A ``NamedTuple`` rather than a dataclass because every process
that loads hitl's entry points builds the adapters' declarations: a frozen, slotted dataclass
costs about ten times as much to create.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, NamedTuple


class Capabilities(NamedTuple):
    framework: str
    #: the subset of {approve, reject, edit, respond} the framework can apply
    decisions: tuple[str, ...]
    #: does a rejection's reason reach the model (and how)
    rejection_reason: str
    #: what happens when only some of one step's pending requests are decided
    partial_decisions: str
    #: can another process resume the paused run from the store alone
    cross_process_resume: bool
    notes: str = ""


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[attr]`` (a submodule) on first use.

    Every adapter package is an entry-point plugin that each hitl process loads; its public classes
    live in submodules that import the framework, so they are loaded only when someone uses them.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
