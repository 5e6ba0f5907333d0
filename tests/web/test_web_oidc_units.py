"""OpenID Connect options and OIDC-linked accounts: bad input is refused with a clear error, before
the server starts or anything is written. (The login itself: test_web_oidc.py, in Chromium.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core.errors import PayloadError
from hitl_core.server.web.accounts import AccountError, WebAccounts
from tests.server.conftest import ROOT, child_env


def hitl(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hitl_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or child_env(),
        cwd=ROOT,
        timeout=60,
    )


def serve(tmp_path: Path, *oidc: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    listen = ("--listen", "127.0.0.1:1", "--tls-cert", "c.pem", "--tls-key", "k.pem")
    return hitl("--store", store, "serve", *listen, "--tokens", str(tmp_path / "tokens.db"), *oidc, env=env)


def test_oidc_issuer_over_plain_http_off_this_machine_is_refused_at_start(tmp_path: Path) -> None:
    done = serve(tmp_path, "--web", "--oidc-issuer", "http://idp.example.com", "--oidc-client-id", "hitl")
    assert done.returncode == 2
    assert "--oidc-issuer 'http://idp.example.com' must be https://" in done.stderr


def test_oidc_client_secret_env_that_is_not_set_is_refused_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in child_env().items() if k != "HITL_NO_SUCH_SECRET"}
    done = serve(
        tmp_path,
        "--web",
        "--oidc-issuer",
        "https://idp.example.com",
        "--oidc-client-id",
        "hitl",
        "--oidc-client-secret-env",
        "HITL_NO_SUCH_SECRET",
        env=env,
    )
    assert done.returncode == 2
    assert "HITL_NO_SUCH_SECRET, which is not set" in done.stderr


def test_oidc_ca_bundle_that_is_no_file_is_refused_at_start(tmp_path: Path) -> None:
    done = serve(
        tmp_path,
        "--web",
        "--oidc-issuer",
        "https://idp.example.com",
        "--oidc-client-id",
        "hitl",
        "--oidc-ca-bundle",
        str(tmp_path / "missing.pem"),
    )
    assert done.returncode == 2
    assert "missing.pem' is not a file" in done.stderr


def test_oidc_without_web_is_refused_at_start(tmp_path: Path) -> None:
    done = serve(tmp_path, "--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "hitl")
    assert done.returncode == 2
    assert "give --web too" in done.stderr


def test_oidc_issuer_without_client_id_is_refused_at_start(tmp_path: Path) -> None:
    done = serve(tmp_path, "--web", "--oidc-issuer", "https://idp.example.com")
    assert done.returncode == 2
    assert "needs both --oidc-issuer URL and --oidc-client-id ID" in done.stderr


def test_user_with_neither_password_nor_oidc_subject_is_refused(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "tokens.db")
    with pytest.raises(PayloadError, match="needs a password or an OpenID Connect subject"):
        accounts.add("carol", "operator", None)
    assert accounts.users() == []


def test_oidc_only_user_with_totp_is_refused(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "tokens.db")
    with pytest.raises(PayloadError, match="TOTP is a second factor of a password"):
        accounts.add("carol", "operator", None, totp=True, oidc_subject="carol-sub")
    assert accounts.users() == []


def test_oidc_subject_linked_to_a_second_user_is_refused_and_that_user_is_not_made(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "tokens.db")
    accounts.add("carol", "operator", None, oidc_subject="shared-sub")
    with pytest.raises(AccountError, match="'shared-sub' is already linked to another user"):
        accounts.add("dave", "admin", None, oidc_subject="shared-sub")
    assert [u.name for u in accounts.users()] == ["carol"]
    user = accounts.oidc_user("shared-sub")
    assert user is not None and user.name == "carol"


def test_removing_a_user_unlinks_their_oidc_subject(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "tokens.db")
    accounts.add("carol", "operator", None, oidc_subject="carol-sub")
    accounts.remove("carol")
    assert accounts.oidc_user("carol-sub") is None
    # the subject may be linked again, to a new account, which does not inherit carol's
    accounts.add("carol2", "observer", None, oidc_subject="carol-sub")
    user = accounts.oidc_user("carol-sub")
    assert user is not None and user.name == "carol2" and user.role.value == "observer"


def test_user_add_with_oidc_subject_asks_no_password_and_ls_shows_the_link(tmp_path: Path) -> None:
    tokens = str(tmp_path / "tokens.db")
    added = hitl("user", "--tokens", tokens, "add", "carol", "--role", "operator", "--oidc-subject", "carol-sub")
    assert added.returncode == 0, added.stderr
    assert "OIDC subject 'carol-sub'" in added.stderr
    listed = hitl("user", "--tokens", tokens, "ls")
    assert listed.stdout.split("\t")[:3] == ["carol", "operator", "oidc:carol-sub"]
    # and no password opens that account
    assert WebAccounts(tokens).check_password("carol", "!oidc-only", None) is None
