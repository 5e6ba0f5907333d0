"""The built-in store backends, registered through ``hitl_register_stores`` like any plugin's."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import StoreFactory, hookimpl


@hookimpl
def hitl_register_stores(register: Callable[[str, StoreFactory], None]) -> None:
    from .memory import MemoryStore
    from .sqlite import SqliteStore

    register("memory", MemoryStore)
    register("sqlite", SqliteStore)

    # psycopg is imported when a postgresql:// store is made, not here.
    from .postgres import PostgresStore

    register("postgresql", PostgresStore)
    register("postgres", PostgresStore)
