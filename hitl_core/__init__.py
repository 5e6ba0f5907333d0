"""hitl_core: the framework-agnostic human-in-the-loop state machine.

Everything public is importable from here; submodules are implementation detail unless their
docstring says otherwise (``hitl_core.hookspecs`` for plugin authors, ``hitl_core.stores`` and
``hitl_core.records`` for store authors). Importing this package never loads a UI library or an
agent framework.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .text import render_logs

if TYPE_CHECKING:
    from .callbacks import Callback
    from .decorators import (
        ApprovalRejected,
        acheckpoint,
        checkpoint,
        default_machine,
        interruptible,
        requires_approval,
        set_default_machine,
    )
    from .errors import (
        AlreadyDecidedError,
        ConflictError,
        DecisionTimeoutError,
        DuplicateTaskError,
        HITLError,
        InvalidTransitionError,
        NotAuthorizedError,
        PayloadError,
        StoreError,
        TaskFailedError,
        TaskNotFoundError,
    )
    from .hookspecs import hookimpl
    from .machine import HITLStateMachine, open_store
    from .models import (
        Action,
        Actor,
        Decision,
        DecisionType,
        Escalation,
        Event,
        InterruptKind,
        InterruptPoint,
        Severity,
        TaskContext,
        TaskState,
    )
    from .stores import MemoryStore, Store, VerifyReport
    from .sync import SyncHITL
    from .transitions import TRANSITIONS

# Silent by default: an application that wants hitl's transition log configures "hitl".
logging.getLogger("hitl").addHandler(logging.NullHandler())
# Whatever handler it installs, ids and reasons in hitl's log records arrive rendered inert.
render_logs()

__version__ = "0.1.0"

#: Public name -> the submodule that defines it. Loaded on first use (PEP 562): ``hitl ask`` and
#: the Claude Code hook start a fresh interpreter per call, and ``import hitl_core.cli`` must not
#: pay for pydantic's model building or the stores before it knows which verb runs.
_HOMES: dict[str, str] = {
    "Callback": "callbacks",
    **dict.fromkeys(
        (
            "ApprovalRejected",
            "acheckpoint",
            "checkpoint",
            "default_machine",
            "interruptible",
            "requires_approval",
            "set_default_machine",
        ),
        "decorators",
    ),
    **dict.fromkeys(
        (
            "AlreadyDecidedError",
            "ConflictError",
            "DecisionTimeoutError",
            "DuplicateTaskError",
            "HITLError",
            "InvalidTransitionError",
            "NotAuthorizedError",
            "PayloadError",
            "StoreError",
            "TaskFailedError",
            "TaskNotFoundError",
        ),
        "errors",
    ),
    "hookimpl": "hookspecs",
    "HITLStateMachine": "machine",
    "open_store": "machine",
    **dict.fromkeys(
        (
            "Action",
            "Actor",
            "Decision",
            "DecisionType",
            "Escalation",
            "Event",
            "InterruptKind",
            "InterruptPoint",
            "Severity",
            "TaskContext",
            "TaskState",
        ),
        "models",
    ),
    **dict.fromkeys(("MemoryStore", "Store", "VerifyReport"), "stores"),
    "SyncHITL": "sync",
    "TRANSITIONS": "transitions",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hitl_core' has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "TRANSITIONS",
    "Action",
    "Actor",
    "AlreadyDecidedError",
    "ApprovalRejected",
    "Callback",
    "ConflictError",
    "Decision",
    "DecisionTimeoutError",
    "DecisionType",
    "DuplicateTaskError",
    "Escalation",
    "Event",
    "HITLError",
    "HITLStateMachine",
    "InterruptKind",
    "InterruptPoint",
    "InvalidTransitionError",
    "MemoryStore",
    "NotAuthorizedError",
    "PayloadError",
    "Severity",
    "Store",
    "StoreError",
    "SyncHITL",
    "TaskContext",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskState",
    "VerifyReport",
    "__version__",
    "acheckpoint",
    "checkpoint",
    "default_machine",
    "hookimpl",
    "interruptible",
    "open_store",
    "requires_approval",
    "set_default_machine",
]
