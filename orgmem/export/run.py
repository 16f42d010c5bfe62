"""An export in three steps, so no database transaction stays open while files are written:

1. ``plan_export`` (read session): resolve the stack, load each memory object sha256-verified,
   convert it to the exported layout; refuses a bad destination before any of that work;
2. ``write_export``: write the folder under a temporary name beside ``out`` and move it into place
   (a failed export leaves nothing half-written; ``force`` replaces what ``out`` held);
3. ``record_export`` (write session): the ``model.export`` audit event.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY, load_checkpoint_objects
from orgmem.db.models import Org
from orgmem.errors import ConflictError, OrgmemError
from orgmem.export.card import CardInfo, model_card
from orgmem.export.hf import write_hf_folder
from orgmem.export.memory import ExportLayer, export_layer
from orgmem.export.peft_folder import write_peft_folder
from orgmem.export.target import ExportTarget, resolve_stack
from orgmem.lineage.audit import record_audit
from orgmem.store.base import ObjectStore

logger = logging.getLogger(__name__)

FORMATS = ("hf", "peft")
AUDIT_ACTION = "model.export"
MARKER = ".orgmem-export.json"
"""Written into every export (what it holds, for people and for ``--force``, which replaces only these)."""


@dataclass(frozen=True)
class ExportRequest:
    target: ExportTarget
    format: str
    out: Path
    actor: str
    force: bool = False


@dataclass
class ExportPlan:
    request: ExportRequest
    org_id: int
    org: str
    org_name: str
    layers: list[ExportLayer]


@dataclass
class ExportResult:
    """What was written, for the CLI's output and the audit event."""

    org: str
    format: str
    out: Path
    base_name: str
    base_fingerprint: str
    layers: list[dict[str, str]]
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"org": self.org, "format": self.format, "dir": str(self.out), "base": self.base_name,
                "base_fingerprint": self.base_fingerprint, "layers": self.layers, "files": self.files}


def check_destination(out: Path, force: bool) -> None:
    """``out`` must be absent or an empty directory; with ``force``, also a previous export (it is
    replaced). Never anything else: ``--force`` on a mistyped path must not delete someone's files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConflictError(f"export destination {str(out)!r} exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not force:
        raise ConflictError(f"export directory {str(out)!r} exists and is not empty: choose another, or pass "
                            "--force to replace a previous export there")
    if not (out / MARKER).is_file():
        raise ConflictError(f"export directory {str(out)!r} holds files that are not an orgmem export (no "
                            f"{MARKER}): --force replaces only a previous export; empty it or choose another")


def plan_export(session: Session, store: ObjectStore, base, request: ExportRequest) -> ExportPlan:
    if request.format not in FORMATS:
        raise OrgmemError(f"export format {request.format!r} is not one of {', '.join(FORMATS)}")
    check_destination(request.out, request.force)
    org, refs = resolve_stack(session, request.target, base.fingerprint)
    layers = []
    for ref in refs:
        data = load_checkpoint_objects(session, store, ref.checkpoint_id, [MEMORY])[MEMORY]
        layers.append(export_layer(data, audience=ref.audience, checkpoint_id=ref.checkpoint_id,
                                   sha256=ref.memory_sha256, base_fingerprint=base.fingerprint,
                                   num_layers=base.num_layers))
    return ExportPlan(request, org.id, org.slug, _org_name(org), layers)


def _org_name(org: Org) -> str:
    return org.name or org.slug


@contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out``; moved onto ``out`` when the block succeeds, removed if not."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():  # allowed by check_destination: empty, or --force
        old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_export(plan: ExportPlan, base) -> ExportResult:
    request = plan.request
    check_destination(request.out, request.force)  # again: something may have appeared meanwhile
    base_model = str(base.path) if base.path is not None else str(base.name)
    info = CardInfo(plan.org, plan.org_name, base_model, base.fingerprint, request.format,
                    datetime.now(UTC), request.actor)
    with _staged(request.out) as tmp:
        if request.format == "peft":
            files = write_peft_folder(tmp, plan.layers, base_model)
        else:
            files = write_hf_folder(tmp, base, plan.layers)
        (tmp / "README.md").write_text(model_card(info, plan.layers))
        layers = [{"audience": m.audience, "checkpoint": m.checkpoint_id, "kind": m.kind,
                   "memory_sha256": m.memory_sha256} for m in plan.layers]
        result = ExportResult(plan.org, request.format, request.out, base_model, base.fingerprint, layers,
                              sorted([*files, "README.md", MARKER]))
        marker = {k: v for k, v in result.to_dict().items() if k not in ("dir", "files")}
        (tmp / MARKER).write_text(json.dumps({**marker, "exported_at": info.exported_at.isoformat(),
                                              "actor": request.actor}, indent=2) + "\n")
    logger.info("org model exported", extra={"org": plan.org, "format": request.format,
                                             "checkpoint": "+".join(m["checkpoint"] for m in layers),
                                             "dir": str(request.out)})
    return result


def record_export(session: Session, plan: ExportPlan, result: ExportResult) -> None:
    """The audit event: who exported which checkpoints of the org, in which format, where."""
    record_audit(session, org_id=plan.org_id, actor=plan.request.actor, action=AUDIT_ACTION,
                 target="+".join(m["checkpoint"] for m in result.layers),
                 data={"format": result.format, "dir": str(result.out), "base": result.base_name,
                       "base_fingerprint": result.base_fingerprint, "layers": result.layers})
