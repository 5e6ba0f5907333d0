"""``hitl serve``: one authority between callers and the store.

It owns the store, runs the machine with the server's policy config (authorization, deadlines,
escalation, notifiers), authenticates every caller (Unix-socket peer credentials, or TLS with
bearer tokens) and records the authenticated principal as the actor of every event.

Public: ``ServeOptions``, ``serve`` (``run.py``), ``create_app``/``Server`` (``app.py``),
``TokenStore``/``Role`` (``tokens.py``). Importing this package loads no web framework: the
client (``hitl_core.client``) shares ``problems.py`` without needing the server's extra.
"""

from __future__ import annotations
