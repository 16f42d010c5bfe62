"""``orgmem demo``: two nights of the loop on the shipped sample org, on the embedded defaults."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    org: Annotated[
        str | None, typer.Option("--org", help="Slug for the demo org (default: sample-<time>).")
    ] = None,
    inline: Annotated[bool, typer.Option("--inline", help="Run jobs in this process, no worker.")] = False,
    probes: Annotated[bool, typer.Option("--probes/--no-probes", help="Ask the shipped probes.")] = True,
) -> None:
    """Register the sample org's sources, run two nights (sync, consolidate, gate), show the lineage."""
    from workers.demo import run_demo

    run_demo(lambda line: typer.echo(line), org=org, inline=inline, probes=probes)
