"""One word per concept (``docs/glossary.md``), and the old words the public API still accepts.

``RETIRED`` maps each word the public API no longer uses to the word that replaced it; a caller
that passes a retired keyword gets a ``DeprecationWarning`` naming the new word, and the call does
what it did. ``tests/core/test_glossary.py`` checks that no public signature or model field uses a
retired word. Stored names are not words of the API: the event data and ``approval_data`` keys
(``approver``, ``rejector``, ``notes``, ``reason``) are hashed into the audit chain and stay.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

#: retired word -> the glossary's word for the same concept
RETIRED: dict[str, str] = {
    "approver": "actor",
    "rejector": "actor",
    "responder": "actor",
    "decided_by": "actor",
    "comment": "message",
    "notes": "message",
}

#: The retired keywords each deciding verb (the machine's, the client's, the sync facade's) still
#: takes, and the keyword that replaced each.
RETIRED_KEYWORDS: dict[str, dict[str, str]] = {
    "approve": {"approver": "actor", "comment": "message", "notes": "message"},
    "reject": {"rejector": "actor", "approver": "actor", "reason": "message"},
    "edit": {"approver": "actor", "comment": "message"},
    "respond": {"responder": "actor"},
}


def renamed_keywords(call: str, given: dict[str, Any], **current: Any) -> dict[str, Any]:
    """``current`` (the new keywords' values) updated from ``given``, the retired keywords a caller
    passed to ``call``, each mapped through ``RETIRED_KEYWORDS`` with a ``DeprecationWarning``.

    A keyword ``call`` never took is a ``TypeError``, as Python would raise; an old and a new
    keyword for the same value is one too (which should win is a guess we won't make).
    """
    for old, value in given.items():
        new = RETIRED_KEYWORDS[call].get(old)
        if new is None:
            raise TypeError(f"{call}() got an unexpected keyword argument {old!r}")
        warnings.warn(
            f"{call}({old}=…) is deprecated: the word is now {new!r} ({call}({new}=…); docs/glossary.md)",
            DeprecationWarning,
            stacklevel=3,
        )
        if value is None:
            continue
        if current.get(new) is not None:
            raise TypeError(f"{call}() got both {old}= and {new}=; pass {new}= only")
        current[new] = value
    return current


def retired_names(module: str, renames: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names the glossary retired: ``renames`` (old -> new) answers the
    new object, with a ``DeprecationWarning`` naming it; any other name is an ``AttributeError``."""
    package = module.split(".")[0]

    def __getattr__(name: str) -> Any:
        new = renames.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{name} is deprecated: use {package}.{new} (docs/glossary.md)", DeprecationWarning, stacklevel=2)
        return namespace[new]

    return __getattr__
