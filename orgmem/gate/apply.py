"""Carry out a gate decision: promote (the org serves the candidate) or reject (nothing changes).

Both go through ``orgmem.lineage`` so each writes a serving event and an audit record. A
rejected checkpoint stays in the tree with its reasons; the org keeps serving what it served,
and the chunks it was trained on stay pending, to be consolidated again with the next night's
material. An admin can still override with ``orgmem checkpoint promote ID --force``.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from orgmem.db.enums import CheckpointStatus
from orgmem.db.session import begin_write
from orgmem.errors import ConflictError
from orgmem.gate.decide import GateDecision
from orgmem.lineage import get_checkpoint, get_org, promote, reject

logger = logging.getLogger(__name__)

GATE_ACTOR = "gate"


def apply_decision(session: Session, org_slug: str, checkpoint_id: str, decision: GateDecision) -> str:
    """Promote or reject a candidate; returns its resulting status. Commits.

    Idempotent: a checkpoint that is no longer a candidate (a retried job, an admin acted first)
    is left as it is. If the head moved while the candidate was trained (a rollback or another
    promotion), it cannot be promoted onto the new head: it is rejected with that reason.
    """
    begin_write(session)  # read-then-write: take SQLite's write lock first (no-op on PostgreSQL)
    ck = get_checkpoint(session, checkpoint_id, get_org(session, org_slug))
    if ck.status != CheckpointStatus.CANDIDATE.value:
        return ck.status
    if decision.passed:
        try:
            promote(session, org_slug, checkpoint_id, actor=GATE_ACTOR, reason=decision.summary())
        except ConflictError as exc:
            session.rollback()
            reject(session, org_slug, checkpoint_id, actor=GATE_ACTOR, reason=f"gate passed, but {exc}")
            session.commit()
            logger.warning(
                "gate passed but promotion impossible", extra={"org": org_slug, "checkpoint": checkpoint_id}
            )
            return CheckpointStatus.REJECTED.value
        status = CheckpointStatus.PROMOTED.value
    else:
        reject(session, org_slug, checkpoint_id, actor=GATE_ACTOR, reason=decision.summary())
        status = CheckpointStatus.REJECTED.value
    session.commit()
    logger.info(
        "gate decision applied", extra={"org": org_slug, "checkpoint": checkpoint_id, "status": status}
    )
    return status
