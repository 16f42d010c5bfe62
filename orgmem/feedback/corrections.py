"""Corrections and their review: propose, list, show, approve, reject, and what training takes.

A correction is *pending* until an admin approves or rejects it (or the org's policy approves it
at once for the proposer's role: ``FeedbackSetting.auto_approve_role``). Approved corrections wait
for their audience's next consolidation; the one that is promoted marks them *consumed* with its
checkpoint id. Whether a correction is learned is read from the lineage, like a chunk's status: it
is learned while a checkpoint on the audience's head lineage lists it in its metrics' ``feedback``
section, so a rollback past that checkpoint makes it wait again, and a force-promoted checkpoint
that trained it counts too. Pending and rejected
corrections are never returned to training. Every review decision is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from orgmem.db.enums import ApiKeyRole, CorrectionStatus, Rating
from orgmem.db.models import Checkpoint, Correction, FeedbackRating, FeedbackSetting, Org
from orgmem.db.types import new_id, utcnow
from orgmem.errors import ConflictError, NotFoundError, OrgmemError
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder
from orgmem.lineage.audit import record_audit
from orgmem.lineage.tree import ancestry, parent_map

REVIEWABLE = (CorrectionStatus.PENDING.value,)


@dataclass(frozen=True)
class Taught:
    """An approved correction as training needs it: the question, the corrected answer, and the
    answer the model gave (pushed down)."""

    id: str
    question: str
    answer: str
    previous: str


def correction_dict(c: Correction) -> dict[str, Any]:
    return {"id": c.id, "audience": c.audience, "status": c.status, "question": c.question,
            "model_answer": c.model_answer, "proposed_answer": c.proposed_answer, "comment": c.comment,
            "response_id": c.response_id, "answered_by": c.answered_by, "proposer": c.proposer,
            "conflicts_with_documents": c.conflicts_with_documents,
            "conflicting_documents": sorted({x["document"] for x in c.conflicts or []}),
            "conflicts": c.conflicts or [], "reviewed_by": c.reviewed_by,
            "reviewed_at": c.reviewed_at.isoformat() if c.reviewed_at else None,
            "review_reason": c.review_reason, "consumed_checkpoint_id": c.consumed_checkpoint_id,
            "created_at": c.created_at.isoformat()}


# -- policy ----------------------------------------------------------------------------------------

def auto_approve_role(session: Session, org: Org) -> str | None:
    row = session.get(FeedbackSetting, org.id)
    return row.auto_approve_role if row is not None else None


def set_auto_approve_role(session: Session, org: Org, role: str | None, *, actor: str) -> str | None:
    """Corrections from keys of ``role`` are approved when proposed (None: every one is reviewed)."""
    if role is not None and role not in {r.value for r in ApiKeyRole}:
        raise OrgmemError(f"invalid role {role!r} for auto-approval: use one of "
                          f"{[r.value for r in ApiKeyRole]} or none")
    row = session.get(FeedbackSetting, org.id)
    before = row.auto_approve_role if row is not None else None
    if row is None:
        row = FeedbackSetting(org_id=org.id, updated_by=actor)
        session.add(row)
    row.auto_approve_role, row.updated_by, row.updated_at = role, actor, utcnow()
    record_audit(session, org_id=org.id, actor=actor, action="feedback.policy", target=org.slug,
                 data={"auto_approve_role": role, "before": before})
    return role


# -- proposing -------------------------------------------------------------------------------------

def proposed_since(session: Session, key_id: int, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Correction).where(
        Correction.proposer_key_id == key_id, Correction.created_at >= since)) or 0


def oldest_within(session: Session, key_id: int, window: timedelta, now: datetime) -> datetime | None:
    return session.scalar(select(func.min(Correction.created_at)).where(
        Correction.proposer_key_id == key_id, Correction.created_at >= now - window))


def add_correction(session: Session, org: Org, *, audience: str, question: str, model_answer: str,  # noqa: PLR0913  # the columns a proposal fills
                   proposed: str, proposer: str, proposer_key_id: int | None,
                   extra: dict[str, Any]) -> Correction:
    """A pending correction (``extra``: response_id, answered_by, comment, conflicts)."""
    if not proposed.strip():
        raise OrgmemError("the correction is empty: send the answer the model should have given")
    row = Correction(id=new_id("cor"), org_id=org.id, audience=audience, question=question,
                     model_answer=model_answer, proposed_answer=proposed.strip(), proposer=proposer,
                     proposer_key_id=proposer_key_id, created_at=utcnow(),
                     status=CorrectionStatus.PENDING.value, **extra)
    session.add(row)
    session.flush()
    return row


def add_rating(session: Session, org: Org, *, response_id: str, rating: str, actor: str,
               key_id: int | None, extra: dict[str, Any]) -> FeedbackRating:
    if rating not in {r.value for r in Rating}:
        raise OrgmemError(f"invalid rating {rating!r}: use 'up' or 'down'")
    row = FeedbackRating(org_id=org.id, response_id=response_id, rating=rating, actor=actor, key_id=key_id,
                         created_at=utcnow(), **extra)
    session.add(row)
    return row


# -- reading ---------------------------------------------------------------------------------------

def list_corrections(session: Session, org: Org, *, status: str | None = None,
                     audiences: tuple[str, ...] | None = None) -> list[Correction]:
    """The org's corrections, newest first; ``audiences`` limits them to those (a key's reach)."""
    query = select(Correction).where(Correction.org_id == org.id)
    if status:
        if status not in {s.value for s in CorrectionStatus}:
            raise OrgmemError(f"invalid status {status!r}: one of {[s.value for s in CorrectionStatus]}")
        query = query.where(Correction.status == status)
    if audiences is not None:
        query = query.where(Correction.audience.in_(audiences))
    return list(session.scalars(query.order_by(Correction.created_at.desc(), Correction.id.desc())))


def get_correction(session: Session, org: Org, correction_id: str,
                   audiences: tuple[str, ...] | None = None) -> Correction:
    """One correction of ``org``; another org's, an unreachable group's and a missing one are alike."""
    row = session.get(Correction, correction_id)
    if row is None or row.org_id != org.id or (audiences is not None and row.audience not in audiences):
        raise NotFoundError(f"org {org.slug!r} has no correction {correction_id!r} (see "
                            f"`orgmem corrections list {org.slug}`)")
    return row


def counts(session: Session, org: Org) -> dict[str, Any]:
    """Ratings by value and corrections by status (``/api``, the console)."""
    ratings = dict(session.execute(select(FeedbackRating.rating, func.count()).where(
        FeedbackRating.org_id == org.id).group_by(FeedbackRating.rating)).all())
    statuses = dict(session.execute(select(Correction.status, func.count()).where(
        Correction.org_id == org.id).group_by(Correction.status)).all())
    pending = list_corrections(session, org, status=CorrectionStatus.PENDING.value)
    flagged = sum(1 for c in pending if c.conflicts)  # in Python: JSON comparison differs by backend
    return {"ratings": {r.value: int(ratings.get(r.value, 0)) for r in Rating},
            "corrections": {s.value: int(statuses.get(s.value, 0)) for s in CorrectionStatus},
            "pending_conflicting": flagged}


# -- review ----------------------------------------------------------------------------------------

def review(session: Session, org: Org, correction: Correction, *, approve: bool, actor: str,
           reason: str | None = None, auto: bool = False) -> Correction:
    """Approve or reject a pending correction (audited); anything else is a conflict."""
    if correction.status not in REVIEWABLE:
        raise ConflictError(f"correction {correction.id!r} is {correction.status}, not pending: it was "
                            f"reviewed by {correction.reviewed_by or 'nobody'}")
    correction.status = (CorrectionStatus.APPROVED if approve else CorrectionStatus.REJECTED).value
    correction.reviewed_by, correction.reviewed_at, correction.review_reason = actor, utcnow(), reason
    action = "correction.auto_approve" if auto else ("correction.approve" if approve else "correction.reject")
    record_audit(session, org_id=org.id, actor=actor, action=action, target=correction.id,
                 data={"audience": correction.audience, "proposer": correction.proposer,
                       "question": correction.question[:200], "proposed": correction.proposed_answer[:200],
                       "conflicts_with_documents": correction.conflicts_with_documents,
                       "reason": reason})
    session.flush()
    return correction


# -- training --------------------------------------------------------------------------------------

def learned_ids(session: Session, org: Org, audience: str) -> set[str]:
    """Ids of the corrections the checkpoints of ``audience``'s head lineage trained."""
    holder = head_holder(session, org, audience)
    head = holder.head_checkpoint_id if holder is not None else None
    lineage = ancestry(parent_map(session, org), head)
    if not lineage:
        return set()
    out: set[str] = set()
    for metrics in session.scalars(select(Checkpoint.metrics).where(Checkpoint.id.in_(lineage))):
        section = (metrics or {}).get("feedback")
        if isinstance(section, dict):
            out.update(str(i) for i in section.get("ids") or [])
    return out


def _reviewed_in(session: Session, org: Org, audience: str) -> list[Correction]:
    """Approved (or consumed) corrections of ``audience``, oldest decision first."""
    return list(session.scalars(select(Correction).where(
        Correction.org_id == org.id, Correction.audience == audience,
        Correction.status.in_([CorrectionStatus.APPROVED.value, CorrectionStatus.CONSUMED.value]),
    ).order_by(Correction.reviewed_at, Correction.id)))


def waiting(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> list[Taught]:
    """Approved corrections of ``audience`` not yet in its head lineage's memory, oldest first:
    the next consolidation's. Never a pending or rejected one."""
    learned = learned_ids(session, org, audience)
    return [_taught(c) for c in _reviewed_in(session, org, audience) if c.id not in learned]


def consumed(session: Session, org: Org, audience: str = ORG_AUDIENCE) -> list[Taught]:
    """Corrections already in the head lineage's memory (replayed so they are not trained away)."""
    learned = learned_ids(session, org, audience)
    return [_taught(c) for c in _reviewed_in(session, org, audience) if c.id in learned]


def _taught(c: Correction) -> Taught:
    return Taught(c.id, c.question, c.proposed_answer, c.model_answer)


def waiting_groups(session: Session, org: Org) -> list[str]:
    """Groups of ``org`` with approved corrections waiting (a night consolidates them too)."""
    rows = session.scalars(select(Correction.audience).where(
        Correction.org_id == org.id, Correction.audience != ORG_AUDIENCE,
        or_(Correction.status == CorrectionStatus.APPROVED.value,
            Correction.status == CorrectionStatus.CONSUMED.value)).distinct())
    return sorted(g for g in rows if waiting(session, org, g))


def mark_consumed(session: Session, ids: list[str], checkpoint_id: str) -> int:
    """The promoted checkpoint ``checkpoint_id`` trained these corrections."""
    n = 0
    for row in session.scalars(select(Correction).where(Correction.id.in_(ids))):
        row.status, row.consumed_checkpoint_id = CorrectionStatus.CONSUMED.value, checkpoint_id
        n += 1
    return n
