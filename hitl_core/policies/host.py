"""What the policies use of a machine: its public API and its hooks, nothing else.

The policies are plugins of ``HITLStateMachine``; the machine installs them (``config=``) and
starts and stops them. They reach back only through this protocol, never through an import of
``hitl_core.machine`` or a private attribute, so the machine can change how it decides without
the policies noticing (a test, ``tests/policies/test_layering.py``, holds them to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..models import TaskContext
    from ..plugins import PluginHost
    from ..stores.base import Store


@runtime_checkable
class PolicyHost(Protocol):
    """The machine as the policies see it (``HITLStateMachine`` is one)."""

    #: The store, open whenever a policy runs: the machine starts the sweeper only once it is.
    store: Store
    #: The typed hook facade: registering plugins, calling ``hitl_deadline_warning``.
    plugins: PluginHost

    async def expire(self, task_id: str, *, force: bool = False) -> TaskContext: ...
