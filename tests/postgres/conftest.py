"""PostgreSQL fixtures: a real server, started by the tests themselves, one database per test.

The server is a throwaway cluster (``pg_cluster.LocalCluster``) on a free local port; ``make
test`` installs PostgreSQL from Debian's packages first when it is missing. When no server can be
started these tests skip saying why, except under ``CI=true``, where they fail saying why: a CI
run whose PostgreSQL broke must not pass on a pile of skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_cluster import LocalCluster, require_psycopg, shared_cluster, unavailable


@pytest.fixture(scope="session")
def pg_cluster() -> LocalCluster:
    require_psycopg()
    try:
        return shared_cluster()
    except RuntimeError as exc:
        reason = str(exc)
    unavailable(reason)  # outside the except: the report shows the reason, not a chained traceback


@pytest.fixture
def pg_url(pg_cluster: LocalCluster) -> str:
    """The URL of a fresh, empty database on the shared test cluster."""
    return pg_cluster.create_database()


def start_cluster(**settings: int) -> LocalCluster:
    """A cluster of the caller's own (``LocalCluster`` settings), or ``unavailable`` saying why."""
    require_psycopg()
    try:
        return LocalCluster(**settings).start()  # type: ignore[arg-type]
    except RuntimeError as exc:
        reason = str(exc)
    unavailable(reason)


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of the test's own, for tests that stop or crash the server."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def small_cluster() -> Iterator[LocalCluster]:
    """A cluster of the test's own that accepts only 10 connections, for tests that exhaust it."""
    cluster = start_cluster(max_connections=10)
    try:
        yield cluster
    finally:
        cluster.destroy()
