"""The console follows a SQLite store that another OS process writes, and decides for it."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskState

from .helpers import make_app, select, settle

AGENT = textwrap.dedent("""
    import asyncio, json, sys
    from hitl_core import HITLStateMachine

    async def main(url):
        machine = HITLStateMachine(url, load_entrypoints=False)
        async with machine:
            await machine.start_task("xp-1", agent="remote-agent", framework="langgraph", step="execute")
            await machine.request_approval("xp-1", "Transfer 500 EUR to supplier", severity="high",
                                           action="transfer", args={"amount": 500, "currency": "EUR"})
            print("waiting", flush=True)
            decision = await machine.wait_for_decision("xp-1", timeout=60)
            print(json.dumps({"type": decision.type.value, "actor": decision.actor.id,
                              "source": decision.actor.source}), flush=True)

    asyncio.run(main(sys.argv[1]))
""")


@pytest.mark.processes
async def test_console_approval_reaches_an_agent_in_another_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    console_machine = HITLStateMachine(url, load_entrypoints=False)
    assert console_machine.store.shared, "the SQLite store is shared between processes"
    app = make_app(console_machine, follow=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-c", AGENT, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            assert agent.stdout is not None
            line = await asyncio.wait_for(agent.stdout.readline(), 60)
            assert line.strip() == b"waiting", (line, await agent.stderr.read())  # type: ignore[union-attr]
            for _ in range(200):  # the follower re-emits the other process's events
                await settle(pilot, app)
                row = app.view.rows.get("xp-1")
                if row is not None and row.state is TaskState.AWAITING_APPROVAL:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the console never showed the other process's request")
            assert app.view.rows["xp-1"].agent == "remote-agent"
            await select(pilot, app, "xp-1")
            await pilot.press("a")
            await settle(pilot, app)
            answer = await asyncio.wait_for(agent.stdout.readline(), 60)
            assert json.loads(answer) == {"type": "approve", "actor": "alice", "source": "console"}
            assert await asyncio.wait_for(agent.wait(), 30) == 0
            assert app.flash_text == "✓ approved xp-1 · nothing else is waiting"
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    await console_machine.close()
