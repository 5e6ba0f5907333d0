"""``hitl audit keygen | checkpoint | verify`` through the installed ``hitl`` executable, each in its
own process, against a real SQLite file edited by hand."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from audit_forgery import forge, sqlite_db
from audit_helpers import add_events, blame_mallory, child_env

Hitl = Callable[..., subprocess.CompletedProcess[str]]


def test_keygen_writes_a_private_key_only_its_owner_can_read(hitl: Hitl, tmp_path: Path) -> None:
    result = hitl("audit", "keygen", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    private, public = tmp_path / "hitl-audit.key", tmp_path / "hitl-audit.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert f"wrote {private} (private, mode 0600" in result.stdout


def test_keygen_refuses_to_overwrite_a_key(hitl: Hitl, tmp_path: Path) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    before = (tmp_path / "hitl-audit.key").read_bytes()
    again = hitl("audit", "keygen", "--out", str(tmp_path))
    assert again.returncode == 2
    assert "hitl-audit.key already exists: refusing to overwrite a key" in again.stderr
    assert (tmp_path / "hitl-audit.key").read_bytes() == before


def test_recomputed_chain_fails_verify_pubkey_with_exit_8(
    hitl: Hitl, db_url: str, db_path: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    assert hitl("audit", "keygen", "--out", str(keys)).returncode == 0
    signed = hitl("--store", db_url, "audit", "checkpoint", "--key", str(keys / "hitl-audit.key"))
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith("checkpoint: seq 12, hash ")
    good = hitl("--store", db_url, "audit", "verify", "--pubkey", str(keys / "hitl-audit.pub"))
    assert good.returncode == 0, good.stderr
    assert "ok: 1 checkpoint(s) signed by key " in good.stdout and "vouch for events 1-12" in good.stdout

    conn = sqlite3.connect(db_path)
    forge(sqlite_db(conn), blame_mallory)
    conn.close()

    plain = hitl("--store", db_url, "audit", "verify")
    assert plain.returncode == 0, "without the key the forgery passes: that is what checkpoints are for"
    caught = hitl("--store", db_url, "audit", "verify", "--pubkey", str(keys / "hitl-audit.pub"))
    assert caught.returncode == 8
    assert caught.stdout == ""
    assert caught.stderr.startswith("hitl: audit verify FAILED: event 12 has hash ")
    assert (
        "the log up to seq 12 was rewritten (its chain recomputed, or events removed and renumbered)" in caught.stderr
    )
    assert "Traceback" not in caught.stderr


def test_snapshot_only_edit_fails_verify_with_exit_8_naming_task_and_field(
    hitl: Hitl, db_url: str, db_path: Path
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE tasks SET snapshot = json_set(snapshot, '$.state', 'approved') WHERE task_id = 't2'")
    conn.commit()
    conn.close()
    result = hitl("--store", db_url, "audit", "verify")
    assert result.returncode == 8
    assert result.stderr == (
        "hitl: audit verify FAILED: task 't2' snapshot was edited: state is \"approved\", "
        'its events say "awaiting_approval"\n'
    )


def test_checkpoint_with_a_key_others_can_read_is_refused(hitl: Hitl, db_url: str, tmp_path: Path) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    (tmp_path / "hitl-audit.key").chmod(0o644)
    result = hitl("--store", db_url, "audit", "checkpoint", "--key", str(tmp_path / "hitl-audit.key"))
    assert result.returncode == 2
    assert "is readable by others (mode 0644): the checkpoint key must be 0600" in result.stderr


def test_verify_given_the_private_key_as_pubkey_says_so(hitl: Hitl, db_url: str, tmp_path: Path) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    result = hitl("--store", db_url, "audit", "verify", "--pubkey", str(tmp_path / "hitl-audit.key"))
    assert result.returncode == 2
    assert "is not a PEM public key (that is the private key: pass the .pub file)" in result.stderr


def test_verify_with_a_missing_key_file_says_so(hitl: Hitl, db_url: str, tmp_path: Path) -> None:
    result = hitl("--store", db_url, "audit", "verify", "--pubkey", str(tmp_path / "nope.pub"))
    assert result.returncode == 2 and f"no key file at {tmp_path / 'nope.pub'}" in result.stderr


def test_expect_checkpoint_at_without_pubkey_is_a_usage_error(hitl: Hitl, db_url: str) -> None:
    result = hitl("--store", db_url, "audit", "verify", "--expect-checkpoint-at", "12")
    assert result.returncode == 2 and "--expect-checkpoint-at needs --pubkey" in result.stderr


def test_checkpoint_of_an_empty_store_is_refused(hitl: Hitl, tmp_path: Path) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = hitl("--store", url, "audit", "checkpoint", "--key", str(tmp_path / "hitl-audit.key"))
    assert result.returncode == 8 and "the store has no events yet: nothing to checkpoint" in result.stderr


def test_verify_pubkey_says_how_many_events_no_checkpoint_covers_yet(hitl: Hitl, db_url: str, tmp_path: Path) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    assert hitl("--store", db_url, "audit", "checkpoint", "--key", str(tmp_path / "hitl-audit.key")).returncode == 0
    asyncio.run(add_events(db_url))
    result = hitl("--store", db_url, "audit", "verify", "--pubkey", str(tmp_path / "hitl-audit.pub"))
    assert result.returncode == 0, result.stderr
    assert "vouch for events 1-12; 2 later event(s) are not checkpointed yet" in result.stdout


def test_cryptography_is_loaded_only_when_a_key_is_used(db_url: str) -> None:
    """Plain ``verify`` (what agents' hosts run) never imports cryptography; a key's use does."""
    probe = (
        "import asyncio, sys\n"
        "from hitl_core import HITLStateMachine, audit\n"
        "async def main():\n"
        f"    async with HITLStateMachine({db_url!r}, load_entrypoints=False) as m:\n"
        "        assert (await audit.verify(m.store)).ok\n"
        "asyncio.run(main())\n"
        "print('cryptography' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=child_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_deleted_checkpoint_fails_verify_when_the_verifier_expects_it(
    hitl: Hitl, db_url: str, db_path: Path, tmp_path: Path
) -> None:
    assert hitl("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    assert hitl("--store", db_url, "audit", "checkpoint", "--key", str(tmp_path / "hitl-audit.key")).returncode == 0
    asyncio.run(add_events(db_url))
    assert hitl("--store", db_url, "audit", "checkpoint", "--key", str(tmp_path / "hitl-audit.key")).returncode == 0
    conn = sqlite3.connect(db_path)
    conn.execute("DELETE FROM checkpoints WHERE seq = 14")  # the newest: nothing follows it
    conn.commit()
    conn.close()
    pubkey = str(tmp_path / "hitl-audit.pub")
    assert hitl("--store", db_url, "audit", "verify", "--pubkey", pubkey).returncode == 0, "unseen without a note"
    result = hitl("--store", db_url, "audit", "verify", "--pubkey", pubkey, "--expect-checkpoint-at", "14")
    assert result.returncode == 8
    assert result.stderr == (
        "hitl: audit verify FAILED: no valid checkpoint at seq 14 (expected by --expect-checkpoint-at): "
        "it was deleted from the store, or never made\n"
    )
