"""The seed's fourth example: a waiting task saved as JSON and brought back equal.

(For durability across processes use a store URL such as ``sqlite:///hitl.db``; this example shows
that every model is plain data.)
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hitl_core import HITLStateMachine, TaskContext


async def run() -> None:
    machine = HITLStateMachine()
    await machine.start_task("refund-1042", metadata={"customer": "c-77"})
    task = await machine.request_approval(
        "refund-1042",
        reason="Refund $480 to card ending 4242",
        context={"amount": 480, "currency": "USD"},
        severity="high",
        action="refund",
        args={"order": 1042, "amount": 480},
    )
    path = Path(tempfile.mkdtemp()) / "task.json"
    path.write_text(json.dumps(task.to_dict(), indent=2))
    print(f"saved {path} ({path.stat().st_size} bytes)")
    loaded = TaskContext.from_dict(json.loads(path.read_text()))
    assert loaded == task
    assert TaskContext.model_validate_json(task.model_dump_json()) == task
    print(
        f"loaded back equal: {loaded.task_id} {loaded.state}, reason {loaded.interrupt_point.reason!r}, "
        f"args fingerprint {loaded.interrupt_point.args_fingerprint[:12]}…"
    )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
