"""Wiring ``--web`` into ``hitl serve``: the accounts, the routes, the notifiers' action links."""

from __future__ import annotations

from typing import Any

from ...models import InterruptPoint, TaskContext
from ..app import Server
from ..tokens import TokenStore
from .accounts import WebAccounts
from .app import Web, WebOptions, mount_web


def enable_web(app: Any, server: Server, tokens: TokenStore, options: Any) -> Web:
    """Mount the web routes on ``app``; webhook notices of waiting tasks then carry an action link."""
    public_url = options.web_url or f"https://{options.listen}"
    accounts = WebAccounts(tokens.path)
    accounts.key()  # made now, not by the first request: a broken token file stops the start
    web = mount_web(app, server, accounts, WebOptions(public_url=public_url))
    policies = server.machine.policies
    notifier = getattr(policies, "notifier", None) if policies is not None else None
    if notifier is not None:

        def action_link(task: TaskContext, interrupt: InterruptPoint) -> str:
            return web.link_for(task.task_id, task.state, interrupt)

        notifier.action_links = action_link
    return web
