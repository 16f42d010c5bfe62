"""Which older chunks a night replays beside its new ones: the product's replay policy.

Only *live* passages are candidates: a consumed chunk whose document still exists and whose text
is still part of the document's latest version. Replaying a superseded passage would teach the old
value of an updated fact again, and replaying a deleted document would keep what its source
removed. (A version records the keys of the passages it is made of; versions stored before that
record count as wholly live.)

Policies (``PipelineConfig.replay_policy``):
- ``none``: nothing is replayed; the memory's slow levels alone carry the past;
- ``sample``: ``replay_max_chunks`` chunks drawn uniformly (the digest seeds the draw);
- ``full``: every live consumed chunk (cost grows with the whole corpus);
- ``budget``: ``replay_max_chunks`` chunks, half spread evenly over the org's history (oldest to
  newest, so old nights are not crowded out by recent ones) and half the chunks the parent memory
  has forgotten most (smallest NLL gain over the bare base, scored on a seeded candidate pool of
  ``replay_pool`` × budget chunks): replay what is being forgotten.
Every draw is seeded by the night's input digest, so a retried job replays the same chunks.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.enums import ChunkStatus
from orgmem.db.models import Chunk, Document, DocumentVersion, Org
from orgmem.lineage.audiences import audience_chunk_ids
from orgmem.pipeline.config import REPLAY_POLICIES

ForgetScorer = Callable[[Sequence[str]], list[float]]
"""Scores chunk texts: higher = the parent memory holds it less (``budget`` replays the highest)."""


@dataclass(frozen=True)
class ReplayCandidate:
    """A live consumed chunk; ``id`` order is arrival order (age)."""

    id: int
    key: str
    text: str


def live_consumed(session: Session, org: Org, audience: str) -> list[ReplayCandidate]:
    """Consumed chunks of ``audience`` that are still in their document's latest version."""
    rows = session.execute(
        select(Chunk.id, Chunk.chunk_key, Chunk.text, DocumentVersion.document_id)
        .join(DocumentVersion, DocumentVersion.id == Chunk.document_version_id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(
            Chunk.org_id == org.id,
            Chunk.status == ChunkStatus.CONSUMED.value,
            Chunk.id.in_(audience_chunk_ids(org, audience)),
            Document.deleted.is_(False),
        )
        .order_by(Chunk.id)
    ).all()
    live = _live_keys(session, {doc for *_, doc in rows})
    return [
        ReplayCandidate(cid, key, text)
        for cid, key, text, doc in rows
        if (keys := live.get(doc)) is None or key in keys
    ]


def _live_keys(session: Session, documents: set[int]) -> dict[int, set[str] | None]:
    """Per document, the passage keys of its latest version (None: not recorded, all live)."""
    if not documents:
        return {}
    latest: dict[int, tuple[int, dict | None]] = {}
    for doc, vid, meta in session.execute(
        select(DocumentVersion.document_id, DocumentVersion.id, DocumentVersion.meta).where(
            DocumentVersion.document_id.in_(documents)
        )
    ):
        if doc not in latest or vid > latest[doc][0]:
            latest[doc] = (vid, meta)
    out: dict[int, set[str] | None] = {}
    for doc, (_, meta) in latest.items():
        keys = (meta or {}).get("chunk_keys")
        out[doc] = set(keys) if isinstance(keys, list) else None
    return out


def _rng(digest: str, salt: int = 0) -> random.Random:
    return random.Random(int(digest[:16], 16) + salt)  # nosec B311  # seeded replay choice: no secret


def uniform(candidates: Sequence[ReplayCandidate], k: int, digest: str) -> list[ReplayCandidate]:
    """``k`` candidates drawn uniformly, in age order."""
    if k <= 0 or not candidates:
        return []
    picked = _rng(digest).sample(range(len(candidates)), min(k, len(candidates)))
    return [candidates[i] for i in sorted(picked)]


def by_age(
    candidates: Sequence[ReplayCandidate], k: int, digest: str, salt: int = 1
) -> list[ReplayCandidate]:
    """One candidate from each of ``k`` equal slices of the history (oldest to newest)."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(candidates)
    rng = _rng(digest, salt)
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [candidates[rng.randrange(lo, hi)] for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def budget(
    candidates: Sequence[ReplayCandidate], k: int, digest: str, scorer: ForgetScorer | None, pool: int
) -> list[ReplayCandidate]:
    """Half by age, half the most forgotten of a seeded pool (all by age without a scorer)."""
    if k <= 0 or not candidates:
        return []
    if k >= len(candidates):
        return list(candidates)
    n_loss = k // 2 if scorer is not None else 0
    aged = by_age(candidates, k - n_loss, digest)
    if n_loss == 0 or scorer is None:
        return aged
    taken = {c.id for c in aged}
    rest = [c for c in candidates if c.id not in taken]
    pool_set = by_age(rest, min(len(rest), max(n_loss, pool * k)), digest, salt=2)
    scores = scorer([c.text for c in pool_set])
    ranked = sorted(zip(scores, (c.id for c in pool_set), pool_set, strict=True), key=lambda t: (-t[0], t[1]))
    chosen = aged + [c for _, _, c in ranked[:n_loss]]
    return sorted(chosen, key=lambda c: c.id)


def choose_replay(
    candidates: Sequence[ReplayCandidate],
    policy: str,
    k: int,
    digest: str,
    *,
    scorer: ForgetScorer | None = None,
    pool: int = 8,
) -> list[ReplayCandidate]:
    """The replay set of one night under ``policy`` (see module docstring)."""
    if policy == "none":
        return []
    if policy == "full":
        return list(candidates)
    if policy == "sample":
        return uniform(candidates, k, digest)
    if policy == "budget":
        return budget(candidates, k, digest, scorer, pool)
    raise ValueError(f"unknown replay policy {policy!r}; choose from {REPLAY_POLICIES}")
