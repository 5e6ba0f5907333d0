"""Wiring ``--web`` into ``hitl serve``: the accounts, the routes, the notifiers' action links."""

from __future__ import annotations

from typing import Any

from ...models import InterruptPoint, TaskContext
from ..app import Server
from ..tokens import TokenStore
from .accounts import WebAccounts
from .app import Web, WebOptions, mount_web
from .terminal import Terminals, console_store_url


def enable_web(app: Any, server: Server, tokens: TokenStore, options: Any) -> Web:
    """Mount the web routes on ``app``; webhook notices of waiting tasks then carry an action link."""
    public_url = options.web_url or f"https://{options.listen}"
    accounts = WebAccounts(tokens.path)
    accounts.key()  # made now, not by the first request: a broken token file stops the start
    web = mount_web(app, server, accounts, WebOptions(public_url=public_url))
    if getattr(options, "oidc_issuer", None):
        from .oidc import OIDC, OIDCOptions

        web.oidc = OIDC(
            web,
            OIDCOptions(
                issuer=options.oidc_issuer,
                client_id=options.oidc_client_id,
                client_secret=options.oidc_client_secret,
                ca_bundle=options.oidc_ca_bundle,
                user_claim=options.oidc_user_claim,
            ),
        )
        app.router.routes[0:0] = web.oidc.routes()  # before /web's own mount, which would catch the path
    # the Textual console in the browser: one process per tab, acting as the logged-in user
    terminals = Terminals(
        web, tokens, console_store_url(options.listen, public_url), str(options.tls_cert) if options.tls_cert else None
    )
    web.terminals = terminals  # type: ignore[attr-defined]
    web.on_logout.append(terminals.end_session)
    app.router.routes[0:0] = terminals.routes()
    policies = server.machine.policies
    notifier = getattr(policies, "notifier", None) if policies is not None else None
    if notifier is not None:

        def action_link(task: TaskContext, interrupt: InterruptPoint) -> str:
            return web.link_for(task.task_id, task.state, interrupt)

        notifier.action_links = action_link
    return web
