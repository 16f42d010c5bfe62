"""Whether an org records its chat turns (off unless an admin enables it), and its built-in source.

The recorded turns are documents of one source per org, named and of kind ``conversations``.
No connector reads it (turns arrive from the server as they finish), so ``orgmem source add``
refuses the kind, and a sync of the source has nothing to do.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import SourceConfigError
from orgmem.db.models import ConversationPolicy, Org, Source
from orgmem.db.types import utcnow
from orgmem.errors import ConflictError, OrgmemError
from orgmem.lineage.audiences import ORG_AUDIENCE
from orgmem.lineage.audit import record_audit

logger = logging.getLogger(__name__)

CONVERSATIONS_KIND = "conversations"
CONVERSATIONS_SOURCE = "conversations"
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
PII_KINDS = ("email", "phone")
#: Recorded conversations redact e-mail addresses and phone numbers unless the admin says otherwise:
#: people paste them into chats far more than into handbooks.
DEFAULT_REDACT_PII = list(PII_KINDS)


def refuse_builtin_kind(kind: str) -> None:
    """``source add conversations`` is refused: the source is made by enabling recording."""
    if kind == CONVERSATIONS_KIND:
        raise SourceConfigError(
            "'conversations' is the built-in source of recorded chat turns, not a connector: enable it "
            "with `orgmem conversations enable ORG --retention-days N` (or PUT /api/orgs/{org}/conversations)"
        )


def get_policy(session: Session, org: Org) -> ConversationPolicy | None:
    """The org's policy row; None when recording was never enabled (it is then off)."""
    return session.get(ConversationPolicy, org.id)


def policy_dict(org: Org, policy: ConversationPolicy | None) -> dict[str, Any]:
    """The policy as the CLI and ``/api`` show it (the defaults when none was ever set)."""
    if policy is None:
        return {"org": org.slug, "enabled": False, "retention_days": DEFAULT_RETENTION_DAYS,
                "redact_pii": list(DEFAULT_REDACT_PII), "updated_at": None, "updated_by": None}
    return {"org": org.slug, "enabled": policy.enabled, "retention_days": policy.retention_days,
            "redact_pii": list(policy.redact_pii or []), "updated_at": policy.updated_at.isoformat(),
            "updated_by": policy.updated_by}


def _check(retention_days: int, redact_pii: list[str]) -> None:
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise OrgmemError(f"invalid retention of {retention_days} days: use 1 to {MAX_RETENTION_DAYS}")
    unknown = sorted(set(redact_pii) - set(PII_KINDS))
    if unknown:
        raise OrgmemError(f"unknown PII kind(s) {unknown}: recorded turns can redact {list(PII_KINDS)}")


def conversations_source(session: Session, org: Org) -> Source | None:
    """The org's built-in source, None before recording was first enabled; a source of another kind
    by that name is refused."""
    query = select(Source).where(Source.org_id == org.id, Source.name == CONVERSATIONS_SOURCE)
    source = session.scalar(query)
    if source is not None and source.kind != CONVERSATIONS_KIND:
        raise ConflictError(
            f"org {org.slug!r} has a {source.kind} source named {CONVERSATIONS_SOURCE!r}, the name of the "
            f"built-in source of recorded turns: rename or remove it (`orgmem source remove {org.slug} "
            f"{CONVERSATIONS_SOURCE}`) first"
        )
    return source


def ensure_conversations_source(session: Session, org: Org) -> Source:
    """The org's built-in source, made now if it does not exist yet."""
    source = conversations_source(session, org)
    if source is None:
        source = Source(org_id=org.id, name=CONVERSATIONS_SOURCE, kind=CONVERSATIONS_KIND, config={},
                        audience=ORG_AUDIENCE, enabled=True, cursor=None)
        session.add(source)
        session.flush()
    return source


def enable(session: Session, org: Org, *, retention_days: int = DEFAULT_RETENTION_DAYS,
           redact_pii: list[str] | None = None, actor: str) -> ConversationPolicy:
    """Record the org's chat turns from now on, keeping each ``retention_days`` days (audited)."""
    pii = sorted(set(DEFAULT_REDACT_PII if redact_pii is None else redact_pii))
    _check(retention_days, pii)
    ensure_conversations_source(session, org)
    policy = get_policy(session, org)
    if policy is None:
        policy = ConversationPolicy(org_id=org.id, updated_by=actor)
        session.add(policy)
    policy.enabled, policy.retention_days, policy.redact_pii = True, retention_days, pii
    policy.updated_at, policy.updated_by = utcnow(), actor
    session.flush()
    record_audit(session, org_id=org.id, actor=actor, action="conversations.enable", target=org.slug,
                 data={"retention_days": retention_days, "redact_pii": pii})
    logger.info("conversation recording enabled", extra={"org": org.slug, "retention_days": retention_days})
    return policy


def disable(session: Session, org: Org, *, actor: str) -> ConversationPolicy | None:
    """Stop recording (audited). Turns already recorded stay until deleted or past their retention."""
    policy = get_policy(session, org)
    if policy is not None:
        policy.enabled, policy.updated_at, policy.updated_by = False, utcnow(), actor
        session.flush()
    record_audit(session, org_id=org.id, actor=actor, action="conversations.disable", target=org.slug)
    logger.info("conversation recording disabled", extra={"org": org.slug})
    return policy
