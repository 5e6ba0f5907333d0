"""Canonical JSON, fingerprints, payload checks, timestamps and the audit hash chain.

Canonical JSON (sorted keys, no spaces, no NaN) is what every hash is computed over, so the
same content always hashes the same whatever store or process wrote it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
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


def _json_canonical(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    )


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, no NaN, UTF-8 as is: the text every hash is computed over.

    Byte for byte what ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)`` writes (pydantic models as their ``model_dump(mode=
    "json")``), which is what every stored hash was made from — so chains written before and
    after stay valid (``tests/audit/test_canonical_compat.py``). NaN and infinities raise
    ``ValueError``, as they always did. See ``canonical_json_checked`` for the commit path.
    """
    if _has_non_finite(value):
        return _json_canonical(value)  # raises ValueError
    return canonical_json_checked(value)


def canonical_json_checked(value: Any) -> str:
    """``canonical_json`` for values whose plain parts were checked where they entered
    (``checked_copy`` refuses NaN and infinities), in microseconds: what the commit path uses.

    orjson writes it, and a model's text is made once and reused (the interrupt of a waiting
    task is in every snapshot and event that carries it); a model's text goes through the strict
    ``canonical_json`` when it is made, so a NaN a plugin put in a model still raises. The values
    orjson would write differently go through ``json`` instead: integers beyond 64 bits, lone
    surrogates and non-string keys (orjson refuses them) and floats in exponent notation
    (formatted differently). Only a NaN or infinity in the plain parts would come out as ``null``
    here — which is why this is only for checked values: a hand-edited stored event holding one
    then hashes differently and ``verify`` reports it altered.
    """
    try:
        raw = orjson.dumps(value, default=_fragment, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return _json_canonical(value)
    if _float_differs(raw):
        return _json_canonical(value)
    return raw.decode()


def _float_differs(raw: bytes) -> bool:
    """Could ``raw`` hold a float that ``json`` writes differently? An exponent with a minus sign
    (orjson ``1e-7``, ``json`` ``1e-07``) or a small fraction written out (orjson ``0.00003``,
    ``json`` ``3e-05``). Text that merely looks like one only sends the value down the slow path.
    (``bytes.find`` rather than a regular expression: this runs on every commit.)"""
    for pattern in (b"e-", b"E-"):
        at = raw.find(pattern)
        while at > 0:
            if 48 <= raw[at - 1] <= 57:
                return True
            at = raw.find(pattern, at + 2)
    return b"0.0000" in raw


#: id(model) -> (model, its canonical JSON as an orjson fragment, the same as bytes). Holding the
#: model keeps its id from being reused while the entry lives. Models in records are never changed
#: once validated.
_MODEL_TEXT: dict[int, tuple[BaseModel, Any, bytes]] = {}
_MODEL_TEXT_MAX = 8192


def _model_text(value: BaseModel) -> tuple[BaseModel, Any, bytes]:
    cached = _MODEL_TEXT.get(id(value))
    if cached is not None and cached[0] is value:
        return cached
    # The strict writer, in one C call: refuses a NaN a plugin put in the model, and is the
    # reference form byte for byte (``canonical_json``'s docstring).
    raw = _json_canonical(value.model_dump(mode="json")).encode()
    entry = (value, orjson.Fragment(raw), raw)
    if len(_MODEL_TEXT) >= _MODEL_TEXT_MAX:
        _MODEL_TEXT.clear()
    _MODEL_TEXT[id(value)] = entry
    return entry


def model_json(value: BaseModel) -> Any:
    """A fresh ``value.model_dump(mode="json")``, parsed from the model's canonical text (made once).

    An event handed to observers carries its interrupt and decision as JSON; parsing the text made
    for the hash is several times cheaper than pydantic dumping the model again each time.
    """
    return orjson.loads(_model_text(value)[2])


def _fragment(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _model_text(value)[1]
    return _default(value)


def _has_non_finite(value: Any) -> bool:
    """Is there a NaN or an infinity in ``value`` outside its models? (orjson would write ``null``.)

    A model's own text is checked when it is made (``_fragment`` goes through ``canonical_json``).
    """
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False


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
    # Checked: what the machine wrote was checked where it entered; a NaN edited into a stored
    # event comes out as ``null``, so the event no longer matches its hash and ``verify`` says so.
    body = canonical_json_checked(
        [seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at_us, data]
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
