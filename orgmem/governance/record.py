"""What governance a checkpoint's training data went through, recorded in its manifest and metrics.

A checkpoint records the scanner and its version, the rule set (name, and a version that is a
hash of the rule-set name and every rule's name, so adding or dropping a detector, or bumping
one of orgmem's rule versions in ``secrets.RULESET``, changes it even when the package version
does not), and how many redactions of each rule its input document versions carry.
When the rules change, ``affected_checkpoints`` lists the checkpoints built under other rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.db.models import Checkpoint, Org, Redaction
from orgmem.governance.pii import PII_PATTERNS
from orgmem.governance.secrets import DETECT_SECRETS_VERSION, RULESET, plugin_names

SCANNER = "detect-secrets"


def rule_names() -> list[str]:
    """Every rule that can redact: the secret detectors and the opt-in PII kinds."""
    return plugin_names() + [f"pii:{kind}" for kind in sorted(PII_PATTERNS)]


@lru_cache(maxsize=1)
def ruleset_version() -> str:
    """A short hash of the rule names (and the scanner version): equal versions ran the same rules."""
    text = "\n".join([f"{SCANNER}=={DETECT_SECRETS_VERSION}", RULESET, *rule_names()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current_ruleset() -> dict[str, str]:
    return {
        "scanner": SCANNER,
        "scanner_version": DETECT_SECRETS_VERSION,
        "ruleset": RULESET,
        "ruleset_version": ruleset_version(),
    }


def governance_record(session: Session, document_version_ids: Iterable[int]) -> dict[str, Any]:
    """The governance block of a checkpoint trained on these document versions."""
    ids = sorted(set(document_version_ids))
    counts: dict[str, int] = {}
    if ids:
        rows = session.execute(
            select(Redaction.rule, func.count())
            .where(Redaction.document_version_id.in_(ids))
            .group_by(Redaction.rule)
        ).all()
        counts = {rule: int(n) for rule, n in sorted(rows)}
    return {
        **current_ruleset(),
        "document_versions": len(ids),
        "redactions": counts,
        "redactions_total": sum(counts.values()),
    }


def checkpoint_ruleset(checkpoint: Checkpoint) -> str | None:
    """The rule-set version a checkpoint recorded (None: made before governance was recorded)."""
    block = (checkpoint.metrics or {}).get("governance")
    return block.get("ruleset_version") if isinstance(block, dict) else None


def affected_checkpoints(
    session: Session, org: Org, current: str | None = None, *, include_quarantined: bool = False
) -> list[Checkpoint]:
    """Checkpoints of ``org`` whose rule-set version is not ``current`` (default: this installation's),
    including those that recorded none; quarantined ones are left out unless asked for."""
    current = current or ruleset_version()
    query = select(Checkpoint).where(Checkpoint.org_id == org.id)
    query = query.order_by(Checkpoint.created_at, Checkpoint.id)
    return [
        ck
        for ck in session.scalars(query)
        if checkpoint_ruleset(ck) != current and (include_quarantined or ck.status != "quarantined")
    ]


def governance_for_chunks(session: Session, chunk_ids: Iterable[int]) -> dict[str, Any]:
    """``governance_record`` over the document versions these chunks were cut from."""
    from orgmem.db.models import Chunk

    ids = list(chunk_ids)
    query = select(Chunk.document_version_id).where(Chunk.id.in_(ids))
    versions = list(session.scalars(query)) if ids else []
    return governance_record(session, versions)
