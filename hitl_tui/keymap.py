"""Remapping keys from a config file, by binding id (Posting's way).

The file is TOML: ``[keymap]`` then ``binding_id = "key"`` (comma-separate several keys), e.g.
``"decide.approve" = "y"``. It lives at ``$HITL_KEYMAP`` or ``<user config dir>/hitl/keymap.toml``.
A file that is not valid TOML, that names an id the console does not have, or that puts two
actions on one key, stops the console with a message naming the file and the problem — a silently
ignored remap, or a key that does one of two things, is a wrong key pressed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import platformdirs


class KeymapError(ValueError):
    """The keymap file can't be used; the message says which file and why."""


def keymap_path() -> Path:
    configured = os.environ.get("HITL_KEYMAP")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_config_dir("hitl")) / "keymap.toml"


def _keys(spec: str) -> list[str]:
    return [k.strip() for k in spec.split(",") if k.strip()]


def check_conflicts(defaults: Mapping[str, str], keymap: Mapping[str, str], source: str = "keymap") -> None:
    """Raise ``KeymapError`` when, after ``keymap`` is applied, one key triggers two binding ids.

    ``defaults`` maps each binding id of one screen (the ids that can answer the same key press)
    to its default keys. The error names the key and both ids.
    """
    owner: dict[str, str] = {}
    for binding_id, default in defaults.items():
        for key in _keys(keymap.get(binding_id, default)):
            other = owner.get(key)
            if other is not None and other != binding_id:
                raise KeymapError(
                    f"{source}: key {key!r} is bound to two actions, {other} and {binding_id}; give one of them another key"
                )
            owner[key] = binding_id


def load_keymap(path: Path, known_ids: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """The remaps in ``path`` ({} when there is no file).

    When ``known_ids`` is a mapping of id to default keys, a key left with two actions is an error.
    """
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
    if isinstance(known_ids, Mapping):
        check_conflicts(known_ids, keymap, f"keymap file {path}")
    return keymap
