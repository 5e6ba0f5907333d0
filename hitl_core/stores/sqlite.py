"""The SQLite store: durable, one file, safe for many processes on one host (the embedded default).

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, or ``sqlite://`` for the
default file under the user data directory (``default_store_url``). Query options:
``busy_timeout`` (ms a writer waits for another process's lock, default 5000), ``synchronous``
(``NORMAL`` by default, or ``FULL``), ``poll_ms`` / ``max_poll_ms`` (how often ``follow`` checks
for other processes' commits: every 10 ms after activity, backing off to every 40 ms when idle).

Durability, exactly: WAL journal with ``synchronous=NORMAL``. A commit is in the WAL before
``append`` returns, so it survives ``kill -9`` of any process at any moment; a torn write is never
visible (SQLite's WAL frames are checksummed and a transaction without its commit frame is
ignored). After an OS crash or power loss the last commits before the next checkpoint may be
lost; ``?synchronous=FULL`` closes that window at the cost of an fsync per commit (group).

Writes, and why this way: a short transaction costs tens of microseconds, less than handing it to
a thread and back (which also fights over the GIL), so appends are committed inline on the event
loop — all the appends made in one turn of the loop in one transaction (group commit), none
answered before that transaction has committed, a compare-and-set failure failing only its own
append. But waiting for another process's write lock could take up to ``busy_timeout`` and must
never freeze the loop: the inline connection does not wait at all (busy timeout 0), and a batch
that finds the database locked goes to a writer thread that waits, retries through SQLite's busy
handler and then fails with a clear ``StoreError``. WAL checkpoints (which flush to disk) also run
on that thread. Reads are short indexed lookups run inline on a per-thread connection (WAL
readers never wait for writers).

Change detection for ``follow``: ``PRAGMA data_version`` on the reader connection, polled; it
changes when any other connection commits — including this store's own writers, whose commits
also wake local followers at once.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from ..errors import ConflictError, DuplicateTaskError, HITLError, StoreError
from ..models import TaskState
from ..records import EventRecord, TaskRecord
from .base import AppendStep, AuditRecord, Store, StoredCheckpoint, StoredTask, audit_record_from_row
from .sql import (
    EVENT_COLUMNS,
    Dialect,
    Migrations,
    QueuedAppend,
    chain_hash,
    chain_head,
    checkpoints_from_rows,
    event_fields,
    event_from_row,
    new_audit_record,
    record_from_snapshot,
    steps,
)

T = TypeVar("T")

#: The schema this code writes. Opening a file with a higher ``PRAGMA user_version`` is refused.
SCHEMA_VERSION = 3
#: ``PRAGMA application_id`` of a hitl database ("hitl" in ASCII): tells ours from other SQLite files.
APPLICATION_ID = 0x6869746C

#: Forward migrations: ``MIGRATIONS[n]`` takes a database from version n - 1 to n (``sql.steps``).
MIGRATIONS: Migrations = {
    1: (
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            actor_id TEXT,
            actor_source TEXT,
            at INTEGER NOT NULL,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            UNIQUE (task_id, version)
        )""",
        """CREATE TABLE tasks (
            task_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            version INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            snapshot TEXT NOT NULL
        )""",
        "CREATE INDEX tasks_by_state ON tasks (state, last_seq)",
    ),
    # Signed checkpoints of the chain head (``hitl audit checkpoint``; ``hitl_core.audit``).
    2: (
        """CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
    ),
    # The server's audit chain (refusals, applied policies): ``Store.append_audit``.
    3: (
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            actor TEXT,
            at INTEGER NOT NULL,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_kind ON audit (kind, seq)",
    ),
}

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_POLL_MS = 10
#: An idle follower backs off to this: a few wake-ups a second cost little, and a person's decision
#: still reaches the waiting agent well within 50 ms.
DEFAULT_MAX_POLL_MS = 40
#: Most appends one group commit takes: bounds how long one transaction holds the write lock.
MAX_BATCH = 256
#: Task snapshots (with history) kept in memory; a hit costs one indexed version lookup. Sized so
#: that a listing of 10,000 waiting tasks is served from memory after its first read.
CACHE_SIZE = 16384
#: Inline commits between two passive WAL checkpoints run by the writer thread.
CHECKPOINT_EVERY = 256
#: After a checkpoint the WAL file is cut back to this many bytes when it is reused.
WAL_SIZE_LIMIT = 16 * 1024 * 1024

# The chain head is read inside the write lock: the last event is it (nobody appends meanwhile).
SQL = Dialect("?", prefix="", head_sql="SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
SQL_PENDING = "SELECT task_id, version, last_seq, snapshot FROM tasks WHERE state = ? ORDER BY last_seq"
_SQL_GET = "SELECT version, last_seq, snapshot FROM tasks WHERE task_id = ?"
_SQL_VERSION = "SELECT version FROM tasks WHERE task_id = ?"
_SQL_HISTORY = f"SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ? AND seq <= ? ORDER BY version"
_SQL_INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_INSERT_TASK = "INSERT INTO tasks (task_id, state, version, last_seq, snapshot) VALUES (?, ?, ?, ?, ?)"
_SQL_UPDATE_TASK = (
    "UPDATE tasks SET state = ?, version = ?, last_seq = ?, snapshot = ? WHERE task_id = ? AND version = ?"
)
_OPTIONS = {"busy_timeout", "synchronous", "poll_ms", "max_poll_ms"}


def default_store_path() -> Path:
    import platformdirs

    return platformdirs.user_data_path("hitl") / "hitl.db"


def default_store_url() -> str:
    """Where the CLI and the console keep tasks when neither ``--store`` nor ``HITL_STORE`` says."""
    return "sqlite:///" + str(default_store_path())


def parse_sqlite_url(url: str) -> tuple[Path, dict[str, str], bool]:
    """(absolute path, options, is_default_path) for a ``sqlite://`` URL, or ``StoreError``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path.db)")
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _OPTIONS
    if unknown:
        raise StoreError(
            f"unknown option(s) {', '.join(sorted(unknown))} in {url!r}; known: {', '.join(sorted(_OPTIONS))}"
        )
    if rest in ("", "/"):
        return default_store_path(), options, True
    if not rest.startswith("/"):
        raise StoreError(
            f"{url!r}: a SQLite URL has three slashes before a relative path "
            "(sqlite:///hitl.db) and four before an absolute one (sqlite:////var/hitl.db)"
        )
    raw = unquote(rest[1:])
    if raw == ":memory:" or raw.startswith("file:"):
        raise StoreError(
            f"{url!r}: an in-memory SQLite database cannot be shared between connections; "
            "use memory:// for a store that lives in this process only"
        )
    path = Path(raw).expanduser().absolute()
    # Only the default file's directory is created on demand: a typo in an explicit path should
    # be an error, not a new directory tree.
    return path, options, path == default_store_path()


def _int_option(options: dict[str, str], name: str, default: int, url: str) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StoreError(f"{url!r}: {name} must be a non-negative integer, got {raw!r}")
    return value


_CHECKPOINT = object()  # a writer-thread request to checkpoint the WAL


class _LazyHistory:
    """A task's events (up to one version), read from the database the first time they are used.

    Behaves as the tuple it stands for wherever records are used: iteration, ``len``, indexing,
    unpacking into a new history. Events never change once committed, so reading later is the
    same as reading now.
    """

    __slots__ = ("_events", "_last_seq", "_store", "_task_id")

    def __init__(self, store: SqliteStore, task_id: str, last_seq: int) -> None:
        self._store: SqliteStore | None = store
        self._task_id = task_id
        self._last_seq = last_seq
        self._events: tuple[EventRecord, ...] | None = None

    def _load(self) -> tuple[EventRecord, ...]:
        if self._events is None:
            assert self._store is not None
            self._events = self._store._history(self._task_id, self._last_seq)
            self._store = None
        return self._events

    def __iter__(self) -> Iterator[EventRecord]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return True  # a stored task has at least the event that created it

    def __getitem__(self, index: Any) -> Any:
        return self._load()[index]


#: The states whose listing a store keeps in memory (``_LiveViews``): the ones a task leaves again.
#: Finished tasks pile up without bound, so their listings are read from the database each time.
LIVE_STATES = frozenset(s for s in TaskState if not s.terminal)
#: More new events than this since a live view was last brought up to date: read it afresh instead.
VIEW_REBUILD_AFTER = 20_000
_STATE_OF = {s.value: s for s in TaskState}


class _LiveViews:
    """The ids of the tasks in each live state, least recently changed first, as of event ``seq``.

    Why: ``get_pending_approvals()`` with 10,000 tasks waiting read 10,000 rows every call (~15 ms
    in ``sqlite3`` alone, before anything was built). The view is read once from the tasks table
    and then kept current from the events committed since — by any process: it follows the log,
    like the follower does — so a listing reads only what changed since the last one.

    Only ever used with ``lock`` held and inside one read transaction, so ``seq`` and the rows read
    agree with the snapshot the listing returns.
    """

    __slots__ = ("by_state", "lock", "seq", "where")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = -1  # not read yet
        #: state -> {task id: (version, last_seq)}, in last_seq order (dicts keep insertion order)
        self.by_state: dict[TaskState, dict[str, tuple[int, int]]] = {s: {} for s in LIVE_STATES}
        self.where: dict[str, TaskState] = {}  # task id -> its live state

    def bring_up_to_date(self, conn: sqlite3.Connection) -> None:
        head = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        if head == self.seq:
            return
        if self.seq >= 0 and head > self.seq:
            rows = conn.execute(
                "SELECT seq, task_id, version, to_state FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (self.seq, VIEW_REBUILD_AFTER + 1),
            ).fetchall()
            if len(rows) <= VIEW_REBUILD_AFTER:
                self._apply(rows)
                self.seq = head
                return
        self._read_all(conn, head)

    def _apply(self, rows: list[tuple[int, str, int, str]]) -> None:
        by_state, where = self.by_state, self.where
        for seq, task_id, version, to_state in rows:
            old = where.pop(task_id, None)
            if old is not None:
                del by_state[old][task_id]
            state = _STATE_OF.get(to_state)  # a hand-edited state is in no view (``verify`` reports it)
            if state in LIVE_STATES:
                by_state[state][task_id] = (version, seq)
                where[task_id] = state

    def _read_all(self, conn: sqlite3.Connection, head: int) -> None:
        by_state: dict[TaskState, dict[str, tuple[int, int]]] = {s: {} for s in LIVE_STATES}
        where: dict[str, TaskState] = {}
        marks = ", ".join("?" * len(LIVE_STATES))
        for task_id, state_text, version, last_seq in conn.execute(
            f"SELECT task_id, state, version, last_seq FROM tasks WHERE state IN ({marks}) ORDER BY last_seq",
            [s.value for s in LIVE_STATES],
        ):
            state = _STATE_OF[state_text]
            by_state[state][task_id] = (version, last_seq)
            where[task_id] = state
        self.by_state, self.where, self.seq = by_state, where, head

    def rows(self, states: list[TaskState]) -> list[tuple[str, int, int]]:
        """(task id, version, last_seq) of the tasks in ``states``, least recently changed first."""
        if len(states) == 1:
            return [(task_id, v, seq) for task_id, (v, seq) in self.by_state[states[0]].items()]
        rows = [(task_id, v, seq) for s in states for task_id, (v, seq) in self.by_state[s].items()]
        rows.sort(key=lambda row: row[2])
        return rows


class SqliteStore(Store):
    shared = True
    durable = True
    atomic_batches = True

    def __init__(self, url: str = "sqlite://") -> None:
        self.url = url
        self.path, options, self._default_path = parse_sqlite_url(url)
        self.busy_timeout_ms = _int_option(options, "busy_timeout", DEFAULT_BUSY_TIMEOUT_MS, url)
        self.poll_interval = _int_option(options, "poll_ms", DEFAULT_POLL_MS, url) / 1000 or 0.001
        self.max_poll_interval = max(
            _int_option(options, "max_poll_ms", DEFAULT_MAX_POLL_MS, url) / 1000, self.poll_interval
        )
        synchronous = options.get("synchronous", "NORMAL").upper()
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"{url!r}: synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer_conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[QueuedAppend]] = {}
        self._inline_commits = 0
        #: Transactions committed and appends they held: their ratio is the group-commit batch size.
        self.commits = 0
        self.committed_appends = 0
        self._writer: threading.Thread | None = None
        self._cache: dict[str, TaskRecord] = {}
        self._views = _LiveViews()
        self._followers: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # -- opening ------------------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return StoreError(
                f"{self.path} is not a usable SQLite database ({text}) while {doing}; the file was left as it is"
            )
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{self.path} is locked by another writer for more than "
                f"{self.busy_timeout_ms / 1000:g}s (busy_timeout) while {doing}; "
                "nothing was written, try again"
            )
        if "readonly" in text or "read-only" in text:
            return StoreError(f"{self.path} is read-only ({text}) while {doing}")
        return StoreError(f"SQLite store {self.path}: {text} while {doing}")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_ms / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return conn

    def _check_path(self) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(
                f"{path} is a directory, not a database file: name a file, e.g. sqlite:///{path / 'hitl.db'}"
            )
        parent = path.parent
        if self._default_path:
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the data directory {parent}: {exc.strerror}") from None
        if not parent.is_dir():
            raise StoreError(f"cannot create {path}: the directory {parent} does not exist")
        if path.exists():
            if not os.access(path, os.R_OK | os.W_OK):
                raise StoreError(f"{path} is not readable and writable by this user")
        elif not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create {path}: the directory {parent} is not writable")
        else:
            # Whoever can write the file can decide anything (README, "Trust model"): a new store
            # is the creating user's alone. SQLite gives its -wal and -shm files the database
            # file's permissions, so creating the (empty) file ourselves sets all three.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass  # another process created it first: it is theirs, with their mode
            except OSError as exc:
                raise StoreError(f"cannot create {path}: {exc.strerror}") from None

    def _open_sync(self) -> None:
        self._check_path()
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open or create {self.path}: {exc} (is its directory writable?)") from None
        try:
            self._inspect_and_migrate(conn)
            conn.execute("PRAGMA busy_timeout = 0")  # from now on the writer thread retries itself
        except BaseException:
            conn.close()
            raise
        self._writer_conn = conn
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="hitl-sqlite-writer", daemon=True)
        self._writer.start()

    def _identity(self, conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
        """Application id, schema version and tables, read in one transaction.

        Three autocommit reads are three snapshots: a process creating the store between them
        made a new file look like someone else's database (version 0 read before its commit,
        tables read after it).
        """
        conn.execute("BEGIN")
        try:
            return self._read_identity(conn)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @staticmethod
    def _read_identity(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        }
        return int(app_id), int(version), tables

    def _check_identity(self, app_id: int, version: int, tables: set[str]) -> None:
        if app_id not in (0, APPLICATION_ID) or (version == 0 and tables):
            raise StoreError(
                f"{self.path} is a SQLite database but not a hitl store (tables: "
                f"{', '.join(sorted(tables)) or 'none'}); it was left as it is"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has hitl schema version {version}, newer than this hitl "
                f"understands ({SCHEMA_VERSION}): upgrade hitl to open it"
            )

    def _inspect_and_migrate(self, conn: sqlite3.Connection) -> None:
        # Read before writing anything: a file that is not ours must come out untouched.
        try:
            app_id, version, tables = self._identity(conn)
        except sqlite3.Error as exc:
            raise self._error(exc, "opening it") from None
        self._check_identity(app_id, version, tables)
        try:
            mode = self._retrying_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); is it on a network file system?")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            if version < SCHEMA_VERSION:
                self._migrate(conn)
            conn.execute("SELECT max(seq) FROM events").fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc, "opening it") from None

    def _retrying_busy(self, call: Callable[[], T], *, first: float = 0.001, longest: float = 0.05) -> T:
        """``call``, retried while SQLite answers "locked" or "busy", for up to ``busy_timeout``;
        then the last such error propagates. Sleeps start at ``first`` and grow to ``longest``,
        with jitter so that waiting processes do not retry in step.

        Switching a new file to WAL takes an exclusive lock and SQLite does not always run its busy
        handler for it (two openers of one brand-new file), so the wait is ours.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        delay = first
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                remaining = deadline - time.monotonic()
                if ("locked" not in text and "busy" not in text) or remaining <= 0:
                    raise
                time.sleep(min(delay * (0.5 + random.random()), remaining))
                delay = min(delay * 1.5, longest)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        self._retrying_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            # Another process may have created or migrated the store while we waited for the
            # lock: decide again on what is there now, under the lock.
            app_id, version, tables = self._read_identity(conn)
            self._check_identity(app_id, version, tables)
            for _target, statements in steps(MIGRATIONS, version, SCHEMA_VERSION):
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def open(self) -> None:
        if self._writer is None:
            await asyncio.to_thread(self._open_once)

    def _open_once(self) -> None:
        with self._open_lock:  # two event loops may open the same store at once
            if self._writer is None:
                self._open_sync()

    async def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        # Short-lived processes (a `hitl approve`) never reach CHECKPOINT_EVERY: checkpoint on the
        # way out so that the WAL stays small however many of them run.
        self._queue.put(_CHECKPOINT)
        self._queue.put(None)
        await asyncio.to_thread(writer.join)
        self._fail_leftovers()
        with self._lock:
            readers, self._readers = self._readers, []
            self._local = threading.local()
            self._cache.clear()
            self._views = _LiveViews()  # reopened, the file may be another one
        for conn in readers:
            conn.close()
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    def _fail_leftovers(self) -> None:
        """Answer appends that reached the queue after the writer stopped (a close racing them)."""
        leftovers: list[QueuedAppend] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, QueuedAppend):
                item.error = StoreError(
                    f"the SQLite store {self.path} was closed before this transition was written; nothing was written"
                )
                leftovers.append(item)
        self._deliver(leftovers)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._writer is None:
                raise StoreError(f"the SQLite store {self.path} is not open")
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise self._error(exc, "opening a reader") from None
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading") from None

    # -- writing ------------------------------------------------------------------------------

    async def append(self, event: EventRecord, task: TaskRecord, expected_version: int | None) -> None:
        if self._writer is None:
            await self.open()
        await self._enqueue(QueuedAppend.make(event, task, expected_version))
        self._remember(task)

    async def append_many(self, steps: Sequence[AppendStep]) -> None:
        if self._writer is None:
            await self.open()
        await self._enqueue(QueuedAppend.make_group(steps))
        for _, task, _ in steps:
            self._remember(task)

    async def _enqueue(self, item: QueuedAppend) -> None:
        loop = item.loop
        # Group commit without a thread hop: every append made in this turn of the event loop
        # goes into one transaction, committed at the end of the turn (``_flush``).
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(item)
        # A caller cancelled while waiting stops waiting, not the append: once taken it commits or
        # fails as a whole, and the caller must re-read the task to know which.
        await item.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit this loop's appends inline if the write lock is free right now, else via the thread.

        Inline costs tens of microseconds; waiting for another process's lock could cost up to
        ``busy_timeout`` and must not happen on the event loop, so the inline connection never
        waits (busy_timeout 0) and a busy database hands the batch to the writer thread.
        """
        batch = self._pending.pop(loop, None)
        if not batch:
            return
        if self._writer is None:
            error = StoreError(f"the SQLite store {self.path} was closed")
            for item in batch:
                item.error = error
            _settle(batch)
            return
        conn = self._inline_writer()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            # Locked by another connection (or failing): the writer thread waits or reports.
            for item in batch:
                self._queue.put(item)
            return
        committed = self._write_batch(conn, batch)
        _settle(batch)
        if committed:
            self._wake_followers()
            self._inline_commits += 1
            if self._inline_commits % CHECKPOINT_EVERY == 0:
                self._queue.put(_CHECKPOINT)  # fsyncs of a checkpoint stay off the event loop

    def _inline_writer(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "writer", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._local.writer = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        while True:
            item = get()
            if item is None:
                return
            if item is _CHECKPOINT:
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # a checkpoint is housekeeping; the next one will catch up
                continue
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if more is not _CHECKPOINT:
                    batch.append(more)
            try:
                self._begin_waiting(conn)
            except sqlite3.Error as exc:
                error = self._error(exc, "starting a transaction")
                for item in batch:
                    item.error = error
                committed = False
            else:
                committed = self._write_batch(conn, batch)
            self._deliver(batch)
            if committed:
                self._wake_followers()
            if stop:
                return

    def _begin_waiting(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, retrying while another connection holds the write lock.

        SQLite's own busy handler backs off to sleeps of 25 to 100 ms, far longer than the
        sub-millisecond transactions it waits for; retrying every 0.2 to 5 ms keeps eight
        processes racing on one file fast.
        """
        self._retrying_busy(lambda: conn.execute("BEGIN IMMEDIATE"), first=0.0002, longest=0.005)

    def _write_batch(self, conn: sqlite3.Connection, batch: list[QueuedAppend]) -> bool:
        """Inside an open write transaction: check and write each append, then commit.

        Returns whether anything was committed. A compare-and-set failure fails only its own
        append; an SQLite error rolls the whole transaction back and fails every append in it.
        """
        written: list[QueuedAppend] = []
        try:
            # Read inside the write lock: another process may have appended since our last batch.
            seq, prev = chain_head(conn.execute(SQL.head_sql).fetchone())
            for item in batch:
                steps = item.steps()
                group = len(steps) > 1
                if group:
                    # An ``append_many``: all of its steps or none, whatever its neighbours do.
                    conn.execute("SAVEPOINT hitl_group")
                start = (seq, prev)
                for step in steps:
                    error = self._check_and_set(conn, step, seq + 1)
                    if error is not None:
                        item.error = error
                        break
                    seq += 1
                    fields = event_fields(step.event)
                    digest = chain_hash(prev, seq, fields, step.data_json)
                    conn.execute(_SQL_INSERT_EVENT, (seq, *fields, step.data_json, prev, digest))
                    step.seq, step.prev_hash, step.hash = seq, prev, digest
                    prev = digest
                if item.error is not None:
                    if group:
                        conn.execute("ROLLBACK TO hitl_group")
                        conn.execute("RELEASE hitl_group")
                        seq, prev = start
                    continue
                if group:
                    conn.execute("RELEASE hitl_group")
                written.append(item)
            if not written:
                conn.execute("ROLLBACK")
                return False
            conn.execute("COMMIT")
        except BaseException as exc:  # never leave a transaction open or a caller unanswered
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            error = exc if isinstance(exc, HITLError) else self._error(exc, "committing")
            for item in batch:
                item.error = item.error or error
            return False
        self.commits += 1
        self.committed_appends += sum(len(item.rest) + 1 for item in written)
        # Only now, committed, do the records learn their place in the log.
        for item in written:
            for step in item.steps():
                step.committed(step.seq, step.prev_hash, step.hash)
        return True

    def _check_and_set(self, conn: sqlite3.Connection, step: QueuedAppend, seq: int) -> HITLError | None:
        """Write ``step``'s snapshot if the task is still at the version read; else the error, nothing written.

        The snapshot write is the compare-and-set: one statement that only matches the version the
        caller read (or, for a new task, only inserts a new id).
        """
        task = step.task
        if step.expected_version is None:
            try:
                conn.execute(_SQL_INSERT_TASK, (task.task_id, task.state.value, task.version, seq, step.snapshot_json))
            except sqlite3.IntegrityError:
                return DuplicateTaskError(task.task_id, self._state_in(conn, task.task_id))
            return None
        if (
            conn.execute(
                _SQL_UPDATE_TASK,
                (task.state.value, task.version, seq, step.snapshot_json, task.task_id, step.expected_version),
            ).rowcount
            != 1
        ):
            current = conn.execute(_SQL_VERSION, (task.task_id,)).fetchone()
            return ConflictError(task.task_id, step.expected_version, current[0] if current is not None else None)
        return None

    @staticmethod
    def _state_in(conn: sqlite3.Connection, task_id: str) -> str:
        row = conn.execute("SELECT state FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return str(row[0]) if row is not None else "unknown"

    @staticmethod
    def _deliver(batch: list[QueuedAppend]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[QueuedAppend]] = {}
        for item in batch:
            by_loop.setdefault(item.loop, []).append(item)
        for loop, items in by_loop.items():
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(_settle, items)
                except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
                    pass

    def _wake_followers(self) -> None:
        for loop, flag in list(self._followers):
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(flag.set)
                except RuntimeError:
                    pass

    # -- reading ------------------------------------------------------------------------------

    def _remember(self, record: TaskRecord) -> None:
        cache = self._cache
        with self._lock:
            cache.pop(record.task_id, None)
            cache[record.task_id] = record
            if len(cache) > CACHE_SIZE:
                del cache[next(iter(cache))]

    def _history(self, task_id: str, last_seq: int) -> tuple[EventRecord, ...]:
        return tuple(event_from_row(r, hydrate=True) for r in self._read(_SQL_HISTORY, (task_id, last_seq)))

    async def get(self, task_id: str) -> TaskRecord | None:
        cached = self._cache.get(task_id)
        if cached is not None:
            # The common case (the machine re-reading a task it just wrote): one indexed lookup
            # of the version tells whether the record in memory is still the latest.
            rows = self._read(_SQL_VERSION, (task_id,))
            if rows and rows[0][0] == cached.version:
                return cached
        rows = self._read(_SQL_GET, (task_id,))
        if not rows:
            return None
        _, last_seq, snapshot = rows[0]
        record = record_from_snapshot(snapshot, last_seq, self._history(task_id, last_seq))
        self._remember(record)
        return record

    async def query(
        self, state: TaskState | Iterable[TaskState] | None = None, limit: int | None = None, after: int | None = None
    ) -> list[TaskRecord]:
        states = (
            None if state is None else [TaskState(state)] if isinstance(state, str) else [TaskState(s) for s in state]
        )
        if states is not None and not states:
            return []
        live = states is not None and all(s in LIVE_STATES for s in states)
        selected = None if live else SQL.tasks_sql(state, limit, after, columns="task_id, version, last_seq")
        cache = self._cache
        conn = self._reader()
        try:
            # One read transaction (a WAL snapshot): the ids and the snapshots of the misses agree.
            conn.execute("BEGIN")
            try:
                if selected is None:
                    assert states is not None
                    views = self._views
                    with views.lock:
                        views.bring_up_to_date(conn)
                        rows = views.rows(states)
                    if after is not None:
                        rows = [row for row in rows if row[2] > after]
                    if limit is not None:
                        rows = rows[:limit]
                else:
                    rows = conn.execute(*selected).fetchall()
                # Take the hits now: remembering the misses below may evict them from the bounded
                # cache. Only the misses' snapshots are read and parsed: a listing of thousands
                # of waiting tasks costs one indexed scan of ids and versions when they are known.
                hits: dict[str, TaskRecord] = {}
                missing: list[str] = []
                for task_id, version, _ in rows:
                    c = cache.get(task_id)
                    if c is not None and c.version == version:
                        hits[task_id] = c
                    else:
                        missing.append(task_id)
                snapshots: dict[str, str] = {}
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    snapshots.update(
                        conn.execute(
                            f"SELECT task_id, snapshot FROM tasks WHERE task_id IN ({', '.join('?' * len(chunk))})",
                            chunk,
                        ).fetchall()
                    )
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc, "reading") from None
        records: list[TaskRecord] = []
        for task_id, _version, last_seq in rows:
            cached = hits.get(task_id)
            if cached is not None:
                records.append(cached)
                continue
            # A listing rarely needs each task's history (the console shows one task's at a time):
            # read it when something first iterates it, not for thousands of tasks up front.
            history = _LazyHistory(self, task_id, last_seq)
            record = record_from_snapshot(snapshots[task_id], last_seq, history)
            self._remember(record)
            records.append(record)
        return records

    async def events(
        self, after_seq: int = 0, limit: int | None = None, task_id: str | None = None
    ) -> list[EventRecord]:
        return self._events(after_seq, limit, task_id)

    def _events(self, after_seq: int, limit: int | None, task_id: str | None = None) -> list[EventRecord]:
        return [event_from_row(r) for r in self._read(*SQL.events_sql(after_seq, limit, task_id))]

    async def last_seq(self) -> int:
        return self._read("SELECT max(seq) FROM events")[0][0] or 0

    async def count_by_state(self) -> dict[TaskState, int]:
        return {TaskState(s): n for s, n in self._read(SQL.count_by_state_sql)}

    def _data_version(self) -> int:
        return int(self._read("PRAGMA data_version")[0][0])

    async def follow(self, after_seq: int = 0) -> AsyncIterator[EventRecord]:
        if self._writer is None:
            await self.open()
        loop = asyncio.get_running_loop()
        flag = asyncio.Event()
        entry = (loop, flag)
        with self._lock:
            self._followers = [*self._followers, entry]
        try:
            seq = after_seq
            while True:
                flag.clear()
                version = self._data_version()
                batch = self._events(seq, 1000)
                for event in batch:
                    seq = event.seq
                    yield event
                if len(batch) == 1000:
                    continue
                # Sleep until this process commits (flag) or another connection has (data_version
                # moved): a timer per poll, no task per poll, polling less often the longer it is idle.
                interval = self.poll_interval
                while not flag.is_set():
                    timer = loop.call_later(interval, flag.set)
                    await flag.wait()
                    timer.cancel()
                    if self._data_version() != version:
                        break
                    flag.clear()
                    interval = min(interval * 2, self.max_poll_interval)
        finally:
            with self._lock:
                self._followers = [f for f in self._followers if f is not entry]

    # -- auditing -----------------------------------------------------------------------------

    async def tasks_with_events(
        self, after_task_id: str | None = None, limit: int = 500
    ) -> list[tuple[StoredTask, list[EventRecord]]]:
        if self._writer is None:
            await self.open()
        sql = "SELECT task_id, state, version, last_seq, snapshot FROM tasks"
        params: list[Any] = []
        if after_task_id is not None:
            sql += " WHERE task_id > ?"
            params.append(after_task_id)
        sql += " ORDER BY task_id LIMIT ?"
        params.append(limit)
        conn = self._reader()
        try:
            # One read transaction: a WAL snapshot, so a task committing meanwhile is seen whole or not at all.
            conn.execute("BEGIN")
            try:
                rows = conn.execute(sql, params).fetchall()
                ids = [r[0] for r in rows]
                events = (
                    conn.execute(
                        f"SELECT {EVENT_COLUMNS} FROM events WHERE task_id IN ({', '.join('?' * len(ids))}) ORDER BY seq",
                        ids,
                    ).fetchall()
                    if ids
                    else []
                )
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc, "reading tasks for replay") from None
        by_task: dict[str, list[EventRecord]] = {i: [] for i in ids}
        for row in events:
            by_task[row[1]].append(event_from_row(row))
        return [(StoredTask(str(r[0]), str(r[1]), r[2], r[3], r[4]), by_task[r[0]]) for r in rows]

    async def tasks_without_snapshot(self, limit: int = 10) -> list[str]:
        if self._writer is None:
            await self.open()
        rows = self._read(SQL.tasks_without_snapshot_sql(), (limit,))
        return [str(r[0]) for r in rows]

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        if self._writer is None:
            await self.open()
        await asyncio.to_thread(self._insert_checkpoint, checkpoint)

    def _insert_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        # Rare (an operator's command): its own connection, waiting out other writers' locks.
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(SQL.insert_checkpoint_sql(), (checkpoint.seq, checkpoint.body, checkpoint.signature))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._error(exc, "writing a checkpoint") from None

    async def checkpoints(self) -> list[StoredCheckpoint]:
        if self._writer is None:
            await self.open()
        return checkpoints_from_rows(self._read(SQL.checkpoints_sql))

    async def append_audit(self, kind: str, actor: str | None, data: dict[str, Any], at: int) -> AuditRecord:
        if self._writer is None:
            await self.open()
        return await asyncio.to_thread(self._insert_audit, kind, actor, data, at)

    def _insert_audit(self, kind: str, actor: str | None, data: dict[str, Any], at: int) -> AuditRecord:
        # Rare and bounded by the server (refusals are rate-limited): its own connection, like a
        # checkpoint; BEGIN IMMEDIATE makes reading the head and appending after it one step.
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    head = conn.execute(SQL.audit_head_sql).fetchone()
                    record, row = new_audit_record(head, kind, actor, data, at)
                    conn.execute(SQL.insert_audit_sql(), row)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._error(exc, "writing an audit record") from None
        return record

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None, kind: str | None = None
    ) -> list[AuditRecord]:
        if self._writer is None:
            await self.open()
        sql, params = SQL.audit_sql(after_seq, limit, kind)
        return [audit_record_from_row(r) for r in self._read(sql, params)]

    # -- administration -----------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """What ``hitl store info`` prints: where the file is, its schema and what it holds."""

        def size(path: Path) -> int:
            try:
                return path.stat().st_size
            except OSError:
                return 0

        counts = await self.count_by_state()
        events = self._read("SELECT count(*) FROM events")[0][0]
        return {
            "backend": "sqlite",
            "url": self.url,
            "path": str(self.path),
            "schema_version": self._read("PRAGMA user_version")[0][0],
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": self._read("PRAGMA journal_mode")[0][0],
            "synchronous": self.synchronous,
            "busy_timeout_ms": self.busy_timeout_ms,
            "file_bytes": size(self.path),
            "wal_bytes": size(Path(f"{self.path}-wal")),
            "tasks": sum(counts.values()),
            "events": events,
            "last_seq": await self.last_seq(),
            "by_state": {s.value: n for s, n in counts.items()},
        }


def _settle(items: list[QueuedAppend]) -> None:
    for item in items:
        future = item.future
        if future.done():
            continue
        if item.error is not None:
            future.set_exception(item.error)
        else:
            future.set_result(None)
