"""Bearer tokens for remote callers of ``hitl serve``: created once, stored hashed, revocable.

Where they live: a small SQLite file of their own (``--tokens PATH``, ``$HITL_TOKENS``, else
``hitl-tokens.db`` in the user data directory), not a table in the task store. The same file works
whichever store the server fronts (SQLite or PostgreSQL), needs no migration of the stores that
other code owns, and is read only by the server and by ``hitl token`` on the server's host: an
agent that can write the task store still cannot mint itself an operator token.

A token reads ``hitl_<id>_<secret>``. The id finds the row; the secret is checked against its
argon2id hash. Argon2 is slow on purpose, so a secret that verified once is remembered (as a
SHA-256 digest, in memory) — but the row is read on every request, so a revocation or an expiry
made by another process takes effect at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import platformdirs

from ..errors import HITLError, PayloadError, StoreError

ENV_TOKENS = "HITL_TOKENS"
TOKEN_PREFIX = "hitl_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    impersonate INTEGER NOT NULL DEFAULT 0,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    principal TEXT
)
"""
# Token files made before web sessions had no ``principal`` column: added in place on open.
_MIGRATIONS = (("principal", "ALTER TABLE tokens ADD COLUMN principal TEXT"),)


class Role(StrEnum):
    """What a principal may do. Each role includes the one before it."""

    AGENT = "agent"  # start, ask, resume, complete and fail its own tasks; read them
    OBSERVER = "observer"  # also read every task; decide nothing (a web observer's console)
    OPERATOR = "operator"  # also read every task and decide, as the server's policy allows
    ADMIN = "admin"  # also manage tokens

    def at_least(self, other: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(other)


class TokenError(HITLError):
    """A token that cannot be made or revoked. ``problem_kind`` is its HTTP problem kind."""

    def __init__(self, message: str, problem_kind: str) -> None:
        super().__init__(message)
        self.problem_kind = problem_kind


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    impersonate: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    #: Whom the token acts as, when that is not its name: the web user of a browser session
    #: (``create_session``). Such a token is recorded with source ``web``.
    principal: str | None = None

    @property
    def acts_as(self) -> str:
        return self.principal or self.name

    def status(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def default_tokens_path() -> Path:
    raw = os.environ.get(ENV_TOKENS)
    if raw:
        return Path(raw)
    return Path(platformdirs.user_data_dir("hitl", appauthor=False)) / "hitl-tokens.db"


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` → a positive timedelta; PayloadError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise PayloadError(f"expiry {text!r} is not a positive duration like 30d, 12h, 90m, 2w or 45s")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _info(row: tuple) -> TokenInfo:  # type: ignore[type-arg]
    return TokenInfo(row[0], row[1], Role(row[2]), bool(row[3]), _ts(row[4]), _ts(row[5]), _ts(row[6]), row[7])  # type: ignore[arg-type]


class TokenStore:
    """The token file. Thread-safe: one connection per thread (WAL, busy timeout)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._verified: dict[str, tuple[str, bytes]] = {}  # id -> (secret_hash, sha256(secret))
        self._lock = threading.Lock()
        self._hasher = None
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the table made) once: the server checks a token
        on every request from its event loop, so the check must be one indexed read, not an open."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=True)
            if fresh:
                os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
            for column, statement in _MIGRATIONS:
                if column not in columns:
                    try:
                        conn.execute(statement)
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the token file {self.path}: {exc}") from None
        self._local.conn = conn
        return conn

    def _argon2(self):  # type: ignore[no-untyped-def]
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher()
        return self._hasher

    def create(
        self, name: str, role: Role | str, *, expires: timedelta | None = None, impersonate: bool = False
    ) -> tuple[str, TokenInfo]:
        """A new token; returns (the secret token text, shown once, its info)."""
        return self._create(name, role, expires=expires, impersonate=impersonate, principal=None)

    def create_session(
        self, principal: str, role: Role | str, session_key: str, expires: timedelta
    ) -> tuple[str, TokenInfo]:
        """A short-lived token that acts as the web user ``principal`` for one browser session.

        Its name, ``web:<user>:<session_key>``, cannot be typed into ``hitl token create`` (the
        colon), so no long-lived token can take it; ``revoke_session`` ends it at logout.
        """
        if not isinstance(principal, str) or not _NAME.match(principal):
            raise PayloadError(f"web user name {principal!r} is not a valid principal")
        return self._create(
            f"web:{principal}:{session_key}", role, expires=expires, impersonate=False, principal=principal
        )

    def revoke_session(self, principal: str, session_key: str) -> int:
        """Revoke every live token of ``principal``'s session: ``web:<user>:<key>`` and each
        ``web:<user>:<key>.<tab>``. Returns how many were live."""
        name = f"web:{principal}:{session_key}"
        cur = self._connect().execute(
            "UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND principal = ?"
            " AND (name = ? OR substr(name, 1, ?) = ?)",
            (datetime.now(UTC).isoformat(), principal, name, len(name) + 1, name + "."),
        )
        return cur.rowcount

    def _create(
        self, name: str, role: Role | str, *, expires: timedelta | None, impersonate: bool, principal: str | None
    ) -> tuple[str, TokenInfo]:
        if principal is None and (not isinstance(name, str) or not _NAME.match(name)):
            raise PayloadError(
                f"token name {name!r} must be 1-64 characters: letters, digits, '.', '_', '@', '-', starting with a letter or digit"
            )
        try:
            role = Role(role)
        except ValueError:
            raise PayloadError(f"role {role!r} must be one of {', '.join(r.value for r in Role)}") from None
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        info = TokenInfo(token_id, name, role, impersonate, now, now + expires if expires else None, None, principal)
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO tokens (id, name, role, impersonate, secret_hash, created_at, expires_at, principal)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    name,
                    role.value,
                    int(impersonate),
                    self._argon2().hash(secret),
                    now.isoformat(),
                    info.expires_at.isoformat() if info.expires_at else None,
                    principal,
                ),
            )
        except sqlite3.IntegrityError:
            raise TokenError(
                f"a token named {name!r} already exists (revoke it first, or pick another name)", "duplicate"
            ) from None
        return f"{TOKEN_PREFIX}{token_id}_{secret}", info

    def list(self) -> list[TokenInfo]:
        rows = (
            self._connect()
            .execute(
                "SELECT id, name, role, impersonate, created_at, expires_at, revoked_at, principal"
                " FROM tokens ORDER BY created_at"
            )
            .fetchall()
        )
        return [_info(r) for r in rows]

    def revoke(self, name: str) -> TokenInfo:
        """Revoke by name. The row stays (revoked), so the name stays taken and ``ls`` shows it."""
        conn = self._connect()
        cur = conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (datetime.now(UTC).isoformat(), name),
        )
        if cur.rowcount == 0:
            exists = conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone()
            if exists:
                raise TokenError(f"token {name!r} is already revoked", "conflict")
            raise TokenError(f"no token named {name!r}", "not-found")
        return next(t for t in self.list() if t.name == name)

    def authenticate(self, token: str, *, verify: bool = True) -> TokenInfo | None:
        """The token's info if it is well-formed, known, unrevoked, unexpired and its secret matches.

        ``verify=False``: only a secret verified before (remembered as a digest) is accepted; no
        argon2 check is made (a peer locked out for guessing gets no new answers)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
        if not sep or not secret:
            return None
        try:
            row = (
                self._connect()
                .execute(
                    "SELECT id, name, role, impersonate, created_at, expires_at, revoked_at, principal, secret_hash"
                    " FROM tokens WHERE id = ?",
                    (token_id,),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the token file {self.path}: {exc}") from None
        if row is None:
            return None
        info = _info(row)
        if info.status() != "active":
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        with self._lock:
            known = self._verified.get(token_id)
        if known is not None and known[0] == row[8] and hmac.compare_digest(known[1], digest):
            return info
        if not verify:
            return None
        from argon2.exceptions import VerificationError

        try:
            self._argon2().verify(row[8], secret)
        except VerificationError:
            return None
        with self._lock:
            self._verified[token_id] = (row[8], digest)
        return info
