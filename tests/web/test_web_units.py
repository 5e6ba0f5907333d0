"""The parts under the web pages, without a browser: signed links, accounts, sessions, the CLI."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hitl_core.errors import PayloadError
from hitl_core.models import InterruptPoint, TaskState
from hitl_core.records import TaskRecord
from hitl_core.server.web.accounts import AccountError, WebAccounts, WebRole
from hitl_core.server.web.app import LoginLimiter
from hitl_core.server.web.links import ActionLinkError, check_current, read_link, sign_link
from hitl_core.server.web.pages import text

KEY = b"k" * 32


def waiting(task_id: str = "t1", interrupt_id: str = "i1", fingerprint: str = "f1") -> TaskRecord:
    interrupt = InterruptPoint(reason="r", interrupt_id=interrupt_id, args_fingerprint=fingerprint)
    return TaskRecord(
        task_id=task_id, state=TaskState.AWAITING_APPROVAL, version=2, created_at=0, updated_at=0, interrupt=interrupt
    )


def token_of(path: str) -> str:
    return path.removeprefix("/web/a/")


def test_a_signed_link_reads_back_its_task_interrupt_and_fingerprint() -> None:
    record = waiting()
    link = read_link(KEY, token_of(sign_link(KEY, record.task_id, record.state, record.interrupt)))
    assert (link.task_id, link.interrupt_id, link.args_fingerprint) == ("t1", "i1", "f1")
    assert link.expires - time.time() == pytest.approx(15 * 60, abs=5)
    check_current(link, record)


def test_a_link_signed_with_another_key_is_forged() -> None:
    record = waiting()
    path = sign_link(b"x" * 32, record.task_id, record.state, record.interrupt)
    with pytest.raises(ActionLinkError) as caught:
        read_link(KEY, token_of(path))
    assert caught.value.problem == "forged"


@pytest.mark.parametrize("token", ["", "nodot", "a.b", "é.é", "x" * 5000])
def test_malformed_link_tokens_are_forged(token: str) -> None:
    with pytest.raises(ActionLinkError) as caught:
        read_link(KEY, token)
    assert caught.value.problem == "forged"


def test_an_expired_link_is_refused_even_with_a_good_signature() -> None:
    record = waiting()
    path = sign_link(KEY, record.task_id, record.state, record.interrupt, ttl_seconds=10, now=time.time() - 11)
    with pytest.raises(ActionLinkError) as caught:
        read_link(KEY, token_of(path))
    assert caught.value.problem == "expired"


@pytest.mark.parametrize(
    "now_record",
    [
        waiting(interrupt_id="i2"),
        waiting(fingerprint="f2"),
        waiting().evolve(state=TaskState.APPROVED),
        None,
    ],
    ids=["new-interrupt", "new-args", "decided", "gone"],
)
def test_a_link_to_a_task_that_changed_is_stale(now_record: TaskRecord | None) -> None:
    record = waiting()
    link = read_link(KEY, token_of(sign_link(KEY, record.task_id, record.state, record.interrupt)))
    with pytest.raises(ActionLinkError) as caught:
        check_current(link, now_record)
    assert caught.value.problem == "stale"


def test_no_link_for_a_task_that_is_not_waiting() -> None:
    with pytest.raises(Exception, match="not waiting"):
        sign_link(KEY, "t1", TaskState.RUNNING, None)


def test_untrusted_text_is_html_escaped_and_terminal_escapes_shown() -> None:
    assert text('<script>alert("x")</script>') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert text("\x1b[31mred\u202e") == "\\x1b[31mred\\u202e"
    assert text("a\nb", single_line=False) == "a\nb"


def test_account_names_roles_and_passwords_are_checked(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "t.db")
    with pytest.raises(PayloadError, match="user name"):
        accounts.add("<bad name>", "operator", "long-enough-password")
    with pytest.raises(PayloadError, match="role"):
        accounts.add("ann", "agent", "long-enough-password")
    with pytest.raises(PayloadError, match="at least 10"):
        accounts.add("ann", "operator", "short")
    accounts.add("ann", "operator", "long-enough-password")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("ann", "admin", "long-enough-password")
    assert [(u.name, u.role) for u in accounts.users()] == [("ann", WebRole.OPERATOR)]


def test_password_is_stored_as_argon2_and_checked(tmp_path: Path) -> None:
    import sqlite3

    accounts = WebAccounts(tmp_path / "t.db")
    accounts.add("ann", "observer", "long-enough-password")
    stored = sqlite3.connect(tmp_path / "t.db").execute("SELECT password_hash FROM web_users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "long-enough-password" not in stored
    assert accounts.check_password("ann", "long-enough-password", None) is not None
    assert accounts.check_password("ann", "long-enough-passwore", None) is None
    assert accounts.check_password("nobody", "long-enough-password", None) is None


def test_removing_a_user_ends_their_sessions(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "t.db")
    accounts.add("ann", "operator", "long-enough-password")
    user = accounts.check_password("ann", "long-enough-password", None)
    assert user is not None
    session_id = accounts.open_session(user, timedelta(hours=1))
    assert accounts.session(session_id) is not None
    accounts.remove("ann")
    assert accounts.session(session_id) is None


def test_a_session_past_its_expiry_is_gone(tmp_path: Path) -> None:
    accounts = WebAccounts(tmp_path / "t.db")
    accounts.add("ann", "operator", "long-enough-password")
    user = accounts.check_password("ann", "long-enough-password", None)
    assert user is not None
    session_id = accounts.open_session(user, timedelta(seconds=-1))
    assert accounts.session(session_id) is None


def test_a_link_is_claimed_once_across_two_account_handles(tmp_path: Path) -> None:
    one, two = WebAccounts(tmp_path / "t.db"), WebAccounts(tmp_path / "t.db")
    assert one.claim_link("n1", "t1", "ann")
    assert not two.claim_link("n1", "t1", "bob")
    assert two.link_used("n1")[0] == "ann"  # type: ignore[index]
    assert one.key() == two.key()


def test_login_limiter_locks_after_the_limit_and_forgets_on_success() -> None:
    limiter = LoginLimiter(3, timedelta(minutes=15))
    for _ in range(3):
        assert limiter.locked_for("user:a", 3) == 0
        limiter.failed("user:a")
    assert limiter.locked_for("user:a", 3) > 800
    limiter.succeeded("user:a")
    assert limiter.locked_for("user:a", 3) == 0


def test_serve_web_without_a_tls_listener_is_refused(hitl_cli: Any, tmp_path: Path) -> None:
    result = hitl_cli("--store", f"sqlite:///{tmp_path / 'h.db'}", "serve", "--socket", str(tmp_path / "s"), "--web")
    assert result.returncode == 2
    assert "--web needs --listen" in result.stderr


def test_user_cli_adds_lists_and_removes(hitl_cli: Any, tmp_path: Path) -> None:
    tokens = str(tmp_path / "t.db")
    import sys

    from tests.server.conftest import ROOT, child_env

    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_core.cli",
            "user",
            "--tokens",
            tokens,
            "add",
            "ann",
            "--role",
            "observer",
            "--password-stdin",
            "--totp",
        ],
        input="long-enough-password\n",
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("otpauth://totp/hitl:ann?secret=")
    listed = hitl_cli("user", "--tokens", tokens, "ls")
    assert listed.stdout.split("\t")[:3] == ["ann", "observer", "totp"]
    short = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_core.cli",
            "user",
            "--tokens",
            tokens,
            "add",
            "bo",
            "--role",
            "operator",
            "--password-stdin",
        ],
        input="short\n",
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert short.returncode == 2 and "at least 10" in short.stderr
    assert hitl_cli("user", "--tokens", tokens, "remove", "ann").returncode == 0
    gone = hitl_cli("user", "--tokens", tokens, "remove", "ann")
    assert gone.returncode == 2 and "no web user" in gone.stderr


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.web import conftest

    monkeypatch.setattr(conftest, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run under CI"):
        conftest.chromium_or_skip()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        conftest.chromium_or_skip()


def test_a_totp_code_opens_one_session_and_no_older_code_works_after_it(tmp_path: Path) -> None:
    """RFC 6238 §5.2: a code seen over a shoulder, or a captured login replayed, is refused."""
    import pyotp

    accounts = WebAccounts(tmp_path / "t.db")
    secret = accounts.add("tina", "operator", "long-enough-password", totp=True)
    assert secret is not None
    totp = pyotp.TOTP(secret)
    now = time.time()
    code = totp.at(now)
    assert accounts.check_password("tina", "long-enough-password", code) is not None
    assert accounts.check_password("tina", "long-enough-password", code) is None, "the same code twice"
    assert accounts.check_password("tina", "long-enough-password", totp.at(now - 30)) is None, "an older step"
    # the next step (clock drift allows one ahead) is a new code: it works, once
    following = totp.at(now + 30)
    assert accounts.check_password("tina", "long-enough-password", following) is not None
    assert accounts.check_password("tina", "long-enough-password", following) is None
    # a second handle on the same file (another server thread) sees the step used up too
    assert WebAccounts(tmp_path / "t.db").check_password("tina", "long-enough-password", following) is None
    for bad in (None, "", "12 34 56", "abcdef", "١٢٣٤٥٦", "123456\x00", totp.at(now + 300)):
        assert accounts.check_password("tina", "long-enough-password", bad) is None, bad


def test_two_threads_logging_in_with_one_totp_code_open_one_session(tmp_path: Path) -> None:
    import threading

    import pyotp

    accounts = WebAccounts(tmp_path / "t.db")
    secret = accounts.add("tina", "operator", "long-enough-password", totp=True)
    assert secret is not None
    code = pyotp.TOTP(secret).now()
    start = threading.Barrier(4)
    wins: list[bool] = []

    def log_in() -> None:
        start.wait()
        wins.append(accounts.check_password("tina", "long-enough-password", code) is not None)

    threads = [threading.Thread(target=log_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(wins) == [False, False, False, True]
