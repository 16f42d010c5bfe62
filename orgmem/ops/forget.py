"""Forget a document (``orgmem forget``, ``POST /api/orgs/{org}/forget``, the console): roll back,
quarantine, delete objects, write the receipt, and queue a replay of the rest.

The replay is best effort: the forget is committed before it is queued, so a replay that cannot
be queued (no queue in this process, the org busy) is reported as a note on the receipt, never
an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgmem.db.session import session_scope
from orgmem.errors import OrgmemError
from orgmem.lineage import get_org
from orgmem.lineage.receipts import get_receipt, receipt_dict, set_replay_job
from orgmem.ops.jobs import submit_consolidation
from orgmem.store.base import ObjectStore


@dataclass(frozen=True)
class Forgotten:
    """The receipt (``receipt_dict``), the org's slug, and why a wanted replay was not queued."""

    receipt: dict[str, Any]
    org: str
    replay_note: str | None = None


def queue_replay(org: str, actor: str, document: str, receipt_id: str, url: str | None) -> str | None:
    """Queue the replay and record it on the receipt; returns the note when it was not queued
    (also after forgetting recorded conversation turns, ``orgmem.ops.conversations``)."""
    try:
        job = submit_consolidation(org, actor=actor, params={"after_forget": document})
    except OrgmemError as exc:
        return f"replay not queued: {exc}"
    with session_scope(url, write=True) as session:
        set_replay_job(session, receipt_id, job)
    return None


def forget(
    org: str,
    document: str,
    *,
    actor: str,
    reason: str | None = None,
    replay: bool = True,
    store: ObjectStore | None = None,
    url: str | None = None,
) -> Forgotten:
    """Forget ``document`` of ``org`` (database ``url``, default the configured one; objects deleted
    from ``store``, default the configured one)."""
    from orgmem.pipeline.forget import forget_document

    with session_scope(url, write=True) as session:
        result = forget_document(session, org, document, actor=actor, reason=reason, store=store)
    note = None
    if replay and result.quarantined:
        note = queue_replay(org, actor, result.document, result.receipt, url)
    with session_scope(url) as session:
        receipt = receipt_dict(get_receipt(session, result.receipt), org)
        return Forgotten(receipt, get_org(session, org).slug, note)
