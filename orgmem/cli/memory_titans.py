"""``orgmem memory meta-train``: meta-train the base's Titans memory (resumable).

``orgmem/cli/memory.py`` mounts it with ``memory_titans.register(app)``; ``app`` here also works
stand-alone (``python -m orgmem.cli.memory_titans meta-train --steps 10``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Titans memory tools.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Titans memory tools."""


def _ints(text: str, option: str) -> tuple[int, ...]:
    """``"512,2048"`` -> (512, 2048); ``""`` -> ()."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, got {text!r}") from None


def _table(before: dict[str, float], after: dict[str, float]) -> str:
    rows = ["metric            before    after"]
    for key in ("nll_written", "nll_shuffled", "nll_base", "gap", "acc_written", "acc_shuffled", "acc_base",
                "kl_shuffled", "kl_generic", "gate_generic", "gate_query"):
        rows.append(f"{key:<16}{before.get(key, float('nan')):>8.4f} {after.get(key, float('nan')):>8.4f}")
    return "\n".join(rows)


def meta_train_command(  # noqa: PLR0913  # one option per setting
    steps: Annotated[int, typer.Option("--steps", help="Outer steps in all (resume continues).")] = 2000,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    base_name: Annotated[str | None, typer.Option("--base", help="Default: ORGMEM_BASE_MODEL.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda (default: settings).")
                      ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Episodes per outer step.")] = 16,
    lr: Annotated[float, typer.Option("--lr", help="Outer learning rate.")] = 1e-3,
    control_weight: Annotated[float, typer.Option("--control-weight", help="Shuffled-control weight.")] = 1.0,
    bank_size: Annotated[int, typer.Option("--bank-size", help="Episodes per cached bank.")] = 256,
    bank_refresh: Annotated[int, typer.Option("--bank-refresh", help="Steps per bank of episodes.")] = 100,
    eval_episodes: Annotated[int, typer.Option("--eval-episodes", help="Held-out episodes.")] = 64,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Evaluate every N steps (0: ends).")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint period.")] = 50,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes", help="Stop (checkpointed) after.")
                           ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episode stream.")] = 0,
    curriculum_tokens: Annotated[str, typer.Option(
        "--curriculum-tokens", help="Write tokens per stage, e.g. 512,2048,8192 ('' = template episodes).")
    ] = "512,2048,8192",
    curriculum_steps: Annotated[str, typer.Option(
        "--curriculum-steps", help="Steps of each stage but the last, e.g. 500,1000.")] = "500,1000",
    curriculum_batch: Annotated[str, typer.Option(
        "--curriculum-batch", help="Episodes per step in each stage ('' = --batch-size).")] = "16,8,4",
    window_tokens: Annotated[int, typer.Option("--window-tokens", help="Tokens per write window.")] = 512,
    answer_weight: Annotated[float, typer.Option("--answer-weight", help="Answer NLL weight.")] = 1.0,
    generic_weight: Annotated[float, typer.Option("--generic-weight", help="Generic-text KL weight.")] = 1.0,
    generic_items: Annotated[int, typer.Option("--generic-items", help="Generic texts (0: none).")] = 32,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Checkpoint and init folder "
                                                 "(default: the base's titans_meta/).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Meta-train the Titans memory of a base model; the result becomes its Titans initialisation."""
    import torch

    from orgmem.memory.titans.meta_train import MetaTrainConfig, meta_train
    from orgmem.models import load_base

    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = MetaTrainConfig(
            steps=steps, batch_size=batch_size, lr=lr, control_weight=control_weight, bank_size=bank_size,
            bank_refresh=bank_refresh, eval_episodes=eval_episodes, eval_every=eval_every,
            checkpoint_every=checkpoint_every, seed=seed,
            curriculum_tokens=_ints(curriculum_tokens, "--curriculum-tokens"),
            curriculum_steps=_ints(curriculum_steps, "--curriculum-steps"),
            curriculum_batch=_ints(curriculum_batch, "--curriculum-batch"), window_tokens=window_tokens,
            answer_weight=answer_weight, generic_weight=generic_weight, generic_items=generic_items)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    base = load_base(base_name, device=device)
    result = meta_train(base, config=cfg, resume=resume, out_dir=out_dir,
                        max_seconds=None if max_minutes is None else max_minutes * 60)
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
    summary |= {"base": base.name, "device": str(base.device)}
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    state = ("complete" if result.complete
             else f"stopped at step {result.steps} of {steps}: rerun with --resume")
    typer.echo(f"titans meta-training on {base.name} ({base.device}): {state}, {result.seconds:.0f} s")
    typer.echo(f"initialisation: {result.init_path}")
    typer.echo(_table(result.before, result.after))


def register(group: typer.Typer) -> None:
    """Add ``meta-train`` to the ``orgmem memory`` group."""
    group.command("meta-train")(meta_train_command)


register(app)

if __name__ == "__main__":
    app()
