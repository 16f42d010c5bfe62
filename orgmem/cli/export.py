"""``orgmem export ORG[@CKPT] DIR``: the org's model as a folder other runtimes load.

``--format hf`` (default): a standalone Hugging Face folder (base + memory + modeling code) that
``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)`` loads and that computes what
orgmem serves; ``--format peft``: a ``lora`` memory as a PEFT adapter (vLLM multi-LoRA too).
See ``docs/export.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    actor_or_default,
    db_session,
    emit,
    open_configured_store,
    settings,
)


def _text(data: dict) -> str:
    stack = " + ".join(f"{m['audience']}:{m['checkpoint']} ({m['kind']})" for m in data["layers"])
    return (f"exported {data['org']} [{stack}] as {data['format']} to {data['dir']}\n"
            f"base {data['base']} ({data['base_fingerprint'][:16]}…); {len(data['files'])} files")


def command(
    target: Annotated[str, typer.Argument(
        metavar="ORG[@CKPT]", help="ORG (its served checkpoint) or ORG@CHECKPOINT.")],
    out: Annotated[Path, typer.Argument(
        metavar="DIR", help="Directory to write (absent or empty, unless --force).")],
    fmt: Annotated[str, typer.Option(
        "--format", help="hf (transformers folder) | peft (lora kind only).")] = "hf",
    group: Annotated[str | None, typer.Option(
        "--group", help="Stack this group's served memory on the org's, as serving does for its keys."),
    ] = None,
    base_name: Annotated[str | None, typer.Option(
        "--base", help="Base model the checkpoint was trained on (default: ORGMEM_BASE_MODEL).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a previous export in DIR (never a folder that is not an export).")] = False,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Export an org's memory on its base as a Hugging Face folder or a PEFT adapter."""
    import torch

    from orgmem.export import ExportRequest, ExportTarget, plan_export, record_export, write_export
    from orgmem.models import load_base

    request = ExportRequest(ExportTarget.parse(target, group), fmt, out.expanduser().absolute(),
                            actor_or_default(actor), force)
    base = load_base(base_name or settings().base_model, device="cpu", dtype=torch.float32)
    with db_session() as session:
        plan = plan_export(session, open_configured_store(), base, request)
    result = write_export(plan, base)
    with db_session(write=True) as session:
        record_export(session, plan, result)
    data = result.to_dict()
    emit(data, as_json, lambda: _text(data))
