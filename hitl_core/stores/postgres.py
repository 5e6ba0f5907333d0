"""The PostgreSQL store: one shared, durable log for agents and consoles on many hosts.

Selected by ``postgresql://user:password@host:port/dbname`` (or ``postgres://``); needs the
``postgres`` extra (``pip install 'hitl[postgres]'``: psycopg 3), imported only
when such a store is made, so ``hitl_core`` never loads a driver it doesn't use.

How an append stays correct under any concurrency, and why it is fast anyway:

* Every append calls ``hitl_append(...)``, a PL/pgSQL function installed by the migration. It
  locks the one-row ``hitl_chain_head`` (``FOR UPDATE``), does the compare-and-set on the task
  row, computes the event's chain hash *on the server* from the head's hash (so nothing has to
  travel back and forth while the lock is held), inserts the event, moves the head and
  ``NOTIFY``\\s the new sequence number. One round trip.
* Holding the head lock until commit serialises appenders: sequence numbers are gap-free and
  commit in order, so a follower that has seen ``seq`` N can never later be surprised by a
  smaller one committing (the gap problem of plain sequences).
* Serialising commits would cap throughput at one disk flush per transition, so appends made
  concurrently in one process are group-committed: whatever queued while the previous batch was
  in flight goes in one transaction (one ``hitl_append`` each, pipelined, one flush). Each call
  is conditional, so one task's conflict never fails its neighbours; an unexpected error in a
  batch re-runs its members one by one so only the culprit fails.
* Connection loss around a commit is ambiguous; we reconnect with backoff and look the event up
  by ``(task_id, version)`` before retrying, so a transition is neither lost nor applied twice.

``follow`` holds its own connection, ``LISTEN``\\s, reads rows after the last sequence it
yielded on every notification (and every ``poll_interval`` regardless, in case one is lost),
and reconnects with backoff when the server goes away — resuming from that sequence, so
nothing is skipped or repeated.

Connections are pooled, one small pool per event loop (a psycopg async connection belongs to the
loop that made it; the machine may be used from its caller's loop and from the synchronous
facade's loop at once). The pool is our own, not psycopg_pool's: it runs no background task, so
the end of ``asyncio.run`` has nothing of ours to cancel (psycopg_pool's workers swallow a
cancellation that lands while they connect, and ``asyncio.run`` then waits for them forever), and
it closes itself when its loop shuts down or the store is garbage-collected, so a machine nobody
closed does not keep its connections until the process exits.
"""

from __future__ import annotations

import asyncio
import functools
import random
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConflictError, DuplicateTaskError, StoreError
from ..models import TaskState
from ..records import EventRecord, TaskRecord
from ..text import hitl_logger
from ..transitions import TRANSITIONS
from .base import AppendStep, AuditRecord, Store, StoredCheckpoint, StoredTask, audit_record_from_row
from .sql import (
    EVENT_COLUMNS,
    Dialect,
    Migrations,
    QueuedAppend,
    chain_head,
    checkpoints_from_rows,
    event_fields,
    event_from_row,
    new_audit_record,
    record_from_snapshot,
    steps,
)

log = hitl_logger("hitl.postgres")

#: The schema version this code writes. A database at a higher version was migrated by a newer
#: hitl; we refuse it rather than misread it.
SCHEMA_VERSION = 4
CHANNEL = "hitl_events"
_MIGRATE_LOCK = 7_270_011_507  # pg_advisory_xact_lock key: one migrator at a time
_AUDIT_LOCK = 7_270_011_508  # pg_advisory_xact_lock key: one audit-chain appender at a time (replicas)

# The chain head has a row of its own, moved by hitl_append under its row lock.
SQL = Dialect("%s", prefix="hitl_", head_sql="SELECT seq, hash FROM hitl_chain_head")

#: Forward migrations, as for SQLite: ``MIGRATIONS[n]`` takes a database from version n - 1 to n
#: (``sql.steps``). Each is one multi-statement script, run in the migrating transaction.
_SCRIPTS: tuple[str, ...] = (
    """
    CREATE TABLE hitl_chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    INSERT INTO hitl_chain_head (id, seq, hash) VALUES (true, 0, repeat('0', 64));
    CREATE TABLE hitl_tasks (
        task_id text PRIMARY KEY,
        state text NOT NULL,
        version integer NOT NULL,
        last_seq bigint NOT NULL,
        snapshot text NOT NULL
    );
    CREATE INDEX hitl_tasks_state_last_seq ON hitl_tasks (state, last_seq);
    CREATE TABLE hitl_events (
        seq bigint PRIMARY KEY,
        task_id text NOT NULL,
        version integer NOT NULL,
        action text NOT NULL,
        from_state text,
        to_state text NOT NULL,
        actor_id text,
        actor_source text,
        at bigint NOT NULL,
        data text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE UNIQUE INDEX hitl_events_task_version ON hitl_events (task_id, version);
    CREATE FUNCTION hitl_append(
        p_task_id text, p_expected integer, p_state text, p_version integer, p_snapshot text,
        p_action text, p_from text, p_actor_id text, p_actor_source text, p_at bigint,
        p_data text, p_hash_prefix text,
        OUT status integer, OUT seq bigint, OUT prev_hash text, OUT hash text,
        OUT current_version integer, OUT current_state text
    ) LANGUAGE plpgsql AS $fn$
    -- status 0: appended; 1: the task exists (p_expected was NULL); 2: version moved.
    DECLARE
        head_seq bigint;
        head_hash text;
        n integer;
    BEGIN
        SELECT h.seq, h.hash INTO head_seq, head_hash FROM hitl_chain_head h WHERE h.id FOR UPDATE;
        seq := head_seq + 1;
        IF p_expected IS NULL THEN
            INSERT INTO hitl_tasks (task_id, state, version, last_seq, snapshot)
            VALUES (p_task_id, p_state, p_version, seq, p_snapshot)
            ON CONFLICT (task_id) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                SELECT t.version, t.state INTO current_version, current_state
                FROM hitl_tasks t WHERE t.task_id = p_task_id;
                status := 1; seq := NULL;
                RETURN;
            END IF;
        ELSE
            UPDATE hitl_tasks t SET state = p_state, version = p_version, last_seq = seq,
                   snapshot = p_snapshot
            WHERE t.task_id = p_task_id AND t.version = p_expected;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                SELECT t.version, t.state INTO current_version, current_state
                FROM hitl_tasks t WHERE t.task_id = p_task_id;
                status := 2; seq := NULL;
                RETURN;
            END IF;
        END IF;
        -- The same bytes hitl_core.canonical.event_hash hashes: prev, newline, canonical JSON of
        -- [seq, task_id, version, action, from, to, actor_id, actor_source, at, data].
        prev_hash := head_hash;
        hash := encode(sha256(convert_to(
            head_hash || E'\\n[' || seq::text || ',' || p_hash_prefix || ',' || p_data || ']', 'UTF8')), 'hex');
        INSERT INTO hitl_events (seq, task_id, version, action, from_state, to_state, actor_id,
                                 actor_source, at, data, prev_hash, hash)
        VALUES (seq, p_task_id, p_version, p_action, p_from, p_state, p_actor_id, p_actor_source,
                p_at, p_data, prev_hash, hash);
        UPDATE hitl_chain_head h SET seq = hitl_append.seq, hash = hitl_append.hash WHERE h.id;
        PERFORM pg_notify('hitl_events', seq::text);
        status := 0;
    END
    $fn$;
    """,
    # 1 -> 2: least privilege that holds. Writes go only through hitl_append, now SECURITY DEFINER
    # with a fixed search_path, which checks each transition against hitl_transitions (the
    # Python table, TRANSITIONS, as rows) and the snapshot against the event, and hashes the
    # event's columns itself. Day-to-day roles keep SELECT and EXECUTE, nothing else.
    "",  # filled in below from TRANSITIONS: see _migration_2()
    # -- audit checkpoints (hitl_core.audit): schema version 3 --------------------------------
    """
    CREATE TABLE hitl_checkpoints (
        id bigserial PRIMARY KEY,
        seq bigint NOT NULL,
        body text NOT NULL,
        signature text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # -- the server's audit chain (refusals, applied policies): schema version 4 --------------
    # Written only by its owner (``hitl serve`` holds the store's credentials); readable by
    # whoever could read the tasks, so ``hitl audit verify`` walks it with the same grants.
    """
    CREATE TABLE hitl_audit (
        seq bigint PRIMARY KEY,
        kind text NOT NULL,
        actor text,
        at bigint NOT NULL,
        data text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE INDEX hitl_audit_kind ON hitl_audit (kind, seq);
    DO $mig$
    DECLARE
        home text := (SELECT c.relnamespace::regnamespace::text FROM pg_class c WHERE c.oid = 'hitl_tasks'::regclass);
        r record;
    BEGIN
        FOR r IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                 WHERE c.oid = 'hitl_tasks'::regclass AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner LOOP
            EXECUTE format('GRANT SELECT ON %s.hitl_audit TO %s', home,
                           CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
        END LOOP;
    END
    $mig$;
    """,
)

_OLD_APPEND = "hitl_append(text, integer, text, integer, text, text, text, text, text, bigint, text, text)"
APPEND_SIGNATURE = "hitl_append(text, integer, integer, text, text, text, text, text, bigint, text, text)"

#: What hitl_append can be called with and may find in the tables; also the grants' subject.
TABLES = (
    "hitl_schema_version",
    "hitl_transitions",
    "hitl_chain_head",
    "hitl_tasks",
    "hitl_events",
    "hitl_checkpoints",
    "hitl_audit",
)


def transition_rows() -> list[tuple[str, str | None, str]]:
    """``TRANSITIONS`` as ``(action, from_state, to_state)`` rows: what ``hitl_transitions`` holds."""
    return sorted(
        (
            (action, None if src is None else src.value, dst.value)
            for action, moves in TRANSITIONS.items()
            for src, dst in moves.items()
        ),
        key=lambda row: (row[0], row[1] or ""),
    )


def _literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    if not value.replace("_", "").isalnum():  # actions and states are plain words
        raise ValueError(f"unexpected character in {value!r}")
    return f"'{value}'"


def _transitions_sql() -> str:
    """Make ``hitl_transitions`` hold exactly ``transition_rows()``: generated from the Python
    table each time, never a second hand-written copy. A later change to ``TRANSITIONS`` needs a
    migration that runs this again (``open`` refuses a database whose table differs)."""
    values = ",\n        ".join(f"({_literal(a)}, {_literal(f)}, {_literal(t)})" for a, f, t in transition_rows())
    return f"DELETE FROM hitl_transitions;\nINSERT INTO hitl_transitions (action, from_state, to_state) VALUES\n        {values};\n"


def _migration_2() -> str:
    return (
        """
    CREATE TABLE hitl_transitions (
        action text NOT NULL,
        from_state text,
        to_state text NOT NULL
    );
    CREATE UNIQUE INDEX hitl_transitions_move ON hitl_transitions (action, coalesce(from_state, ''));
    """
        + _transitions_sql()
        + f"""
    CREATE FUNCTION hitl_append(
        p_task_id text, p_expected integer, p_version integer, p_action text, p_from text, p_to text,
        p_actor_id text, p_actor_source text, p_at bigint, p_data text, p_snapshot text,
        OUT status integer, OUT seq bigint, OUT prev_hash text, OUT hash text,
        OUT current_version integer, OUT current_state text
    ) LANGUAGE plpgsql SECURITY DEFINER AS $fn$
    -- Runs as the schema's owner, so a caller needs no privilege on the tables; it must therefore
    -- check everything a caller could forge. status 0: appended; 1: the task exists (p_expected
    -- was NULL); 2: the version moved (compare-and-set lost). Anything forged raises.
    DECLARE
        head_seq bigint;
        head_hash text;
        snap jsonb;
        n integer;
    BEGIN
        IF p_task_id IS NULL OR p_version IS NULL OR p_action IS NULL OR p_to IS NULL OR p_at IS NULL
           OR p_data IS NULL OR p_snapshot IS NULL THEN
            RAISE EXCEPTION 'hitl_append refused: task, version, action, to-state, time, data and snapshot are required';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM hitl_transitions t WHERE t.action = p_action
                       AND t.from_state IS NOT DISTINCT FROM p_from AND t.to_state = p_to) THEN
            RAISE EXCEPTION 'hitl_append refused: % from % to % is not a legal transition',
                p_action, coalesce(p_from, '(new task)'), p_to;
        END IF;
        IF (p_expected IS NULL) <> (p_from IS NULL) THEN
            RAISE EXCEPTION 'hitl_append refused: a new task has no from-state and an existing one has one';
        END IF;
        IF p_version IS DISTINCT FROM coalesce(p_expected, 0) + 1 THEN
            RAISE EXCEPTION 'hitl_append refused: version % does not follow version %', p_version, coalesce(p_expected, 0);
        END IF;
        -- Text that is not JSON fails these casts ("invalid input syntax for type json"). No
        -- EXCEPTION block to reword that: it would cost a subtransaction per append, and a
        -- group commit runs hundreds of appends in one transaction.
        snap := p_snapshot::jsonb;
        IF jsonb_typeof(p_data::jsonb) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'hitl_append refused: the event data is not a JSON object';
        END IF;
        IF jsonb_typeof(snap) IS DISTINCT FROM 'object' OR snap->>'task_id' IS DISTINCT FROM p_task_id
           OR snap->>'state' IS DISTINCT FROM p_to OR snap->'version' IS DISTINCT FROM to_jsonb(p_version) THEN
            RAISE EXCEPTION 'hitl_append refused: the snapshot (task %, state %, version %) does not match the event (task %, state %, version %)',
                snap->>'task_id', snap->>'state', snap->>'version', p_task_id, p_to, p_version;
        END IF;

        SELECT h.seq, h.hash INTO head_seq, head_hash FROM hitl_chain_head h WHERE h.id FOR UPDATE;
        seq := head_seq + 1;
        IF p_expected IS NULL THEN
            INSERT INTO hitl_tasks (task_id, state, version, last_seq, snapshot)
            VALUES (p_task_id, p_to, p_version, seq, p_snapshot)
            ON CONFLICT (task_id) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                SELECT t.version, t.state INTO current_version, current_state
                FROM hitl_tasks t WHERE t.task_id = p_task_id;
                status := 1; seq := NULL;
                RETURN;
            END IF;
        ELSE
            UPDATE hitl_tasks t SET state = p_to, version = p_version, last_seq = seq, snapshot = p_snapshot
            WHERE t.task_id = p_task_id AND t.version = p_expected AND t.state = p_from;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                SELECT t.version, t.state INTO current_version, current_state
                FROM hitl_tasks t WHERE t.task_id = p_task_id;
                IF current_version = p_expected THEN
                    RAISE EXCEPTION 'hitl_append refused: task % is %, not % (the event''s from-state)',
                        p_task_id, current_state, p_from;
                END IF;
                status := 2; seq := NULL;
                RETURN;
            END IF;
        END IF;
        -- The same bytes hitl_core.canonical.event_hash hashes: prev, newline, canonical JSON of
        -- [seq, task_id, version, action, from, to, actor_id, actor_source, at, data]. to_json
        -- escapes a string exactly as Python's json.dumps(ensure_ascii=False) does.
        prev_hash := head_hash;
        hash := encode(sha256(convert_to(
            head_hash || E'\\n[' || seq::text || ',' || to_json(p_task_id)::text || ',' || p_version::text
            || ',' || to_json(p_action)::text || ',' || coalesce(to_json(p_from)::text, 'null')
            || ',' || to_json(p_to)::text || ',' || coalesce(to_json(p_actor_id)::text, 'null')
            || ',' || coalesce(to_json(p_actor_source)::text, 'null') || ',' || p_at::text
            || ',' || p_data || ']', 'UTF8')), 'hex');
        INSERT INTO hitl_events (seq, task_id, version, action, from_state, to_state, actor_id,
                                 actor_source, at, data, prev_hash, hash)
        VALUES (seq, p_task_id, p_version, p_action, p_from, p_to, p_actor_id, p_actor_source,
                p_at, p_data, prev_hash, hash);
        UPDATE hitl_chain_head h SET seq = hitl_append.seq, hash = hitl_append.hash WHERE h.id;
        PERFORM pg_notify('hitl_events', seq::text);
        status := 0;
    END
    $fn$;
    REVOKE ALL ON FUNCTION {APPEND_SIGNATURE} FROM PUBLIC;
    DO $mig$
    DECLARE
        home text := (SELECT c.relnamespace::regnamespace::text FROM pg_class c WHERE c.oid = 'hitl_tasks'::regclass);
        r record;
    BEGIN
        -- pg_catalog first, then only hitl's own schema, pg_temp last (PostgreSQL's "Writing
        -- SECURITY DEFINER Functions Safely"): nothing a caller creates elsewhere is found.
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %s, pg_temp',
                       '{APPEND_SIGNATURE}', home);
        -- Whoever could run the old function may run the new one (PUBLIC excepted: it had
        -- EXECUTE by default, which is exactly what must not carry over).
        FOR r IN SELECT DISTINCT a.grantee FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.oid = '{_OLD_APPEND}'::regprocedure AND a.privilege_type = 'EXECUTE'
                   AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', '{APPEND_SIGNATURE}', pg_get_userbyid(r.grantee));
        END LOOP;
        -- Whoever could read the tasks may read the new table (the store reads it at open).
        FOR r IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                 WHERE c.oid = 'hitl_tasks'::regclass AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner LOOP
            EXECUTE format('GRANT SELECT ON %s.hitl_transitions TO %s', home,
                           CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
        END LOOP;
        -- Nobody but the owner writes hitl's tables any more: take back what the old README's
        -- grants gave (INSERT, UPDATE) and anything else that writes.
        FOR r IN SELECT DISTINCT c.relname, a.grantee FROM pg_class c, aclexplode(c.relacl) a
                 WHERE c.relnamespace = home::regnamespace AND c.relname LIKE 'hitl\\_%' AND c.relkind = 'r'
                   AND a.grantee <> c.relowner AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') LOOP
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s.%I FROM %s', home, r.relname,
                           CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
        END LOOP;
    END
    $mig$;
    DROP FUNCTION {_OLD_APPEND};
    """
    )


MIGRATIONS: Migrations = {
    version: (_migration_2() if version == 2 else script,) for version, script in enumerate(_SCRIPTS, start=1)
}


def grant_sql(role: str, schema: str = "public") -> str:
    """The SQL an administrator runs to let ``role`` use hitl day to day (agents and consoles):
    read hitl's tables and run ``hitl_append``, nothing else. The README's grants are this
    function's output; the tests log in as a role given exactly these."""
    for name in (role, schema):
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ValueError(f"{name!r}: use a plain identifier (letters, digits, underscores)")
    tables = ", ".join(f"{schema}.{t}" for t in TABLES)
    return (
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;\n"
        f"GRANT USAGE ON SCHEMA {schema} TO {role};\n"
        f"GRANT SELECT ON {tables} TO {role};\n"
        f"GRANT EXECUTE ON FUNCTION {schema}.{APPEND_SIGNATURE} TO {role};\n"
    )


# Explicit casts: psycopg picks int2/int4/int8/numeric by a number's size, and the function must
# resolve (and an out-of-range version fail as such) whatever the values are.
_EVENT_COLUMNS_OF_E = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
_GET_SQL = (
    "SELECT CASE WHEN row_number() OVER (ORDER BY e.seq) = 1 THEN t.snapshot END, t.last_seq, "
    f"{_EVENT_COLUMNS_OF_E} FROM hitl_tasks t LEFT JOIN hitl_events e ON e.task_id = t.task_id "
    "WHERE t.task_id = %s ORDER BY e.seq"
)
_APPEND_SQL = (
    "SELECT * FROM hitl_append(%s::text, %s::integer, %s::integer, %s::text, %s::text, %s::text, "
    "%s::text, %s::text, %s::bigint, %s::text, %s::text)"
)
_MAX_BATCH = 256


class _GroupRefused(Exception):
    """A step of an ``append_many`` was refused: roll its transaction back (never leaves the store)."""


def _driver() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise StoreError("the PostgreSQL store needs psycopg 3: pip install 'hitl[postgres]'") from exc
    return psycopg


def _append_params(item: QueuedAppend) -> tuple[Any, ...]:
    """``hitl_append``'s arguments (``_APPEND_SQL``) for one queued append."""
    task_id, *fields = event_fields(item.event)
    return (task_id, item.expected_version, *fields, item.data_json, item.snapshot_json)


def _finish(conn: Any) -> None:
    """Close a connection synchronously, from any thread, with or without its event loop.

    ``AsyncConnection.close()`` does no I/O of its own (it is ``PQfinish``), so this is what it
    does, minus the ``await``: usable from a finalizer or once the connection's loop is gone.
    """
    try:
        conn.pgconn.finish()
    except Exception:  # pragma: no cover - finishing a connection twice or a broken one
        pass


async def _open_connection(
    psycopg: Any, conninfo: str, connect_timeout: float, statement_timeout: float | None, application_name: str
) -> Any:
    conn = await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, connect_timeout=max(1, int(connect_timeout)), application_name=application_name
    )
    try:
        if statement_timeout is not None:
            await conn.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
    except BaseException:
        _finish(conn)
        raise
    return conn


class _Pool:
    """At most ``max_size`` connections for one event loop, made on demand by the task that needs
    one (so a cancellation reaches that task as usual) and kept while idle.

    No background task: when the loop ends, nothing of the pool is left running. A connection is
    reused only if it came back idle (not in a transaction, not broken); anything else is closed.
    """

    def __init__(self, connect: Any, max_size: int, idle_status: Any) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[Any] = []
        self._idle_status = idle_status
        self.closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self.closed:
            raise StoreError("the connection pool is closed")
        async with self._slots:
            if self.closed:
                raise StoreError("the connection pool is closed")
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                conn = await self._connect()
            try:
                yield conn
            finally:
                if conn.closed:
                    # Lost (the server restarted, or the network broke): the idle connections made
                    # before it most likely are too, and each would cost a failed try and a
                    # backoff to find out. Drop them; the next caller connects afresh.
                    self._drop_idle()
                if self.closed or conn.closed or conn.pgconn.transaction_status != self._idle_status:
                    _finish(conn)
                else:
                    self._idle.append(conn)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            _finish(conn)

    def close_now(self) -> None:
        """Close the idle connections at once, synchronously; one in use is closed when its user
        gives it back. (Closing it under its user could pull a socket from under a libpq call
        running on another thread: the synchronous facade's loop runs in one.)"""
        self.closed = True
        self._drop_idle()


async def _close_at_loop_shutdown(pool: _Pool) -> AsyncGenerator[None, None]:
    """An async generator that closes ``pool`` when its loop shuts down.

    ``asyncio.run`` (and ``asyncio.Runner``) call ``loop.shutdown_asyncgens()`` after cancelling
    the remaining tasks and before closing the loop: every async generator still suspended is
    closed then, which runs this ``finally``. It is the one hook asyncio offers at a loop's end.
    """
    try:
        yield
    finally:
        pool.close_now()


class _LoopState:
    """What the store keeps per event loop: its pool and its group-commit queue."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.queue: list[QueuedAppend] = []
        self.flusher: asyncio.Task[None] | None = None
        self.closer: AsyncGenerator[None, None] | None = None


def _close_pools(loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]) -> None:
    """The store's finalizer: it was garbage-collected without ``close()``."""
    for state in list(loops.values()):
        state.pool.close_now()


class PostgresStore(Store):
    shared = True
    durable = True
    atomic_batches = True

    def __init__(
        self,
        url: str,
        *,
        pool_max: int = 10,
        statement_timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
        retry_for: float = 60.0,
        poll_interval: float = 1.0,
    ) -> None:
        """``retry_for``: how long an append keeps retrying while the server is unreachable
        before it raises ``StoreError`` (agents wait out a restart; they don't lose a decision).
        ``poll_interval``: how often a follower reads even without a notification."""
        self._psycopg = _driver()
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self._conninfo = url
        self.pool_max = pool_max
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self.retry_for = retry_for
        self.poll_interval = poll_interval
        self._where = self._describe(url)
        #: What the CLI and the console show: the URL without its password (or query string).
        self.url = f"postgresql://{self._where}"
        # Weak keys: a loop that is gone takes its pool's entry with it (and the loop-shutdown hook
        # or the finalizer below has closed that pool's connections).
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        # A store dropped without close() returns its connections when it is collected.
        self._finalizer = weakref.finalize(self, _close_pools, self._loops)
        self._opened = False
        self._closed = False
        #: Why the database can't be reached right now, or None. Operations and followers keep
        #: retrying meanwhile; this is what a console shows in its banner until it clears.
        self.problem: str | None = None

    # -- connection details ----------------------------------------------------------------

    def _describe(self, url: str) -> str:
        """``user@host:port/dbname`` for error messages: everything but the password."""
        try:
            info = self._psycopg.conninfo.conninfo_to_dict(url)
        except Exception as exc:
            raise StoreError(
                f"not a valid PostgreSQL URL ({type(exc).__name__}); expected "
                "postgresql://user:password@host:port/dbname"
            ) from None
        host = info.get("host") or "localhost"
        port = info.get("port") or "5432"
        user = info.get("user")
        return f"{user + '@' if user else ''}{host}:{port}/{info.get('dbname') or ''}"

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    def _error(self, what: str, exc: BaseException) -> StoreError:
        if isinstance(exc, self._psycopg.errors.QueryCanceled):
            return StoreError(
                f"PostgreSQL store at {self._where}: {what} was cancelled by a statement "
                f"timeout (statement_timeout) — the database is overloaded or a lock is "
                f"held; nothing was written by the cancelled statement: {exc}".strip()
            )
        detail = str(exc).strip() or type(exc).__name__
        return StoreError(f"PostgreSQL store at {self._where}: {what} failed: {detail}")

    def _unreachable(self, exc: BaseException) -> str:
        if isinstance(exc, StoreError):
            return str(exc)
        return f"PostgreSQL store at {self._where} is unreachable: {str(exc).strip() or type(exc).__name__}"

    def _is_disconnect(self, exc: BaseException) -> bool:
        pg = self._psycopg
        if isinstance(exc, pg.errors.QueryCanceled):
            return False
        return isinstance(exc, (pg.OperationalError, pg.InterfaceError))

    async def _connect(self, application_name: str = "hitl") -> Any:
        """A new autocommit connection, or ``StoreError`` naming the host (never the password).

        ``application_name`` shows in ``pg_stat_activity``, so an operator can tell hitl's
        followers (``hitl-follow``) from its pooled connections (``hitl``).
        """
        try:
            conn = await self._raw_connect(application_name)
        except Exception as exc:
            raise self._error("connecting", exc) from None
        return conn

    def _raw_connect(self, application_name: str = "hitl") -> Any:
        """A new configured autocommit connection; psycopg's own error when that fails (the
        retry loops tell a refused or lost connection, worth retrying, from the rest)."""
        return _open_connection(
            self._psycopg, self._conninfo, self.connect_timeout, self.statement_timeout, application_name
        )

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            if self._closed:
                raise StoreError(f"PostgreSQL store at {self._where} is closed")
            # The pool must not hold the store (a loop's finalizer holds the pool): it gets what
            # a connection needs, not a bound method, so an unclosed store can be collected.
            connect = functools.partial(
                _open_connection, self._psycopg, self._conninfo, self.connect_timeout, self.statement_timeout, "hitl"
            )
            pool = _Pool(connect, self.pool_max, self._psycopg.pq.TransactionStatus.IDLE)
            state = self._loops[loop] = _LoopState(pool)
            # When this loop is collected without having shut down through asyncio.run (a loop
            # closed by hand), its connections go with it.
            weakref.finalize(loop, pool.close_now)
        return state

    async def _pool(self) -> _Pool:
        state = self._loop_state()
        if state.closer is None:
            state.closer = _close_at_loop_shutdown(state.pool)
            await state.closer.__anext__()  # registers it with the loop's shutdown_asyncgens
        return state.pool

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect once directly (so a bad password or host is a clear error), then migrate."""
        if self._opened:
            return
        self._closed = False
        conn = await self._connect()
        try:
            encoding = (await (await conn.execute("SHOW server_encoding")).fetchone())[0]
            if encoding.upper() not in ("UTF8", "UTF-8"):
                raise StoreError(
                    f"PostgreSQL database {self._where} uses encoding {encoding}; hitl "
                    "needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')"
                )
            await self._migrate(conn)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error("opening the schema", exc) from None
        finally:
            await conn.close()
        await self._pool()
        self._opened = True

    async def _schema_version(self, conn: Any) -> int | None:
        row = await (await conn.execute("SELECT to_regclass('hitl_schema_version') IS NOT NULL")).fetchone()
        if not row[0]:
            return None
        row = await (await conn.execute("SELECT coalesce(max(version), 0) FROM hitl_schema_version")).fetchone()
        return int(row[0])

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"PostgreSQL database {self._where} has hitl schema version {version}, newer "
                f"than this hitl understands ({SCHEMA_VERSION}): upgrade hitl on this host "
                "(the database was migrated by a newer version)"
            )

    async def _migrate(self, conn: Any) -> None:
        version = await self._schema_version(conn)
        if version is not None:
            self._check_version(version)
            if version == SCHEMA_VERSION:
                # The common case: no lock, no DDL, works for a role without CREATE.
                await self._check_transitions(conn)
                return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            version = await self._schema_version(conn)  # another process may have migrated meanwhile
            if version is None:
                await conn.execute(
                    "CREATE TABLE hitl_schema_version (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                )
                version = 0
            self._check_version(version)
            for target, statements in steps(MIGRATIONS, version, SCHEMA_VERSION):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO hitl_schema_version (version) VALUES (%s)", (target,))
                log.info("migrated %s to hitl schema version %d", self._where, target)
        await self._check_transitions(conn)

    async def _check_transitions(self, conn: Any) -> None:
        """The database checks appends against its own copy of the transition table: refuse to
        run if it is not this hitl's (a changed ``TRANSITIONS`` shipped without a migration)."""
        rows = await (await conn.execute("SELECT action, from_state, to_state FROM hitl_transitions")).fetchall()
        if sorted(rows, key=lambda r: (r[0], r[1] or "")) != transition_rows():
            raise StoreError(
                f"PostgreSQL database {self._where}: its transition table (hitl_transitions) differs "
                "from this hitl's, so the database would refuse or allow the wrong moves; this hitl "
                "needs a schema migration that updates it"
            )

    async def close(self) -> None:
        self._closed = True
        running = asyncio.get_running_loop()
        states = list(self._loops.items())
        self._loops.clear()
        for loop, state in states:
            if loop is running and state.flusher is not None and not state.flusher.done():
                # Let queued appends finish on this loop; another loop's (the sync facade's)
                # callers have returned or will get a connection error.
                await asyncio.wait([state.flusher], timeout=self.connect_timeout)
            # Closing is synchronous (no I/O beyond the socket's close), so any loop's pool can
            # be closed from here, whether that loop runs, has stopped or is gone.
            state.pool.close_now()
        self._opened = False

    # -- append: group commit --------------------------------------------------------------

    async def append(self, event: EventRecord, task: TaskRecord, expected_version: int | None) -> None:
        await self._enqueue(QueuedAppend.make(event, task, expected_version))

    async def append_many(self, steps: Sequence[AppendStep]) -> None:
        await self._enqueue(QueuedAppend.make_group(steps))

    async def _enqueue(self, item: QueuedAppend) -> None:
        state = self._loop_state()
        state.queue.append(item)
        if state.flusher is None or state.flusher.done():
            state.flusher = item.loop.create_task(self._flush(state), name="hitl-pg-flush")
        await item.future

    async def _flush(self, state: _LoopState) -> None:
        """Commit whatever is queued, batch after batch, until the queue is empty."""
        while state.queue:
            batch, state.queue = state.queue[:_MAX_BATCH], state.queue[_MAX_BATCH:]
            try:
                await self._commit_batch(batch)
            except BaseException as exc:  # the flusher must never leave a caller hanging
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(
                            exc if isinstance(exc, Exception) else StoreError("the append was cancelled")
                        )
                if not isinstance(exc, Exception):
                    raise

    async def _commit_batch(self, batch: list[QueuedAppend]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay = 0.05
        uncertain = False
        while batch:
            try:
                pool = await self._pool()
                async with pool.connection() as conn:
                    if uncertain:
                        batch = await self._settle_committed(conn, batch)
                        if not batch:
                            return
                    rows = await self._run_batch(conn, batch)
            except Exception as exc:
                if not self._is_disconnect(exc):
                    if len(batch) > 1 and not isinstance(exc, self._psycopg.errors.QueryCanceled):
                        # Find the culprit: the others must not fail with it. (Not for a timeout,
                        # which is the database's state, not one append's: re-running them one by
                        # one would only make each wait out the timeout again.)
                        for item in batch:
                            await self._commit_batch([item])
                        return
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(
                                self._error(f"appending {item.event.action} to task {item.task.task_id!r}", exc)
                            )
                    return
                if loop.time() + delay > deadline:
                    err = self._error(
                        f"appending {len(batch)} transition(s) (retried for "
                        f"{self.retry_for:g}s; the database is unreachable)",
                        exc,
                    )
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(err)
                    return
                log.warning("PostgreSQL store at %s unreachable (%s); retrying in %.2fs", self._where, exc, delay)
                self.problem = self._unreachable(exc)
                uncertain = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0) * (0.8 + 0.4 * random.random())
                continue
            if uncertain:
                self.problem = None
            for item, item_rows in zip(batch, rows, strict=True):
                self._settle(item, item_rows)
            return

    async def _run_batch(self, conn: Any, batch: list[QueuedAppend]) -> list[list[tuple[Any, ...]]]:
        """``hitl_append``'s answer rows for each queued append (one per step it got to)."""
        if any(item.rest for item in batch):
            # ``append_many`` groups: each in a transaction of its own, rolled back at its first
            # refused step, so that a group is all or nothing whatever its neighbours do.
            return [await self._run_group(conn, item) for item in batch]
        if len(batch) == 1:
            cur = await conn.execute(_APPEND_SQL, _append_params(batch[0]))
            return [[await cur.fetchone()]]
        cursors = []
        async with conn.pipeline(), conn.transaction():
            for item in batch:
                cursors.append(await conn.execute(_APPEND_SQL, _append_params(item)))
        return [[await cur.fetchone()] for cur in cursors]

    async def _run_group(self, conn: Any, item: QueuedAppend) -> list[tuple[Any, ...]]:
        if not item.rest:
            return [await (await conn.execute(_APPEND_SQL, _append_params(item))).fetchone()]
        rows: list[tuple[Any, ...]] = []
        try:
            async with conn.transaction():
                for step in item.steps():
                    row = await (await conn.execute(_APPEND_SQL, _append_params(step))).fetchone()
                    rows.append(row)
                    if row[0] != 0:
                        raise _GroupRefused
        except _GroupRefused:
            pass  # rolled back: the refused step's row says why
        return rows

    async def _settle_committed(self, conn: Any, batch: list[QueuedAppend]) -> list[QueuedAppend]:
        """After a lost connection: resolve the appends that did commit, return the rest to retry.

        ``(task_id, version)`` is unique among events, and an event carries its own timestamp,
        action and actor, so an event matching all five is ours.
        """
        remaining = []
        for item in batch:
            rows = []
            for step in item.steps():
                ev = step.event
                row = await (
                    await conn.execute(
                        "SELECT seq, prev_hash, hash FROM hitl_events WHERE task_id = %s AND version = %s "
                        "AND action = %s AND at = %s AND actor_id IS NOT DISTINCT FROM %s",
                        (ev.task_id, ev.version, ev.action, ev.at, ev.actor_id),
                    )
                ).fetchone()
                if row is None:
                    break  # a group commits whole: its first step missing means none did
                rows.append((0, row[0], row[1], row[2], None, None))
            if not rows:
                remaining.append(item)
            else:
                self._settle(item, rows)
        return remaining

    def _settle(self, item: QueuedAppend, rows: list[tuple[Any, ...]]) -> None:
        """Answer ``item`` from ``hitl_append``'s rows: committed if every step's status is 0."""
        if item.future.done():
            return
        steps = item.steps()
        status, _seq, _prev, _hash, current_version, current_state = rows[-1]
        if status == 0 and len(rows) == len(steps):
            for step, row in zip(steps, rows, strict=True):
                step.committed(row[1], row[2], row[3])
            item.future.set_result(None)
            return
        refused = steps[len(rows) - 1]
        if status == 1:
            item.future.set_exception(DuplicateTaskError(refused.task.task_id, current_state))
        else:
            item.future.set_exception(ConflictError(refused.task.task_id, refused.expected_version, current_version))

    # -- reads -----------------------------------------------------------------------------

    async def _read(self, what: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one read, retrying across a lost connection until ``retry_for`` runs out."""
        return (await self._read_together(what, [(sql, params)]))[0]

    async def _read_together(self, what: str, statements: list[tuple[str, Any]]) -> list[list[tuple[Any, ...]]]:
        """Run reads in one round trip, all from one snapshot when there are several (one
        REPEATABLE READ transaction: separate autocommit reads could straddle a commit).
        Retries across a lost connection until ``retry_for`` runs out.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay = 0.05
        while True:
            try:
                pool = await self._pool()
                async with pool.connection() as conn:
                    if len(statements) == 1:
                        results = [await (await conn.execute(*statements[0])).fetchall()]
                    else:
                        async with conn.pipeline():
                            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            cursors = [await conn.execute(sql, params) for sql, params in statements]
                            await conn.execute("COMMIT")
                        results = [await cur.fetchall() for cur in cursors]
                if delay > 0.05:  # it had failed: the database is back
                    self.problem = None
                return results
            except Exception as exc:
                if not self._is_disconnect(exc):
                    raise self._error(what, exc) from None
                if loop.time() + delay > deadline:
                    raise self._error(
                        f"{what} (retried for {self.retry_for:g}s; the database is unreachable)", exc
                    ) from None
                self.problem = self._unreachable(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def get(self, task_id: str) -> TaskRecord | None:
        # One statement, so the snapshot and its history come from one database snapshot; the
        # snapshot text travels once (on the first row), not once per event.
        rows = await self._read(f"reading task {task_id!r}", _GET_SQL, (task_id,))
        if not rows:
            return None
        return record_from_snapshot(
            rows[0][0], rows[0][1], tuple(event_from_row(r[2:]) for r in rows if r[2] is not None)
        )

    async def query(
        self, state: TaskState | Iterable[TaskState] | None = None, limit: int | None = None, after: int | None = None
    ) -> list[TaskRecord]:
        tasks = SQL.tasks_sql(state, limit, after, columns="task_id, snapshot, last_seq")
        if tasks is None:
            return []
        selected, params = tasks
        sql = (
            f"WITH selected AS ({selected}) "
            "SELECT CASE WHEN row_number() OVER (PARTITION BY s.task_id ORDER BY e.seq) = 1 "
            f"THEN s.snapshot END, s.last_seq, {_EVENT_COLUMNS_OF_E} "
            "FROM selected s LEFT JOIN hitl_events e ON e.task_id = s.task_id ORDER BY s.last_seq, e.seq"
        )
        records: list[TaskRecord] = []
        snapshot: tuple[str, int] | None = None
        history: list[EventRecord] = []
        for row in await self._read("querying tasks", sql, params):
            if row[0] is not None:  # the first row of the next task
                if snapshot is not None:
                    records.append(record_from_snapshot(snapshot[0], snapshot[1], tuple(history)))
                snapshot, history = (row[0], row[1]), []
            if row[2] is not None:
                history.append(event_from_row(row[2:]))
        if snapshot is not None:
            records.append(record_from_snapshot(snapshot[0], snapshot[1], tuple(history)))
        return records

    async def events(
        self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None
    ) -> list[EventRecord]:
        sql, params = SQL.events_sql(after_seq, limit, task_id)
        return [event_from_row(r) for r in await self._read("reading events", sql, params)]

    async def last_seq(self) -> int:
        rows = await self._read("reading the last sequence number", SQL.head_sql)
        return chain_head(rows[0] if rows else None)[0]

    async def count_by_state(self) -> dict[TaskState, int]:
        rows = await self._read("counting tasks", SQL.count_by_state_sql)
        return {TaskState(s): int(n) for s, n in rows}

    async def info(self) -> dict[str, Any]:
        """What ``hitl store info`` prints: where the store is, its schema, and its counts."""
        (version,), (server,), (size,), (followers,) = (
            rows[0]
            for rows in await self._read_together(
                "reading store information",
                [
                    ("SELECT coalesce(max(version), 0) FROM hitl_schema_version", None),
                    ("SELECT current_setting('server_version')", None),
                    (
                        "SELECT pg_size_pretty(pg_total_relation_size('hitl_events') "
                        "+ pg_total_relation_size('hitl_tasks'))",
                        None,
                    ),
                    (
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hitl-follow' "
                        "AND datname = current_database()",
                        None,
                    ),
                ],
            )
        )
        counts = await self.count_by_state()
        return {
            "backend": "postgresql",
            "url": self.url,
            "schema_version": version,
            "server_version": server,
            "size": size,
            "followers_connected": followers,
            "pool_max": self.pool_max,
            "statement_timeout_s": self.statement_timeout,
            "tasks": sum(counts.values()),
            "last_seq": await self.last_seq(),
            "by_state": {s.value: n for s, n in counts.items()},
        }

    # -- auditing: replay reads and checkpoints (schema version 2) ---------------------------

    async def tasks_with_events(
        self, after_task_id: str | None = None, limit: int = 500
    ) -> list[tuple[StoredTask, list[EventRecord]]]:
        # One statement, so a page and its events come from one database snapshot; the snapshot
        # text travels once per task (on its first row), not once per event.
        sql = (
            "WITH page AS (SELECT task_id, state, version, last_seq, snapshot FROM hitl_tasks "
            "WHERE %s::text IS NULL OR task_id > %s::text ORDER BY task_id LIMIT %s) "
            "SELECT p.task_id, p.state, p.version, p.last_seq, "
            "CASE WHEN row_number() OVER (PARTITION BY p.task_id ORDER BY e.seq) = 1 THEN p.snapshot END, "
            f"{_EVENT_COLUMNS_OF_E} FROM page p LEFT JOIN hitl_events e ON e.task_id = p.task_id "
            "ORDER BY p.task_id, e.seq"
        )
        rows = await self._read("reading tasks for replay", sql, (after_task_id, after_task_id, limit))
        page: list[tuple[StoredTask, list[EventRecord]]] = []
        for row in rows:
            if row[4] is not None or not page or page[-1][0].task_id != row[0]:
                page.append((StoredTask(row[0], row[1], int(row[2]), int(row[3]), row[4] or ""), []))
            if row[5] is not None:
                page[-1][1].append(event_from_row(row[5:]))
        return page

    async def tasks_without_snapshot(self, limit: int = 10) -> list[str]:
        rows = await self._read("finding events without a task", SQL.tasks_without_snapshot_sql(), (limit,))
        return [r[0] for r in rows]

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        # Retried like a read: a checkpoint written twice after a lost connection is two valid copies.
        await self._read(
            "writing a checkpoint",
            SQL.insert_checkpoint_sql() + " RETURNING id",  # _read fetches a result
            (checkpoint.seq, checkpoint.body, checkpoint.signature),
        )

    async def checkpoints(self) -> list[StoredCheckpoint]:
        return checkpoints_from_rows(await self._read("reading checkpoints", SQL.checkpoints_sql))

    async def append_audit(self, kind: str, actor: str | None, data: dict[str, Any], at: int) -> AuditRecord:
        # Several servers (replicas) may append at once: an advisory lock makes reading the head
        # and inserting after it one step. Not retried: a lost connection is the caller's error.
        pool = await self._pool()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
                head = await (await conn.execute(SQL.audit_head_sql)).fetchone()
                record, row = new_audit_record(head, kind, actor, data, at)
                await conn.execute(SQL.insert_audit_sql(), row)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error("writing an audit record", exc) from None
        return record

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[AuditRecord]:
        sql, params = SQL.audit_sql(after_seq, limit, kind)
        return [audit_record_from_row(r) for r in await self._read("reading audit records", sql, params)]

    # -- follow ----------------------------------------------------------------------------

    async def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        """LISTEN, then read every row after the last one yielded; reconnect and resume on loss.

        A notification only says "something committed"; the rows are always read by sequence
        number, so a notification lost while disconnected (or coalesced, or dropped) costs at
        most ``poll_interval`` of latency, never an event.
        """
        seq = after_seq
        delay = 0.05
        conn: Any = None
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect("hitl-follow")
                        await conn.execute(f"LISTEN {CHANNEL}")
                        if delay > 0.05:  # reconnected after a failure
                            self.problem = None
                        delay = 0.05
                    while True:
                        rows = await (await conn.execute(*SQL.events_sql(seq, 1000))).fetchall()
                        for row in rows:
                            event = event_from_row(row)
                            seq = event.seq
                            yield event
                        if len(rows) < 1000:
                            break
                    # psycopg >= 3.2.4 queues notifications that arrive during the read above,
                    # so this returns at once for them rather than sleeping through them.
                    async for _ in conn.notifies(timeout=self.poll_interval, stop_after=1):
                        pass
                except Exception as exc:
                    if not (self._is_disconnect(exc) or isinstance(exc, StoreError)):
                        raise self._error("following the event log", exc) from None
                    log.warning(
                        "PostgreSQL store at %s: follower lost its connection (%s); reconnecting in %.2fs from seq %d",
                        self._where,
                        exc,
                        delay,
                        seq,
                    )
                    self.problem = self._unreachable(exc)
                    if conn is not None:
                        try:
                            await conn.close()
                        except Exception:
                            pass
                        conn = None
                    await asyncio.sleep(delay)
                    # At most ~2 s between attempts: a server that is back is noticed soon after
                    # (a waiting agent's wake-up waits on it), and one attempt in 2 s costs nothing.
                    delay = min(delay * 2, 2.0) * (0.8 + 0.4 * random.random())
        finally:
            if conn is not None:
                await conn.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore"]
