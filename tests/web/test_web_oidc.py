"""OpenID Connect login, end to end: Chromium, ``hitl serve --web --oidc-issuer`` and a local test
provider (``oidc_issuer.py``), each its own process, all on TLS on 127.0.0.1.

The provider issues a good token by default; the test tells it to issue a bad one for the next
code (a wrong signature, audience, nonce, an expired token, an unknown subject) and checks that
the server refuses it, says why, records the refusal in the audit chain and sets no session.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl_core.server.web.accounts import WebAccounts
from tests.server.conftest import ROOT, child_env, free_port, make_certificate, server_directory
from tests.web.conftest import PASSWORDS, WebServer, log_in

pytestmark = pytest.mark.processes

CLIENT_ID = "hitl-test-client"
SECRET_ENV = "HITL_TEST_OIDC_SECRET"
ALICE_SUB = "alice-subject-0001"  # oidc_issuer.USER


class Issuer:
    """``oidc_issuer.py`` in its own process, on TLS with its own self-signed certificate."""

    def __init__(self, directory: Path, secret: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.cert, key = make_certificate(directory)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = directory / "issuer.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("oidc_issuer.py")),
                    str(self.port),
                    str(self.cert),
                    str(key),
                    CLIENT_ID,
                    secret,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
                cwd=ROOT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the test issuer exited: {self.log.read_text()[-2000:]}")
            try:
                if self.client().get("/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the test issuer did not answer: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.cert)), timeout=10)

    def next_code(self, mode: str = "good", **claims: str) -> None:
        """What the provider puts into the id_token of the next code it issues."""
        with self.client() as client:
            client.post("/control/next", json={"mode": mode, "claims": claims}).raise_for_status()

    def last_redirect(self) -> str:
        with self.client() as client:
            return str(client.get("/control/last").json()["redirect"])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    directory = server_directory() / "issuer"
    secret = "test-client-secret-" + os.urandom(8).hex()
    os.environ[SECRET_ENV] = secret  # the hitl server's child reads it (--oidc-client-secret-env)
    started = Issuer(directory, secret)
    try:
        yield started
    finally:
        started.stop()
        os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="module")
def web_server(issuer: Issuer) -> Iterator[WebServer]:
    """This module's server: the web conftest's, with the test provider as its OIDC issuer."""
    directory = server_directory()
    extra = ("--oidc-issuer", issuer.url, "--oidc-client-id", CLIENT_ID, "--oidc-client-secret-env", SECRET_ENV)
    server = WebServer(directory, listen=True, extra=(*extra, "--oidc-ca-bundle", str(issuer.cert)))
    # alice logs in only through the provider: linked to its subject with the real command line
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_core.cli",
            "user",
            "--tokens",
            str(server.token_file),
            "add",
            "alice",
            "--role",
            "operator",
            "--oidc-subject",
            ALICE_SUB,
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    # bob has a password and no linked subject: the provider's preferred_username names him
    WebAccounts(server.token_file).add("bob", "operator", PASSWORDS["bob"])
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


def session_cookie(page: Any) -> dict[str, Any] | None:
    return next((c for c in page.context.cookies() if c["name"] == "__Host-hitl_session"), None)


def press_the_button(page: Any) -> None:
    page.goto("/web/login")
    page.click("#oidc-login")
    page.wait_for_load_state()


def oidc_refusals(server: WebServer, fragment: str) -> list[dict[str, Any]]:
    """The audit chain's refusals of OIDC logins whose reason contains ``fragment``."""
    return [
        r["data"]
        for r in server.refusal_records()
        if r["data"].get("what") == "log in with OIDC" and fragment in (r["data"].get("reason") or "")
    ]


def wait_oidc_refusal(server: WebServer, fragment: str, before: int) -> dict[str, Any]:
    """A refusal mentioning ``fragment`` beyond the ``before`` already there, waiting for it."""
    deadline = time.monotonic() + 30
    while True:
        found = oidc_refusals(server, fragment)
        if len(found) > before:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no new OIDC refusal mentioning {fragment!r}: {server.refusal_records()[-5:]}")
        time.sleep(0.05)


def test_oidc_login_through_the_provider_opens_the_console(
    new_page: Any, issuer: Issuer, web_server: WebServer
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    issuer.next_code()
    page.goto("/web/login")
    expect(page.locator("#oidc-login")).to_have_text("Log in with 127.0.0.1")
    page.click("#oidc-login")
    page.wait_for_url(f"{web_server.url}/web/")
    expect(page.locator(".who")).to_have_text("alice (operator)")
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    web_server.wait_log(r"web login \(OIDC https://127\.0\.0\.1:\d+\): alice \(operator\)")
    # a decision made in this session is alice's, through the web
    task_id = "oidc/decide-1"
    web_server.ask(task_id, "refund after an OIDC login")
    page.goto("/web/")
    page.locator(f'[data-task="{task_id}"]').wait_for()
    response = page.request.post(
        f"/web/tasks/{task_id}/approve",
        form={"csrf": page.locator('input[name="csrf"]').first.get_attribute("value")},
        headers={"Accept": "application/json"},
    )
    assert response.status == 200, response.text()
    assert web_server.task(task_id)["state"] == "approved"


def test_oidc_login_by_preferred_username_names_an_unlinked_account(new_page: Any, issuer: Issuer) -> None:
    from playwright.sync_api import expect

    page = new_page()
    issuer.next_code(sub="bob-at-the-provider", preferred_username="bob")
    press_the_button(page)
    expect(page.locator(".who")).to_have_text("bob (operator)")
    assert session_cookie(page) is not None


@pytest.mark.parametrize(
    ("mode", "claims", "problem", "fragment"),
    [
        ("bad-signature", {}, "oidc-signature", "signature does not verify"),
        ("alg-none", {}, "oidc-signature", "signature does not verify"),
        ("wrong-iss", {}, "oidc-issuer", "'https://idp.elsewhere.example'"),
        ("wrong-aud", {}, "oidc-audience", "'somebody-else'"),
        ("expired", {}, "oidc-expired", "has expired"),
        ("wrong-nonce", {}, "oidc-nonce", "nonce is not the one"),
        ("deny", {}, "oidc-denied", "access_denied"),
        ("good", {"sub": "mallory-sub", "preferred_username": "mallory"}, "oidc-unknown-user", "'mallory-sub'"),
        # alice is linked to her subject: another subject calling itself alice is not her
        ("good", {"sub": "not-alice-sub", "preferred_username": "alice"}, "oidc-unknown-user", "'not-alice-sub'"),
    ],
    ids=[
        "wrong-signature",
        "unsigned-alg-none",
        "wrong-iss",
        "wrong-aud",
        "expired",
        "mismatched-nonce",
        "denied-at-the-provider",
        "unknown-subject",
        "other-subject-named-alice",
    ],
)
def test_oidc_bad_id_token_is_refused_audited_and_sets_no_session(
    new_page: Any, issuer: Issuer, web_server: WebServer, mode: str, claims: dict[str, str], problem: str, fragment: str
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    before = len(oidc_refusals(web_server, fragment))
    issuer.next_code(mode, **claims)
    press_the_button(page)
    expect(page.locator("#problem")).to_have_attribute("data-problem", problem)
    expect(page.locator("#problem")).to_contain_text(fragment)
    assert session_cookie(page) is None
    data = wait_oidc_refusal(web_server, fragment, before)
    assert data["principal"] is None  # a refused login acts as nobody
    if "sub" in claims:  # the subject the token named is kept, as a claim
        assert data["claimed_name"] == claims["sub"]
    page.goto("/web/")
    assert "/web/login" in page.url


def test_oidc_replayed_callback_is_refused(new_page: Any, issuer: Issuer, web_server: WebServer) -> None:
    from playwright.sync_api import expect

    first = new_page()
    before = len(oidc_refusals(web_server, "already used"))
    issuer.next_code()
    press_the_button(first)
    expect(first.locator(".who")).to_have_text("alice (operator)")
    callback = issuer.last_redirect()
    # the same callback URL again, from the browser that used it and from another
    for page in (first, new_page()):
        page.goto(callback)
        expect(page.locator("#problem")).to_have_attribute("data-problem", "oidc-state")
    assert session_cookie(page) is None
    assert wait_oidc_refusal(web_server, "already used", before)["principal"] is None


def test_oidc_callback_in_another_browser_is_refused(new_page: Any, issuer: Issuer, web_server: WebServer) -> None:
    """Login CSRF: a flow started elsewhere (here: httpx) cannot be finished in the victim's browser."""
    from playwright.sync_api import expect

    before = len(oidc_refusals(web_server, "issued to another browser"))
    issuer.next_code()
    with httpx.Client(base_url=web_server.url, verify=False, timeout=20) as hitl:
        start = hitl.get("/web/oidc/login")
        assert start.status_code == 303, start.text
        assert "code_challenge_method=S256" in start.headers["location"]
    with issuer.client() as provider:
        back = provider.get(start.headers["location"])
        assert back.status_code == 302
    page = new_page()
    page.goto(back.headers["location"])
    expect(page.locator("#problem")).to_have_attribute("data-problem", "oidc-state")
    assert session_cookie(page) is None
    wait_oidc_refusal(web_server, "issued to another browser", before)


def test_oidc_provider_key_rotation_needs_no_restart(new_page: Any, issuer: Issuer, web_server: WebServer) -> None:
    """The server has the old key cached (earlier logins); a token signed by a new key still verifies."""
    from playwright.sync_api import expect

    page = new_page()
    issuer.next_code()
    press_the_button(page)
    expect(page.locator(".who")).to_have_text("alice (operator)")  # the old key, now cached
    page = new_page()
    issuer.next_code("rotate")
    press_the_button(page)
    expect(page.locator(".who")).to_have_text("alice (operator)")
    assert session_cookie(page) is not None


def test_oidc_only_account_cannot_log_in_with_a_password(new_page: Any, web_server: WebServer) -> None:
    from playwright.sync_api import expect

    page = new_page()
    log_in(page, "alice", password="!oidc-only")
    expect(page.locator("#message")).to_contain_text("wrong user name, password")
    assert session_cookie(page) is None
