"""The console's heap settling (``hitl_tui.heap``): full collections at idle moments, not mid-key.

Measured cause (``benchmarks/bench_console.py``, 10,000 tasks): CPython's full collections walked
the console's millions of long-lived objects up to 35 times a run, 228 ms the longest, and made
the keys' p99. These tests hold the mechanism to what ``hitl_tui/heap.py`` promises: off unless
asked, automatic full collections off while on, one collect-and-freeze when due (idle and the
interval passed, or the backstop passed whatever happens), and the process's collector put back
when the console stops.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hitl_core import HITLStateMachine
from hitl_tui import ConsoleApp
from hitl_tui import heap as heap_module
from hitl_tui.heap import HeapSettler

from .helpers import settle, waiting


@pytest.fixture(autouse=True)
def collector_put_back() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()  # these tests freeze the test process's heap: give it back to the collector


def test_settling_takes_over_full_collections_and_gives_them_back() -> None:
    young, middle, oldest = gc.get_threshold()
    settler = HeapSettler(interval=5.0, backstop=60.0)
    settler.start()
    assert gc.get_threshold() == (young, middle, heap_module._NEVER)
    assert settler.tick(idle=False)  # the first tick settles whatever: the backstop has passed
    assert settler.freezes == 1 and gc.get_freeze_count() > 0
    settler.stop()
    assert gc.get_threshold() == (young, middle, oldest)


def test_a_freeze_is_due_when_idle_after_the_interval_or_after_the_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(heap_module.time, "monotonic", lambda: now[0])
    settler = HeapSettler(interval=5.0, backstop=60.0)
    settler.start()
    assert settler.tick(idle=True) and settler.freezes == 1
    now[0] += 4.0
    assert not settler.tick(idle=True)  # too soon
    now[0] += 2.0
    assert not settler.tick(idle=False)  # busy: waits
    assert settler.tick(idle=True) and settler.freezes == 2
    now[0] += 59.0
    assert not settler.tick(idle=False)
    now[0] += 2.0
    assert settler.tick(idle=False) and settler.freezes == 3  # the backstop: busy or not
    settler.stop()


async def test_the_console_settles_only_when_asked_and_restores_the_collector() -> None:
    thresholds = gc.get_threshold()
    machine = HITLStateMachine("memory://", load_entrypoints=False)
    await waiting(machine, "t1")
    plain = ConsoleApp(machine, actor="op", follow=False, dwell=0)
    async with plain.run_test() as pilot:
        await settle(pilot, plain)
        assert plain.heap is None and gc.get_threshold() == thresholds
    settling = ConsoleApp(machine, actor="op", follow=False, dwell=0, settle_heap=True)
    async with settling.run_test() as pilot:
        await settle(pilot, settling)
        assert settling.heap is not None
        assert gc.get_threshold()[2] == heap_module._NEVER
        for _ in range(40):  # the heap timer runs every second
            if settling.heap.freezes:
                break
            await pilot.pause(0.05)
        assert settling.heap.freezes >= 1 and gc.get_freeze_count() > 0
        assert [row.task_id for row in settling.view.rows.values()] == ["t1"]
    assert gc.get_threshold() == thresholds
