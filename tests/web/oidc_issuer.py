"""A local OpenID Connect provider for tests/web/test_web_oidc.py: run as its own process, on TLS.

``python oidc_issuer.py PORT CERT KEY CLIENT_ID CLIENT_SECRET``. It serves discovery, a JWKS (an
RSA key made at start), ``/authorize`` (which at once redirects back with a code for the test
user: nobody types a password) and ``/token`` (which checks the client's secret, the redirect
URI and the PKCE verifier, then returns an RS256 ``id_token`` made with joserfc, authlib's JOSE).

The test steers the next code through ``POST /control/next`` (JSON): ``mode`` makes a bad token
on purpose (``bad-signature``, ``alg-none``, ``wrong-iss``, ``wrong-aud``, ``expired``,
``wrong-nonce``) or ``rotate`` changes the provider's signing key first; ``deny`` answers ``access_denied``, and ``claims``
replaces claims (another ``sub`` or ``preferred_username``). ``GET /control/last`` is the last
redirect back to the client (a callback URL, to replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

USER = {"sub": "alice-subject-0001", "preferred_username": "alice", "email": "alice@example.test"}


def make_app(issuer: str, client_id: str, client_secret: str) -> Starlette:
    def new_key(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)

    keys = {"current": new_key("test-key-1")}
    # another key: a token it signs under the current key's id claims to be ours but does not verify
    impostor = RSAKey.generate_key(2048, private=True)
    codes: dict[str, dict[str, Any]] = {}
    steer: dict[str, Any] = {}
    last: dict[str, str] = {}

    async def discovery(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [keys["current"].as_dict(private=False)]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, 400)
        if steer.get("mode") == "deny":  # the person said no at the provider
            steer.clear()
            url = f"{q['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': q.get('state', '')})}"
            last["redirect"] = url
            return RedirectResponse(url, status_code=302)
        code = secrets.token_urlsafe(24)
        codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce"),
            "mode": steer.pop("mode", "good"),
            "claims": steer.pop("claims", {}),
        }
        url = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        last["redirect"] = url
        return RedirectResponse(url, status_code=302)

    async def token(request: Request) -> Response:
        form = dict(await request.form())
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = codes.pop(str(form.get("code", "")), None)  # single use
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        mode = grant["mode"]
        now = int(time.time())
        claims = {
            **USER,
            "iss": issuer,
            "aud": "somebody-else" if mode == "wrong-aud" else client_id,
            "iat": now - (7200 if mode == "expired" else 0),
            "exp": now - 3600 if mode == "expired" else now + 300,
            "nonce": "not-the-nonce-you-sent" if mode == "wrong-nonce" else grant["nonce"],
            **grant["claims"],
        }
        if mode == "wrong-iss":
            claims["iss"] = "https://idp.elsewhere.example"
        if mode == "rotate":  # a new signing key, published in the JWKS from now on
            keys["current"] = new_key(f"test-key-{secrets.token_hex(4)}")
        key = keys["current"]
        signer = impostor if mode == "bad-signature" else key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, signer)
        if mode == "alg-none":  # the oldest forgery: no signature at all
            part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
            id_token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})

    async def control_next(request: Request) -> Response:
        body = await request.json()
        steer.clear()
        steer.update(body)
        return JSONResponse({"ok": True})

    async def control_last(request: Request) -> Response:
        return JSONResponse(last)

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/control/next", control_next, methods=["POST"]),
            Route("/control/last", control_last),
        ]
    )


def main() -> None:
    port, cert, key, client_id, client_secret = sys.argv[1:6]
    issuer = f"https://127.0.0.1:{port}"
    app = make_app(issuer, client_id, client_secret)
    uvicorn.run(app, host="127.0.0.1", port=int(port), ssl_certfile=cert, ssl_keyfile=key, log_level="warning")


if __name__ == "__main__":
    main()
