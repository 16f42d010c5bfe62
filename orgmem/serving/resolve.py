"""Which checkpoint answers a request: ``model`` = ``ORG`` (pinned, else head) or ``ORG@CKPT``.

Resolved per request from the database, so a pin, unpin, rollback or promotion is visible to the
next request without a restart, while a request already decoding keeps what it resolved. The
key's org must be the model's org (403 otherwise, without saying whether that org exists), and
only admin keys may name a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint, CheckpointObject, Org
from orgmem.errors import IncompatibleBaseError, IntegrityError, NotFoundError
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.serving.errors import ApiError, permission_denied

CHECKPOINT_SEPARATOR = "@"


@dataclass(frozen=True)
class ResolvedModel:
    """What will answer: the org, the checkpoint (None = the bare base) and its memory object."""

    model: str
    org: str
    checkpoint_id: str | None
    memory_sha256: str | None = None
    memory_key: str | None = None

    @property
    def label(self) -> str:
        return self.checkpoint_id or "base"


def parse_model_id(model: str) -> tuple[str, str | None]:
    org, sep, checkpoint = model.strip().partition(CHECKPOINT_SEPARATOR)
    if not org or (sep and not checkpoint):
        raise ApiError(400, f"model {model!r} must be an org slug or 'ORG@CHECKPOINT'", param="model",
                       code="model_not_found")
    return org, checkpoint or None


def own_checkpoint(session: Session, org: Org, checkpoint_id: str) -> Checkpoint:
    """A checkpoint of ``org``; another org's checkpoint is refused without naming that org."""
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        raise NotFoundError(f"checkpoint {checkpoint_id!r} not found (org {org.slug!r})")
    if checkpoint.org_id != org.id:
        raise permission_denied(f"checkpoint {checkpoint_id!r} is not a checkpoint of org {org.slug!r}")
    return checkpoint


def resolve_model(session: Session, identity: ApiKeyIdentity, model: str, base_fingerprint: str
                  ) -> ResolvedModel:
    """The checkpoint and memory object that answer ``model`` for this key."""
    org_slug, checkpoint_id = parse_model_id(model)
    if org_slug != identity.org_slug:
        raise permission_denied(f"API key {identity.prefix}… of org {identity.org_slug!r} may not use "
                                f"model {model!r}; use model {identity.org_slug!r}")
    if checkpoint_id is not None and not identity.is_admin:
        raise permission_denied(f"only admin keys may choose a checkpoint ({model!r}); "
                                f"use model {org_slug!r} for the org's served checkpoint")
    org = get_org(session, org_slug)
    if checkpoint_id is None:
        checkpoint_id = org.served_checkpoint_id
        if checkpoint_id is None:  # no consolidation yet: the org's model is the base itself
            return ResolvedModel(model, org.slug, None)
    checkpoint = own_checkpoint(session, org, checkpoint_id)
    if checkpoint.status == CheckpointStatus.QUARANTINED.value:
        raise ApiError(409, f"checkpoint {checkpoint.id!r} of org {org.slug!r} is quarantined and is never "
                       "served", code="checkpoint_quarantined")
    if checkpoint.base_fingerprint != base_fingerprint:
        raise IncompatibleBaseError(
            f"checkpoint {checkpoint.id!r} of org {org.slug!r} was trained on base {checkpoint.base_model!r} "
            f"({checkpoint.base_fingerprint[:16]}…); this server runs another base "
            f"({base_fingerprint[:16]}…)")
    obj = session.get(CheckpointObject, (checkpoint.id, MEMORY))
    if obj is None:
        raise IntegrityError(f"checkpoint {checkpoint.id!r} of org {org.slug!r} has no {MEMORY} object")
    return ResolvedModel(model, org.slug, checkpoint.id, obj.sha256, obj.key)
