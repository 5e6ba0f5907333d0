"""Local web accounts, browser sessions, used action links and the server's link key.

They live in the server's token file (``tokens.py``), in tables of their own: the same file the
server alone reads, whichever store it fronts. A web user's name is the identity the API and the
audit trail use: ``alice`` logged in through the browser decides as ``alice`` (source ``web``),
exactly as a token named ``alice`` would.

- Passwords: argon2id hashes (``argon2-cffi``, as tokens). TOTP (``pyotp``) is optional per user.
- TOTP codes are single-use: a code (or an older one) that already opened a session is refused.
- Sessions: a random id in an HttpOnly cookie; the table holds only its SHA-256, so somebody who
  reads the file cannot log in as anyone. Each session has an absolute expiry.
- Used links: one row per action link that decided something (its nonce is the primary key), so
  a link is single-use across restarts.
- The link key: 32 random bytes made on first use, never leaving this file.
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
from typing import Any

from ...errors import HITLError, PayloadError, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
#: The password hash of an account that logs in only through OpenID Connect: not an argon2 hash,
#: so every password check of it fails (``InvalidHashError``).
NO_PASSWORD = "!oidc-only"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS web_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        totp_secret TEXT,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
        id_hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS web_used_links (
        nonce TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        used_by TEXT NOT NULL,
        used_at TEXT NOT NULL
    )""",
    # OpenID Connect: the IdP's subject (``sub``) of a local account (``hitl user add --oidc-subject``)
    """CREATE TABLE IF NOT EXISTS web_oidc_subjects (
        subject TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    )""",
    # TOTP codes are single-use (RFC 6238 §5.2): the last time step each user logged in with. A
    # code seen over someone's shoulder or replayed from a captured request within its 30-90 s
    # of validity is refused, as is any code of an earlier step.
    """CREATE TABLE IF NOT EXISTS web_totp_steps (
        name TEXT PRIMARY KEY,
        last_step INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS web_keys (
        name TEXT PRIMARY KEY,
        key BLOB NOT NULL
    )""",
)


class WebRole(StrEnum):
    """What a web user may do: observers read, operators also decide, admins also administer."""

    OBSERVER = "observer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def may_decide(self) -> bool:
        return self is not WebRole.OBSERVER


class AccountError(HITLError):
    """A web account that cannot be made, changed or removed (duplicate, unknown)."""


@dataclass(frozen=True, slots=True)
class WebUser:
    name: str
    role: WebRole
    totp: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    role: WebRole
    id_hash: str
    expires_at: datetime


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class WebAccounts:
    """The web tables of one token file. One connection per thread, as ``TokenStore``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._hasher: Any = None
        self._key: bytes | None = None
        # A hash to verify against for unknown names: a login for a name that does not exist
        # takes as long as one with a wrong password (no user enumeration by timing).
        self._dummy_hash: str | None = None

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            if fresh:
                os.chmod(self.path, 0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the account file {self.path}: {exc}") from None
        self._local.conn = conn
        return conn

    def _argon2(self) -> Any:
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher()
        return self._hasher

    # -- accounts ------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        role: WebRole | str,
        password: str | None,
        *,
        totp: bool = False,
        oidc_subject: str | None = None,
    ) -> str | None:
        """Make a user; returns its TOTP secret (base32, shown once) when ``totp``.

        ``oidc_subject`` links the account to the identity provider's ``sub``; such an account
        may have no password (``None``): it then logs in only through the provider."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise PayloadError(
                f"user name {name!r} must be 1-64 characters: letters, digits, '.', '_', '@', '-',"
                " starting with a letter or digit"
            )
        try:
            role = WebRole(role)
        except ValueError:
            raise PayloadError(f"role {role!r} must be one of {', '.join(r.value for r in WebRole)}") from None
        if password is None and not oidc_subject:
            raise PayloadError("a web user needs a password or an OpenID Connect subject (--oidc-subject)")
        if password is None and totp:
            raise PayloadError("TOTP is a second factor of a password: an OIDC-only user has no password")
        if password is not None and len(password) < MIN_PASSWORD:
            raise PayloadError(f"the password must be at least {MIN_PASSWORD} characters")
        if oidc_subject is not None and not (0 < len(oidc_subject) <= 255 and oidc_subject.isprintable()):
            raise PayloadError(f"OIDC subject {oidc_subject!r} must be 1-255 printable characters")
        secret = None
        if totp:
            import pyotp

            secret = pyotp.random_base32()
        password_hash = self._argon2().hash(password) if password is not None else NO_PASSWORD
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO web_users (name, role, password_hash, totp_secret, created_at) VALUES (?, ?, ?, ?, ?)",
                    (name, role.value, password_hash, secret, datetime.now(UTC).isoformat()),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"a web user named {name!r} already exists") from None
            if oidc_subject is not None:
                try:
                    conn.execute("INSERT INTO web_oidc_subjects (subject, name) VALUES (?, ?)", (oidc_subject, name))
                except sqlite3.IntegrityError:
                    raise AccountError(f"OIDC subject {oidc_subject!r} is already linked to another user") from None
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return secret

    def remove(self, name: str) -> None:
        """Remove a user and end every session of theirs at once."""
        conn = self._connect()
        if conn.execute("DELETE FROM web_users WHERE name = ?", (name,)).rowcount == 0:
            raise AccountError(f"no web user named {name!r}")
        conn.execute("DELETE FROM web_sessions WHERE name = ?", (name,))
        conn.execute("DELETE FROM web_oidc_subjects WHERE name = ?", (name,))
        conn.execute("DELETE FROM web_totp_steps WHERE name = ?", (name,))

    def users(self) -> list[WebUser]:
        rows = self._connect().execute(
            "SELECT name, role, totp_secret IS NOT NULL, created_at FROM web_users ORDER BY name"
        )
        return [WebUser(r[0], WebRole(r[1]), bool(r[2]), datetime.fromisoformat(r[3])) for r in rows]

    def user(self, name: str) -> WebUser | None:
        row = (
            self._connect()
            .execute("SELECT name, role, totp_secret IS NOT NULL, created_at FROM web_users WHERE name = ?", (name,))
            .fetchone()
        )
        return WebUser(row[0], WebRole(row[1]), bool(row[2]), datetime.fromisoformat(row[3])) if row else None

    def oidc_user(self, subject: str) -> WebUser | None:
        """The account linked to the identity provider's subject ``sub``, if any."""
        row = self._connect().execute("SELECT name FROM web_oidc_subjects WHERE subject = ?", (subject,)).fetchone()
        return self.user(row[0]) if row else None

    def has_password(self, name: str) -> bool:
        row = self._connect().execute("SELECT password_hash FROM web_users WHERE name = ?", (name,)).fetchone()
        return row is not None and row[0] != NO_PASSWORD

    def oidc_subject(self, name: str) -> str | None:
        """The subject linked to the account ``name``, if any."""
        row = self._connect().execute("SELECT subject FROM web_oidc_subjects WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def check_password(self, name: str, password: str, totp_code: str | None) -> WebUser | None:
        """The user, when the password (and the TOTP code, if the user has TOTP) are right."""
        from argon2.exceptions import InvalidHashError, VerificationError

        row = (
            self._connect()
            .execute("SELECT name, role, password_hash, totp_secret, created_at FROM web_users WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            if self._dummy_hash is None:
                self._dummy_hash = self._argon2().hash(secrets.token_hex(16))
            try:
                self._argon2().verify(self._dummy_hash, password)
            except VerificationError:
                pass
            return None
        try:
            self._argon2().verify(row[2], password)
        except (VerificationError, InvalidHashError):
            return None
        if row[3] is not None and not self._use_totp_step(row[0], row[3], totp_code):
            return None
        return WebUser(row[0], WebRole(row[1]), row[3] is not None, datetime.fromisoformat(row[4]))

    def _use_totp_step(self, name: str, secret: str, code: str | None, now: datetime | None = None) -> bool:
        """Whether ``code`` is the user's code for a time step within one of now (clock drift) and
        later than any step they logged in with before; that step is then used up.

        The compare-and-set is one statement, so two logins racing with one code (two server
        threads, a replayed request) cannot both win.
        """
        import pyotp

        code = (code or "").strip()
        if not (code.isascii() and code.isdigit()):  # compare_digest takes ASCII text only
            return False
        totp = pyotp.TOTP(secret)
        when = now or datetime.now(UTC)
        current = totp.timecode(when)
        step = next(
            (
                current + offset
                for offset in (-1, 0, 1)
                if hmac.compare_digest(totp.at(when, counter_offset=offset), code)
            ),
            None,
        )
        if step is None:
            return False
        used = self._connect().execute(
            "INSERT INTO web_totp_steps (name, last_step) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
            " SET last_step = excluded.last_step WHERE excluded.last_step > web_totp_steps.last_step",
            (name, step),
        )
        return used.rowcount == 1

    # -- sessions ------------------------------------------------------------------------------

    def open_session(self, user: WebUser, lifetime: timedelta) -> str:
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        self._connect().execute(
            "INSERT INTO web_sessions (id_hash, name, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (_hash_id(session_id), user.name, now.isoformat(), (now + lifetime).isoformat()),
        )
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        """The live session for this cookie value: known, unexpired, its user still there."""
        if not session_id or len(session_id) > 200:
            return None
        row = (
            self._connect()
            .execute(
                "SELECT s.name, u.role, s.id_hash, s.expires_at FROM web_sessions s"
                " JOIN web_users u ON u.name = s.name WHERE s.id_hash = ?",
                (_hash_id(session_id),),
            )
            .fetchone()
        )
        if row is None:
            return None
        expires = datetime.fromisoformat(row[3])
        if expires <= datetime.now(UTC):
            self._connect().execute("DELETE FROM web_sessions WHERE id_hash = ?", (row[2],))
            return None
        return Session(row[0], WebRole(row[1]), row[2], expires)

    def close_session(self, session: Session) -> None:
        self._connect().execute("DELETE FROM web_sessions WHERE id_hash = ?", (session.id_hash,))

    # -- the link key and used links ------------------------------------------------------------

    def key(self) -> bytes:
        """The HMAC key of action links and CSRF tokens, made once (atomically) and kept here."""
        if self._key is None:
            conn = self._connect()
            conn.execute("INSERT OR IGNORE INTO web_keys (name, key) VALUES ('links', ?)", (secrets.token_bytes(32),))
            self._key = bytes(conn.execute("SELECT key FROM web_keys WHERE name = 'links'").fetchone()[0])
        return self._key

    def csrf_token(self, session: Session) -> str:
        """The session's CSRF token: derived from the session, so nothing more is stored."""
        return hmac.new(self.key(), b"csrf|" + session.id_hash.encode(), hashlib.sha256).hexdigest()

    def claim_link(self, nonce: str, task_id: str, user: str) -> bool:
        """Mark a link used; False when it already was (the primary key makes this atomic)."""
        try:
            self._connect().execute(
                "INSERT INTO web_used_links (nonce, task_id, used_by, used_at) VALUES (?, ?, ?, ?)",
                (nonce, task_id, user, datetime.now(UTC).isoformat()),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def release_link(self, nonce: str) -> None:
        """Un-claim a link whose decision did not happen (refused by the policy, a conflict)."""
        self._connect().execute("DELETE FROM web_used_links WHERE nonce = ?", (nonce,))

    def link_used(self, nonce: str) -> tuple[str, str] | None:
        """(by whom, when) a link was used, or None."""
        row = (
            self._connect().execute("SELECT used_by, used_at FROM web_used_links WHERE nonce = ?", (nonce,)).fetchone()
        )
        return (row[0], row[1]) if row else None
