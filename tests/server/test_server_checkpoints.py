"""Time-driven work in the server: signed checkpoints with the server-held key
(``--checkpoint-key``, ``--checkpoint-every``) that ``hitl audit verify --pubkey`` accepts; a key
file others may read, or another user owns, refused at start; the server's audit chain (refusals,
policies) walked by ``hitl audit verify``, so a record edited by hand is caught."""

from __future__ import annotations

import os
import pwd
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerFactory, ServerProcess
from .test_server_start import serve

pytestmark = pytest.mark.processes


@pytest.fixture
def keypair(tmp_path: Path, hitl_cli: Any) -> tuple[Path, Path]:
    made = hitl_cli("audit", "keygen", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    return tmp_path / "hitl-audit.key", tmp_path / "hitl-audit.pub"


def verify(server: ServerProcess, pubkey: Path, hitl_cli: Any) -> subprocess.CompletedProcess[str]:
    return hitl_cli("--store", server.store_url, "audit", "verify", "--pubkey", str(pubkey))


def until_verified(server: ServerProcess, pubkey: Path, hitl_cli: Any, covering: int) -> str:
    deadline = time.monotonic() + 120
    while True:
        out = verify(server, pubkey, hitl_cli)
        if out.returncode == 0 and f"vouch for events 1-{covering}\n" in out.stdout:
            return out.stdout
        assert time.monotonic() < deadline, out.stdout + out.stderr
        time.sleep(0.3)


def transitions(server: ServerProcess, task_id: str) -> int:
    with server.unix_client() as c:
        assert c.post(f"/v1/tasks/{task_id}/start", json={}).status_code == 200
        assert c.post(f"/v1/tasks/{task_id}/request", json={"reason": "deploy"}).status_code == 200
        return c.get("/healthz").json()["last_seq"]


def test_the_server_signs_checkpoints_that_verify_with_the_public_key(
    start_server: ServerFactory, keypair: tuple[Path, Path], hitl_cli: Any
) -> None:
    key, pub = keypair
    server = start_server(extra=("--checkpoint-key", str(key), "--checkpoint-every", "1s"))
    first = transitions(server, "cp-1")
    assert "1 checkpoint(s)" in until_verified(server, pub, hitl_cli, first)
    later = transitions(server, "cp-2")  # the next tick signs the new head, after the first one
    assert "2 checkpoint(s)" in until_verified(server, pub, hitl_cli, later)
    # Another key's public half does not vouch for them.
    other = pub.parent / "other"
    other.mkdir()
    assert hitl_cli("audit", "keygen", "--out", str(other)).returncode == 0
    refused = verify(server, other / "hitl-audit.pub", hitl_cli)
    assert refused.returncode != 0 and "signed by another key" in refused.stderr


def test_serve_refuses_a_checkpoint_key_others_may_read(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, _ = keypair
    key.chmod(0o640)
    out = serve("--socket", str(tmp_path / "hitl.sock"), "--checkpoint-key", str(key))
    assert out.returncode == 2 and "must be 0600" in out.stderr
    assert not (tmp_path / "hitl.sock").exists()


def test_serve_refuses_a_checkpoint_key_another_user_owns(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, _ = keypair
    other = next(u for u in pwd.getpwall() if u.pw_uid != os.geteuid())
    os.chown(key, other.pw_uid, -1)
    out = serve("--socket", str(tmp_path / "hitl.sock"), "--checkpoint-key", str(key))
    assert out.returncode == 2 and f"owned by user {other.pw_name}" in out.stderr


def test_serve_refuses_checkpoint_every_without_a_key(tmp_path: Path) -> None:
    out = serve("--socket", str(tmp_path / "hitl.sock"), "--checkpoint-every", "10m")
    assert out.returncode == 2 and "--checkpoint-every needs --checkpoint-key" in out.stderr


def test_audit_verify_catches_an_audit_record_edited_by_hand(start_server: ServerFactory, hitl_cli: Any) -> None:
    server = start_server("[authorization]\nno_self_approval = true\n", listen=True)
    with server.https_client() as c:
        assert c.get("/v1/tasks").status_code == 401  # a refusal: audit record 2 (1 is the policy)
    ok = hitl_cli("--store", server.store_url, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    db = sqlite3.connect(server.store_url.removeprefix("sqlite:///"))
    with db:
        # Hide who was refused: rewrite the record's data, keep its hash.
        db.execute("UPDATE audit SET data = replace(data, '/v1/tasks', '/v1/other') WHERE seq = 2")
    db.close()
    bad = hitl_cli("--store", server.store_url, "audit", "verify")
    assert bad.returncode != 0 and "audit record 2 (refused) was altered" in bad.stderr


def test_a_rehashed_audit_chain_is_caught_by_the_servers_checkpoint(
    start_server: ServerFactory, keypair: tuple[Path, Path], hitl_cli: Any
) -> None:
    """The attacker with write access to the store removes the trace of a refusal and recomputes the
    audit chain's hashes so that it is consistent again: only the signed checkpoint, which fixed
    the audit chain's head, catches it."""
    import json

    from hitl_core.stores.base import audit_hash

    key, pub = keypair
    server = start_server(
        "[authorization]\nno_self_approval = true\n",
        listen=True,
        extra=("--checkpoint-key", str(key), "--checkpoint-every", "1s"),
    )
    with server.https_client("hitl_00000000deadbeef_guess") as c:
        assert c.get("/v1/tasks").status_code == 401  # audit record 2 names the token id tried
    until_verified(server, pub, hitl_cli, transitions(server, "cp-audit"))
    out = verify(server, pub, hitl_cli)
    assert "2 server audit records" in out.stdout
    db = sqlite3.connect(server.store_url.removeprefix("sqlite:///"))
    with db:
        rows = db.execute("SELECT seq, kind, actor, at, data FROM audit ORDER BY seq").fetchall()
        prev = rows[0] and db.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
        seq, kind, actor, at, data = rows[1]
        data = json.loads(data)
        data["token_id"] = "0000000000000000"
        new_hash = audit_hash(prev, seq, kind, actor, at, data)
        db.execute(
            "UPDATE audit SET data = ?, hash = ? WHERE seq = ?",
            (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False), new_hash, seq),
        )
    db.close()
    plain = hitl_cli("--store", server.store_url, "audit", "verify")
    assert plain.returncode == 0, plain.stderr  # consistent again: the chain alone cannot tell
    signed = verify(server, pub, hitl_cli)
    assert signed.returncode != 0 and "the server's audit chain was rewritten" in signed.stderr
