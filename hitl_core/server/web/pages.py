"""HTML for the web pages: plain server-rendered HTML and one stylesheet, no build step.

Everything from outside (reasons, args, context, task ids, agent names) goes through ``text()``:
control, bidi and invisible characters are made visible first (``hitl_core.text.visible``, the
one rendering function terminals and logs use), then HTML-escaped. A ``<script>`` in a reason is
shown as text; an ANSI escape shows as ``\\x1b[31m``.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ...models import Severity
from ...records import EventRecord, TaskRecord
from ...text import visible

SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


def text(value: object, *, single_line: bool = True, limit: int | None = 4000) -> str:
    """Untrusted text → inert HTML (also safe inside a double-quoted attribute)."""
    return html.escape(visible("" if value is None else value, single_line=single_line, limit=limit), quote=True)


def task_url(task_id: str) -> str:
    """The task page's path: the id percent-encoded (``/``, ``#``, ``?`` and all), then attribute-safe."""
    return html.escape("/web/tasks/" + quote(task_id, safe=""), quote=True)


def pretty(value: Any, limit: int = 20000) -> str:
    dumped = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return text(dumped, single_line=False, limit=limit)


def until(deadline: datetime | None, now: datetime | None = None) -> str:
    if deadline is None:
        return "none"
    seconds = int((deadline - (now or datetime.now(UTC))).total_seconds())
    if seconds <= 0:
        return "overdue"
    if seconds < 120:
        return f"in {seconds}s"
    if seconds < 7200:
        return f"in {seconds // 60}m"
    return f"in {seconds // 3600}h {seconds % 3600 // 60}m"


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def layout(title: str, body: str, *, user: str | None = None, csrf: str | None = None, extra_head: str = "") -> str:
    nav = ""
    if user is not None and csrf is not None:
        nav = (
            '<nav><a href="/web/">console</a> <a href="/web/terminal" id="terminal-link">terminal</a>'
            ' <a href="/web/status">status</a>'
            f' <span class="who">{text(user)}</span>'
            '<form method="post" action="/web/logout" class="inline">'
            f'<input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="logout">log out</button>'
            "</form></nav>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{text(title)} · hitl</title><link rel="stylesheet" href="/web/static/hitl.css">{extra_head}'
        f"</head><body>{nav}<main>{body}</main></body></html>"
    )


def login_page(login_csrf: str, next_path: str, message: str = "", oidc_label: str | None = None) -> str:
    note = f'<p class="error" id="message">{text(message)}</p>' if message else ""
    # a link, not a form: CSP form-action 'self' would stop a form's redirect to the provider
    oidc = (
        f'<p><a class="button" id="oidc-login" href="/web/oidc/login?next={quote(next_path)}">'
        f"Log in with {text(oidc_label)}</a></p>"
        if oidc_label
        else ""
    )
    body = (
        "<h1>hitl · log in</h1>"
        f"{note}"
        '<form method="post" action="/web/login" class="card">'
        f'<input type="hidden" name="csrf" value="{login_csrf}">'
        f'<input type="hidden" name="next" value="{text(next_path)}">'
        '<label>user <input name="username" id="username" autocomplete="username" required></label>'
        '<label>password <input name="password" id="password" type="password" autocomplete="current-password" required></label>'
        '<label>one-time code (if you set up TOTP) <input name="totp" id="totp" inputmode="numeric" autocomplete="one-time-code"></label>'
        '<button type="submit" id="login">log in</button></form>'
        f"{oidc}"
    )
    return layout("log in", body)


def moving_on_page(next_path: str, user: str) -> str:
    """After a login through the provider: a same-site navigation onwards (see ``oidc._logged_in``)."""
    body = (
        f'<h1>logged in</h1><p id="logged-in">logged in as {text(user)}.</p>'
        f'<p><a href="{text(next_path)}" id="continue">continue</a></p>'
    )
    return layout("logged in", body, extra_head=f'<meta http-equiv="refresh" content="0;url={text(next_path)}">')


def message_page(title: str, message: str, *, problem: str, user: str | None = None, csrf: str | None = None) -> str:
    body = (
        f'<h1>{text(title)}</h1><p class="problem {text(problem)}" id="problem" data-problem="{text(problem)}">'
        f'{text(message, single_line=False)}</p><p><a href="/web/">to the console</a></p>'
    )
    return layout(title, body, user=user, csrf=csrf)


def who_may_decide(record: TaskRecord) -> str:
    interrupt = record.interrupt
    assert interrupt is not None
    who = ", ".join(interrupt.assignees) if interrupt.assignees else "any operator or admin the policy allows"
    if interrupt.required_approvals > 1:
        who += f" (four eyes: {interrupt.required_approvals} different people must approve)"
    return who


def task_details(record: TaskRecord) -> str:
    """Exactly what is being decided: the reason, severity, action and args, context, deadline, who."""
    interrupt = record.interrupt
    if interrupt is None:
        return f'<p id="state">task {text(record.task_id)} is {text(record.state.value)}</p>'
    action = interrupt.action
    deadline = "none"
    if interrupt.deadline is not None:
        deadline = (
            f"{text(interrupt.deadline.isoformat(timespec='seconds'))} ({until(interrupt.deadline)};"
            f" then {text(interrupt.default_decision)})"
        )
    rows = [
        ("task", f'<code id="task-id">{text(record.task_id)}</code>'),
        ("state", f'<span id="state">{text(record.state.value)}</span>'),
        (
            "severity",
            f'<span class="sev {text(interrupt.severity.value)}" id="severity">{text(interrupt.severity.value)}</span>',
        ),
        ("agent", text(record.agent or "-")),
        ("asked", f"{text(interrupt.created_at.isoformat(timespec='seconds'))} ({ago(interrupt.created_at)})"),
        (
            "deadline",
            f'<span id="deadline">{deadline}</span>',
        ),
        ("who may decide", f'<span id="who">{text(who_may_decide(record))}</span>'),
        ("decisions", text(", ".join(interrupt.allowed_decisions))),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    parts = [
        f'<h2>reason</h2><p class="reason" id="reason">{text(interrupt.reason, single_line=False)}</p>',
        f'<table class="facts">{table}</table>',
    ]
    if action is not None:
        parts.append(
            f'<h2>action <code id="action-name">{text(action.name)}</code></h2><pre id="args">{pretty(action.args)}</pre>'
        )
    if interrupt.context:
        parts.append(f'<h2>context</h2><pre id="context">{pretty(interrupt.context)}</pre>')
    return "".join(parts)


def decision_forms(action: str, csrf: str, record: TaskRecord) -> str:
    """Approve / Reject (with a reason) forms posting to ``action`` (a link's or the task's URL)."""
    interrupt = record.interrupt
    assert interrupt is not None
    hidden = (
        f'<input type="hidden" name="csrf" value="{csrf}">'
        f'<input type="hidden" name="interrupt_id" value="{text(interrupt.interrupt_id)}">'
        f'<input type="hidden" name="args_fingerprint" value="{text(interrupt.args_fingerprint or "")}">'
    )
    forms = []
    if "approve" in interrupt.allowed_decisions:
        forms.append(
            f'<form method="post" action="{text(action)}" class="card decide">{hidden}'
            '<input type="hidden" name="decision" value="approve">'
            '<button type="submit" class="approve" id="approve">Approve</button></form>'
        )
    if "reject" in interrupt.allowed_decisions:
        forms.append(
            f'<form method="post" action="{text(action)}" class="card decide">{hidden}'
            '<input type="hidden" name="decision" value="reject">'
            '<label>reason <input name="reason" id="reject-reason" required maxlength="4000"></label>'
            '<button type="submit" class="reject" id="reject">Reject</button></form>'
        )
    return "".join(forms)


def decide_page(
    record: TaskRecord, *, user: str, csrf: str, may_decide: bool, action: str, via_link: bool, expires: str = ""
) -> str:
    intro = (
        f'<p class="note">This link decides this one request and works once{text(expires)}. You decide as <b>{text(user)}</b>.</p>'
        if via_link
        else f'<p class="note">You decide as <b>{text(user)}</b>.</p>'
    )
    controls = (
        decision_forms(action, csrf, record)
        if may_decide and record.interrupt is not None
        else '<p class="note" id="read-only">You are an observer: you may read this task but not decide it.</p>'
        if not may_decide
        else ""
    )
    body = f"<h1>decide</h1>{intro}{task_details(record)}{controls}"
    return layout(f"decide {record.task_id}", body, user=user, csrf=csrf)


def _row(record: TaskRecord, now: datetime) -> str:
    interrupt = record.interrupt
    assert interrupt is not None
    sev = interrupt.severity.value
    action = interrupt.action.name if interrupt.action else "-"
    return (
        f'<tr data-task="{text(record.task_id)}" data-interrupt="{text(interrupt.interrupt_id)}"'
        f' data-fingerprint="{text(interrupt.args_fingerprint or "")}" class="sev-{text(sev)}">'
        f'<td><span class="sev {text(sev)}">{text(sev)}</span></td>'
        f'<td><a href="{task_url(record.task_id)}">{text(record.task_id, limit=80)}</a></td>'
        f"<td>{text(record.agent or '-', limit=60)}</td><td>{text(action, limit=60)}</td>"
        f'<td class="reason">{text(interrupt.reason, limit=200)}</td>'
        f"<td>{until(interrupt.deadline, now)}</td><td>{ago(interrupt.created_at, now)}</td></tr>"
    )


def waiting_sorted(records: list[TaskRecord]) -> list[TaskRecord]:
    far = datetime.max.replace(tzinfo=UTC)
    waiting = [r for r in records if r.interrupt is not None]
    return sorted(
        waiting,
        key=lambda r: (
            SEVERITY_ORDER.get(r.interrupt.severity, 9),
            r.interrupt.deadline or far,
            r.interrupt.created_at,
        ),  # type: ignore[union-attr]
    )


def console_rows(records: list[TaskRecord]) -> str:
    now = datetime.now(UTC)
    rows = "".join(_row(r, now) for r in waiting_sorted(records))
    return rows or '<tr class="empty"><td colspan="7">nothing is waiting</td></tr>'


def console_page(records: list[TaskRecord], *, user: str, role: str, csrf: str, may_decide: bool) -> str:
    keys = (
        "<kbd>j</kbd>/<kbd>k</kbd> move · <kbd>a</kbd> approve · <kbd>r</kbd> reject (asks a reason) · <kbd>enter</kbd> details"
        if may_decide
        else "<kbd>j</kbd>/<kbd>k</kbd> move · <kbd>enter</kbd> details · read-only: you are an observer"
    )
    body = (
        f'<h1>waiting for a decision</h1><p class="keys" id="keys">{keys}</p>'
        '<p id="flash" role="status"></p>'
        '<form id="reason-form" hidden><label>reject reason <input id="reason" maxlength="4000"></label>'
        "<small>enter to reject, esc to cancel</small></form>"
        '<table id="tasks"><thead><tr><th>sev</th><th>task</th><th>agent</th><th>action</th><th>reason</th>'
        f"<th>deadline</th><th>asked</th></tr></thead><tbody>{console_rows(records)}</tbody></table>"
    )
    head = '<script src="/web/static/console.js" defer></script>'
    page = layout("console", body, user=f"{user} ({role})", csrf=csrf, extra_head=head)
    return page.replace(
        "<body>",
        f'<body data-csrf="{csrf}" data-can-decide="{"1" if may_decide else "0"}">',
        1,
    )


def status_page(records: list[TaskRecord], decisions: list[EventRecord], *, user: str, csrf: str) -> str:
    now = datetime.now(UTC)
    waiting = waiting_sorted(records)
    groups = []
    for severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW):
        tasks = [r for r in waiting if r.interrupt.severity is severity]  # type: ignore[union-attr]
        if not tasks:
            continue
        items = "".join(
            f'<li><a href="{task_url(r.task_id)}">{text(r.task_id, limit=60)}</a>'
            f' <span class="deadline">{until(r.interrupt.deadline, now)}</span>'  # type: ignore[union-attr]
            f"<br><small>{text(r.interrupt.reason, limit=120)}</small></li>"  # type: ignore[union-attr]
            for r in tasks
        )
        groups.append(
            f'<section class="group {severity.value}"><h2><span class="sev {severity.value}">{severity.value}</span>'
            f" {len(tasks)}</h2><ul>{items}</ul></section>"
        )
    recent = "".join(
        f"<li><b>{text(e.action)}</b> {text(e.task_id, limit=60)} by {text(e.actor_id or '-', limit=60)}"
        f" <small>{ago(datetime.fromtimestamp(e.at / 1e6, UTC), now)}</small></li>"
        for e in decisions
    )
    body = (
        f'<h1>hitl status</h1><p id="summary">{len(waiting)} waiting</p>'
        f'<div id="waiting">{"".join(groups) or "<p>nothing is waiting</p>"}</div>'
        f'<h2>last decisions</h2><ul id="decisions">{recent or "<li>none yet</li>"}</ul>'
    )
    head = '<meta http-equiv="refresh" content="15">'
    return layout("status", body, user=user, csrf=csrf, extra_head=head)
