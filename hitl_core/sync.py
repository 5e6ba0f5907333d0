"""The synchronous facade, for agents that are not async (``machine.sync``).

Thread safety, exactly: the facade owns one background thread running one event loop. Every
call from any thread is submitted to that loop with ``asyncio.run_coroutine_threadsafe`` and the
calling thread blocks on the result, so any number of threads may call the facade at once;
their calls interleave at ``await`` points on that one loop. What makes concurrent transitions
safe is not a lock in the machine but the store's compare-and-set: two calls that race on one
task cannot both commit (the loser gets ``ConflictError``/``AlreadyDecidedError``). The same holds
when the machine is also used from the caller's own event loop at the same time.

Do not call the facade from inside the facade's own loop (e.g. from an async callback): that
would wait on itself, and raises ``RuntimeError`` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .models import Decision, TaskContext, TaskState

if TYPE_CHECKING:
    from .machine import HITLStateMachine

T = TypeVar("T")

#: How long the main thread blocks at a time while it waits on the facade (see ``SyncHITL.run``).
_SLICE = 0.2

#: Held while a machine's facade is created: two threads whose first call reaches ``machine.sync``
#: at once (smolagents runs a step's tool calls in parallel threads) must get the same facade.
_CREATING = threading.Lock()


def facade_of(owner: Any) -> SyncHITL:
    """``owner._sync``, created on first use, exactly once whichever threads race to it.

    Two facades of one machine would be two event loops sharing the machine's loop-bound state
    (its open lock, waiters, followers): a coroutine waiting on one loop for a future the other
    loop's thread completes is never woken, and its thread blocks forever.
    """
    with _CREATING:
        if owner._sync is None:
            owner._sync = SyncHITL(owner)
        sync: SyncHITL = owner._sync
        return sync


class SyncHITL:
    """The machine's methods as blocking calls, safe from any thread."""

    def __init__(self, machine: HITLStateMachine) -> None:
        self.machine = machine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.close()

                thread = threading.Thread(target=run, name="hitl-sync", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the facade's loop and block until it returns."""
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "the hitl sync facade was called from its own event loop; await the machine's async method instead"
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        if threading.current_thread() is not threading.main_thread():
            return future.result(timeout)
        # The main thread waits in slices. Ctrl-C is a signal to the process, and the kernel may
        # hand it to any of its threads (the store's writer, this facade's loop): then Python only
        # sets a flag, which the main thread reads when it next runs Python code. A wait without
        # end never would, and an agent waiting for a person ignored Ctrl-C until the decision.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            try:
                return future.result(max(left, 0.0))
            except concurrent.futures.TimeoutError:
                if future.done():  # the coroutine's own TimeoutError, or it finished just now
                    return future.result()
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def is_own_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def close_machine(self) -> None:
        """Close the machine (followers, store) from sync code, then stop the facade's thread."""
        if self._loop is not None:
            self.run(self.machine.close())
        self.machine._sync = None
        self.close()

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:

            async def shutdown() -> None:
                # Cancel what still runs here (followers, abandoned waits) and let it unwind, so
                # nothing is destroyed pending when the loop stops.
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await loop.shutdown_asyncgens()
                loop.stop()

            if threading.current_thread() is not thread:
                loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
                thread.join(timeout=5)
            else:
                loop.call_soon(loop.stop)

    # The seed's methods, one to one. Keyword arguments pass straight through.
    def create_task(self, task_id: str, *args: Any, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.create_task(task_id, *args, **kwargs))

    def start_task(self, task_id: str, *args: Any, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.start_task(task_id, *args, **kwargs))

    def request_approval(self, task_id: str, reason: str, *args: Any, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.request_approval(task_id, reason, *args, **kwargs))

    def pause(self, task_id: str, actor: str, reason: str, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.pause(task_id, actor, reason, **kwargs))

    def approve(self, task_id: str, actor: str | None = None, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.approve(task_id, actor, **kwargs))

    def reject(self, task_id: str, actor: str | None = None, message: str | None = None, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.reject(task_id, actor, message, **kwargs))

    def edit(self, task_id: str, edited_args: dict[str, Any], actor: str | None = None, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.edit(task_id, edited_args, actor, **kwargs))

    def respond(self, task_id: str, response: Any, actor: str | None = None, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.respond(task_id, response, actor, **kwargs))

    def decide(self, task_id: str, decision: Decision, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.decide(task_id, decision, **kwargs))

    def expire(self, task_id: str, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.expire(task_id, **kwargs))

    def resume(self, task_id: str, step: str | None = None, **kwargs: Any) -> TaskContext:
        return self.run(self.machine.resume(task_id, step, **kwargs))

    def complete(self, task_id: str, result: Any = None) -> TaskContext:
        return self.run(self.machine.complete(task_id, result))

    def fail(self, task_id: str, error: str) -> TaskContext:
        return self.run(self.machine.fail(task_id, error))

    def get_task(self, task_id: str) -> TaskContext | None:
        return self.run(self.machine.get_task(task_id))

    def get_pending_approvals(self) -> list[TaskContext]:
        return self.run(self.machine.get_pending_approvals())

    def get_tasks_by_state(self, state: TaskState | str) -> list[TaskContext]:
        return self.run(self.machine.get_tasks_by_state(state))

    def get_all_tasks(self) -> list[TaskContext]:
        return self.run(self.machine.get_all_tasks())

    def get_tasks(
        self, states: Iterable[TaskState | str] | None = None, *, changed_after: int | None = None
    ) -> list[TaskContext]:
        return self.run(self.machine.get_tasks(states, changed_after=changed_after))

    def wait_for_decision(self, task_id: str, timeout: float | None = None) -> Decision:
        return self.run(self.machine.wait_for_decision(task_id, timeout))
