"""Signing hitl's webhooks, and checking them on the receiving end (Stripe's scheme).

Every POST carries ``X-Hitl-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, the HMAC keyed
with the webhook's secret over ``f"{t}.".encode() + body`` (the exact bytes received). The time
is signed with the body, so a captured request stops verifying once it is older than the
receiver's tolerance (``DEFAULT_TOLERANCE``, 300 s): it cannot be replayed forever. While a
secret is rotated the header carries one ``v1`` per secret; a receiver accepts any that matches.

A receiver needs only ``verify_signature``. This module imports nothing but the standard
library and ``hitl_core.errors`` (a test checks it), so it can also be vendored::

    from hitl_core.webhooks import WebhookSignatureError, verify_signature

    try:
        verify_signature(SECRET, request.headers.get("X-Hitl-Signature"), request.body)
    except WebhookSignatureError as exc:
        return 400, str(exc)

Within the tolerance a replay still verifies: a receiver that must act once per notice keeps
the ``delivery`` ids it has seen (signed, in the body) for that long.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Literal

from .errors import HITLError

SIGNATURE_HEADER = "X-Hitl-Signature"
#: Seconds a signature stays valid either side of the receiver's clock.
DEFAULT_TOLERANCE = 300
SCHEME = "v1"

Secret = str | bytes
SignatureProblem = Literal["missing", "malformed", "expired", "mismatch"]


class WebhookSignatureError(HITLError):
    """A webhook request that must not be trusted. ``reason``: ``missing`` (no header),
    ``malformed`` (not ``t=…,v1=…``), ``expired`` (outside the tolerance: a replay, or a clock
    far off), ``mismatch`` (no ``v1`` is the HMAC of this body: tampered, or another secret)."""

    def __init__(self, reason: SignatureProblem, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _key(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: Secret, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secrets: Secret | Iterable[Secret], body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Hitl-Signature`` value for ``body`` at ``timestamp`` (default: now), one ``v1``
    per secret (the new one first while a secret is rotated)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    keys = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    if not keys:
        raise ValueError("sign needs at least one secret")
    return ",".join([f"t={t}", *(f"{SCHEME}={_mac(k, t, body)}" for k in keys)])


def _parse(header: str) -> tuple[int, list[str]]:
    if not header.isascii():
        raise WebhookSignatureError("malformed", f"{SIGNATURE_HEADER} is not ASCII")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed", f"{SIGNATURE_HEADER} is not t=<time>,v1=<hmac>: {item.strip()!r}")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
        # other keys (a future scheme) are ignored, as Stripe's receivers do
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise WebhookSignatureError("malformed", f"{SIGNATURE_HEADER} needs exactly one t=<unix seconds>")
    if not signatures:
        raise WebhookSignatureError("malformed", f"{SIGNATURE_HEADER} has no {SCHEME}= signature")
    return int(timestamps[0]), signatures


def verify_signature(
    secret: Secret | Iterable[Secret],
    header: str | None,
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> int:
    """Check a webhook request; return its signed timestamp, or raise ``WebhookSignatureError``.

    ``secret``: the webhook's secret, or several (a receiver mid-rotation accepts old and new).
    ``header``: the ``X-Hitl-Signature`` value as received (None when absent). ``body``: the raw
    request body, before any JSON parsing (a str is taken as its UTF-8). ``tolerance``: seconds
    the signed time may differ from ``now`` (default: this machine's clock). Signatures are
    compared in constant time.
    """
    if tolerance <= 0:
        raise ValueError(f"tolerance must be a positive number of seconds, got {tolerance!r}")
    if not header:
        raise WebhookSignatureError("missing", f"no {SIGNATURE_HEADER} header: not a signed hitl webhook")
    timestamp, signatures = _parse(header)
    clock = time.time() if now is None else now
    age = clock - timestamp
    if abs(age) > tolerance:
        when = f"{age:.0f}s old" if age > 0 else f"{-age:.0f}s in the future"
        raise WebhookSignatureError(
            "expired", f"signed {when}, outside the {tolerance:g}s tolerance (a replay, or a clock that is off)"
        )
    data = body.encode("utf-8") if isinstance(body, str) else body
    keys = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    matched = False
    for key in keys:
        expected = _mac(key, timestamp, data)
        for candidate in signatures:
            # not short-circuited: the time taken says nothing about which part matched
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError(
            "mismatch", f"no {SCHEME} signature matches this body (tampered, or signed with another secret)"
        )
    return timestamp


__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "WebhookSignatureError",
    "sign",
    "verify_signature",
]
