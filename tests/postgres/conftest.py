"""PostgreSQL fixtures: a real server, started by the tests themselves, one database per test.

The server is a throwaway cluster (``pg_cluster.LocalCluster``) on a free local port; ``make
test`` installs PostgreSQL from Debian's packages first when it is missing. Only when no server
can be started at all do these tests skip, and the skip says why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_cluster import LocalCluster, shared_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> LocalCluster:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install -e '.[postgres]'")
    try:
        return shared_cluster()
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_cluster: LocalCluster) -> str:
    """The URL of a fresh, empty database on the shared test cluster."""
    return pg_cluster.create_database()


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of the test's own, for tests that stop or crash the server."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install -e '.[postgres]'")
    try:
        cluster = LocalCluster().start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.destroy()
