"""``orgmem eval``: every evaluation metric for a base, a memory file, or an org's checkpoint.

    orgmem eval --base tiny-random --probes probes.jsonl              # the base alone
    orgmem eval --base NAME --memory memory.safetensors --probes FILE # base + a saved memory
    orgmem eval ORG@CKPT  (or ORG: its served checkpoint)             # from lineage + store

Without ``--probes`` a checkpoint is judged on auto-probes cut from the chunks it consumed (new
chunks as tonight's material, replayed ones as retained). Drift metrics (perplexity, KL to base,
changed replies, leakage) use the base reference cached per base fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, emit

DEFAULT_AUTO_PROBES = 24


TargetArg = Annotated[str | None, typer.Argument(
    help="ORG@CHECKPOINT, or ORG for the checkpoint it serves. Omit to evaluate --base [--memory].")]
BaseOption = Annotated[str | None, typer.Option(
    "--base", help="Base model (default: the checkpoint's, else ORGMEM_BASE_MODEL).")]
MemoryOption = Annotated[Path | None, typer.Option("--memory", help="A saved memory.safetensors to attach.")]
ProbesOption = Annotated[Path | None, typer.Option(
    "--probes", help="JSONL probe file (fact, cloze, question, answer, aliases, night, replaces).")]
NightOption = Annotated[int | None, typer.Option(
    "--night", help="Ask the probes true after this night (default: the last).")]
AutoOption = Annotated[int, typer.Option(
    "--auto", help="Auto-probes per chunk set when judging a checkpoint without --probes.")]
DriftOption = Annotated[bool, typer.Option("--drift/--no-drift", help="Measure drift on the generic set.")]


def command(
    target: TargetArg = None,
    base_name: BaseOption = None,
    memory: MemoryOption = None,
    probes: ProbesOption = None,
    night: NightOption = None,
    auto: AutoOption = DEFAULT_AUTO_PROBES,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the auto-probe sample.")] = 0,
    drift: DriftOption = True,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts generated together.")] = 16,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a checkpoint: cloze/question recall, answer NLL, retention, updates, drift."""
    from orgmem.errors import OrgmemError
    from orgmem.eval import EvalConfig, evaluate, get_reference, load_probes
    from orgmem.eval.target import check_memory_base, memory_model, probes_from_chunks, read_memory_file
    from orgmem.models import load_base

    if target and memory:
        raise OrgmemError("give either a checkpoint target or --memory, not both")
    probe_set = load_probes(probes) if probes else None
    meta: dict = {}
    blob = read_memory_file(memory) if memory else None
    if target:
        ck = _checkpoint(target)
        blob, base_name = ck.memory, base_name or ck.base_model
        meta = {"org": ck.org, "checkpoint": ck.checkpoint_id}
        if probe_set is None:
            probe_set = probes_from_chunks(ck.new_chunks, ck.replay_chunks, auto, seed)
    elif memory:
        meta = {"memory": str(memory)}
    base = load_base(base_name, device=device)
    source = meta.get("checkpoint") or meta.get("memory", "memory")
    if blob is not None:
        check_memory_base(base, blob, source)
    reference = get_reference(base.model, base.tokenizer, base.fingerprint) if drift else None
    with memory_model(base, blob, source=source) as model:
        report = evaluate(model, base.tokenizer, probe_set or [], reference=reference, night=night,
                          config=EvalConfig(batch_size=batch_size, progress=not as_json),
                          meta={**meta, "base": base.name})
    emit(report.to_dict(), as_json, report.table)


def _checkpoint(target: str):
    from orgmem.cli.common import db_session, open_configured_store
    from orgmem.eval.target import load_checkpoint_target, parse_target

    org, ckpt = parse_target(target)
    with db_session() as session:
        return load_checkpoint_target(session, open_configured_store(), org, ckpt)
