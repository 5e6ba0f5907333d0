"""The "store unavailable" banner follows ``machine.problem``: a PostgreSQL outage shows at once
(while the store's follower keeps retrying by itself, so nothing ever raises to the console),
and the banner goes when the server is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hitl_core import HITLStateMachine
from hitl_core.stores.postgres import PostgresStore
from tests.postgres.pg_cluster import LocalCluster, require_psycopg, unavailable

from .helpers import make_app, poll, settle, waiting


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A PostgreSQL server of the test's own (it is stopped mid-test)."""
    require_psycopg()
    try:
        cluster = LocalCluster().start()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.destroy()


async def test_postgres_outage_shows_the_banner_while_the_store_retries_and_clears_when_it_is_back(
    own_cluster: LocalCluster,
) -> None:
    url = own_cluster.create_database()
    machine = HITLStateMachine(PostgresStore(url, retry_for=120.0, connect_timeout=2.0), load_entrypoints=False)
    await waiting(machine, "t1")
    app = make_app(machine, follow=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        banner = app.query_one("#banner")
        assert not banner.has_class("shown")
        await asyncio.to_thread(own_cluster.stop, "fast")
        await poll(pilot, lambda: banner.has_class("shown"), 60)
        text = banner.text.plain  # type: ignore[attr-defined]
        assert "store unavailable" in text and f"127.0.0.1:{own_cluster.port}" in text
        assert app.store_ok, "nothing raised to the console: the banner came from machine.problem"
        assert machine.problem is not None
        await asyncio.to_thread(own_cluster.restart)  # stopped already: this starts it
        await poll(pilot, lambda: not banner.has_class("shown"), 60)
        assert machine.problem is None
        assert app.flash_text == "store reconnected"
        # and it is live again: a new request reaches the table
        other = HITLStateMachine(url, load_entrypoints=False)
        await waiting(other, "t2")
        await poll(pilot, lambda: "t2" in app.view.rows, 60)
        await other.close()
    await machine.close()
