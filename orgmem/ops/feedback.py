"""Feedback and reviewed corrections, written once for ``/v1/feedback``, ``/api``, the CLI and the console.

``record_reply``: a finished reply, for feedback later (``api.feedback_routes`` registers it as a
turn listener). ``submit_feedback``: a rating and/or a correction of a reply, only by the key that
got it or an admin of its org; a correction is rate limited per key, checked against the live
documents of its audience (flagged when they say otherwise) and pending unless the org
auto-approves the proposer's role. ``review_correction``: an admin approves or rejects. Each runs
in the caller's session.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from orgmem.db.types import utcnow
from orgmem.errors import ApiError, OrgmemError
from orgmem.feedback import corrections as records
from orgmem.feedback.conflicts import find_conflicts
from orgmem.feedback.responses import Reply, find_reply, record_reply
from orgmem.feedback.settings import FeedbackSettings, get_feedback_settings
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org

logger = logging.getLogger(__name__)

__all__ = ["Reply", "counts", "listing", "record_reply", "review_correction", "set_policy", "show",
           "submit_feedback"]

RATE_WINDOW = timedelta(hours=1)


def _check_rate(session: Session, identity: ApiKeyIdentity, settings: FeedbackSettings) -> None:
    """429 once the key proposed ``corrections_per_hour`` corrections in the last hour."""
    now = utcnow()
    limit = settings.corrections_per_hour
    if records.proposed_since(session, identity.key_id, now - RATE_WINDOW) < limit:
        return
    oldest = records.oldest_within(session, identity.key_id, RATE_WINDOW, now)
    wait = max(1, int(((oldest + RATE_WINDOW) - now).total_seconds()) + 1) if oldest else 3600
    raise ApiError(429, f"API key {identity.prefix}… proposed {limit} corrections in the last hour, the "
                   "limit per key (ORGMEM_FEEDBACK_CORRECTIONS_PER_HOUR); retry later", "rate_limit_error",
                   "correction_rate_limit_exceeded", headers={"Retry-After": str(wait)})


def _propose(session: Session, identity: ApiKeyIdentity, reply, text: str, comment: str | None,
             settings: FeedbackSettings):
    if len(text) > settings.max_correction_chars:
        raise ApiError(400, f"the correction has {len(text)} characters; at most "
                       f"{settings.max_correction_chars} (ORGMEM_FEEDBACK_MAX_CORRECTION_CHARS)",
                       param="correction", code="correction_too_long")
    _check_rate(session, identity, settings)
    org = get_org(session, identity.org_slug)
    conflicts = find_conflicts(session, org.id, reply.audience, reply.question, reply.answer, text)
    row = records.add_correction(
        session, org, audience=reply.audience, question=reply.question, model_answer=reply.answer,
        proposed=text, proposer=identity.actor, proposer_key_id=identity.key_id,
        extra={"response_id": reply.response_id, "answered_by": reply.checkpoint_label, "comment": comment,
               "conflicts": [c.as_dict() for c in conflicts]})
    if records.auto_approve_role(session, org) == identity.role:
        records.review(session, org, row, approve=True, actor=f"auto:{identity.role}",
                       reason="the org auto-approves corrections from this role", auto=True)
    logger.info("correction proposed", extra={"org": org.slug, "correction": row.id, "status": row.status,
                                              "conflicts": len(conflicts), "key": identity.prefix})
    return row


def submit_feedback(session: Session, identity: ApiKeyIdentity, response_id: str, *,  # noqa: PLR0913  # the route's body fields
                    rating: str | None = None, correction: str | None = None, comment: str | None = None,
                    choice_index: int = 0, settings: FeedbackSettings | None = None) -> dict[str, Any]:
    """Attach a rating and/or a correction to one of the key's replies (404 for any other reply)."""
    settings = settings or get_feedback_settings()
    if rating is None and not correction:
        raise OrgmemError("send a rating ('up' or 'down'), a correction, or both")
    reply = find_reply(session, identity, response_id, choice_index)
    org = get_org(session, identity.org_slug)
    row = _propose(session, identity, reply, correction, comment, settings) if correction else None
    rating = rating or ("down" if correction else None)
    if rating is not None:
        extra = {"comment": comment, "checkpoint_id": reply.checkpoint_id,
                 "correction_id": row.id if row else None}
        records.add_rating(session, org, response_id=response_id, rating=rating, actor=identity.actor,
                           key_id=identity.key_id, extra=extra)
    return {"response_id": response_id, "rating": rating,
            "correction": records.correction_dict(row) if row is not None else None}


def listing(session: Session, org: str, *, status: str | None = None,
            audiences: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    org_row = get_org(session, org)
    return [records.correction_dict(c) for c in records.list_corrections(
        session, org_row, status=status, audiences=audiences)]


def show(session: Session, org: str, correction_id: str, audiences: tuple[str, ...] | None = None
         ) -> dict[str, Any]:
    """One correction; ``conflicts_now``: the live documents that say otherwise at this moment (the
    listing shows those found when it was proposed: documents change while it waits)."""
    org_row = get_org(session, org)
    row = records.get_correction(session, org_row, correction_id, audiences)
    now = find_conflicts(session, org_row.id, row.audience, row.question, row.model_answer,
                         row.proposed_answer)
    return {**records.correction_dict(row), "conflicts_now": [c.as_dict() for c in now]}


def review_correction(session: Session, org: str, correction_id: str, *, approve: bool, actor: str,  # noqa: PLR0913  # the review verb's fields
                      reason: str | None = None, audiences: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Approve (material of the audience's next consolidation) or reject (never trained) a pending one."""
    org_row = get_org(session, org)
    row = records.get_correction(session, org_row, correction_id, audiences)
    records.review(session, org_row, row, approve=approve, actor=actor, reason=reason)
    logger.info("correction reviewed", extra={"org": org, "correction": row.id, "status": row.status,
                                              "actor": actor})
    return records.correction_dict(row)


def counts(session: Session, org: str) -> dict[str, Any]:
    org_row = get_org(session, org)
    return {"org": org, **records.counts(session, org_row),
            "auto_approve_role": records.auto_approve_role(session, org_row)}


def set_policy(session: Session, org: str, auto_approve_role: str | None, *, actor: str) -> dict[str, Any]:
    org_row = get_org(session, org)
    role = records.set_auto_approve_role(session, org_row, auto_approve_role, actor=actor)
    return {"org": org, "auto_approve_role": role}
