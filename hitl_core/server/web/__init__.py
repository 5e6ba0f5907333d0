"""``hitl serve --web``: the browser side of the server — login, a live console, a phone-sized
status page and signed action links for notifications.

Public: ``WebAccounts`` (users, sessions, the link key; in the token file), ``WebOptions`` and
``mount_web`` (add the routes to the server's app), ``sign_link``/``read_link``. Nothing here
imports Textual: the pages are server-rendered HTML with one small script.
"""

from __future__ import annotations

from .accounts import AccountError, WebAccounts, WebRole
from .links import ActionLinkError, read_link, sign_link

__all__ = ["AccountError", "ActionLinkError", "WebAccounts", "WebRole", "read_link", "sign_link"]
