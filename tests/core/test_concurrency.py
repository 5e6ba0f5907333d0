"""Two operators deciding the same task at once: exactly one wins, the other is told who."""

from __future__ import annotations

import asyncio
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
