"""What to evaluate: a base alone, a base + a memory file, or an org's checkpoint from lineage.

Shared by ``orgmem eval`` and the benchmark so both judge exactly the served function: the base
with the saved memory loaded through ``orgmem.memory.load_memory`` (which refuses a memory made
on another base), detached again afterwards so the shared base is left clean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orgmem.errors import NotFoundError, OrgmemError
from orgmem.eval.auto import auto_probes
from orgmem.eval.probes import Probe


@contextmanager
def memory_model(base, memory: bytes | None, source: str = "memory") -> Iterator:
    """``base.model`` with ``memory`` attached (the bare base when None), detached on exit."""
    if memory is None:
        yield base.model
        return
    from orgmem.memory import load_memory

    handle = load_memory(base, memory, source=source)
    try:
        handle.eval()
        yield handle.model
    finally:
        handle.detach()


def check_memory_base(base, memory: bytes, source: str = "memory") -> None:
    """Refuse a memory trained on another base before any expensive work (reference, probes)."""
    from orgmem.errors import IncompatibleBaseError
    from orgmem.memory import read_metadata

    meta = read_metadata(memory, source)
    if meta.get("base_fingerprint") != base.fingerprint:
        raise IncompatibleBaseError(
            f"{source} was trained on base {meta.get('base_name')!r} (fingerprint "
            f"{str(meta.get('base_fingerprint'))[:16]}…), not on {base.name!r} ({base.fingerprint[:16]}…)")


def read_memory_file(path: str | Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"memory file not found: {path}")
    return path.read_bytes()


def probes_from_chunks(new: Sequence, old: Sequence, n: int, seed: int) -> list[Probe]:
    """Auto-probes: ``new`` chunks as tonight's material (night 2), ``old`` as retained (night 1)."""
    probes: list[Probe] = []
    for chunks, night in ((old, 1), (new, 2)):
        if chunks and n > 0:
            try:
                cut = auto_probes(list(chunks), n, seed=seed)
            except ValueError:  # chunks too short to cut a probe from: nothing to ask
                continue
            probes += [dataclasses.replace(p, night=night) for p in cut]
    return probes


@dataclass
class CheckpointTarget:
    """A checkpoint's memory and the chunks it consumed, read from lineage + the object store."""

    org: str
    checkpoint_id: str
    base_model: str
    memory: bytes
    new_chunks: list[str] = field(default_factory=list)
    replay_chunks: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def parse_target(text: str) -> tuple[str, str | None]:
    """``ORG@CKPT`` → (org, ckpt); ``ORG`` → (org, None) meaning the checkpoint it serves."""
    org, _, ckpt = text.partition("@")
    if not org or (text.endswith("@") and not ckpt):
        raise OrgmemError(f"evaluation target {text!r} is not ORG or ORG@CHECKPOINT")
    return org, ckpt or None


def load_checkpoint_target(session, store, org_slug: str, checkpoint_id: str | None) -> CheckpointTarget:
    """Resolve the org (and its served checkpoint when none is named) and fetch the memory."""
    from sqlalchemy import select

    from orgmem.checkpoints import MEMORY, load_checkpoint_objects
    from orgmem.db.enums import InputRole
    from orgmem.db.models import CheckpointInput, Chunk
    from orgmem.lineage import get_checkpoint, get_org

    org = get_org(session, org_slug)
    checkpoint_id = checkpoint_id or org.served_checkpoint_id
    if checkpoint_id is None:
        raise NotFoundError(f"org {org_slug!r} serves no checkpoint yet: name one as {org_slug}@CHECKPOINT")
    ck = get_checkpoint(session, checkpoint_id, org)
    memory = load_checkpoint_objects(session, store, ck.id, [MEMORY])[MEMORY]
    rows = session.execute(
        select(Chunk.text, CheckpointInput.role).join(Chunk, Chunk.id == CheckpointInput.chunk_id)
        .where(CheckpointInput.checkpoint_id == ck.id).order_by(Chunk.id)
    ).all()
    new = [text for text, role in rows if role == InputRole.NEW.value]
    replay = [text for text, role in rows if role != InputRole.NEW.value]
    return CheckpointTarget(org=org.slug, checkpoint_id=ck.id, base_model=ck.base_model, memory=memory,
                            new_chunks=new, replay_chunks=replay, metrics=dict(ck.metrics or {}))
