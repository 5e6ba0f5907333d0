"""The web side of ``hitl serve --web`` in a real Chromium: login, the live console, action links,
the status page — and every refusal an attacker would try, each checked in the audit log.

One server and one browser for the module; each test uses its own task ids and its own context.
"""

from __future__ import annotations

import base64
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from playwright.sync_api import expect

from hitl_core.models import TaskContext
from hitl_core.server.web.accounts import WebAccounts
from hitl_core.server.web.links import sign_link

from .conftest import PASSWORDS, ROOT, WebServer, log_in, read_line

DOCS = ROOT / "docs"


def tid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def stop(proc: Any) -> None:
    """Let an agent that got its decision finish; kill one that did not (the test failed already)."""
    try:
        proc.wait(30)
    except Exception:
        proc.kill()
        proc.wait(10)


def row(page: Any, task_id: str) -> Any:
    return page.locator(f'#tasks tbody tr[data-task="{task_id}"]')


def select(page: Any, task_id: str) -> None:
    target = row(page, task_id)
    expect(target).to_be_visible()
    target.locator("td").first.click()
    expect(target).to_have_class("sev-high selected")


def state_of(server: WebServer, task_id: str) -> str:
    return server.task(task_id)["state"]


def test_console_shows_a_waiting_task_live_and_a_and_r_decide_for_the_agent_process(
    web_server: WebServer, new_page: Any
) -> None:
    page = new_page()
    log_in(page, "alice")
    expect(page.locator("#keys")).to_contain_text("a")
    first, second = tid("live-approve"), tid("live-reject")
    agent_one = web_server.agent(first, "refund 420 EUR to customer 7", "high")
    agent_two = web_server.agent(second, "refund 99 EUR to customer 8", "high")
    try:
        # appears without reloading: the page follows the server's stream
        select(page, first)
        page.keyboard.press("a")
        assert read_line(agent_one, "decided") == "decided approve alice | web | None"
        expect(row(page, first)).to_have_count(0)

        select(page, second)
        page.keyboard.press("r")
        expect(page.locator("#reason")).to_be_focused()
        page.keyboard.type("customer 8 already refunded")
        page.keyboard.press("Enter")
        assert read_line(agent_two, "decided") == "decided reject alice | web | customer 8 already refunded"
        expect(page.locator("#flash")).to_contain_text(f"rejected {second} as alice")
    finally:
        for proc in (agent_one, agent_two):
            stop(proc)
    # the audit trail names the web user as the actor
    with web_server.unix_client() as client:
        events = client.get("/v1/events", params={"task_id": first}).json()["events"]
    assert [(e["action"], e["actor"]) for e in events if e["action"] == "approve"] == [
        ("approve", {"id": "alice", "source": "web"})
    ]


def test_console_screenshot_with_hostile_agent_text_rendered_inert(web_server: WebServer, new_page: Any) -> None:
    page = new_page(viewport={"width": 1100, "height": 560})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    hostile = tid("hostile")
    web_server.ask(
        hostile,
        '<script>window.__pwned = 1; alert(1)</script>\x1b[31mRED\x1b[0m "quoted"',
        severity="critical",
        args={"cmd": "<img src=x onerror=alert(2)>"},
    )
    web_server.ask(tid("deploy"), "deploy build 1842 to production", severity="high")
    web_server.ask(tid("email"), "send the weekly report to 1,200 customers", severity="medium")
    web_server.ask(tid("cleanup"), "delete 14 stale preview environments", severity="low")
    log_in(page, "alice")
    cell = row(page, hostile).locator("td.reason")
    expect(cell).to_contain_text("<script>window.__pwned = 1; alert(1)</script>")
    expect(cell).to_contain_text("\\x1b[31mRED")
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(DOCS / "web-console.png"))
    page.goto(f"/web/tasks/{hostile}")
    expect(page.locator("#args")).to_contain_text("<img src=x onerror=alert(2)>")
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__pwned") is None and dialogs == []


def test_action_link_from_the_webhook_approves_in_two_clicks(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-approve")
    agent = web_server.agent(task_id, "refund 420 EUR via a link", "high")
    try:
        link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
        assert link.startswith(web_server.url + "/web/a/")
        page = new_page(viewport={"width": 820, "height": 1000})
        # not logged in: the link leads to the login, then back to the link
        page.goto(link)
        assert "/web/login" in page.url
        log_in_here(page, "alice")
        expect(page.locator("#reason")).to_have_text("refund 420 EUR via a link")
        expect(page.locator("#action-name")).to_have_text("refund")
        expect(page.locator("#args")).to_contain_text('"amount": 420')
        expect(page.locator("#severity")).to_have_text("high")
        expect(page.locator("#who")).to_contain_text("any operator")
        page.screenshot(path=str(DOCS / "web-action.png"), full_page=True)
        page.click("#approve")
        expect(page.locator("#problem")).to_contain_text(f"approved {task_id} as alice")
        assert read_line(agent, "decided") == "decided approve alice | web | None"
    finally:
        stop(agent)


def log_in_here(page: Any, name: str) -> None:
    """Fill the login form the browser was redirected to (its ``next`` brings it back)."""
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#login")
    page.wait_for_load_state()


def test_a_link_used_twice_is_refused_as_used_and_audited(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-twice")
    web_server.ask(task_id, "rotate the API key")
    link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    page = new_page()
    log_in(page, "alice")
    page.goto(link)
    page.click("#approve")
    expect(page.locator("#problem")).to_contain_text("approved")
    page.goto(link)
    expect(page.locator("#problem")).to_have_attribute("data-problem", "used")
    expect(page.locator("#problem")).to_contain_text("already used, by alice")
    web_server.wait_log(rf"refused: alice \(operator, web\) may not use an action link {task_id}: used")


def test_the_same_link_posted_again_is_refused_and_decides_nothing_more(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-replay")
    web_server.ask(task_id, "restart the billing worker")
    link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    page = new_page()
    log_in(page, "alice")
    page.goto(link)
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    first = page.request.post(link, form={"csrf": csrf, "decision": "approve"}, headers={"Accept": "application/json"})
    assert first.status == 200, first.text()
    again = page.request.post(
        link, form={"csrf": csrf, "decision": "reject", "reason": "x"}, headers={"Accept": "application/json"}
    )
    assert again.status == 410 and again.json()["problem"] == "used"
    assert state_of(web_server, task_id) == "approved"
    history = web_server.task(task_id)["history"]
    assert sum(1 for h in history if h.get("action") in ("approve", "reject")) == 1


def test_an_expired_link_is_refused_as_expired_and_audited(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-expired")
    task = TaskContext.model_validate(web_server.ask(task_id, "drop the staging database"))
    key = WebAccounts(web_server.token_file).key()  # the server's own key, as the server signs
    path = sign_link(
        key, task_id, task.state, task.interrupt_point, ttl_seconds=60, now=datetime.now(UTC).timestamp() - 61
    )
    page = new_page()
    log_in(page, "alice")
    page.goto(path)
    expect(page.locator("#problem")).to_have_attribute("data-problem", "expired")
    assert page.locator("#approve").count() == 0
    response = page.request.post(
        path, form={"csrf": csrf_of(page), "decision": "approve"}, headers={"Accept": "application/json"}
    )
    assert response.status == 410 and response.json()["problem"] == "expired"
    assert state_of(web_server, task_id) == "awaiting_approval"
    web_server.wait_log(rf"refused: alice \(operator, web\) may not use an action link {task_id}: expired")


def csrf_of(page: Any) -> str:
    page.goto("/web/status")
    return page.locator('nav input[name="csrf"]').get_attribute("value")


def test_a_link_whose_task_asked_something_else_since_is_refused_as_stale(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-stale")
    web_server.ask(task_id, "pay invoice 7", args={"amount": 100})
    old_link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    with web_server.unix_client() as client:  # decided elsewhere; the agent goes on and asks again, for more
        client.post(f"/v1/tasks/{task_id}/reject", json={"reason": "wrong amount"}).raise_for_status()
        client.post(f"/v1/tasks/{task_id}/resume", json={}).raise_for_status()
        body = {"reason": "pay invoice 7", "action": {"name": "refund", "args": {"amount": 100000}}}
        client.post(f"/v1/tasks/{task_id}/request", json=body).raise_for_status()
    page = new_page()
    log_in(page, "alice")
    page.goto(old_link)
    expect(page.locator("#problem")).to_have_attribute("data-problem", "stale")
    expect(page.locator("#problem")).to_contain_text("request has changed")
    response = page.request.post(
        old_link, form={"csrf": csrf_of(page), "decision": "approve"}, headers={"Accept": "application/json"}
    )
    assert response.status == 410 and response.json()["problem"] == "stale"
    assert state_of(web_server, task_id) == "awaiting_approval"
    web_server.wait_log(rf"refused: alice \(operator, web\) may not use an action link {task_id}: stale")
    # the new request's own link works
    new_link = web_server.receiver.notices_for(task_id, 2)[-1]["action_link"]  # type: ignore[attr-defined]
    page.goto(new_link)
    expect(page.locator("#args")).to_contain_text("100000")


def test_a_link_with_a_tampered_signature_or_task_is_refused_as_forged(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-forged")
    web_server.ask(task_id, "grant admin to contractor")
    link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    payload, signature = link.rsplit(".", 1)
    tampered_sig = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    other = base64.urlsafe_b64encode(f"{task_id}-other\x1fx\x1f\x1f9999999999\x1fn".encode()).decode().rstrip("=")
    tampered_task = f"{web_server.url}/web/a/{other}.{signature}"
    page = new_page()
    log_in(page, "alice")
    for forged in (tampered_sig, tampered_task):
        page.goto(forged)
        expect(page.locator("#problem")).to_have_attribute("data-problem", "forged")
        response = page.request.post(
            forged, form={"csrf": csrf_of(page), "decision": "approve"}, headers={"Accept": "application/json"}
        )
        assert response.status == 400 and response.json()["problem"] == "forged"
    assert state_of(web_server, task_id) == "awaiting_approval"
    web_server.wait_log(r"refused: alice \(operator, web\) may not use an action link -: forged")


def test_a_link_still_needs_a_person_the_policy_allows(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("link-assigned")
    web_server.ask(task_id, "approve the on-call swap", assignees=["alice"])
    link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    page = new_page()
    log_in(page, "bob")
    page.goto(link)
    expect(page.locator("#who")).to_contain_text("alice")
    page.click("#approve")
    expect(page.locator("#problem")).to_contain_text("refused by the policy")
    assert state_of(web_server, task_id) == "awaiting_approval"
    # refused, so not used up: the assignee can still decide through it
    page = new_page()
    log_in(page, "alice")
    page.goto(link)
    page.click("#approve")
    expect(page.locator("#problem")).to_contain_text(f"approved {task_id} as alice")


def test_a_cross_site_post_without_the_csrf_token_is_refused_and_audited(web_server: WebServer, new_page: Any) -> None:
    task_id = tid("csrf")
    web_server.ask(task_id, "wire 50,000 EUR")
    page = new_page()
    log_in(page, "alice")
    # the session cookie is sent (as a same-site attacker's request would carry it), the token is not
    no_token = page.request.post(f"/web/tasks/{task_id}/approve", form={}, headers={"Accept": "application/json"})
    assert no_token.status == 403 and no_token.json()["problem"] == "csrf"
    other_origin = page.request.post(
        f"/web/tasks/{task_id}/approve",
        form={"csrf": csrf_of(page)},
        headers={"Accept": "application/json", "Origin": "https://evil.example"},
    )
    assert other_origin.status == 403 and "another site" in other_origin.json()["message"]
    # and a real form on another origin: SameSite=Strict keeps the cookie home, so it is not even logged in
    page.goto("about:blank")
    page.set_content(
        f'<form method="post" action="{web_server.url}/web/tasks/{task_id}/approve"><button id="go">win</button></form>'
    )
    with page.expect_response(lambda r: "/approve" in r.url) as answer:
        page.click("#go")
    assert answer.value.status == 401
    assert state_of(web_server, task_id) == "awaiting_approval"
    web_server.wait_log(
        rf"refused: alice \(operator, web\) may not approve {task_id}: the request lacks this session's CSRF token"
    )
    web_server.wait_log(
        rf"refused: alice \(operator, web\) may not approve {task_id}: the request came from another site"
    )
    # and each is a record in the store's audit chain, beside the API's refusals
    record = web_server.wait_refusal(task_id=task_id, principal="alice", what="approve")
    assert record["actor"] == "alice"
    assert "CSRF" in record["data"]["reason"] or "another site" in record["data"]["reason"]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    for _ in range(5):
        log_in(page, "rita", password="not-her-password")
        expect(page.locator("#message")).to_contain_text("wrong user name, password")
    log_in(page, "rita")
    expect(page.locator("#message")).to_contain_text("too many failed logins")
    assert "/web/login" in page.url
    web_server.wait_log(r"refused: rita \(-, web\) may not log in -: too many failed logins")
    # in the audit chain the typed name is a claim, never the actor; the address is kept
    locked = web_server.wait_refusal(claimed_name="rita", what="log in")
    assert locked["actor"] is None and locked["data"]["principal"] is None and locked["data"]["peer"] == "127.0.0.1"
    assert web_server.log_text().count("refused: rita (-, web) may not log in -: wrong user name") == 5


def test_an_observer_sees_tasks_but_no_deciding_control_and_is_refused_at_the_server(
    web_server: WebServer, new_page: Any
) -> None:
    task_id = tid("observed")
    web_server.ask(task_id, "scale the cluster to 40 nodes")
    link = web_server.receiver.notice_for(task_id)["action_link"]  # type: ignore[attr-defined]
    page = new_page()
    log_in(page, "olga")
    expect(row(page, task_id)).to_be_visible()
    expect(page.locator("#keys")).to_contain_text("read-only")
    row(page, task_id).locator("td").first.click()
    page.keyboard.press("a")
    page.keyboard.press("r")
    expect(page.locator("#reason-form")).to_be_hidden()
    for path in (f"/web/tasks/{task_id}", link):
        page.goto(path)
        expect(page.locator("#read-only")).to_be_visible()
        assert page.locator("#approve").count() == 0 and page.locator("#reject").count() == 0
    response = page.request.post(
        f"/web/tasks/{task_id}/approve", form={"csrf": csrf_of(page)}, headers={"Accept": "application/json"}
    )
    assert response.status == 403
    assert state_of(web_server, task_id) == "awaiting_approval"
    web_server.wait_log(rf"refused: olga \(observer, web\) may not approve {task_id}: approve needs the operator role")


def test_every_page_needs_a_login(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    for path in ("/web/", "/web/status", "/web/rows", "/web/tasks/x"):
        page.goto(path)
        assert "/web/login" in page.url, path
    response = page.request.post("/web/tasks/x/approve", form={}, headers={"Accept": "application/json"})
    assert response.status == 401


def test_session_cookie_is_host_only_httponly_secure_and_strict(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-hitl_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""
    headers = page.goto("/web/").headers
    assert (
        "script-src 'self'" in headers["content-security-policy"]
        and "frame-ancestors 'none'" in headers["content-security-policy"]
    )
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "same-origin"
    # the token file keeps only a hash of the session id
    with sqlite3.connect(web_server.token_file) as conn:
        stored = [r[0] for r in conn.execute("SELECT id_hash FROM web_sessions")]
    assert cookie["value"] not in stored and all(len(s) == 64 for s in stored)


def test_logout_ends_the_session_on_the_server(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-hitl_session")
    page.click("#logout")
    assert "/web/login" in page.url
    replay = new_page()
    replay.context.add_cookies([{**cookie}])
    replay.goto("/web/")
    assert "/web/login" in replay.url


def test_an_expired_session_is_sent_to_the_login(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, "sam")
    page.goto("/web/status")
    assert "/web/status" in page.url
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    with sqlite3.connect(web_server.token_file) as conn:
        conn.execute("UPDATE web_sessions SET expires_at = ? WHERE name = 'sam'", (past,))
    page.goto("/web/status")
    assert "/web/login" in page.url


def test_totp_user_needs_the_current_code(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, "tina")
    expect(page.locator("#message")).to_contain_text("one-time code")
    log_in(page, "tina", totp="000000" if pyotp.TOTP(web_server.totp_secret).now() != "000000" else "111111")  # type: ignore[attr-defined]
    expect(page.locator("#message")).to_contain_text("one-time code")
    code = pyotp.TOTP(web_server.totp_secret).now()  # type: ignore[attr-defined]
    log_in(page, "tina", totp=code)
    assert page.url.endswith("/web/")
    # the same code again, from another browser (seen over the shoulder, or a replayed login): refused
    other = new_page()
    log_in(other, "tina", totp=code)
    expect(other.locator("#message")).to_contain_text("one-time code")


def test_status_page_on_a_phone_lists_waiting_by_severity_and_the_last_decisions(
    web_server: WebServer, new_page: Any
) -> None:
    critical, low = tid("status-critical"), tid("status-low")
    web_server.ask(low, "archive old logs", severity="low")
    web_server.ask(critical, "shut down the payments region", severity="critical", timeout=3600)
    page = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    log_in(page, "alice", next_path="/web/status")
    groups = page.locator("#waiting section h2 .sev").all_inner_texts()
    assert groups.index("critical") < groups.index("low")
    item = page.locator("#waiting li", has_text=critical)
    expect(item.locator(".deadline")).to_contain_text("in ")
    page.goto(f"/web/tasks/{low}")
    page.click("#approve")
    page.goto("/web/status")
    expect(page.locator("#decisions li").first).to_contain_text(f"approve {low}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("script").count() == 0
    page.screenshot(path=str(DOCS / "web-status.png"))


def test_the_webhook_notice_carries_the_action_link(web_server: WebServer) -> None:
    task_id = tid("notice")
    web_server.ask(task_id, "delete the bucket")
    notice = web_server.receiver.notice_for(task_id)  # type: ignore[attr-defined]
    assert notice["action_link"].startswith(f"{web_server.url}/web/a/")
    assert Path(notice["action_link"]).name.count(".") == 1


def test_a_login_post_without_the_login_forms_token_is_refused(web_server: WebServer, new_page: Any) -> None:
    page = new_page()
    forged = page.request.post(
        "/web/login", form={"username": "alice", "password": PASSWORDS["alice"], "csrf": "guess"}
    )
    assert forged.status == 403
    assert not any(c["name"] == "__Host-hitl_session" for c in page.context.cookies())
    web_server.wait_log(r"refused: alice \(-, web\) may not log in -: the login form's CSRF token is missing or wrong")


def test_a_task_id_with_slash_hash_and_question_mark_opens_and_is_decided(web_server: WebServer, new_page: Any) -> None:
    task_id = f"deploy/prod #1?x={uuid.uuid4().hex[:6]}"
    web_server.ask(task_id, "deploy with an awkward id")
    page = new_page()
    log_in(page, "alice")
    page.locator("#tasks a", has_text=task_id).click()
    expect(page.locator("#task-id")).to_have_text(task_id)
    page.fill("#reject-reason", "not today")
    page.click("#reject")
    expect(page.locator("#problem")).to_contain_text(f"rejected {task_id} as alice")
    assert state_of(web_server, task_id) == "rejected"
