"""Remapping keys from a config file, by binding id (Posting's way).

The file is TOML: ``[keymap]`` then ``binding_id = "key"`` (comma-separate several keys), e.g.
``"decide.approve" = "y"``. It lives at ``$HITL_KEYMAP`` or ``<user config dir>/hitl/keymap.toml``.
A file that is not valid TOML, or that names an id the console does not have, stops the console
with a message naming the file and the problem — a silently ignored remap is a wrong key pressed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

import platformdirs


class KeymapError(ValueError):
    """The keymap file can't be used; the message says which file and why."""


def keymap_path() -> Path:
    configured = os.environ.get("HITL_KEYMAP")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_config_dir("hitl")) / "keymap.toml"


def load_keymap(path: Path, known_ids: Iterable[str]) -> dict[str, str]:
    """The remaps in ``path`` ({} when there is no file)."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KeymapError(f"keymap file {path} is not valid TOML: {exc}") from None
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        raise KeymapError(f'keymap file {path}: [keymap] must be a table of binding id = "key"')
    known = set(known_ids)
    keymap: dict[str, str] = {}
    for binding_id, keys in table.items():
        if binding_id not in known:
            raise KeymapError(
                f"keymap file {path}: unknown binding id {binding_id!r}; known ids: {', '.join(sorted(known))}"
            )
        if not isinstance(keys, str) or not keys.strip():
            raise KeymapError(f"keymap file {path}: {binding_id} must be a non-empty string of keys")
        keymap[binding_id] = keys.strip()
    return keymap
