"""Forget receipts: read them back (CLI, API) and render them the same way everywhere.

The receipt is written by ``orgmem.pipeline.forget`` in the forget's own transaction; only its
object-deletion fields change later (``orgmem.pipeline.purge``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orgmem.db.models import ForgetReceipt, Org
from orgmem.errors import NotFoundError


def receipt_dict(receipt: ForgetReceipt, org_slug: str) -> dict[str, Any]:
    def iso(value):
        return value.isoformat() if value is not None else None

    return {
        "id": receipt.id,
        "org": org_slug,
        "document": receipt.document,
        "document_id": receipt.document_id,
        "document_uri": receipt.document_uri,
        "source": receipt.source,
        "reason": receipt.reason,
        "actor": receipt.actor,
        "at": iso(receipt.created_at),
        "chunks_excluded": receipt.chunks_excluded,
        "saw": list(receipt.saw or []),
        "quarantined": list(receipt.quarantined or []),
        "head_before": receipt.head_before,
        "head_after": receipt.head_after,
        "served_before": receipt.served_before,
        "served_after": receipt.served_after,
        "replay_job": receipt.replay_job,
        "deletion": {
            "status": receipt.deletion_status,
            "purge_after": iso(receipt.purge_after),
            "deleted_at": iso(receipt.deleted_at),
            "objects": list(receipt.objects_deleted or []),
            "bytes": receipt.bytes_deleted,
            "error": receipt.deletion_error,
        },
    }


def receipt_text(data: dict[str, Any]) -> str:
    """The human rendering of ``receipt_dict`` (``orgmem forget`` and ``orgmem receipts show``)."""
    deletion = data["deletion"]
    status = deletion["status"]
    if status == "pending":
        status += f" (after {deletion['purge_after']})" if deletion["purge_after"] else ""
        status += f"; last error: {deletion['error']}" if deletion["error"] else ""
    lines = [
        f"receipt {data['id']}: forgot {data['document']!r} (document {data['document_id']}) of org "
        f"{data['org']!r} at {data['at']} by {data['actor']}",
        f"reason: {data['reason'] or '-'}",
        f"chunks excluded from training: {data['chunks_excluded']}",
        f"checkpoints that saw it: {', '.join(data['saw']) or 'none'}",
        f"quarantined: {', '.join(data['quarantined']) or 'none'}",
        f"head: {data['head_before'] or '-'} -> {data['head_after'] or '-'}; "
        f"served: {data['served_before'] or '-'} -> {data['served_after'] or '-'}",
        f"replay consolidation: {data['replay_job'] or '-'}",
        f"objects deleted: {len(deletion['objects'])} ({deletion['bytes']} bytes); deletion {status}",
    ]
    lines += [f"  {obj['key']} ({obj['size']} bytes)" for obj in deletion["objects"]]
    return "\n".join(lines)


def list_receipts(session: Session, org: Org) -> list[ForgetReceipt]:
    """Receipts of ``org``, newest first."""
    query = select(ForgetReceipt).where(ForgetReceipt.org_id == org.id)
    return list(session.scalars(query.order_by(ForgetReceipt.created_at.desc(), ForgetReceipt.id)))


def get_receipt(session: Session, receipt_id: str, org: Org | None = None) -> ForgetReceipt:
    """One receipt; with ``org``, a receipt of another org is reported as not found."""
    receipt = session.get(ForgetReceipt, receipt_id)
    if receipt is None or (org is not None and receipt.org_id != org.id):
        where = f" of org {org.slug!r}" if org is not None else ""
        raise NotFoundError(f"forget receipt {receipt_id!r}{where} not found (see `orgmem receipts ORG`)")
    return receipt


def set_replay_job(session: Session, receipt_id: str, job_id: str) -> None:
    """Record the consolidation queued to replay the rest (after the forget committed)."""
    get_receipt(session, receipt_id).replay_job = job_id
