"""The backends the one store conformance suite runs on, and the fixtures that open them.

To add a backend, write an async context manager that yields the URL of a fresh, empty store
(and cleans it up afterwards), then add a ``Backend`` line to ``BACKENDS`` below. Every test in
this folder then runs on it; the tests that need a store to survive a restart (``durable``) or
two instances on one URL to see each other's writes (``shared``) run only where that holds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hitl_core import Store, open_store
from hitl_core.plugins import PluginHost


@dataclass(frozen=True)
class Backend:
    name: str
    #: ``fresh_url(tmp_path)`` -> async context manager yielding the URL of a fresh, empty store.
    fresh_url: Callable[[Path], AbstractAsyncContextManager[str]]
    #: The store survives closing and reopening its URL.
    durable: bool
    #: Two store instances opened on one URL (as two processes would) see each other's writes.
    shared: bool


@asynccontextmanager
async def _memory(tmp_path: Path) -> AsyncIterator[str]:
    yield "memory://"


@asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[str]:
    yield f"sqlite:///{tmp_path / 'conformance.db'}"


@asynccontextmanager
async def _postgresql(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh schema on this test process's throwaway PostgreSQL cluster (tests/postgres).

    No server (or no driver) is a skip saying why, or under ``CI=true`` a failure saying why."""
    helpers = str(Path(__file__).parents[1] / "postgres")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)
    from pg_cluster import require_psycopg, shared_cluster, unavailable

    require_psycopg()
    try:
        cluster = shared_cluster()
    except RuntimeError as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        unavailable(reason)  # outside the except: the report shows the reason, not a chained traceback
    yield await asyncio.to_thread(cluster.create_schema)


# -- the backends: add yours here ---------------------------------------------------------------
BACKENDS: list[Backend] = [
    Backend("memory", _memory, durable=False, shared=False),
    Backend("sqlite", _sqlite, durable=True, shared=True),
    Backend("postgresql", _postgresql, durable=True, shared=True),
]
# -----------------------------------------------------------------------------------------------


def _params(keep: Callable[[Backend], bool]) -> list[object]:
    return [pytest.param(b, id=b.name) for b in BACKENDS if keep(b)]


def new_store(url: str) -> Store:
    """An unopened store for ``url``, chosen by scheme exactly as the machine chooses it."""
    return open_store(url, PluginHost(load_entrypoints=False))


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = new_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _edit_by_hand(url: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run ``sql`` on a durable store's database directly, as someone with write access to it
    would: not through hitl. ``{events}``/``{tasks}``/``{audit}`` name the backend's tables and ``?`` is the
    placeholder; the SQLite file through ``sqlite3``, PostgreSQL through ``psycopg`` (as the
    cluster's superuser, who owns the schema)."""
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            conn.execute(sql.format(events="events", tasks="tasks", audit="audit"), params)
            conn.commit()
        finally:
            conn.close()
    elif url.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(
                sql.format(events="hitl_events", tasks="hitl_tasks", audit="hitl_audit").replace("?", "%s"), params
            )
    else:
        raise ValueError(f"no hand-editing for {url!r}: add it here with its backend")


@pytest.fixture(params=_params(lambda b: True))
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    backend: Backend = request.param
    async with backend.fresh_url(tmp_path) as url:
        yield url


@pytest.fixture(params=_params(lambda b: b.durable))
async def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    backend: Backend = request.param
    async with backend.fresh_url(tmp_path) as url:
        yield url


@pytest.fixture(params=_params(lambda b: b.shared))
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    backend: Backend = request.param
    async with backend.fresh_url(tmp_path) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with opened(store_url) as s:
        yield s


@pytest.fixture
def open_url() -> Callable[[str], AbstractAsyncContextManager[Store]]:
    """``async with open_url(url) as store``: a second instance on a URL (another process's view)."""
    return opened


@pytest.fixture
def edit_by_hand() -> Callable[..., None]:
    """``edit_by_hand(url, sql, params)``: change a durable store's database directly (``_edit_by_hand``)."""
    return _edit_by_hand
