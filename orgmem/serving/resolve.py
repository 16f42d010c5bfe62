"""Which checkpoints answer a request.

``model`` is ``ORG`` (the org's served checkpoint, pinned else head, plus the served checkpoint
of every group the key carries, stacked on it), ``ORG#GROUP`` (the org's plus that one group's;
the key must carry the group) or ``ORG@CKPT`` (one checkpoint, admin keys only; a group's
checkpoint only for keys carrying the group).

Resolved per request from the database, so a pin, unpin, rollback or promotion is visible to the
next request without a restart, while a request already decoding keeps what it resolved. The
key's org must be the model's org (403 otherwise, without saying whether that org exists). A
group the key does not carry, and a checkpoint of another org, are answered exactly like ones that
do not exist (404), so no endpoint tells a key anything about another org's or group's memory.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint, CheckpointObject, Org
from orgmem.errors import (
    ApiError,
    IncompatibleBaseError,
    IntegrityError,
    NotFoundError,
    model_not_found,
    permission_denied,
)
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, served_groups

CHECKPOINT_SEPARATOR = "@"
GROUP_SEPARATOR = "#"


@dataclass(frozen=True)
class MemoryLayer:
    """One memory of a request's stack: whose it is, which checkpoint, which memory object."""

    audience: str
    checkpoint_id: str
    memory_sha256: str
    memory_key: str


@dataclass(frozen=True)
class ResolvedModel:
    """What will answer: the org, its checkpoint (None = the bare base) and memory object, and the
    group memories stacked on top (in name order)."""

    model: str
    org: str
    checkpoint_id: str | None
    memory_sha256: str | None = None
    memory_key: str | None = None
    groups: tuple[MemoryLayer, ...] = ()

    @property
    def layers(self) -> tuple[MemoryLayer, ...]:
        """Every memory applied, org first."""
        own: tuple[MemoryLayer, ...] = ()
        if self.checkpoint_id is not None and self.memory_sha256 is not None:
            own = (MemoryLayer(ORG_AUDIENCE, self.checkpoint_id, self.memory_sha256, self.memory_key or ""),)
        return own + self.groups

    @property
    def label(self) -> str:
        """``ck_org`` or ``ck_org+eng:ck_grp+legal:ck_lgl`` (``base`` when the org has no checkpoint)."""
        stacked = "".join(f"+{g.audience}:{g.checkpoint_id}" for g in self.groups)
        return (self.checkpoint_id or "base") + stacked


def parse_model_id(model: str) -> tuple[str, str | None, str | None]:
    """``(org, checkpoint, group)`` of ``ORG``, ``ORG@CKPT`` or ``ORG#GROUP``."""
    text = model.strip()
    org, sep, checkpoint = text.partition(CHECKPOINT_SEPARATOR)
    org, gsep, group = org.partition(GROUP_SEPARATOR)
    if not org or (sep and not checkpoint) or (gsep and not group) or (sep and gsep):
        raise ApiError(400, f"model {model!r} must be an org slug, 'ORG#GROUP' or 'ORG@CHECKPOINT'",
                       param="model", code="model_not_found")
    return org, checkpoint or None, group or None


def own_checkpoint(session: Session, org: Org, checkpoint_id: str, groups: Collection[str] = ()
                   ) -> Checkpoint:
    """A checkpoint of ``org`` this key may see: the org's, or one of a group in ``groups``.

    Another org's checkpoint, and one of a group the key lacks, are "not found", word for word what
    a checkpoint that does not exist gets: no answer tells whether an id exists elsewhere.
    """
    checkpoint = session.get(Checkpoint, checkpoint_id)
    visible = (checkpoint is not None and checkpoint.org_id == org.id
               and checkpoint.audience in (ORG_AUDIENCE, *groups))
    if checkpoint is None or not visible:
        raise NotFoundError(f"checkpoint {checkpoint_id!r} not found (org {org.slug!r})")
    return checkpoint


def resolve_model(session: Session, identity: ApiKeyIdentity, model: str, base_fingerprint: str
                  ) -> ResolvedModel:
    """The checkpoints and memory objects that answer ``model`` for this key (see module docstring)."""
    org_slug, checkpoint_id, group = parse_model_id(model)
    if org_slug != identity.org_slug:
        raise model_not_found(model)
    if checkpoint_id is not None and not identity.is_admin:
        raise permission_denied(f"only admin keys may choose a checkpoint ({model!r}); "
                                f"use model {org_slug!r} for the org's served checkpoint")
    org = get_org(session, org_slug)
    if checkpoint_id is not None:
        try:
            layer = _layer(session, org, checkpoint_id, base_fingerprint, identity.groups)
        except NotFoundError:  # unknown, or another org's or group's: the same answer
            raise model_not_found(model) from None
        if layer.audience == ORG_AUDIENCE:
            return ResolvedModel(model, org.slug, layer.checkpoint_id, layer.memory_sha256, layer.memory_key)
        return ResolvedModel(model, org.slug, None, groups=(layer,))
    wanted = identity.groups if group is None else (group,) if group in identity.groups else ()
    groups = tuple(_layer(session, org, ck, base_fingerprint, identity.groups)
                   for _, ck in served_groups(session, org, wanted))
    if group is not None and not groups:
        raise ApiError(404, f"model {model!r} not found: no served memory of a group of this key by that "
                       "name", "not_found_error", "model_not_found", param="model")
    if org.served_checkpoint_id is None:  # no consolidation yet: the org's model is the base itself
        return ResolvedModel(model, org.slug, None, groups=groups)
    own = _layer(session, org, org.served_checkpoint_id, base_fingerprint, ())
    return ResolvedModel(model, org.slug, own.checkpoint_id, own.memory_sha256, own.memory_key, groups)


def _layer(session: Session, org: Org, checkpoint_id: str, base_fingerprint: str, groups: Collection[str]
           ) -> MemoryLayer:
    """A servable checkpoint of ``org`` visible to a key with ``groups``, with its memory object."""
    checkpoint = own_checkpoint(session, org, checkpoint_id, groups)
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
    return MemoryLayer(checkpoint.audience, checkpoint.id, obj.sha256, obj.key)
