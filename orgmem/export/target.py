"""Which checkpoints an export carries: ``ORG`` or ``ORG@CKPT``, optionally with a group on top.

The same choice serving makes for a key (``orgmem.serving.resolve``), stated for an operator:
``ORG`` is the org's served checkpoint (pinned, else head); ``ORG@CKPT`` one checkpoint of the org
(a group's checkpoint alone, as an admin key asking for it is served); ``--group G`` stacks the
group's served checkpoint on the org's, as serving does for a key carrying G. Quarantined
checkpoints and checkpoints of another base are refused, each naming the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY
from orgmem.db.enums import CheckpointStatus
from orgmem.db.models import Checkpoint, CheckpointObject, Org
from orgmem.errors import ConflictError, IncompatibleBaseError, IntegrityError, NotFoundError, OrgmemError
from orgmem.lineage import get_org
from orgmem.lineage.audiences import ORG_AUDIENCE, head_holder, validate_audience

CHECKPOINT_SEPARATOR = "@"


@dataclass(frozen=True)
class ExportTarget:
    """What the operator asked for: ``org``, an optional ``checkpoint`` and ``group``."""

    org: str
    checkpoint: str | None = None
    group: str | None = None

    @classmethod
    def parse(cls, text: str, group: str | None = None) -> ExportTarget:
        """``ORG`` or ``ORG@CKPT`` (and the ``--group`` option)."""
        org, sep, checkpoint = text.strip().partition(CHECKPOINT_SEPARATOR)
        if not org or (sep and not checkpoint):
            raise OrgmemError(f"export target {text!r} must be ORG or ORG@CHECKPOINT")
        if group is not None:
            validate_audience(group)
            if group == ORG_AUDIENCE:
                raise OrgmemError("--group names a group; the org memory is always exported")
        return cls(org, checkpoint or None, group)


@dataclass(frozen=True)
class LayerRef:
    """One checkpoint of the stack, bottom first, with its memory object's row."""

    audience: str
    checkpoint_id: str
    memory_sha256: str
    memory_kind: str
    base_model: str


def resolve_stack(session: Session, target: ExportTarget, base_fingerprint: str
                  ) -> tuple[Org, list[LayerRef]]:
    """The org and the checkpoints to export, org first (see the module docstring)."""
    org = get_org(session, target.org)
    if target.checkpoint is not None:
        bottom = _checkpoint(session, org, target.checkpoint)
    elif org.served_checkpoint_id is not None:
        bottom = _checkpoint(session, org, org.served_checkpoint_id)
    else:
        raise NotFoundError(f"org {org.slug!r} serves no checkpoint yet (no consolidation has passed): "
                            "nothing to export but the base itself")
    layers = [bottom]
    if target.group is not None:
        if bottom.audience != ORG_AUDIENCE:
            raise OrgmemError(f"checkpoint {bottom.id!r} is group {bottom.audience!r}'s: --group stacks a "
                              "group on an org checkpoint")
        holder = head_holder(session, org, target.group)
        served = holder.served_checkpoint_id if holder is not None else None
        if served is None:
            raise NotFoundError(f"group {target.group!r} of org {org.slug!r} serves no checkpoint")
        layers.append(_checkpoint(session, org, served))
    return org, [_layer(session, org, ck, base_fingerprint) for ck in layers]


def _checkpoint(session: Session, org: Org, checkpoint_id: str) -> Checkpoint:
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.org_id != org.id:
        raise NotFoundError(f"checkpoint {checkpoint_id!r} not found (org {org.slug!r}; see "
                            f"`orgmem checkpoints {org.slug}`)")
    return checkpoint


def _layer(session: Session, org: Org, checkpoint: Checkpoint, base_fingerprint: str) -> LayerRef:
    if checkpoint.status == CheckpointStatus.QUARANTINED.value:
        raise ConflictError(f"checkpoint {checkpoint.id!r} of org {org.slug!r} is quarantined (forgotten "
                            "material): it is never served, so it is not exported")
    if checkpoint.base_fingerprint != base_fingerprint:
        raise IncompatibleBaseError(
            f"checkpoint {checkpoint.id!r} of org {org.slug!r} was trained on base {checkpoint.base_model!r} "
            f"(fingerprint {checkpoint.base_fingerprint[:16]}…), not on the configured base (fingerprint "
            f"{base_fingerprint[:16]}…): export with the base it was trained on (--base)")
    obj = session.get(CheckpointObject, (checkpoint.id, MEMORY))
    if obj is None:
        raise IntegrityError(f"checkpoint {checkpoint.id!r} of org {org.slug!r} has no {MEMORY} object")
    return LayerRef(checkpoint.audience, checkpoint.id, obj.sha256, checkpoint.memory_kind,
                    checkpoint.base_model)
