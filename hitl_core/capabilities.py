"""What an adapter can carry back into its framework (one shape for every adapter in plugins/).

The console offers only the decisions an adapter declares, and the README's capability table
lists every adapter by these fields. A ``NamedTuple`` rather than a dataclass because every process
that loads hitl's entry points builds the adapters' declarations: a frozen, slotted dataclass
costs about ten times as much to create.
"""

from __future__ import annotations

from typing import NamedTuple


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
