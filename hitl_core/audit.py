"""Signed checkpoints of the audit chain: what makes a rewritten log detectable.

The hash chain alone is tamper-*evident* only against someone who cannot recompute it: anyone who
can write the store can rewrite an event and rehash everything after it, delete the tail, or
delete a middle event and renumber. A checkpoint fixes the chain head (sequence number and hash)
at a moment in time with an Ed25519 signature made by a key the writers never hold; a verifier
with the public key then checks the log against every checkpoint:

* a recomputed chain: the event at a checkpointed seq no longer has the checkpointed hash;
* a truncated or rolled-back log: a checkpoint vouches for a seq beyond the last event;
* a removed middle event: renumbered, the hash at the checkpointed seq differs (or the log is now
  too short); not renumbered, the seq gap itself (``Store.verify``);
* a forged checkpoint: its signature does not verify with the public key (or names another key);
* a deleted checkpoint: each checkpoint names the digest of the one before it (as CloudTrail's
  digest files name the previous digest's signature), so a missing one in the middle is seen; the
  newest ones can only be missed if nobody expects them (``expect_at``: the verifier's own note of
  a checkpoint it saw made).

What it cannot catch is written in the README ("Audit trail"): chiefly, events after the last
checkpoint can be rewritten until the next one is made.

The body follows the shape of a transparency log's signed tree head (C2SP tlog-checkpoint, as
Sigstore's Rekor publishes): an origin line naming the log, the size, the head hash, then
extension lines — plain text, so an operator can read what was signed.

``cryptography`` is imported only here, and only when a key is made, loaded or used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from .canonical import now_us, us_to_datetime
from .errors import HITLError
from .stores.base import StoredCheckpoint, VerifyReport

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from .stores.base import Store

#: The names ``hitl audit keygen`` writes in its ``--out`` directory.
PRIVATE_KEY_FILE = "hitl-audit.key"
PUBLIC_KEY_FILE = "hitl-audit.pub"
#: The first word of every checkpoint body: the format, so a later one can be told apart.
FORMAT = "hitl-checkpoint/1"


class AuditKeyError(HITLError):
    """A key file is missing, unreadable, not an Ed25519 key of the right kind, or too open."""


class CheckpointError(HITLError):
    """A checkpoint cannot be made: the chain it would vouch for does not verify, or there is none."""


# -- keys ---------------------------------------------------------------------------------------------


def generate_keypair(out_dir: Path) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair into ``out_dir``: (private key path, public key path, key id).

    The private key file is created with mode 0600 and never overwritten: if either file exists,
    ``AuditKeyError`` and nothing is written.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not out_dir.is_dir():
        raise AuditKeyError(f"{out_dir} is not a directory")
    private_path, public_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise AuditKeyError(f"{path} already exists: refusing to overwrite a key (move it away first)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)  # a pair or nothing
        raise
    return private_path, public_path, key_id(key.public_key())


def _write_new(path: Path, content: bytes, mode: int) -> None:
    # O_EXCL: never replace a file (or follow a symlink) that appeared since the check above.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise AuditKeyError(f"{path} already exists: refusing to overwrite a key (move it away first)") from None
    except OSError as exc:
        raise AuditKeyError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.chmod(path, mode)  # whatever the umask


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path`` (PEM, PKCS#8). Refused when group or others may read it, as ssh does."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuditKeyError(
            f"{path} is readable by others (mode {mode:04o}): the checkpoint key must be 0600 (chmod 600 {path})"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verifying key in ``path`` (PEM, SubjectPublicKeyInfo), as ``hitl audit keygen`` writes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        hint = " (that is the private key: pass the .pub file)" if b"PRIVATE KEY" in data else ""
        raise AuditKeyError(f"{path} is not a PEM public key{hint} ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(f"no key file at {path}") from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the key file {path}: {exc.strerror}") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of sha256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- the checkpoint -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint says: this store's chain had ``hash`` at ``seq`` at ``signed_at``, following
    the checkpoint whose digest is ``prev`` (None for the first), signed by key ``key``.

    ``store`` is the store's identity: the hash of its first event, which no other log shares.
    ``audit``: the head of the server's audit chain (refusals, applied policies) as ``(seq, hash)``,
    an extension line present only when the store had audit records — so a checkpoint also fixes
    who was refused and which policy was applied, up to then.
    """

    store: str
    seq: int
    hash: str
    signed_at: str
    prev: str | None
    key: str
    audit: tuple[int, str] | None = None

    def body(self) -> str:
        extension = f"audit {self.audit[0]} {self.audit[1]}\n" if self.audit is not None else ""
        return (
            f"{FORMAT} {self.store}\n{self.seq}\n{self.hash}\n"
            f"time {self.signed_at}\nprev {self.prev or '-'}\nkey {self.key}\n{extension}"
        )

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """The checkpoint a body states, or ``ValueError`` saying why it is not one."""
        lines = body.split("\n")
        if len(lines) not in (7, 8) or lines[-1] != "":
            raise ValueError("a checkpoint body has six lines (seven with the audit chain's head)")
        origin, seq, head, time, prev, key = lines[:6]
        audit = None
        if len(lines) == 8:
            parts = lines[6].split(" ")
            if len(parts) != 3 or parts[0] != "audit" or not parts[1].isdigit() or str(int(parts[1])) != parts[1]:
                raise ValueError("the seventh line is not 'audit SEQ HASH'")
            audit_seq, audit_hash = parts[1], parts[2]
            audit = (int(audit_seq), audit_hash)
        fmt, _, store = origin.partition(" ")
        if fmt != FORMAT or not store:
            raise ValueError(f"the first line is not {FORMAT!r} and a store id")
        if not seq.isdigit() or str(int(seq)) != seq:
            raise ValueError("the second line is not a sequence number")
        for line, name in ((time, "time"), (prev, "prev"), (key, "key")):
            if not line.startswith(name + " "):
                raise ValueError(f"no {name!r} line")
        prev_value = prev[5:]
        return cls(store, int(seq), head, time[5:], None if prev_value == "-" else prev_value, key[4:], audit)


def digest(stored: StoredCheckpoint) -> str:
    """What the next checkpoint names as ``prev``: sha256 over this one's body and signature."""
    return hashlib.sha256(f"{stored.body}\n{stored.signature}".encode()).hexdigest()


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey) -> StoredCheckpoint:
    body = checkpoint.body()
    signature = base64.b64encode(private_key.sign(body.encode())).decode("ascii")
    return StoredCheckpoint(checkpoint.seq, body, signature)


def _signature_ok(stored: StoredCheckpoint, public_key: Ed25519PublicKey) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(stored.signature, validate=True), stored.body.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- verifying ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class AuditReport:
    """``Store.verify``'s report (``chain``) plus what the checkpoints say about it."""

    chain: VerifyReport
    problems: list[str] = field(default_factory=list)
    #: Checkpoints whose signature verified with the key, and the highest seq any of them vouches for.
    valid_checkpoints: int = 0
    covered_seq: int = 0
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    @property
    def all_problems(self) -> list[str]:
        return [*self.chain.problems, *self.problems]


async def verify(
    store: Store,
    public_key: Ed25519PublicKey | None = None,
    *,
    expect_at: Collection[int] = (),
    require_checkpoint: bool = True,
) -> AuditReport:
    """Verify the chain and the replay (``Store.verify``) and, given a public key, every checkpoint.

    With a key, every checkpoint in the store must carry a valid signature by that key and agree
    with the log; ``expect_at`` names seqs at which a valid checkpoint must exist (the verifier's
    own record, against deleted checkpoint rows); ``require_checkpoint``: no checkpoint at all is
    a failure (nothing vouches for the chain).
    """
    stored = await store.checkpoints() if public_key is not None else []
    parsed: list[tuple[StoredCheckpoint, Checkpoint | None]] = []
    for cp in stored:
        try:
            parsed.append((cp, Checkpoint.parse(cp.body)))
        except ValueError:
            parsed.append((cp, None))
    wanted = {c.seq for _, c in parsed if c is not None} | set(expect_at)
    wanted_audit = {c.audit[0] for _, c in parsed if c is not None and c.audit is not None}
    report = AuditReport(await store.verify(hashes_at=wanted, audit_hashes_at=wanted_audit))
    if public_key is None:
        return report
    chain = report.chain
    report.key = ours = key_id(public_key)
    digests = {digest(cp) for cp in stored}
    valid_seqs: set[int] = set()
    for cp, checkpoint in parsed:
        problem = _checkpoint_problem(cp, checkpoint, public_key, ours, chain, digests)
        if problem is not None:
            report.problems.append(problem)
        elif checkpoint is not None:
            report.valid_checkpoints += 1
            report.covered_seq = max(report.covered_seq, checkpoint.seq)
            valid_seqs.add(checkpoint.seq)
    for seq in sorted(set(expect_at) - valid_seqs):
        report.problems.append(
            f"no valid checkpoint at seq {seq} (expected by --expect-checkpoint-at): "
            "it was deleted from the store, or never made"
        )
    if require_checkpoint and not stored:
        report.problems.append(
            f"the store holds no checkpoint: nothing signed by key {ours} vouches for the chain "
            "(make one with hitl audit checkpoint --key FILE)"
        )
    return report


def _checkpoint_problem(
    cp: StoredCheckpoint,
    checkpoint: Checkpoint | None,
    public_key: Ed25519PublicKey,
    ours: str,
    chain: VerifyReport,
    digests: set[str],
) -> str | None:
    """What is wrong with one stored checkpoint, or None when it vouches for the log as it is."""
    name = f"checkpoint at seq {cp.seq}"
    if checkpoint is None:
        return f"{name} is not a checkpoint (its body does not parse): it was forged or altered"
    if not _signature_ok(cp, public_key):
        if checkpoint.key != ours:
            return f"{name} is signed by another key ({checkpoint.key}, not {ours}): refused"
        return f"{name} has a bad signature: it was forged, or altered after signing"
    if checkpoint.seq != cp.seq:
        return f"{name}: its row says seq {cp.seq} but the signed body says {checkpoint.seq}: the row was altered"
    if checkpoint.prev is not None and checkpoint.prev not in digests:
        return (
            f"{name} follows a checkpoint (digest {checkpoint.prev[:16]}…) that is no longer in the store: "
            "a checkpoint was deleted"
        )
    if checkpoint.seq > chain.last_seq:
        return (
            f"the log ends at seq {chain.last_seq} but a checkpoint signed {checkpoint.signed_at} vouches for "
            f"seq {checkpoint.seq}: events were removed from the end (truncated or rolled back)"
        )
    if checkpoint.store != chain.first_hash:
        return (
            f"{name} was made for another store (first event {checkpoint.store[:16]}…, this store's is "
            f"{(chain.first_hash or 'none')[:16]}…), or event 1 was rewritten"
        )
    if checkpoint.audit is not None:
        audit_seq, audit_hash = checkpoint.audit
        if audit_seq > chain.audit_last_seq:
            return (
                f"the server's audit chain ends at record {chain.audit_last_seq} but a checkpoint signed "
                f"{checkpoint.signed_at} vouches for record {audit_seq}: audit records were removed from the end"
            )
        if chain.audit_hashes.get(audit_seq) != audit_hash:
            return (
                f"audit record {audit_seq} does not have the hash the checkpoint signed {checkpoint.signed_at} "
                "says: the server's audit chain was rewritten (refusals or policies edited or removed)"
            )
    found = chain.hashes.get(checkpoint.seq)
    if found is None:
        return f"{name}: the log has no event {checkpoint.seq} any more: events were removed"
    if found != checkpoint.hash:
        return (
            f"event {checkpoint.seq} has hash {found[:16]}… but the checkpoint signed {checkpoint.signed_at} "
            f"says {checkpoint.hash[:16]}…: the log up to seq {checkpoint.seq} was rewritten "
            "(its chain recomputed, or events removed and renumbered)"
        )
    return None


# -- making a checkpoint ------------------------------------------------------------------------------


async def checkpoint(store: Store, private_key: Ed25519PrivateKey) -> tuple[Checkpoint, AuditReport]:
    """Verify the store (chain, replay and earlier checkpoints, with this key's public half), then sign
    its head and keep the checkpoint in the store.

    Refuses (``CheckpointError``) to sign a log that does not verify: a checkpoint must never bless
    a rewritten history. The head signed is the one the verification reached, so events committed
    meanwhile are left for the next checkpoint rather than signed unchecked.
    """
    report = await verify(store, private_key.public_key(), require_checkpoint=False)
    if not report.ok:
        problems = report.all_problems
        raise CheckpointError(
            f"refusing to sign: the audit trail does not verify ({len(problems)} problem(s)); first: {problems[0]}"
        )
    chain = report.chain
    if chain.last_seq == 0 or chain.first_hash is None:
        raise CheckpointError("the store has no events yet: nothing to checkpoint")
    existing = await store.checkpoints()
    prev = digest(existing[-1]) if existing else None
    made = Checkpoint(
        store=chain.first_hash,
        seq=chain.last_seq,
        hash=chain.last_hash,
        signed_at=_iso(now_us()),
        prev=prev,
        key=key_id(private_key.public_key()),
        audit=(chain.audit_last_seq, chain.audit_last_hash) if chain.audit_last_seq else None,
    )
    await store.add_checkpoint(sign(made, private_key))
    return made, report


def _iso(us: int) -> str:
    return us_to_datetime(us).astimezone(UTC).isoformat().replace("+00:00", "Z")
