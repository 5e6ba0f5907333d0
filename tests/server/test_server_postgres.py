"""``hitl serve`` in front of PostgreSQL: the same authority, the same API."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, NotAuthorizedError

from .conftest import ServerFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "postgres"))
from pg_cluster import shared_cluster  # tests/postgres: the throwaway cluster

pytestmark = pytest.mark.processes


@pytest.fixture
def pg_url() -> str:
    return shared_cluster().create_database()


async def test_server_on_postgresql_decides_and_refuses(start_server: ServerFactory, pg_url: str) -> None:
    server = start_server("[authorization]\nno_self_approval = true\n", listen=True, store=pg_url)
    agent = HITLStateMachine(server.https_url, token=server.token("pg-bot", "agent"), ca=str(server.cert))
    operator = HITLStateMachine(server.https_url, token=server.token("alice", "operator"), ca=str(server.cert))
    try:
        await agent.start_task("pg-1")
        await agent.request_approval("pg-1", "migrate")
        with pytest.raises(NotAuthorizedError):
            await agent.approve("pg-1")
        await operator.approve("pg-1", message="ok")
        decision = await agent.wait_for_decision("pg-1", timeout=120)
        assert decision.actor.id == "alice" and decision.actor.source == "token"
    finally:
        await agent.close()
        await operator.close()
    # The decision is in PostgreSQL, read back by a direct (trusted) machine on the same database.
    async with HITLStateMachine(pg_url, load_entrypoints=False) as direct:
        task = await direct.get_task("pg-1")
        assert task is not None and task.decision is not None and task.decision.actor.id == "alice"
        assert (await direct.verify()).ok
