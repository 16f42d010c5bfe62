"""``orgmem source add|test|list|remove``: register an org's data sources (kinds: ``connectors.registry``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from connectors.registry import kinds
from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    OrgArg,
    actor_or_default,
    db_session,
    emit,
    emit_table,
    short_time,
)
from orgmem.cli.source_options import SourceAddCommand, given_fields, set_entries

app = typer.Typer(help="Register, list and remove an org's data sources.", no_args_is_help=True)

Opt = typer.Option


def build_config(raw_json: str | None, *layers: dict[str, Any]) -> dict[str, Any]:
    """``--config JSON`` overlaid by each later layer (``--set``, then the field options given)."""
    config: dict[str, Any] = {}
    if raw_json:
        try:
            config = json.loads(raw_json)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--config is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise typer.BadParameter("--config must be a JSON object")
    for layer in layers:
        config.update(layer)
    return config


@app.command("add", cls=SourceAddCommand)
def add(
    ctx: typer.Context,
    org: OrgArg,
    kind: Annotated[str, typer.Argument(help=" | ".join(kinds()) + " (then --help: that kind's options)")],
    name: Annotated[str | None, Opt("--name", help="Source name, unique in the org (default: KIND).")] = None,
    audience: Annotated[str, Opt("--audience", help="'org' or a group name allowed to see it.")] = "org",
    settings: Annotated[
        list[str] | None,
        Opt("--set", metavar="KEY=VALUE", help="Any config field (repeat it; JSON for lists and objects)."),
    ] = None,
    config_json: Annotated[
        str | None, Opt("--config", help="Full config as JSON (--set and the field options override).")
    ] = None,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a source; its config is validated and the source checked now (path under the source roots,
    repository and branch, zip layout, feed answers), with the error a sync would give.

    The source options below come from each kind's config; `orgmem source add ORG KIND --help` lists
    only KIND's."""
    from orgmem.ingest import add_source
    from orgmem.lineage import get_org

    config = build_config(config_json, set_entries(kind, settings) if settings else {}, given_fields(ctx))
    with db_session(write=True) as session:
        source = add_source(
            session,
            get_org(session, org),
            kind,
            name or kind,
            config,
            audience=audience,
            actor=actor_or_default(actor),
        )
        data = {
            "org": org,
            "name": source.name,
            "kind": source.kind,
            "audience": source.audience,
            "config": source.config,
        }
    emit(data, as_json, f"added {kind} source {data['name']!r} to org {org!r}")


@app.command("test")
def test(
    org: OrgArg,
    name: Annotated[str, typer.Argument(help="Source name.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a registered source as the sync will read it (path, repository, zip, feed); exit 0 when ok."""
    from orgmem.ingest import check_registered
    from orgmem.lineage import get_org

    with db_session() as session:
        source = check_registered(session, get_org(session, org), name)
        data = {"org": org, "name": source.name, "kind": source.kind, "ok": True}
    emit(data, as_json, f"{data['kind']} source {name!r} of org {org!r}: ok")


@app.command("list")
def list_(org: OrgArg, as_json: JsonFlag = False) -> None:
    """Sources of an org with their documents, pending chunks and last sync."""
    from orgmem.ingest import list_sources, source_stats
    from orgmem.lineage import get_org

    with db_session() as session:
        rows: list[dict[str, Any]] = [
            {
                "name": s.name,
                "kind": s.kind,
                "audience": s.audience,
                "enabled": s.enabled,
                "config": s.config,
                "last_sync_at": s.last_sync_at,
                "last_error": s.last_error,
                **source_stats(session, s),
            }
            for s in list_sources(session, get_org(session, org))
        ]
    table = [
        (
            r["name"],
            r["kind"],
            r["audience"],
            "yes" if r["enabled"] else "no",
            r["documents"],
            r["pending"],
            short_time(r["last_sync_at"]) or "never",
            (r["last_error"] or "")[:60],
        )
        for r in rows
    ]
    headers = ["NAME", "KIND", "AUDIENCE", "ENABLED", "DOCS", "PENDING", "LAST SYNC", "LAST ERROR"]
    empty = f"org {org!r} has no sources yet: `orgmem source add {org} KIND ...`"
    emit_table(rows, as_json, headers, table, empty)


@app.command("remove")
def remove(
    org: OrgArg,
    name: Annotated[str, typer.Argument(help="Source name.")],
    disable: Annotated[bool, Opt("--disable", help="If checkpoints used it, disable it instead.")] = False,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete a source and its documents (refused when checkpoints consumed them, unless --disable)."""
    from orgmem.ingest import remove_source
    from orgmem.lineage import get_org

    with db_session(write=True) as session:
        outcome = remove_source(
            session, get_org(session, org), name, disable_if_used=disable, actor=actor_or_default(actor)
        )
    emit({"org": org, "name": name, "outcome": outcome}, as_json, f"source {name!r} of org {org!r} {outcome}")
