"""The checkpoint write protocol: objects first, verified; then the rows, in one transaction.

A crash or failure at any point leaves either no row, or a row whose objects all exist with
their recorded checksums. Objects of a failed attempt are orphans under a fresh checkpoint id
that nothing references; ``store gc`` removes them. They are deliberately *not* deleted on a
failed commit: a commit can fail after the server applied it (lost connection), and deleting
then would leave a row pointing at missing objects — the one state this protocol forbids.

The manifest is uploaded first, so every orphan folder carries its creation time for gc's
grace period.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from orgmem.checkpoints.digest import input_digest
from orgmem.checkpoints.layout import MANIFEST, MANIFEST_FORMAT, object_key, validate_object_name
from orgmem.checkpoints.metrics import CheckpointMetrics
from orgmem.db.enums import CheckpointStatus, InputRole
from orgmem.db.models import Checkpoint, CheckpointInput, CheckpointObject, Chunk, Org
from orgmem.db.session import begin_write
from orgmem.db.types import new_id, utcnow
from orgmem.errors import ConflictError, IntegrityError, NotFoundError, OrgmemError
from orgmem.lineage.audiences import ORG_AUDIENCE, audiences_of_chunks, head_holder, validate_audience
from orgmem.lineage.audit import record_audit
from orgmem.lineage.orgs import resolve_org
from orgmem.lineage.transitions import promote
from orgmem.lineage.tree import get_checkpoint
from orgmem.store.base import ObjectInfo, ObjectStore, sha256_hex

logger = logging.getLogger(__name__)

_RESERVED_MANIFEST_KEYS = frozenset(
    {
        "format",
        "checkpoint_id",
        "org",
        "parent_id",
        "created_at",
        "input_digest",
        "objects",
        "base_model",
        "base_fingerprint",
        "memory_kind",
        "memory_config",
        "audience",
    }
)
_COMMIT_STATUSES = {CheckpointStatus.CANDIDATE, CheckpointStatus.PROMOTED, CheckpointStatus.REJECTED}


@dataclass(frozen=True)
class InputRef:
    """A chunk a checkpoint was trained on: ``new`` (first consumption) or ``replay``."""

    chunk_id: int
    role: InputRole = InputRole.NEW


@dataclass(frozen=True)
class CommitResult:
    checkpoint: Checkpoint
    created: bool  # False: the same inputs on the same parent were committed before; nothing written


@dataclass(frozen=True)
class _Plan:
    """Everything validated and computed before the first byte is uploaded."""

    org: Org
    parent_id: str | None
    audience: str
    status: CheckpointStatus
    chunks: dict[int, tuple[Chunk, InputRole]]
    digest: str


@dataclass(frozen=True, kw_only=True)
class CheckpointDraft:
    """What one checkpoint to write is: its place in the lineage, its objects and its record.

    ``status="promoted"`` also promotes it (parent must be the head) in the commit's transaction.
    ``audience``: the lineage it belongs to; every input chunk must be of that audience, so a
    group's or a private channel's material can never be committed into the org memory.
    ``metrics``: sectioned (``CheckpointMetrics``) or already in the stored form.
    ``digest_extra``: what else, besides the new inputs and the parent, makes it a different
    checkpoint (the recipe); see ``orgmem.checkpoints.digest``.
    """

    org: Org | str
    parent_id: str | None
    objects: Mapping[str, bytes]
    base_model: str
    base_fingerprint: str
    memory_kind: str
    manifest: Mapping[str, Any] = field(default_factory=dict)
    inputs: Sequence[InputRef | int] = ()
    metrics: CheckpointMetrics | Mapping[str, Any] = field(default_factory=dict)
    status: CheckpointStatus | str = CheckpointStatus.CANDIDATE
    created_by: str = "system"
    memory_config: Mapping[str, Any] | None = None
    job_id: str | None = None
    notes: str | None = None
    digest_extra: Mapping[str, Any] | None = None
    audience: str = ORG_AUDIENCE


def commit_checkpoint(
    session: Session,
    store: ObjectStore,
    draft: CheckpointDraft,
    *,
    guard: Callable[[Session], None] | None = None,
) -> CommitResult:
    """Store ``draft`` as a new checkpoint and commit the session; idempotent by (org, input digest).

    ``guard(session)`` runs first in the rows' transaction and may raise to refuse the commit
    (a job checks it still holds its lease: ``orgmem.jobs.guard_commit``); the uploaded objects
    are then orphans like those of any failed commit.
    """
    plan = _plan(session, draft)
    existing = _existing(session, plan)
    if existing is not None:
        return CommitResult(existing, created=False)
    session.commit()  # end the read transaction: no database lock is held while uploading
    ck_id, created_at = new_id("ck"), utcnow()
    record = {
        "base_model": draft.base_model,
        "base_fingerprint": draft.base_fingerprint,
        "memory_kind": draft.memory_kind,
        "memory_config": dict(draft.memory_config or {}),
        "audience": plan.audience,
    }
    try:
        infos = _upload(store, plan, ck_id, created_at, draft.objects, {**draft.manifest, **record})
    except BaseException:
        logger.error(
            "checkpoint upload failed; objects written so far are orphans for `orgmem store gc`",
            extra={"org": plan.org.slug, "checkpoint": ck_id},
        )
        raise
    checkpoint = Checkpoint(
        id=ck_id,
        org_id=plan.org.id,
        parent_id=plan.parent_id,
        # a promoted commit starts as candidate and goes through promote() in the same transaction
        status=(
            CheckpointStatus.CANDIDATE if plan.status == CheckpointStatus.PROMOTED else plan.status
        ).value,
        metrics=_stored_metrics(draft.metrics),
        input_digest=plan.digest,
        created_by=draft.created_by,
        created_at=created_at,
        job_id=draft.job_id,
        notes=draft.notes,
        **record,
    )
    try:
        if guard is not None:
            guard(session)
        _insert(session, plan, checkpoint, infos, draft.created_by)
        session.commit()
    except DBIntegrityError:
        session.rollback()
        existing = _existing(session, plan)
        if existing is None:
            raise
        logger.info(
            "same checkpoint committed concurrently; objects left for gc",
            extra={"org": plan.org.slug, "checkpoint": existing.id, "orphan": ck_id},
        )
        return CommitResult(existing, created=False)
    except BaseException:
        session.rollback()
        logger.error(
            "checkpoint rows not committed; its objects are orphans for `orgmem store gc`",
            extra={"org": plan.org.slug, "checkpoint": ck_id},
        )
        raise
    logger.info(
        "committed checkpoint", extra={"org": plan.org.slug, "checkpoint": ck_id, "parent": plan.parent_id}
    )
    return CommitResult(checkpoint, created=True)


def _stored_metrics(metrics: CheckpointMetrics | Mapping[str, Any]) -> dict[str, Any]:
    return metrics.to_json() if isinstance(metrics, CheckpointMetrics) else dict(metrics)


def _plan(session: Session, draft: CheckpointDraft) -> _Plan:
    org = resolve_org(session, draft.org)
    parent_id, audience, digest_extra = draft.parent_id, draft.audience, draft.digest_extra
    validate_audience(audience)
    try:
        status = CheckpointStatus(draft.status)
    except ValueError:
        raise OrgmemError(
            f"checkpoint status {draft.status!r} must be one of candidate, promoted, rejected"
        ) from None
    if status not in _COMMIT_STATUSES:
        raise OrgmemError(f"a new checkpoint of org {org.slug!r} cannot start as {status.value!r}")
    for name in draft.objects:
        validate_object_name(name)
    if MANIFEST in draft.objects:
        raise OrgmemError(f"object name {MANIFEST!r} is reserved: pass the manifest as a dict")
    clash = sorted(_RESERVED_MANIFEST_KEYS & set(draft.manifest))
    if clash:
        raise OrgmemError(f"manifest keys {clash} are reserved; they are filled in by commit_checkpoint")
    if parent_id is not None:
        parent = get_checkpoint(session, parent_id, org)
        if parent.status == CheckpointStatus.QUARANTINED.value:
            raise ConflictError(f"parent checkpoint {parent_id!r} of org {org.slug!r} is quarantined")
        if parent.audience != audience:
            raise ConflictError(
                f"parent checkpoint {parent_id!r} of org {org.slug!r} is of audience {parent.audience!r}, "
                f"not {audience!r}: each audience has its own lineage"
            )
    holder = head_holder(session, org, audience)
    head = holder.head_checkpoint_id if holder is not None else None
    if status == CheckpointStatus.PROMOTED and parent_id != head:
        raise ConflictError(
            f"cannot commit a promoted checkpoint on parent {parent_id!r}: org {org.slug!r} "
            f"(audience {audience!r}) head is {head!r}"
        )
    chunks = _resolve_inputs(session, org, draft.inputs)
    _refuse_other_audiences(session, org, chunks, audience)
    new_keys = [chunk.chunk_key for chunk, role in chunks.values() if role == InputRole.NEW]
    if audience != ORG_AUDIENCE:  # a group's first night must not match the org's (same parent: none)
        digest_extra = {**(digest_extra or {}), "audience": audience}
    digest = input_digest(new_keys, parent_id, digest_extra)
    return _Plan(org, parent_id, audience, status, chunks, digest)


def _refuse_other_audiences(
    session: Session, org: Org, chunks: Mapping[int, tuple[Chunk, InputRole]], audience: str
) -> None:
    """No chunk of another audience (a group's, a private channel's) enters this lineage."""
    foreign = sorted(
        (cid, aud) for cid, aud in audiences_of_chunks(session, chunks).items() if aud != audience
    )
    if foreign:
        shown = ", ".join(f"{cid} ({aud!r})" for cid, aud in foreign[:10])
        raise ConflictError(
            f"input chunks {shown} of org {org.slug!r} belong to another audience than {audience!r}; "
            "they may only be written into their own audience's memory"
        )


def _resolve_inputs(
    session: Session, org: Org, inputs: Sequence[InputRef | int]
) -> dict[int, tuple[Chunk, InputRole]]:
    refs = [ref if isinstance(ref, InputRef) else InputRef(int(ref)) for ref in inputs]
    roles: dict[int, InputRole] = {}
    for ref in refs:
        role = InputRole(ref.role)
        if roles.get(ref.chunk_id, role) != role:
            raise OrgmemError(f"chunk {ref.chunk_id} is listed both as new and as replay input")
        roles[ref.chunk_id] = role
    found = (
        {c.id: c for c in session.scalars(select(Chunk).where(Chunk.id.in_(list(roles))))} if roles else {}
    )
    missing = sorted(set(roles) - set(found))
    if missing:
        raise NotFoundError(f"input chunks {missing[:10]} of org {org.slug!r} not found")
    foreign = sorted(cid for cid, chunk in found.items() if chunk.org_id != org.id)
    if foreign:
        raise ConflictError(f"input chunks {foreign[:10]} belong to another org than {org.slug!r}")
    return {cid: (found[cid], role) for cid, role in roles.items()}


def _existing(session: Session, plan: _Plan) -> Checkpoint | None:
    query = select(Checkpoint).where(Checkpoint.org_id == plan.org.id, Checkpoint.input_digest == plan.digest)
    existing = session.scalar(query)
    if existing is not None:
        logger.info(
            "checkpoint with these inputs exists; nothing written",
            extra={"org": plan.org.slug, "checkpoint": existing.id},
        )
    return existing


def _upload(
    store: ObjectStore,
    plan: _Plan,
    ck_id: str,
    created_at: datetime,
    objects: Mapping[str, bytes],
    manifest: Mapping[str, Any],
) -> dict[str, ObjectInfo]:
    """Manifest first (it dates the folder for gc), then every object; each verified on return."""
    described = {
        name: {"sha256": sha256_hex(data), "size": len(data)} for name, data in sorted(objects.items())
    }
    document = {
        **manifest,
        "format": MANIFEST_FORMAT,
        "checkpoint_id": ck_id,
        "org": plan.org.slug,
        "parent_id": plan.parent_id,
        "created_at": created_at.isoformat(),
        "input_digest": plan.digest,
        "objects": described,
    }
    payloads = {MANIFEST: json.dumps(document, indent=2, sort_keys=True, default=str).encode()}
    payloads.update(sorted(objects.items()))
    infos: dict[str, ObjectInfo] = {}
    for name, data in payloads.items():
        key = object_key(plan.org.slug, ck_id, name)
        info = store.put(key, data)
        if info.sha256 != sha256_hex(data) or info.size != len(data):
            raise IntegrityError(
                f"store returned sha256 {info.sha256} / {info.size} bytes for {key!r}, "
                f"expected {sha256_hex(data)} / {len(data)}"
            )
        infos[name] = info
    return infos


def _insert(
    session: Session, plan: _Plan, checkpoint: Checkpoint, infos: dict[str, ObjectInfo], actor: str
) -> None:
    begin_write(session)
    session.add(checkpoint)
    for name, info in infos.items():
        session.add(
            CheckpointObject(
                checkpoint_id=checkpoint.id, name=name, key=info.key, sha256=info.sha256, size=info.size
            )
        )
    for chunk, role in plan.chunks.values():
        session.add(
            CheckpointInput(
                checkpoint_id=checkpoint.id,
                chunk_id=chunk.id,
                document_version_id=chunk.document_version_id,
                role=role.value,
            )
        )
    record_audit(
        session,
        org_id=plan.org.id,
        actor=actor,
        action="checkpoint.commit",
        target=checkpoint.id,
        data={"parent": plan.parent_id, "inputs": len(plan.chunks), "status": plan.status.value},
    )
    session.flush()
    if plan.status == CheckpointStatus.PROMOTED:
        promote(session, plan.org, checkpoint.id, actor=actor, reason="committed as promoted")
