"""``orgmem memory``: memory kinds, saved memories, derived training forms, Titans meta-training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from orgmem.cli import memory_titans
from orgmem.cli.common import JsonFlag, emit
from orgmem.errors import NotFoundError

app = typer.Typer(help="Memory engine tools.", no_args_is_help=True, add_completion=False)


@app.command("kinds")
def kinds(as_json: JsonFlag = False) -> None:
    """Registered memory kinds with their config defaults (combine with '+', e.g. cms+titans)."""
    from orgmem.memory.registry import discover_kinds, get_kind

    data = {}
    for name in discover_kinds():
        cfg = get_kind(name).config_cls()
        data[name] = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    emit(data, as_json, lambda: "\n".join(f"{k}: {json.dumps(v)}" for k, v in data.items()))


@app.command("inspect")
def inspect(
    path: Annotated[Path, typer.Argument(help="A memory.safetensors file.")],
    as_json: JsonFlag = False,
) -> None:
    """Kind, config, base fingerprint and size of a saved memory (reads the header only)."""
    from safetensors import safe_open

    from orgmem.memory.io import read_metadata

    if not path.is_file():
        raise NotFoundError(f"memory file {path} does not exist")
    meta = read_metadata(path.read_bytes(), source=str(path))
    with safe_open(str(path), framework="pt") as f:
        params = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
        tensors = len(list(f.keys()))
    data = {"kind": meta["kind"], "base_name": meta.get("base_name"),
            "base_fingerprint": meta["base_fingerprint"], "bytes": path.stat().st_size, "tensors": tensors,
            "parameters": params, "config": json.loads(meta["config"])}
    emit(data, as_json, lambda: "\n".join(f"{k:<18}{v}" for k, v in data.items()))


def _prod(shape: list[int]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


@app.command("forms")
def forms(
    paths: Annotated[list[Path], typer.Argument(help="Text/code files to derive training forms from.")],
    per_unit: Annotated[int, typer.Option("--per-unit", help="Questions per statement.")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Show the statements and question → answer forms the engine derives from raw files."""
    from orgmem.engine.forms import split_units, unit_questions

    out = []
    for path in paths:
        if not path.is_file():
            raise NotFoundError(f"file {path} does not exist")
        for unit in split_units(path.read_text(errors="replace")):
            out.append({"file": str(path), "statement": unit.text, "context": unit.context,
                        "questions": unit_questions(unit, per_unit)})
    emit(out, as_json, lambda: "\n".join(f"{o['statement']}\n    " + "\n    ".join(o["questions"])
                                         for o in out))


@app.command("rehearsal")
def rehearsal(
    base_name: Annotated[str | None, typer.Option("--base", help="Default: ORGMEM_BASE_MODEL.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate (once) and show the base's self-written rehearsal text used for the KL term."""
    from orgmem.engine.rehearsal import rehearsal_texts
    from orgmem.models import load_base

    pairs = rehearsal_texts(load_base(base_name))
    data = [{"prompt": p, "reply": r} for p, r in pairs]
    emit(data, as_json, lambda: "\n".join(f"> {d['prompt']}\n{d['reply']}\n" for d in data))


memory_titans.register(app)
