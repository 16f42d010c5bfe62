"""Delete recorded turns (their owner, an admin, the retention pass), then queue the replay.

The forgetting itself is ``orgmem.ingest.conversations.forget`` (the forget path with a receipt,
then the text erased); this module adds what ``orgmem forget`` adds: a consolidation of the rest
queued after a rollback (best effort, a note when it cannot be queued), one per pass for retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orgmem.db.session import session_scope
from orgmem.ingest.conversations.forget import Pruned, forget_turn, prune_expired
from orgmem.lineage.receipts import get_receipt, receipt_dict
from orgmem.ops.forget import queue_replay
from orgmem.store.base import ObjectStore


@dataclass(frozen=True)
class DeletedTurn:
    """The deleted turn's id and its forget receipt (``receipt_dict``), with a replay note if any."""

    turn_id: str
    receipt: dict[str, Any] | None  # None: the turn's document was already gone, only its text erased
    replay_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {"id": self.turn_id, "object": "conversation.turn.deleted", "deleted": True,
                "receipt": self.receipt}
        return {**data, "replay_note": self.replay_note} if self.replay_note else data


def delete_turn(org: str, turn_id: str, *, actor: str, key_id: int | None = None,  # noqa: PLR0913
                reason: str | None = None, replay: bool = True, store: ObjectStore | None = None,
                url: str | None = None, now: datetime | None = None) -> DeletedTurn:
    """Forget turn ``turn_id`` of ``org`` (only ``key_id``'s own when given); see ``forget_turn``."""
    with session_scope(url, write=True) as session:
        result = forget_turn(session, org, turn_id, actor=actor, key_id=key_id, reason=reason, store=store,
                             now=now)
    if result is None:
        return DeletedTurn(turn_id, None)
    note = None
    if replay and result.quarantined:
        note = queue_replay(org, actor, result.document, result.receipt, url)
    with session_scope(url) as session:
        return DeletedTurn(turn_id, receipt_dict(get_receipt(session, result.receipt), org), note)


def prune(org: str, *, now: datetime | None = None, actor: str = "retention", replay: bool = True,
          store: ObjectStore | None = None, url: str | None = None) -> Pruned:
    """Delete every turn of ``org`` past its retention at ``now``, a receipt each; with ``replay``
    one consolidation of the rest is queued when any of them rolled a checkpoint back."""
    with session_scope(url, write=True) as session:
        result = prune_expired(session, org, now=now, actor=actor, store=store)
    if replay and result.rolled_back:
        last = result.receipts[-1]
        result.replay_note = queue_replay(org, actor, "conversation turns past retention", last, url)
        with session_scope(url) as session:
            result.replay_job = get_receipt(session, last).replay_job
    return result
