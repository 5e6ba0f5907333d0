"""Settings read from the environment, in one place, with their defaults."""

from __future__ import annotations

import getpass
import os
from functools import lru_cache

#: Largest context / args / response / result accepted, in bytes of JSON (HITL_MAX_PAYLOAD_BYTES).
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_TASK_ID_LENGTH = 256


def max_payload_bytes() -> int:
    raw = os.environ.get("HITL_MAX_PAYLOAD_BYTES")
    return int(raw) if raw else DEFAULT_MAX_PAYLOAD_BYTES


def store_url_from_env() -> str | None:
    return os.environ.get("HITL_STORE") or None


@lru_cache(maxsize=1)
def os_user() -> str:
    """The default actor for decisions made without a name: whoever is logged in."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
