"""Settings read from the environment, in one place, with their defaults."""

from __future__ import annotations

import getpass
import os
from functools import lru_cache

#: Largest context / args / response / result accepted, in bytes of JSON (HITL_MAX_PAYLOAD_BYTES).
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_TASK_ID_LENGTH = 256

# What one request may carry besides its JSON payloads, in characters (a ``[limits]`` table in
# hitl.toml overrides each; see ``hitl_core.limits``). Generous for people and agents, small
# enough that a hostile agent cannot make every ``hitl ls`` and console refresh drag megabytes.
#: The reason a request gives (the console's detail pane shows it whole).
MAX_REASON_CHARS = 20_000
#: A decision's message: an approval's comment or the reason of a rejection (the agent reads it).
MAX_MESSAGE_CHARS = 20_000
#: How many options a request may offer, and the length of each.
MAX_OPTIONS = 32
MAX_OPTION_CHARS = 200
#: How many assignees a request may name, and the length of each (an actor id or ``role:…``).
MAX_ASSIGNEES = 64
MAX_ASSIGNEE_CHARS = 200
#: An agent, framework or step name, a run or parent id, an actor id.
MAX_NAME_CHARS = 200


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
