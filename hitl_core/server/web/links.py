"""Signed action links: a URL that opens one task's decision page, for a notification to carry.

A link names the task, the interrupt it was made for and the fingerprint of the args asked
about, an expiry and a random nonce, all signed with the server's key (HMAC-SHA256)::

    /web/a/<base64url(task_id␟interrupt_id␟args_fingerprint␟expires␟nonce)>.<base64url(hmac)>

The link is not a credential: opening it still needs a login as somebody the policy lets decide.
It only says *which* decision the person is about to make, and it stops working when:

- ``forged``  its signature does not verify (tampered with, or made with another key);
- ``expired`` its expiry has passed (default 15 minutes after it was made);
- ``used``    somebody already decided through it (its nonce is recorded, across restarts);
- ``stale``   the task is no longer waiting on that interrupt with those args (it was decided
              another way, or it asks something else now): approving would approve what the
              link's reader never saw.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from ...errors import HITLError
from ...models import InterruptPoint, TaskState
from ...records import TaskRecord

DEFAULT_TTL_SECONDS = 15 * 60
_SEP = "\x1f"
_DOMAIN = b"hitl-action-link/v1|"

LinkProblem = Literal["forged", "expired", "used", "stale"]


class ActionLinkError(HITLError):
    """An action link that must not be acted on; ``problem`` says which of the four reasons."""

    def __init__(self, problem: LinkProblem, message: str, task_id: str = "") -> None:
        self.problem = problem
        self.task_id = task_id
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ActionLink:
    task_id: str
    interrupt_id: str
    args_fingerprint: str
    expires: int  # unix seconds
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest())


def sign_link(
    key: bytes,
    task_id: str,
    state: TaskState,
    interrupt: InterruptPoint | None,
    *,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    now: float | None = None,
) -> str:
    """The path (``/web/a/…``) of a link to decide the task's current request ``interrupt``."""
    if state is not TaskState.AWAITING_APPROVAL or interrupt is None:
        raise HITLError(f"task {task_id!r} is not waiting for a decision: no action link for it")
    expires = int((time.time() if now is None else now) + ttl_seconds)
    fields = [task_id, interrupt.interrupt_id, interrupt.args_fingerprint or "", str(expires)]
    fields.append(secrets.token_urlsafe(12))
    payload = _b64(_SEP.join(fields).encode("utf-8"))
    return f"/web/a/{payload}.{_mac(key, payload)}"


def read_link(key: bytes, token: str, *, now: float | None = None) -> ActionLink:
    """The link's fields if its signature verifies and it has not expired; ``ActionLinkError`` else.

    The signature is checked first and in constant time: nothing of an unsigned link is trusted,
    not even the task id it names (which is left out of the error).
    """
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > 4096 or not payload.isascii() or not signature.isascii():
        raise ActionLinkError("forged", "this link is malformed: it was not made by this server")
    if not hmac.compare_digest(_mac(key, payload), signature):
        raise ActionLinkError("forged", "this link's signature does not verify: it was altered or not made here")
    try:
        parts = _unb64(payload).decode("utf-8").split(_SEP)
        task_id, interrupt_id, args_fingerprint, expires_text, nonce = parts
        expires = int(expires_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ActionLinkError("forged", "this link's contents are malformed") from None
    link = ActionLink(task_id, interrupt_id, args_fingerprint, expires, nonce)
    if (time.time() if now is None else now) >= expires:
        raise ActionLinkError("expired", "this link has expired: open the task from the console instead", task_id)
    return link


def check_current(link: ActionLink, record: TaskRecord | None) -> None:
    """``stale`` unless the task still waits on the interrupt and args the link was made for."""
    if record is None:
        raise ActionLinkError("stale", "the task this link names no longer exists", link.task_id)
    interrupt = record.interrupt
    if record.state is not TaskState.AWAITING_APPROVAL or interrupt is None:
        raise ActionLinkError(
            "stale", f"the task is no longer waiting for a decision (it is {record.state.value})", link.task_id
        )
    if interrupt.interrupt_id != link.interrupt_id or (interrupt.args_fingerprint or "") != link.args_fingerprint:
        raise ActionLinkError(
            "stale", "the task's request has changed since this link was made: review the new request", link.task_id
        )
