"""Canonical JSON, fingerprints, payload checks, timestamps and the audit hash chain.

Canonical JSON (sorted keys, no spaces, no NaN) is what every hash is computed over, so the
same content always hashes the same whatever store or process wrote it.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from .errors import PayloadError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENESIS_HASH = "0" * 64
_US = timedelta(microseconds=1)


def now_us() -> int:
    """Wall-clock time in integer microseconds: exact to convert, cheap to store and compare."""
    return time.time_ns() // 1000


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def datetime_to_us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // _US


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    )


def fingerprint(args: Any) -> str:
    """sha256 of the canonical JSON of an action's args: binds a decision to what a person saw."""
    return hashlib.sha256(canonical_json(args).encode()).hexdigest()


def checked_copy(value: Any, what: str, limit: int) -> Any:
    """A detached, JSON-only copy of agent-supplied data, or ``PayloadError`` saying why not.

    Done at the boundary (``request_approval``, decisions) so that an unserialisable or oversized
    payload is refused before anything is written, and so that the caller mutating its own dict
    later cannot change what was recorded.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply (or refers to itself)") from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:  # a lone surrogate: Python holds it, no JSON reader would
        raise PayloadError(f"{what} holds text that is not valid Unicode ({exc.reason} at {exc.start})") from None
    if size > limit:
        raise PayloadError(f"{what} is {size:,} bytes, over the limit of {limit:,} bytes (HITL_MAX_PAYLOAD_BYTES)")
    return json.loads(text)


def event_hash(
    prev_hash: str,
    seq: int,
    task_id: str,
    version: int,
    action: str,
    from_state: str | None,
    to_state: str,
    actor_id: str | None,
    actor_source: str | None,
    at_us: int,
    data: Any,
) -> str:
    """The chain link: sha256 over the previous hash and the event's canonical content."""
    body = canonical_json([seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at_us, data])
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
