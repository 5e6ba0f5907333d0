"""OpenID Connect login for ``hitl serve --web --oidc-issuer URL --oidc-client-id ID``.

The authorization-code flow with PKCE (S256), ``state`` and ``nonce``: ``/web/oidc/login`` sends
the browser to the provider; ``/web/oidc/callback`` takes the code back, redeems it at the token
endpoint (with the PKCE verifier and, if configured, the client secret) and verifies the
``id_token``: its signature against the provider's JWKS (asymmetric algorithms only), ``iss``,
``aud``, ``exp`` and the ``nonce`` this browser was given. Discovery is read from
``<issuer>/.well-known/openid-configuration`` on first use.

Who logs in is decided here, never by the provider alone: the token's ``sub`` must be linked to
a local account (``hitl user add NAME --role R --oidc-subject SUB``), or its ``--oidc-user-claim``
(default ``preferred_username``) must name an existing account that is linked to no other subject.
An unknown person is refused (and audited), never created. A success opens the same session as a
password login. Not done: refresh tokens (the session's own lifetime applies), logout at the
provider, front- or back-channel logout.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ...errors import HITLError
from . import pages

if TYPE_CHECKING:
    import httpx

    from .app import Web

FLOW_COOKIE = "__Host-hitl_oidc"
#: A browser has this long between the button and the provider's answer.
FLOW_SECONDS = 600
#: Signature algorithms accepted for an id_token: asymmetric only (never "none", never an HMAC
#: keyed with a public key).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


class OIDCConfigError(HITLError):
    """The OpenID Connect options cannot work (a non-HTTPS issuer off loopback, a missing secret)."""


class OIDCRefusal(Exception):
    """A login through the provider that is refused: ``problem`` (a short kind) and why."""

    def __init__(self, problem: str, reason: str, who: str = "-") -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason
        self.who = who


@dataclass
class OIDCOptions:
    issuer: str
    client_id: str
    client_secret: str | None = None
    #: A PEM file of the CAs that sign the provider's certificate (default: the system's).
    ca_bundle: str | None = None
    #: The claim that names the local account when the subject is linked to none.
    user_claim: str = "preferred_username"


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> None:
    """HTTPS, or plain HTTP to this machine only (a test issuer): tokens never cross a network in clear."""
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and loopback(url)):
        return
    raise OIDCConfigError(f"{what} {url!r} must be https:// (http:// only for a provider on this machine)")


def check_options(issuer: str, secret_env: str | None, ca_bundle: str | None) -> str | None:
    """Check ``hitl serve``'s OIDC options before it starts; returns the client secret (or None)."""
    import os

    check_url(issuer, "--oidc-issuer")
    if ca_bundle is not None and not os.path.isfile(ca_bundle):
        raise OIDCConfigError(f"--oidc-ca-bundle {ca_bundle!r} is not a file")
    if secret_env is None:
        return None
    secret = os.environ.get(secret_env)
    if not secret:
        raise OIDCConfigError(f"--oidc-client-secret-env names {secret_env}, which is not set (or empty)")
    return secret


@dataclass
class _Flow:
    nonce: str
    verifier: str
    next_path: str
    browser: str  # SHA-256 of the flow cookie: the callback must come from the browser that started
    started: float


class OIDC:
    """The provider of one server: its discovery document, its keys, the flows under way."""

    def __init__(self, web: Web, options: OIDCOptions) -> None:
        check_url(options.issuer, "--oidc-issuer")
        self.web = web
        self.options = options
        self.issuer = options.issuer.rstrip("/")
        self.redirect_uri = web.options.public_url.rstrip("/") + "/web/oidc/callback"
        self.flows: dict[str, _Flow] = {}
        self._metadata: dict[str, Any] | None = None
        self._keys: Any = None
        label = urlsplit(self.issuer).hostname or self.issuer
        self.label = label

    def _client(self) -> httpx.AsyncClient:
        import httpx  # here, not at import: httpx pulls in rich when it is installed (its CLI)

        return httpx.AsyncClient(verify=self.options.ca_bundle or True, timeout=15, follow_redirects=False)

    async def metadata(self) -> dict[str, Any]:
        import httpx

        if self._metadata is None:
            url = self.issuer + "/.well-known/openid-configuration"
            try:
                async with self._client() as client:
                    response = await client.get(url)
                response.raise_for_status()
                found = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise OIDCRefusal("provider", f"cannot read the provider's discovery document {url}: {exc}") from None
            if not isinstance(found, dict) or str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise OIDCRefusal("provider", f"the discovery document at {url} names another issuer")
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(field), str):
                    raise OIDCRefusal("provider", f"the discovery document at {url} lacks {field}")
                try:
                    check_url(found[field], field)
                except OIDCConfigError as exc:
                    raise OIDCRefusal("provider", str(exc)) from None
            self._metadata = found
        return self._metadata

    async def keys(self, refresh: bool = False) -> Any:
        import httpx
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        if self._keys is None or refresh:
            url = (await self.metadata())["jwks_uri"]
            try:
                async with self._client() as client:
                    response = await client.get(url)
                response.raise_for_status()
                self._keys = KeySet.import_key_set(response.json())
            except (httpx.HTTPError, JoseError, ValueError, TypeError, KeyError) as exc:
                raise OIDCRefusal("provider", f"cannot read the provider's keys {url}: {exc}") from None
        return self._keys

    # -- routes -----------------------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        """The button: a fresh state, nonce and PKCE verifier, then off to the provider."""
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        from .app import _HEADERS, _next

        try:
            metadata = await self.metadata()
        except OIDCRefusal as exc:
            return await self._refused(request, exc)
        now = time.monotonic()
        for state in [s for s, f in self.flows.items() if f.started < now - FLOW_SECONDS]:
            del self.flows[state]
        if len(self.flows) > 10_000:  # bounded: a flood of button presses cannot fill memory
            for state in list(self.flows)[:5_000]:
                del self.flows[state]
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        browser = secrets.token_urlsafe(32)
        self.flows[state] = _Flow(
            nonce, verifier, _next(request.query_params.get("next") or "/web/"), _sha256(browser), now
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.options.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": "openid profile email",
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = metadata["authorization_endpoint"]
        response = RedirectResponse(
            f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", status_code=303, headers=_HEADERS
        )
        # Lax, not Strict: the provider's redirect back is a cross-site navigation
        response.set_cookie(
            FLOW_COOKIE, browser, max_age=FLOW_SECONDS, path="/", secure=True, httponly=True, samesite="lax"
        )
        return response

    async def callback(self, request: Request) -> Response:
        try:
            user, next_path = await self._verify(request)
        except OIDCRefusal as exc:
            return await self._refused(request, exc)
        return self._logged_in(request, user, next_path)

    async def _verify(self, request: Request) -> tuple[Any, str]:
        params = request.query_params
        state = params.get("state", "")
        # popped: a state is good for one callback, so a replayed callback URL is refused
        flow = self.flows.pop(state, None) if state else None
        if flow is None or flow.started < time.monotonic() - FLOW_SECONDS:
            raise OIDCRefusal("state", "the login's state is unknown, expired or already used (a replayed callback?)")
        sent = request.cookies.get(FLOW_COOKIE, "")
        if not sent or not hmac.compare_digest(_sha256(sent), flow.browser):
            raise OIDCRefusal("state", "the login's state was issued to another browser")
        if params.get("error"):
            detail = f"{params.get('error')} {params.get('error_description', '')}".strip()
            raise OIDCRefusal("denied", f"the provider did not log you in: {detail}")
        code = params.get("code", "")
        if not code:
            raise OIDCRefusal("provider", "the provider sent no authorization code")
        id_token = await self._redeem(code, flow.verifier)
        claims = await self._check(id_token, flow.nonce)
        return self._account(claims), flow.next_path

    async def _redeem(self, code: str, verifier: str) -> str:
        import httpx

        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.options.client_id,
            "code_verifier": verifier,
        }
        auth = None
        if self.options.client_secret is not None:
            auth = httpx.BasicAuth(self.options.client_id, self.options.client_secret)
        try:
            async with self._client() as client:
                response = await client.post(
                    metadata["token_endpoint"], data=form, auth=auth, headers={"Accept": "application/json"}
                )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OIDCRefusal("provider", f"cannot redeem the code at the token endpoint: {exc}") from None
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            detail = body.get("error", response.status_code) if isinstance(body, dict) else response.status_code
            raise OIDCRefusal("provider", f"the token endpoint gave no id_token ({detail})")
        return str(body["id_token"])

    async def _check(self, id_token: str, nonce: str) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError

        try:
            try:
                token = jwt.decode(id_token, await self.keys(), algorithms=ALGORITHMS)
            except (BadSignatureError, InvalidKeyIdError):
                # the provider may have rotated its keys since they were read: once more, fresh
                token = jwt.decode(id_token, await self.keys(refresh=True), algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise OIDCRefusal(
                "signature", f"the id_token's signature does not verify against the provider's keys ({exc})"
            ) from None
        claims: dict[str, Any] = dict(token.claims)
        who = str(claims.get("sub", "-"))[:128]
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise OIDCRefusal("issuer", f"the id_token's issuer {claims.get('iss')!r} is not {self.issuer!r}", who)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.options.client_id not in audiences:
            raise OIDCRefusal(
                "audience", f"the id_token is for {audience!r}, not this server ({self.options.client_id!r})", who
            )
        if len(audiences) > 1 and claims.get("azp") != self.options.client_id:
            raise OIDCRefusal("audience", "the id_token has several audiences and another authorized party", who)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp < time.time() - 60:
            raise OIDCRefusal("expired", "the id_token has expired (or has no expiry)", who)
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise OIDCRefusal("nonce", "the id_token's nonce is not the one this login sent", who)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise OIDCRefusal("subject", "the id_token names no subject", who)
        return claims

    def _account(self, claims: dict[str, Any]) -> Any:
        subject = claims["sub"]
        accounts = self.web.accounts
        user = accounts.oidc_user(subject)
        if user is not None:
            return user
        claim = self.options.user_claim
        value = claims.get(claim)
        if claim == "email" and claims.get("email_verified") is not True:
            value = None  # an unverified address names nobody
        user = accounts.user(value) if isinstance(value, str) and value else None
        if user is None:
            raise OIDCRefusal(
                "unknown-user",
                f"subject {subject!r} ({claim} {value!r}) is no user of this server: an admin adds it with"
                f" hitl user add NAME --role ROLE --oidc-subject {subject}",
                subject,
            )
        linked = accounts.oidc_subject(user.name)
        if linked is not None and linked != subject:
            raise OIDCRefusal(
                "unknown-user", f"user {user.name!r} is linked to another subject than {subject!r}", subject
            )
        return user

    # -- answers ----------------------------------------------------------------------------------

    async def _refused(self, request: Request, exc: OIDCRefusal) -> Response:
        client = request.client.host if request.client else "-"
        # the subject a token named is a claim (never the record's actor); none: the address only
        await self.web.refuse(
            exc.who, "-", "log in with OIDC", f"{exc.reason} (from {client})", peer=client, claimed=exc.who != "-"
        )
        status = 502 if exc.problem == "provider" else 403
        response = self.web.answer(request, status, "not logged in", exc.reason, f"oidc-{exc.problem}", None)
        response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response

    def _logged_in(self, request: Request, user: Any, next_path: str) -> Response:
        from .app import SESSION_COOKIE, audit_log, html

        session_id = self.web.accounts.open_session(user, self.web.options.session_lifetime)
        client = request.client.host if request.client else "-"
        audit_log.warning("web login (OIDC %s): %s (%s) from %s", self.issuer, user.name, user.role.value, client)
        # A page that moves on by itself, not a redirect: the browser came here from the provider (a
        # cross-site navigation), and a SameSite=Strict session cookie is sent only once the next
        # navigation starts from our own page.
        response = html(pages.moving_on_page(next_path, user.name))
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(self.web.options.session_lifetime.total_seconds()),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response

    def routes(self) -> list[BaseRoute]:
        return [
            Mount(
                "/web/oidc",
                routes=[
                    Route("/login", self.start, methods=["GET"]),
                    Route("/callback", self.callback, methods=["GET"]),
                ],
            )
        ]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


__all__ = ["OIDC", "OIDCConfigError", "OIDCOptions", "OIDCRefusal", "check_url"]
