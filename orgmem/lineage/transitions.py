"""Changes of what an org serves and trains from: pin, unpin, promote, reject, quarantine, rollback.

Served checkpoint = pinned if set, else head, per audience: a checkpoint's own ``audience`` says
which lineage an operation on it moves (the org's, or a group's; see ``lineage.audiences``), so
pin, promote, reject, quarantine and rollback need no audience argument; ``unpin`` takes one.
Every operation here writes one ``serving_events``
row (who, when, why, served before/after) and an audit event, and validates everything before it
changes anything, so a refused operation leaves the database as it was. Functions flush but do
not commit: the caller's transaction decides, so ``forget`` can roll back and quarantine atomically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.enums import CheckpointStatus, ServingAction
from orgmem.db.models import AudienceHead, Checkpoint, Org, ServingEvent
from orgmem.db.session import begin_write
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError
from orgmem.lineage.audiences import ORG_AUDIENCE, HeadHolder, head_holder
from orgmem.lineage.audit import record_audit
from orgmem.lineage.chunks import ChunkStatusChange, sync_chunk_status
from orgmem.lineage.orgs import resolve_org
from orgmem.lineage.tree import ancestry, get_checkpoint, parent_map

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingChange:
    """What an operation did; ``as_dict`` is the CLI's ``--json`` output."""

    event: ServingEvent
    head_checkpoint_id: str | None
    pinned_checkpoint_id: str | None
    abandoned: tuple[str, ...] = ()
    chunks: ChunkStatusChange | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        ev = self.event
        out: dict[str, Any] = {
            "action": ev.action,
            "checkpoint_id": ev.checkpoint_id,
            "previous_checkpoint_id": ev.previous_checkpoint_id,
            "served_checkpoint_id": ev.served_checkpoint_id,
            "head_checkpoint_id": self.head_checkpoint_id,
            "pinned_checkpoint_id": self.pinned_checkpoint_id,
            "actor": ev.actor,
            "reason": ev.reason,
            "at": ev.created_at.isoformat(),
        }
        if self.abandoned:
            out["abandoned"] = list(self.abandoned)
        if self.chunks is not None:
            out["chunks_to_pending"] = self.chunks.to_pending
            out["chunks_to_consumed"] = self.chunks.to_consumed
        return out | self.extra


def _locked(session: Session, org: Org | str) -> Org:
    begin_write(session)
    return resolve_org(session, org, for_update=True)


def _holder(session: Session, org: Org, audience: str) -> HeadHolder:
    """The head holder of ``audience`` (a group's row is created with its first serving change)."""
    holder = head_holder(session, org, audience, create=True, for_update=True)
    if holder is None:  # create=True makes the group's row
        raise RuntimeError(f"no head holder for {audience!r} of org {org.slug!r}")
    return holder


def serving_event(
    org: Org, holder: HeadHolder, action: ServingAction, checkpoint_id: str | None, previous: str | None,
    actor: str, reason: str | None,
) -> ServingEvent:
    """The history row of one serving change of ``holder``'s lineage (served after it: the holder's now)."""
    return ServingEvent(
        org_id=org.id,
        audience=holder.audience if isinstance(holder, AudienceHead) else ORG_AUDIENCE,
        action=action.value,
        checkpoint_id=checkpoint_id,
        previous_checkpoint_id=previous,
        served_checkpoint_id=holder.served_checkpoint_id,
        actor=actor,
        reason=reason,
        created_at=utcnow(),
    )


def _record(
    session: Session,
    org: Org,
    holder: HeadHolder,
    action: ServingAction,
    checkpoint_id: str | None,
    previous: str | None,
    actor: str,
    reason: str | None,
    **change: Any,
) -> ServingChange:
    event = serving_event(org, holder, action, checkpoint_id, previous, actor, reason)
    audience = event.audience
    session.add(event)
    data: dict[str, Any] = {
        "previous": previous, "served": holder.served_checkpoint_id, "head": holder.head_checkpoint_id,
    }
    if audience != ORG_AUDIENCE:
        data["audience"] = audience
        change["extra"] = {**change.get("extra", {}), "audience": audience}
    if change.get("abandoned"):
        data["abandoned"] = list(change["abandoned"])
    if change.get("chunks") is not None:
        data["chunks_to_pending"] = change["chunks"].to_pending
    record_audit(
        session, org_id=org.id, actor=actor, action=f"serving.{action.value}", target=checkpoint_id, data=data
    )
    session.flush()
    logger.info(
        "serving change",
        extra={
            "org": org.slug,
            "action": action.value,
            "checkpoint": checkpoint_id,
            "audience": audience,
            "served": holder.served_checkpoint_id,
            "actor": actor,
        },
    )
    return ServingChange(event, holder.head_checkpoint_id, holder.pinned_checkpoint_id, **change)


def _of(audience: str) -> str:
    """`` (group 'eng')`` in messages about a group lineage; nothing for the org's."""
    return "" if audience == ORG_AUDIENCE else f" (group {audience!r})"


def _refuse_quarantined(org: Org, ck: Checkpoint, what: str) -> None:
    if ck.status == CheckpointStatus.QUARANTINED.value:
        raise ConflictError(f"checkpoint {ck.id!r} of org {org.slug!r} is quarantined and cannot be {what}")


def _servable(
    session: Session, org: Org | str, checkpoint_id: str, what: str
) -> tuple[Org, Checkpoint, HeadHolder]:
    """Lock the org, load its checkpoint (refused when quarantined) and its audience's head holder:
    the common start of every change that puts a checkpoint in front of users (pin, promote)."""
    org = _locked(session, org)
    ck = get_checkpoint(session, checkpoint_id, org)
    _refuse_quarantined(org, ck, what)
    return org, ck, _holder(session, org, ck.audience)


def pin(
    session: Session, org: Org | str, checkpoint_id: str, *, actor: str, reason: str | None = None
) -> ServingChange:
    """Serve ``checkpoint_id`` regardless of later promotions until unpinned."""
    org, ck, holder = _servable(session, org, checkpoint_id, "pinned")
    if holder.pinned_checkpoint_id == ck.id:
        raise ConflictError(f"org {org.slug!r}{_of(ck.audience)} is already pinned to checkpoint {ck.id!r}")
    previous = holder.served_checkpoint_id
    holder.pinned_checkpoint_id = ck.id
    return _record(session, org, holder, ServingAction.PIN, ck.id, previous, actor, reason)


def unpin(
    session: Session,
    org: Org | str,
    *,
    actor: str,
    reason: str | None = None,
    audience: str = ORG_AUDIENCE,
) -> ServingChange:
    """Serve the head of ``audience`` again."""
    org = _locked(session, org)
    holder = head_holder(session, org, audience, for_update=True)
    if holder is None or holder.pinned_checkpoint_id is None:
        raise ConflictError(f"org {org.slug!r}{_of(audience)} has no pinned checkpoint")
    previous = unpinned = holder.pinned_checkpoint_id
    holder.pinned_checkpoint_id = None
    return _record(session, org, holder, ServingAction.UNPIN, unpinned, previous, actor, reason)


def promote(
    session: Session,
    org: Org | str,
    checkpoint_id: str,
    *,
    actor: str,
    reason: str | None = None,
    force: bool = False,
) -> ServingChange:
    """Make a candidate built on the current head the new head (``force``: even if rejected)."""
    org, ck, holder = _servable(session, org, checkpoint_id, "promoted")
    if ck.id == holder.head_checkpoint_id:
        raise ConflictError(f"checkpoint {ck.id!r} is already the head of org {org.slug!r}{_of(ck.audience)}")
    if ck.status == CheckpointStatus.REJECTED.value and not force:
        raise ConflictError(
            f"checkpoint {ck.id!r} of org {org.slug!r} was rejected; promote it with --force to override"
        )
    if ck.parent_id != holder.head_checkpoint_id:
        raise ConflictError(
            f"checkpoint {ck.id!r} was built on {ck.parent_id!r} but org {org.slug!r}{_of(ck.audience)} "
            f"head is {holder.head_checkpoint_id!r}; only a child of the head can be promoted "
            "(roll back first)"
        )
    previous = holder.served_checkpoint_id
    ck.status = CheckpointStatus.PROMOTED.value
    holder.head_checkpoint_id = ck.id
    chunks = sync_chunk_status(session, org, ck.audience)
    action = ServingAction.FORCE_PROMOTE if force else ServingAction.PROMOTE
    return _record(session, org, holder, action, ck.id, previous, actor, reason, chunks=chunks)


def reject(
    session: Session, org: Org | str, checkpoint_id: str, *, actor: str, reason: str | None = None
) -> ServingChange:
    """Mark a candidate as rejected by the gate; serving and head do not change."""
    org = _locked(session, org)
    ck = get_checkpoint(session, checkpoint_id, org)
    if ck.status != CheckpointStatus.CANDIDATE.value:
        raise ConflictError(
            f"checkpoint {ck.id!r} of org {org.slug!r} is {ck.status}, only candidates can be rejected"
        )
    ck.status = CheckpointStatus.REJECTED.value
    holder = _holder(session, org, ck.audience)
    served = holder.served_checkpoint_id
    return _record(session, org, holder, ServingAction.REJECT, ck.id, served, actor, reason)


def quarantine(
    session: Session, org: Org | str, checkpoint_id: str, *, actor: str, reason: str | None = None
) -> ServingChange:
    """Take a checkpoint out of use for good (e.g. it saw forgotten data).

    It must be off the head's lineage already (roll back past it first); a pin on it or on one of
    its descendants is removed, since those weights contain the same data.
    """
    org = _locked(session, org)
    ck = get_checkpoint(session, checkpoint_id, org)
    if ck.status == CheckpointStatus.QUARANTINED.value:
        raise ConflictError(f"checkpoint {ck.id!r} of org {org.slug!r} is already quarantined")
    holder = _holder(session, org, ck.audience)
    parents = parent_map(session, org)
    if ck.id in ancestry(parents, holder.head_checkpoint_id):
        raise ConflictError(
            f"checkpoint {ck.id!r} is on the head lineage of org {org.slug!r}{_of(ck.audience)} (head "
            f"{holder.head_checkpoint_id!r}); roll back to its parent {ck.parent_id!r} first"
        )
    previous = holder.served_checkpoint_id
    ck.status = CheckpointStatus.QUARANTINED.value
    pinned = holder.pinned_checkpoint_id
    unpinned = pinned is not None and ck.id in ancestry(parents, pinned)
    if unpinned:
        holder.pinned_checkpoint_id = None
    return _record(
        session,
        org,
        holder,
        ServingAction.QUARANTINE,
        ck.id,
        previous,
        actor,
        reason,
        extra={"unpinned": unpinned},
    )


def rollback(
    session: Session, org: Org | str, checkpoint_id: str, *, actor: str, reason: str | None = None
) -> ServingChange:
    """Move the head back to an ancestor; chunks only the abandoned branch consumed become pending."""
    org = _locked(session, org)
    target = get_checkpoint(session, checkpoint_id, org)
    holder = _holder(session, org, target.audience)
    where = f"org {org.slug!r}{_of(target.audience)}"
    if holder.head_checkpoint_id is None:
        raise ConflictError(f"{where} has no head checkpoint to roll back from")
    if target.id == holder.head_checkpoint_id:
        raise ConflictError(f"checkpoint {target.id!r} is already the head of {where}")
    chain = ancestry(parent_map(session, org), holder.head_checkpoint_id)
    if target.id not in chain:
        raise ConflictError(
            f"checkpoint {target.id!r} is not an ancestor of {where} head "
            f"{holder.head_checkpoint_id!r}; rollback only moves back along the head lineage"
        )
    _refuse_quarantined(org, target, "rolled back to")
    previous = holder.served_checkpoint_id
    abandoned = tuple(chain[: chain.index(target.id)])
    holder.head_checkpoint_id = target.id
    chunks = sync_chunk_status(session, org, target.audience)
    return _record(
        session,
        org,
        holder,
        ServingAction.ROLLBACK,
        target.id,
        previous,
        actor,
        reason,
        abandoned=abandoned,
        chunks=chunks,
    )
