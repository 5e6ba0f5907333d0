"""What the server writes to the store's audit chain, and the bounds that keep it from flooding it.

Two kinds of record (``Store.append_audit``; never events, so no task's state or version moves):

* ``refused``: a 401 or 403 — who (the principal, or the peer and token id for a 401), what they
  tried (method, path, task), and why. At most ``per_key`` a window per principal (or peer), and
  ``total`` a window in all; what is over is counted and written as one ``refusals_suppressed``
  record per key when its window ends. ``auth_rate_limited``: a peer locked out for guessing
  tokens (once per peer per window).
* ``policy_applied``: the policy in force from now on — its TOML text, sha256, version and who
  applied it. The newest one is the policy every server on the store enforces.

``AuthThrottle``: failed token checks per peer. Past ``limit`` in a window the peer gets 429 with
``Retry-After`` until the window ends, and only tokens this server already verified (kept as a
digest in memory) are still accepted from it: a guess is never checked, a working client goes on.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..canonical import now_us
from ..errors import HITLError, PayloadError
from ..policies import ConfigError, PolicyConfig, parse_config
from ..stores.base import AuditRecord, Store
from ..text import clip, hitl_logger

log = hitl_logger("hitl.server")

REFUSED = "refused"
SUPPRESSED = "refusals_suppressed"
RATE_LIMITED = "auth_rate_limited"
POLICY = "policy_applied"
#: An applied policy's text is kept whole in its audit record: bounded here.
MAX_POLICY_BYTES = 256 * 1024


def _text(value: object, limit: int = 500) -> str:
    return clip(str(value), limit)[0]


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class RefusalAudit:
    """Writes refusals to the audit chain, bounded per key and in all (see the module docstring)."""

    def __init__(
        self, store: Store, *, per_key: int = 10, total: int = 600, window: float = 60.0, max_keys: int = 10_000
    ) -> None:
        self.store = store
        self.per_key = per_key
        self.total = total
        self.window = window
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Window] = OrderedDict()
        self._total = _Window(time.monotonic())
        self.written = 0
        self.suppressed = 0
        self.failed = 0

    async def refused(self, key: str, actor: str | None, data: dict[str, Any]) -> AuditRecord | None:
        """Record one refusal (None when it was over the bound and only counted)."""
        now = time.monotonic()
        await self._roll(now)
        window = self._keys.get(key)
        if window is None:
            window = self._keys[key] = _Window(now)
            if len(self._keys) > self.max_keys:
                # The oldest keys go first; their suppressed counts are flushed, not lost.
                old_key, old = self._keys.popitem(last=False)
                await self._flush(old_key, old)
        self._keys.move_to_end(key)
        if window.written >= self.per_key or self._total.written >= self.total:
            window.suppressed += 1
            window.last = data
            self.suppressed += 1
            return None
        window.written += 1
        self._total.written += 1
        return await self._write(REFUSED, actor, data)

    async def once(self, kind: str, key: str, actor: str | None, data: dict[str, Any]) -> AuditRecord | None:
        """A record of ``kind`` for ``key`` at most once a window (``auth_rate_limited``)."""
        now = time.monotonic()
        await self._roll(now)
        window = self._keys.get(f"{kind}:{key}")
        if window is not None:
            return None
        self._keys[f"{kind}:{key}"] = _Window(now, written=1)
        return await self._write(kind, actor, data)

    async def tick(self) -> None:
        """End the windows that are over (the server's periodic loop calls this)."""
        await self._roll(time.monotonic())

    async def _roll(self, now: float) -> None:
        if now - self._total.started >= self.window:
            self._total = _Window(now)
        for key, window in list(self._keys.items()):
            if now - window.started >= self.window:
                del self._keys[key]
                await self._flush(key, window)

    async def _flush(self, key: str, window: _Window) -> None:
        if window.suppressed:
            data = {"key": key, "count": window.suppressed, "window_seconds": self.window, "last": window.last}
            await self._write(SUPPRESSED, window.last.get("principal"), data)

    async def _write(self, kind: str, actor: str | None, data: dict[str, Any]) -> AuditRecord | None:
        try:
            record = await self.store.append_audit(kind, actor, data, now_us())
        except HITLError as exc:
            # The refusal itself stands (the caller gets its 401/403); the lost record is logged.
            self.failed += 1
            log.error("could not write a %s audit record: %s", kind, exc)
            return None
        self.written += 1
        return record


class AuthThrottle:
    """Failed token checks per peer; past ``limit`` in ``window`` seconds the peer is locked out
    until the window ends (``retry_after``)."""

    def __init__(self, *, limit: int = 10, window: float = 60.0, max_peers: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_peers = max_peers
        self._peers: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, peer: str) -> float | None:
        """Seconds until ``peer`` may try new tokens again, or None when it is not locked out."""
        entry = self._peers.get(peer)
        if entry is None:
            return None
        started, failures = entry
        left = started + self.window - time.monotonic()
        if left <= 0:
            del self._peers[peer]
            return None
        return left if failures >= self.limit else None

    def failed(self, peer: str) -> None:
        now = time.monotonic()
        started, failures = self._peers.get(peer, (now, 0))
        if now - started >= self.window:
            started, failures = now, 0
        self._peers[peer] = (started, failures + 1)
        self._peers.move_to_end(peer)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)


# -- the policy in force -----------------------------------------------------------------------------


class PolicyError(PayloadError):
    """A policy that cannot be applied: not TOML, not a valid hitl.toml, too big, or naming files."""


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version: int
    hash: str
    text: str
    source: str | None
    applied_by: str | None
    applied_at: int
    seq: int  # the audit record that applied it

    def summary(self) -> dict[str, Any]:
        from ..canonical import us_to_datetime

        return {
            "version": self.version,
            "hash": self.hash,
            "source": self.source,
            "applied_by": self.applied_by,
            "applied_at": us_to_datetime(self.applied_at).isoformat(),
            "audit_seq": self.seq,
        }


def policy_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_policy(text: str, name: str = "<applied policy>") -> PolicyConfig:
    """The config ``text`` states, or ``PolicyError`` saying why it cannot be the server's policy."""
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError(f"the policy is over {MAX_POLICY_BYTES} bytes")
    try:
        config = parse_config(text, name)
    except ConfigError as exc:
        raise PolicyError(f"invalid policy: {exc}") from None
    auth = config.authorization
    if auth is not None and auth.roles_file is not None:
        # A path would be read on whichever server host enforces it, not where it was written.
        raise PolicyError(
            "invalid policy: [authorization] roles_file names a file; a policy kept in the store must be"
            " self-contained: put the roles in [authorization.actors] / [authorization.severity]"
        )
    return config


def stored_policy(record: AuditRecord) -> StoredPolicy:
    data = record.data
    return StoredPolicy(
        int(data["version"]),
        str(data["hash"]),
        str(data["text"]),
        data.get("source"),
        record.actor,
        record.at,
        record.seq,
    )


async def policy_in_force(store: Store) -> StoredPolicy | None:
    record = await store.last_audit_record(POLICY)
    return stored_policy(record) if record is not None else None


async def apply_policy(
    store: Store, text: str, applied_by: str, source: str | None
) -> tuple[StoredPolicy, PolicyConfig]:
    """Validate ``text`` and record it as the policy in force (the next version). Nothing is
    written when it is invalid: the policy in force stays."""
    config = parse_policy(text, source or "<applied policy>")
    current = await policy_in_force(store)
    version = current.version + 1 if current is not None else 1
    data = {"version": version, "hash": policy_hash(text), "text": text, "source": _text(source) if source else None}
    record = await store.append_audit(POLICY, applied_by, data, now_us())
    return stored_policy(record), config
