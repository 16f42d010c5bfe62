"""``orgmem org create|list``."""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    actor_or_default,
    db_session,
    emit,
    emit_table,
    short_time,
)
from orgmem.db.models import Org

app = typer.Typer(help="Create and list organizations.", no_args_is_help=True)


def org_dict(org: Org) -> dict[str, object]:
    return {
        "slug": org.slug,
        "name": org.name,
        "created_at": org.created_at.isoformat(),
        "head_checkpoint_id": org.head_checkpoint_id,
        "pinned_checkpoint_id": org.pinned_checkpoint_id,
        "served_checkpoint_id": org.served_checkpoint_id,
    }


@app.command("create")
def create(
    slug: Annotated[str, typer.Argument(help="Short id: a-z, 0-9, '-' (used in keys and URLs).")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the slug).")] = None,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an organization."""
    from orgmem.lineage import create_org

    with db_session(write=True) as session:
        org = create_org(session, slug, name, actor=actor_or_default(actor))
        session.flush()
        data = org_dict(org)
    emit(data, as_json, f"created org {slug!r}")


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """List organizations and what each serves."""
    from orgmem.lineage import list_orgs

    with db_session() as session:
        orgs = [org_dict(org) for org in list_orgs(session)]
    rows = [
        (
            o["slug"],
            o["name"],
            o["served_checkpoint_id"] or "-",
            o["head_checkpoint_id"] or "-",
            o["pinned_checkpoint_id"] or "-",
            short_time_iso(o["created_at"]),
        )
        for o in orgs
    ]
    headers = ["SLUG", "NAME", "SERVED", "HEAD", "PINNED", "CREATED"]
    emit_table(orgs, as_json, headers, rows, "no orgs yet: `orgmem org create SLUG`")


def short_time_iso(text: object) -> str:
    from datetime import datetime

    return short_time(datetime.fromisoformat(str(text)))
