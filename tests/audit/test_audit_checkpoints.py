"""Signed checkpoints against a forger who can write the whole database.

Every attack here leaves a log whose hash chain and snapshots are self-consistent (the forger uses
hitl's own hashing and fold, ``audit_forgery``): plain ``verify`` passes — each test shows that
first — and only the checkpoint, signed with a key the forger does not hold, tells. Each attack runs
on a real SQLite file and on a real PostgreSQL database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from audit_forgery import forge
from audit_helpers import Target, add_events, blame_mallory, make_history

from hitl_core import HITLStateMachine, Store, audit
from hitl_core.audit import AuditReport, CheckpointError
from hitl_core.records import EventRecord
from hitl_core.stores.base import StoredCheckpoint


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        yield m.store


def checkpoint(url: str, private: Path) -> audit.Checkpoint:
    async def run() -> audit.Checkpoint:
        async with opened(url) as store:
            made, _ = await audit.checkpoint(store, audit.load_private_key(private))
            return made

    return asyncio.run(run())


def verify(url: str, public: Path | None = None, expect_at: tuple[int, ...] = ()) -> AuditReport:
    async def run() -> AuditReport:
        async with opened(url) as store:
            key = audit.load_public_key(public) if public is not None else None
            return await audit.verify(store, key, expect_at=expect_at)

    return asyncio.run(run())


def attack(target: Target, change: Callable[[list[EventRecord]], list[EventRecord]], *, renumber: bool = True) -> None:
    with target.open_db() as db:
        forge(db, change, renumber=renumber)


# -- the attacks ------------------------------------------------------------------------------------


def test_recomputed_chain_is_caught_by_a_checkpoint(target: Target, keys: tuple[Path, Path]) -> None:
    private, public = keys
    made = checkpoint(target.url, private)
    assert (made.seq, verify(target.url, public).ok) == (12, True)
    attack(target, blame_mallory)
    assert verify(target.url).ok, "the forgery is self-consistent: chain and replay alone cannot tell"
    report = verify(target.url, public)
    assert not report.ok
    (problem,) = report.problems
    assert problem.startswith("event 12 has hash ") and problem.endswith(
        ": the log up to seq 12 was rewritten (its chain recomputed, or events removed and renumbered)"
    )
    assert f"but the checkpoint signed {made.signed_at} says {made.hash[:16]}…" in problem


def test_truncated_tail_is_caught_by_a_checkpoint(target: Target, keys: tuple[Path, Path]) -> None:
    private, public = keys
    made = checkpoint(target.url, private)
    attack(target, lambda events: events[:-3])  # roll back t3's resume and failure, and t1's completion
    assert verify(target.url).ok
    assert verify(target.url, public).problems == [
        f"the log ends at seq 9 but a checkpoint signed {made.signed_at} vouches for seq 12: "
        "events were removed from the end (truncated or rolled back)"
    ]


def _hide_alices_approval(events: list[EventRecord]) -> list[EventRecord]:
    """Drop t1's approval and everything t1 did after it: t1 is back to waiting (events 7, 9, 10)."""
    return [e for e in events if not (e.task_id == "t1" and e.version >= 3)]


@pytest.mark.parametrize("renumber", [True, False], ids=["renumbered", "not-renumbered"])
def test_removed_middle_is_caught_by_a_checkpoint(target: Target, keys: tuple[Path, Path], renumber: bool) -> None:
    private, public = keys
    made = checkpoint(target.url, private)
    attack(target, _hide_alices_approval, renumber=renumber)
    plain = verify(target.url)
    if renumber:
        assert plain.ok, "renumbered and rehashed, the log has no gap and every snapshot replays"
        assert verify(target.url, public).problems == [
            f"the log ends at seq 9 but a checkpoint signed {made.signed_at} vouches for seq 12: "
            "events were removed from the end (truncated or rolled back)"
        ]
    else:
        # Without renumbering the gap shows even with no checkpoint at all.
        assert plain.chain.problems == [
            "event 8 (task 't3', reject) follows event 6: event 7 was removed and the chain rehashed",
            "event 11 (task 't3', resume) follows event 8: events 9-10 were removed and the chain rehashed",
        ]
        (problem,) = verify(target.url, public).problems
        assert problem.startswith("event 12 has hash ") and "the log up to seq 12 was rewritten" in problem


def test_removed_middle_is_caught_by_a_checkpoint_once_new_events_fill_the_gap(
    target: Target, keys: tuple[Path, Path]
) -> None:
    """Renumbered, then honest agents carry on past the checkpointed seq: the hash there differs."""
    private, public = keys
    checkpoint(target.url, private)
    attack(target, _hide_alices_approval, renumber=True)
    asyncio.run(add_events(target.url, "t4"))
    asyncio.run(add_events(target.url, "t5"))
    report = verify(target.url, public)
    assert report.chain.ok and report.chain.last_seq == 13
    (problem,) = report.problems
    assert problem.startswith("event 12 has hash ") and "the log up to seq 12 was rewritten" in problem


def test_forged_checkpoint_signature_is_refused(target: Target, keys: tuple[Path, Path]) -> None:
    """The forger rewrites the log, then rewrites the checkpoint's body to match: the signature fails."""
    private, public = keys
    checkpoint(target.url, private)
    attack(target, blame_mallory)
    with target.open_db() as db:
        (body,) = db.rows("SELECT body FROM {c}")[0]
        lines = body.split("\n")
        chain_head = db.rows("SELECT hash FROM {e} ORDER BY seq DESC LIMIT 1")[0][0]
        lines[2] = chain_head
        db.run("UPDATE {c} SET body = ?", ("\n".join(lines),))
        db.commit()
    assert verify(target.url, public).problems == [
        "checkpoint at seq 12 has a bad signature: it was forged, or altered after signing"
    ]


def test_checkpoint_signed_by_another_key_is_refused(
    target: Target, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    """The forger makes a key of their own and signs their rewritten log with it."""
    _, public = keys
    forger_private, _ = other_keys
    checkpoint(target.url, keys[0])
    attack(target, blame_mallory)
    with target.open_db() as db:
        db.run("DELETE FROM {c}")
        db.commit()
    checkpoint(target.url, forger_private)
    forger_key = audit.key_id(audit.load_private_key(forger_private).public_key())
    ours = audit.key_id(audit.load_public_key(public))
    assert verify(target.url, public).problems == [
        f"checkpoint at seq 12 is signed by another key ({forger_key}, not {ours}): refused"
    ]


def test_deleted_checkpoints_are_caught_when_the_verifier_expects_one(target: Target, keys: tuple[Path, Path]) -> None:
    private, public = keys
    made = checkpoint(target.url, private)
    attack(target, blame_mallory)
    with target.open_db() as db:
        db.run("DELETE FROM {c}")
        db.commit()
    assert verify(target.url, public, expect_at=(made.seq,)).problems == [
        "no valid checkpoint at seq 12 (expected by --expect-checkpoint-at): it was deleted from the store, or never made",
        f"the store holds no checkpoint: nothing signed by key {audit.key_id(audit.load_public_key(public))} "
        "vouches for the chain (make one with hitl audit checkpoint --key FILE)",
    ]


def test_deleted_middle_checkpoint_is_caught_by_the_next_one(target: Target, keys: tuple[Path, Path]) -> None:
    """Each checkpoint names the digest of the one before it (CloudTrail's digest chain)."""
    private, public = keys
    first = checkpoint(target.url, private)
    asyncio.run(add_events(target.url))
    checkpoint(target.url, private)
    with target.open_db() as db:
        db.run("DELETE FROM {c} WHERE seq = ?", (first.seq,))
        db.commit()
    (problem,) = verify(target.url, public).problems
    assert problem.startswith("checkpoint at seq 14 follows a checkpoint (digest ")
    assert problem.endswith("that is no longer in the store: a checkpoint was deleted")


def test_checkpoint_refuses_to_sign_a_log_that_does_not_verify(target: Target, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    checkpoint(target.url, private)
    attack(target, blame_mallory)
    with pytest.raises(CheckpointError, match=r"refusing to sign: .*first: event 12 has hash"):
        checkpoint(target.url, private)

    async def count() -> int:
        async with opened(target.url) as store:
            return len(await store.checkpoints())

    assert asyncio.run(count()) == 1, "nothing was signed"


def test_a_rewrite_after_the_last_checkpoint_is_not_caught_until_compared_with_a_later_one(
    target: Target, keys: tuple[Path, Path]
) -> None:
    """The limit, stated in the README: events after the last checkpoint are vouched for by nothing."""
    private, public = keys
    checkpoint(target.url, private)
    asyncio.run(add_events(target.url))

    def reword_t4(events: list[EventRecord]) -> list[EventRecord]:
        events[-1].data["interrupt"]["reason"] = "nothing to see"
        return events

    attack(target, reword_t4)
    report = verify(target.url, public)
    assert report.ok and (report.covered_seq, report.chain.last_seq) == (12, 14)


def test_checkpoint_copied_from_another_store_is_refused(
    target: Target, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    other = f"sqlite:///{tmp_path / 'other.db'}"
    asyncio.run(make_history(other))  # the same story, told at other moments: other hashes
    checkpoint(other, private)

    async def copy() -> None:
        async with opened(other) as source, opened(target.url) as store:
            for cp in await source.checkpoints():
                await store.add_checkpoint(StoredCheckpoint(cp.seq, cp.body, cp.signature))

    asyncio.run(copy())
    (problem,) = verify(target.url, public).problems
    assert problem.startswith("checkpoint at seq 12 was made for another store (first event ")
    assert problem.endswith(", or event 1 was rewritten")


def test_the_key_holder_can_sign_a_rewritten_log(target: Target, keys: tuple[Path, Path]) -> None:
    """The limit, stated in the README: a checkpoint proves the key holder saw this head, nothing more.
    Signing directly (not through ``audit.checkpoint``, which would refuse) blesses a forgery."""
    private, public = keys
    checkpoint(target.url, private)
    attack(target, blame_mallory)
    with target.open_db() as db:
        db.run("DELETE FROM {c}")
        db.commit()
    head = verify(target.url).chain
    forged = audit.Checkpoint(head.first_hash or "", head.last_seq, head.last_hash, "2026-01-01T00:00:00Z", None, "any")

    async def store_it() -> None:
        async with opened(target.url) as store:
            await store.add_checkpoint(audit.sign(forged, audit.load_private_key(private)))

    asyncio.run(store_it())
    assert verify(target.url, public).ok
