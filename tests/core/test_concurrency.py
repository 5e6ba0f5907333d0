"""Two operators deciding the same task at once: exactly one wins, the other is told who."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from hitl_core import AlreadyDecidedError, HITLStateMachine, TaskState


async def test_two_operators_race_in_one_loop_exactly_one_wins(machine: HITLStateMachine) -> None:
    for i in range(50):
        await machine.start_task(f"t{i}")
        await machine.request_approval(f"t{i}", "why")

    async def decide(who: str, task_id: str) -> str:
        try:
            if who == "alice":
                await machine.approve(task_id, actor=who)
            else:
                await machine.reject(task_id, actor=who, message="no")
            return "won"
        except AlreadyDecidedError as exc:
            assert exc.decided_by in ("alice", "bob") and exc.decided_by != who
            return "lost"

    for i in range(50):
        results = await asyncio.gather(decide("alice", f"t{i}"), decide("bob", f"t{i}"))
        assert sorted(results) == ["lost", "won"]
    assert (await machine.verify()).ok


def test_many_threads_through_the_sync_facade_decide_each_task_once() -> None:
    m = HITLStateMachine("memory://", load_entrypoints=False)
    n = 100
    for i in range(n):
        m.sync.start_task(f"t{i}")
        m.sync.request_approval(f"t{i}", "why")
    wins: list[str] = []
    lock = threading.Lock()

    def operator(name: str) -> None:
        for i in range(n):
            try:
                m.sync.approve(f"t{i}", actor=name)
                with lock:
                    wins.append(f"t{i}")
            except AlreadyDecidedError:
                pass

    threads = [threading.Thread(target=operator, args=(f"op{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == sorted(f"t{i}" for i in range(n))
    assert all(t.state == TaskState.APPROVED for t in m.sync.get_all_tasks())
    events = m.sync.run(m.events())
    assert len(events) == 3 * n
    m.sync.close()


def test_threads_whose_first_call_reaches_the_facade_at_once_share_one_facade() -> None:
    """Two facades of one machine are two event loops sharing its loop-bound state: a call on one
    loop can wait forever on a future the other loop's thread completed (smolagents' parallel
    tool calls left one of two requests unasked that way). Every thread must get the same one."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows in a few rounds
    try:
        for _ in range(300):
            machine = HITLStateMachine("memory://", load_entrypoints=False)
            start = threading.Barrier(4)
            seen: list[object] = []

            def first_call(
                machine: HITLStateMachine = machine, start: threading.Barrier = start, seen: list[object] = seen
            ) -> None:
                start.wait()
                seen.append(machine.sync)

            threads = [threading.Thread(target=first_call) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            facades = {id(s) for s in seen}
            for s in {id(s): s for s in seen}.values():
                s.close()  # type: ignore[attr-defined]
            assert len(facades) == 1, "two threads got two facades (two event loops) of one machine"
    finally:
        sys.setswitchinterval(previous)


async def test_machines_in_two_threads_share_a_memory_store() -> None:
    """Two machines (two event loops) over one store: the store's compare-and-set is the arbiter."""
    first = HITLStateMachine("memory://", load_entrypoints=False)
    second = HITLStateMachine(first.store, load_entrypoints=False)
    await first.start_task("t")
    await first.request_approval("t", "why")
    errors: list[Exception] = []

    def other_loop() -> None:
        time.sleep(0.05)  # let the first machine start waiting
        try:
            asyncio.run(second.approve("t", actor="bob"))
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    thread = threading.Thread(target=other_loop)
    thread.start()
    decision = await first.wait_for_decision("t", timeout=5)
    thread.join()
    assert not errors and decision.actor.id == "bob"


async def test_waiters_survive_a_follow_that_fails() -> None:
    """A store whose follow() raises once must not leave wait_for_decision hanging."""
    from hitl_core import MemoryStore

    class Flaky(MemoryStore):
        failures = 1

        async def follow(self, after_seq: int = 0):  # type: ignore[override]
            if Flaky.failures:
                Flaky.failures -= 1
                raise ConnectionError("database went away")
            async for event in super().follow(after_seq):
                yield event

    store = Flaky()
    waiter = HITLStateMachine(store, load_entrypoints=False)
    decider = HITLStateMachine(store, load_entrypoints=False)
    await waiter.start_task("t")
    await waiter.request_approval("t", "why")
    wait = asyncio.create_task(waiter.wait_for_decision("t", timeout=5))
    await asyncio.sleep(0.01)
    await decider.approve("t", actor="alice")  # another machine: only the follower can tell the waiter
    decision = await wait
    assert decision.actor.id == "alice"


def test_sync_code_can_close_the_machine_through_the_facade() -> None:
    m = HITLStateMachine("memory://", load_entrypoints=False)
    m.sync.start_task("t")
    m.sync.close_machine()  # returns: closes followers and the store, then stops the facade's thread
    assert m._sync is None
