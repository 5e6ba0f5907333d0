"""The canonical form did not move: hashes written before orjson verify now, and the reverse.

``canonical_json`` is what every chain hash covers. It is now written by orjson (with ``json``
for the few values orjson formats differently); these tests hold it byte-identical to the form
every existing store was written with, ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)``:

* a store written by the code before the change (``data/store_written_before_orjson.json``: the
  rows of a SQLite store made by main at bdc06f6, with floats in exponent notation, integers past
  64 bits, emoji, control characters, edits and answers) verifies — chain and replay — today;
* every hash a store writes today equals the hash the old formula gives for the same event;
* for any JSON value, the new form equals the old one, and NaN still raises.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hitl_core import HITLStateMachine
from hitl_core.canonical import _default, canonical_json, canonical_json_checked

FIXTURE = Path(__file__).with_name("data") / "store_written_before_orjson.json"


def old_canonical(value: Any) -> str:
    """The canonical form as every existing store was written (hitl before orjson)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    )


def old_hash(prev: str, row: tuple[Any, ...]) -> str:
    seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, data, _, _ = row
    body = old_canonical(
        [seq, task_id, version, action, from_state, to_state, actor_id, actor_source, at, json.loads(data)]
    )
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


async def test_a_store_written_before_orjson_verifies_now(tmp_path: Path) -> None:
    rows = json.loads(FIXTURE.read_text())
    url = f"sqlite:///{tmp_path / 'before.db'}"
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        await machine.get_task("nothing")  # creates the schema
    conn = sqlite3.connect(tmp_path / "before.db")
    with conn:
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows["events"])
        conn.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?)", rows["tasks"])
    conn.close()
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        report = await machine.verify()
        assert report.ok, report.problems
        assert report.events == len(rows["events"]) == 15
        # ... and the next write chains on from the old head, in the same form.
        await machine.approve("c", "dave", comment="après 1e-07")
        assert (await machine.verify()).ok


async def test_every_hash_written_now_is_the_hash_the_old_form_gives(tmp_path: Path) -> None:
    tricky = {
        "tiny": 1e-07,
        "small": 3e-05,
        "big": 1e16,
        "huge": 2**70,
        "text": "é 😀 \u2028 \x1f",
        "k": {"b": 1, "a": 2},
    }
    path = tmp_path / "now.db"
    async with HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False) as machine:
        await machine.start_task("t", tricky)
        await machine.request_approval("t", "pay 1e-7?", tricky, action="pay", args=tricky)
        await machine.edit("t", {**tricky, "amount": 2.5e-8}, "bob")
        await machine.resume("t")
        await machine.complete("t", tricky)
    conn = sqlite3.connect(path)
    events = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    conn.close()
    prev = "0" * 64
    for row in events:
        assert row[10] == prev
        assert row[11] == old_hash(prev, row), f"event {row[0]} ({row[3]}) hashes differently from the old form"
        assert row[9] == old_canonical(json.loads(row[9]))  # the stored data is in the old form too
        prev = row[11]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_form_is_byte_identical_to_the_old_one_for_any_json_value(value: Any) -> None:
    try:
        expected = old_canonical(value)
    except UnicodeEncodeError:  # pragma: no cover - json.dumps never encodes
        return
    assert canonical_json(value) == expected
    assert canonical_json_checked(value) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_still_refuses_nan_and_infinities(bad: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"nested": [1, {"x": bad}]})
