"""One policy: ``hitl policy apply`` stores it (versioned, its sha256 in the audit chain), the server
enforces it at once, ``hitl policy show`` prints it; only an admin may apply; an invalid policy is
refused and the old one stays; a replica or a restart never rolls it back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerFactory, ServerProcess
from .test_server_auth import ask, audit_records, problem

pytestmark = pytest.mark.processes

STRICT = "[authorization]\nno_self_approval = true\n"
LENIENT = "# self-approval allowed\n[authorization]\nno_self_approval = false\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def shown(server: ServerProcess) -> dict[str, Any]:
    with server.unix_client() as c:
        return c.get("/v1/policy").json()


def test_policy_apply_stores_a_new_version_and_the_server_enforces_it(
    start_server: ServerFactory, tmp_path: Path, hitl_cli: Any
) -> None:
    server = start_server(STRICT, listen=True)
    first = shown(server)
    assert first["version"] == 1 and first["hash"] == sha256(STRICT) and first["applied_by"] == "hitl serve --config"
    dana = server.token("dana", "operator")
    ask(server, dana, "self-1")
    with server.https_client(dana) as c:
        problem(c.post("/v1/tasks/self-1/approve", json={}), 403, "not-authorized")

    lenient = tmp_path / "lenient.toml"
    lenient.write_text(LENIENT)
    applied = hitl_cli("--store", server.unix_url, "policy", "apply", str(lenient))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == f"applied: version 2, sha256 {sha256(LENIENT)}"
    # In force at once: the same request the old policy refused is now allowed.
    with server.https_client(dana) as c:
        approved = c.post("/v1/tasks/self-1/approve", json={})
        assert approved.status_code == 200, approved.text

    out = hitl_cli("--store", server.unix_url, "policy", "show")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"version 2\nsha256  {sha256(LENIENT)}\napplied ")
    assert "no_self_approval = false" in out.stdout
    records = [r for r in audit_records(server) if r["kind"] == "policy_applied"]
    assert [(r["data"]["version"], r["data"]["hash"]) for r in records] == [(1, sha256(STRICT)), (2, sha256(LENIENT))]
    assert records[1]["actor"] == "root" and records[1]["data"]["text"] == LENIENT


def test_an_invalid_policy_is_refused_and_the_old_one_stays(
    start_server: ServerFactory, tmp_path: Path, hitl_cli: Any
) -> None:
    server = start_server(STRICT, listen=True)
    admin = server.token("root-admin", "admin")
    with server.https_client(admin) as c:
        for text, why in (
            ("[authorization\n", "not valid TOML"),
            ("[authorization]\nno_self_aproval = true\n", "no_self_aproval"),
            ('[authorization]\nroles_file = "roles.toml"\n', "roles_file"),
        ):
            body = problem(c.put("/v1/policy", json={"text": text}), 422, "invalid")
            assert why in body["detail"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[deadlines]\nsweep_interval = -1\n")
    out = hitl_cli("--store", server.unix_url, "policy", "apply", str(bad))
    assert out.returncode == 2 and "sweep_interval" in out.stderr
    assert shown(server)["version"] == 1 and shown(server)["hash"] == sha256(STRICT)
    assert [r["kind"] for r in audit_records(server)] == ["policy_applied"]
    dana = server.token("dana", "operator")
    ask(server, dana, "self-2")
    with server.https_client(dana) as c:  # still enforced
        problem(c.post("/v1/tasks/self-2/approve", json={}), 403, "not-authorized")


def test_applying_a_policy_needs_the_admin_role(start_server: ServerFactory) -> None:
    server = start_server(STRICT, listen=True)
    for name, role in (("ops", "operator"), ("bot", "agent")):
        with server.https_client(server.token(name, role)) as c:
            body = problem(c.put("/v1/policy", json={"text": LENIENT}), 403, "not-authorized")
            assert "admin role" in body["detail"]
    assert shown(server)["version"] == 1
    refused = [r for r in audit_records(server) if r["kind"] == "refused"]
    assert [(r["actor"], r["data"]["what"]) for r in refused] == [("ops", "apply a policy"), ("bot", "apply a policy")]


def test_a_restart_with_another_config_cannot_roll_the_policy_back(
    start_server: ServerFactory, tmp_path: Path, hitl_cli: Any
) -> None:
    server = start_server(STRICT)
    newer = tmp_path / "newer.toml"
    newer.write_text(LENIENT)
    assert hitl_cli("--store", server.unix_url, "policy", "apply", str(newer)).returncode == 0
    server.stop()
    # The server's own --config file (the old STRICT one) now differs from the policy in force.
    with pytest.raises(AssertionError, match="differs from the policy in force in the store"):
        server.start()
    server.config = None
    server.start()  # without --config: the store's policy
    assert shown(server)["version"] == 2 and shown(server)["hash"] == sha256(LENIENT)
