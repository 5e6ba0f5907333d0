"""Session-bound tokens (a web user's browser console) and the token file's in-place migration."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from hitl_core.errors import PayloadError
from hitl_core.server.auth import Authenticator
from hitl_core.server.tokens import Role, TokenStore

_OLD_SCHEMA = """
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    impersonate INTEGER NOT NULL DEFAULT 0,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
)
"""


def _scope(token: str) -> dict:
    return {"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]}


def test_a_token_file_made_before_session_tokens_still_authenticates_and_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old-tokens.db"
    conn = sqlite3.connect(path)
    conn.execute(_OLD_SCHEMA)
    conn.execute(
        "INSERT INTO tokens (id, name, role, impersonate, secret_hash, created_at) VALUES (?, ?, ?, 0, ?, ?)",
        ("0123456789abcdef", "ci-agent", "agent", PasswordHasher().hash("s3cret"), datetime.now(UTC).isoformat()),
    )
    conn.commit()
    conn.close()
    store = TokenStore(path)
    info = store.authenticate("hitl_0123456789abcdef_s3cret")
    assert info is not None and (info.name, info.role, info.principal) == ("ci-agent", Role.AGENT, None)
    assert [t.name for t in store.list()] == ["ci-agent"]
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(tokens)")}
    assert "principal" in columns
    # a second store (another process) opening the migrated file does not trip over the column
    assert TokenStore(path).authenticate("hitl_0123456789abcdef_s3cret") is not None
    principal = Authenticator(store).authenticate(_scope("hitl_0123456789abcdef_s3cret"))
    assert (principal.name, principal.channel) == ("ci-agent", "token")


def test_a_session_token_acts_as_its_web_user_with_source_web_until_revoked(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    secret, info = store.create_session("alice", Role.OPERATOR, "abc123", timedelta(hours=1))
    assert info.name == "web:alice:abc123" and info.acts_as == "alice"
    principal = Authenticator(store).authenticate(_scope(secret))
    assert (principal.name, principal.role, principal.channel, principal.impersonate) == (
        "alice",
        Role.OPERATOR,
        "web",
        False,
    )
    tab_one, _ = store.create_session("alice", Role.OPERATOR, "abc123.t1", timedelta(hours=1))
    tab_two, _ = store.create_session("alice", Role.OPERATOR, "abc123.t2", timedelta(hours=1))
    other, _ = store.create_session("alice", Role.OPERATOR, "abc1234.t1", timedelta(hours=1))  # another session
    assert store.revoke_session("alice", "abc123") == 3
    assert [store.authenticate(t) for t in (secret, tab_one, tab_two)] == [None, None, None]
    assert store.authenticate(other) is not None
    assert store.revoke_session("alice", "abc123") == 0


def test_a_session_token_expires_with_its_session(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    secret, _ = store.create_session(
        "olga", Role.OBSERVER, "k", timedelta(hours=1)
    )  # expired by hand below: no race with a slow argon2 check
    assert store.authenticate(secret) is not None
    # the row's expiry, moved to the past by hand (as a clock would): refused at the next request
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE tokens SET expires_at = ?", ((datetime.now(UTC) - timedelta(seconds=1)).isoformat(),))
    conn.commit()
    assert store.authenticate(secret) is None


def test_session_token_names_cannot_be_taken_by_a_typed_token_name(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    with pytest.raises(PayloadError, match="token name"):
        store.create("web:alice:abc123", Role.ADMIN)


def test_a_session_token_for_a_malformed_user_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="principal"):
        TokenStore(tmp_path / "tokens.db").create_session("al ice", Role.OPERATOR, "k", timedelta(hours=1))
