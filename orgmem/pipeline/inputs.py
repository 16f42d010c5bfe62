"""What a consolidation trains on: an audience's pending chunks, plus a replay sample of consumed ones.

Only chunks whose document belongs to the consolidated audience are taken: the org memory
trains on ``org`` material alone (never a group's, never a private channel's), and a group
consolidation on that group's material alone, on the group's own lineage.

The set is fixed before training starts (chunks that arrive meanwhile wait for the next night)
and identified by a digest of the parent, the new chunk keys and the recipe, the same digest
``commit_checkpoint`` records. A retried job computes the same digest, finds the checkpoint its
earlier attempt committed, and does not train again. The replay sample is seeded by that digest,
so a retry also replays exactly the same older chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.checkpoints import input_digest
from orgmem.db.enums import ChunkStatus, InputRole
from orgmem.db.models import Checkpoint, Chunk, Org
from orgmem.feedback import corrections as reviewed
from orgmem.feedback.corrections import Taught
from orgmem.feedback.settings import get_feedback_settings
from orgmem.lineage.audiences import ORG_AUDIENCE, audience_chunk_ids, head_holder
from orgmem.pipeline.replay import ForgetScorer, ReplayCandidate, choose_replay, live_consumed


@dataclass(frozen=True)
class ChunkRef:
    """The parts of a chunk row the pipeline needs (rows themselves are session-bound)."""

    id: int
    key: str
    text: str


@dataclass(frozen=True)
class Inputs:
    org_id: int
    org_slug: str
    audience: str
    parent_id: str | None
    new: list[ChunkRef]
    replay: list[ChunkRef]
    digest: str
    digest_extra: dict[str, Any]
    policy: str = "sample"
    replay_max: int = 0
    candidates: tuple[ReplayCandidate, ...] = field(default=(), repr=False)
    corrections: tuple[Taught, ...] = ()  # approved, not yet in the lineage: tonight's, with priority
    replayed_corrections: tuple[Taught, ...] = ()  # already learned: replayed once each

    @property
    def input_refs(self) -> list[tuple[int, InputRole]]:
        return [(c.id, InputRole.NEW) for c in self.new] + [(c.id, InputRole.REPLAY) for c in self.replay]


def _refs(session: Session, org: Org, audience: str, status: ChunkStatus) -> list[ChunkRef]:
    rows = session.execute(
        select(Chunk.id, Chunk.chunk_key, Chunk.text)
        .where(
            Chunk.org_id == org.id,
            Chunk.status == status.value,
            Chunk.id.in_(audience_chunk_ids(org, audience)),
        )
        .order_by(Chunk.id)
    )
    return [ChunkRef(cid, key, text) for cid, key, text in rows]


def _as_refs(chosen) -> list[ChunkRef]:
    return [ChunkRef(c.id, c.key, c.text) for c in chosen]


def rescore_replay(inputs: Inputs, scorer: ForgetScorer, pool: int) -> Inputs:
    """The ``budget`` policy's replay once the parent memory can say what it has forgotten."""
    if inputs.policy != "budget" or not inputs.candidates:
        return inputs
    chosen = choose_replay(
        inputs.candidates, "budget", inputs.replay_max, inputs.digest, scorer=scorer, pool=pool
    )
    return replace(inputs, replay=_as_refs(chosen))


def gather_inputs(
    session: Session,
    org: Org,
    *,
    replay_max: int,
    digest_extra: dict[str, Any],
    audience: str = ORG_AUDIENCE,
    policy: str = "sample",
) -> Inputs:
    """The pending chunks of ``org``'s ``audience`` on that audience's head, and the replay set of
    ``policy`` (``pipeline.replay``; ``budget`` is drawn by age here, ``rescore_replay`` adds the
    forgotten half once the parent memory is loaded).

    A group's digest also names the group (the org's stays as before audiences, so a retried
    org job still finds its checkpoint).
    """
    holder = head_holder(session, org, audience)
    parent_id = holder.head_checkpoint_id if holder is not None else None
    extra = dict(digest_extra) if audience == ORG_AUDIENCE else {**digest_extra, "audience": audience}
    new = _refs(session, org, audience, ChunkStatus.PENDING)
    taught, again = _corrections(session, org, audience)
    if taught:  # only then: the digest of a night without corrections is what it always was
        fb = get_feedback_settings()
        extra["corrections"] = {"ids": [t.id for t in taught], "repeats": fb.repeats,
                                "unlikelihood": fb.unlikelihood_weight}
    digest = input_digest([c.key for c in new], parent_id, extra)
    candidates = tuple(live_consumed(session, org, audience)) if policy != "none" else ()
    replay = _as_refs(choose_replay(candidates, policy, replay_max, digest))
    return Inputs(
        org.id, org.slug, audience, parent_id, new, replay, digest, extra, policy, replay_max, candidates,
        taught, again,
    )


def _corrections(session: Session, org: Org, audience: str) -> tuple[tuple[Taught, ...], tuple[Taught, ...]]:
    """Approved corrections waiting for ``audience`` and (with ``ORGMEM_FEEDBACK_REPLAY``) the
    learned ones to replay; never a pending or rejected one (``orgmem.feedback.corrections``)."""
    taught = tuple(reviewed.waiting(session, org, audience))
    again = tuple(reviewed.consumed(session, org, audience)) if get_feedback_settings().replay else ()
    return taught, again


def existing_checkpoint(session: Session, inputs: Inputs) -> Checkpoint | None:
    """The checkpoint an earlier attempt committed for exactly these inputs, if any."""
    return session.scalar(
        select(Checkpoint).where(Checkpoint.org_id == inputs.org_id, Checkpoint.input_digest == inputs.digest)
    )
