"""Who is calling: the OS user behind a Unix-socket connection, or the holder of a bearer token.

Unix socket: the kernel tells us the peer's uid (``SO_PEERCRED``) when the connection is made.
uvicorn does not put the transport in the ASGI scope, but it copies its "app state" into every
request's ``scope["state"]``; ``PeerCredentialsProtocol`` (uvicorn's h11 protocol, one method
overridden) reads the credentials in ``connection_made`` and adds them to the state of that
connection only. A client cannot forge them: nothing from the wire reaches ``scope["state"]``.

TLS: ``Authorization: Bearer hitl_…`` checked against the token file (``tokens.py``).
"""

from __future__ import annotations

import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import NotAuthorizedError
from ..text import hitl_logger
from .problems import RateLimitedError, UnauthenticatedError
from .tokens import TOKEN_PREFIX, Role, TokenStore

audit_log = hitl_logger("hitl.audit")

PEER_KEY = "hitl.peer"


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


class PeerCredentialsProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the peer's credentials on Unix-socket connections."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        peer = None
        if sock is not None and sock.family == socket.AF_UNIX:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            peer = PeerCredentials(*struct.unpack("3i", raw))
        # A per-connection copy: the shared app state is not touched.
        self.app_state = {**self.app_state, PEER_KEY: peer}
        super().connection_made(transport)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``channel`` is how it proved it: ``unix`` or ``token``."""

    name: str
    role: Role
    channel: str
    impersonate: bool = False

    def acting_as(self, requested: str | None) -> tuple[str, str]:
        """(actor id, actor source) for an event this principal makes, optionally on behalf of ``requested``.

        Naming somebody else needs ``impersonate``; then the event records both: the person as
        the actor and "via <principal>" as its source.
        """
        if requested is None or requested == self.name:
            return self.name, self.channel
        if not self.impersonate:
            raise NotAuthorizedError(
                "", self.name, f"{self.name!r} may not act as {requested!r} (the token lacks impersonate)"
            )
        return requested, f"via {self.name}"


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


class Authenticator:
    """Turns a request's scope into a ``Principal``, or raises ``UnauthenticatedError``."""

    def __init__(
        self,
        tokens: TokenStore | None,
        *,
        admin_uids: set[int] | None = None,
        agent_users: frozenset[str] = frozenset(),
    ) -> None:
        self.tokens = tokens
        # OS users that run agents only (``--agent-user``): over the socket they may not decide.
        self.agent_users = agent_users
        # The server's own user and root administer it over the socket; other local users operate.
        self.admin_uids = admin_uids if admin_uids is not None else {0, os.geteuid()}

    def authenticate(self, scope: dict[str, Any], *, cached_only: bool = False) -> Principal:
        """The caller. ``cached_only`` (a peer locked out for failed token checks): only a token this
        server has verified before is accepted; anything else is ``RateLimitedError``, unchecked."""
        state = scope.get("state") or {}
        peer: PeerCredentials | None = state.get(PEER_KEY)
        if peer is not None:
            name = user_name(peer.uid)
            if name in self.agent_users:
                role = Role.AGENT
            elif peer.uid in self.admin_uids:
                role = Role.ADMIN
            else:
                role = Role.OPERATOR
            return Principal(name, role, "unix")
        header = None
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        if header is None:
            raise UnauthenticatedError("no credentials: send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        info = self.tokens.authenticate(token.strip(), verify=not cached_only) if self.tokens is not None else None
        if info is None and cached_only:
            raise RateLimitedError("too many failed token checks from this address: try again later")
        if info is None:
            raise UnauthenticatedError("the token is unknown, revoked or expired")
        # A browser session's token acts as its web user, recorded with source "web" (web/terminal.py).
        channel = "web" if info.principal is not None else "token"
        return Principal(info.acts_as, info.role, channel, info.impersonate)


def presented_token_id(scope: dict[str, Any]) -> str | None:
    """The id part of a presented ``hitl_<id>_<secret>`` token (not secret: it only finds the row),
    so that an audit record of a refused token says whose token was tried."""
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            token = value.decode("latin-1").partition(" ")[2].strip()
            if token.startswith(TOKEN_PREFIX):
                token_id = token[len(TOKEN_PREFIX) :].partition("_")[0]
                if 0 < len(token_id) <= 32 and all(c in "0123456789abcdef" for c in token_id):
                    return token_id
            return None
    return None
