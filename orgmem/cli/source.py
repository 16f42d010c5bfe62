"""``orgmem source add|list|remove``: register an org's data sources (git, docs, slack, rss)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from orgmem.cli.common import (
    ActorOption,
    JsonFlag,
    actor_or_default,
    db_session,
    emit,
    format_table,
    short_time,
)

app = typer.Typer(help="Register, list and remove an org's data sources.", no_args_is_help=True)

Opt = typer.Option


def build_config(raw_json: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """``--config JSON`` overlaid by the explicit flags that were given (None / empty = not given)."""
    config: dict[str, Any] = {}
    if raw_json:
        try:
            config = json.loads(raw_json)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--config is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise typer.BadParameter("--config must be a JSON object")
    config.update({k: v for k, v in flags.items() if v not in (None, [], False)})
    return config


def absolute(value: str | None) -> str | None:
    """A ``--path``/``--zip`` as the absolute path the worker will read (sources name absolute paths)."""
    return str(Path(value).expanduser().absolute()) if value else None


def parse_restrict(values: list[str]) -> dict[str, str]:
    """``["hr/*=hr", ...]`` -> ``{"hr/*": "hr"}``, in the order given (the first match wins)."""
    out: dict[str, str] = {}
    for value in values:
        pattern, sep, group = value.rpartition("=")
        if not sep or not pattern or not group:
            raise typer.BadParameter(f"--restrict {value!r}: expected GLOB=GROUP, e.g. 'hr/*=hr'")
        out[pattern] = group
    return out


@app.command("add")
def add(
    org: Annotated[str, typer.Argument(help="Org slug.")],
    kind: Annotated[str, typer.Argument(help="git | docs | slack | rss")],
    name: Annotated[str | None, Opt("--name", help="Source name, unique in the org (default: KIND).")] = None,
    audience: Annotated[str, Opt("--audience", help="'org' or a group name allowed to see it.")] = "org",
    path: Annotated[str | None, Opt("--path", help="git: local repository; docs: folder.")] = None,
    url: Annotated[str | None, Opt("--url", help="git: clone URL; rss: feed URL.")] = None,
    branch: Annotated[str | None, Opt("--branch", help="git: branch or ref (default HEAD).")] = None,
    zip_path: Annotated[str | None, Opt("--zip", help="slack: workspace export zip.")] = None,
    channel: Annotated[
        list[str] | None, Opt("--channel", help="slack: only this channel (repeatable).")
    ] = None,
    token_env: Annotated[
        str | None, Opt("--token-env", help="slack API: variable holding the bot token.")
    ] = None,
    base_url: Annotated[
        str | None, Opt("--base-url", help="slack API: endpoint (default slack.com).")
    ] = None,
    include_private: Annotated[bool, Opt("--include-private", help="slack: private channels too.")] = False,
    fetch_linked: Annotated[bool, Opt("--fetch-linked", help="rss: fetch each item's page text.")] = False,
    max_file_bytes: Annotated[
        int | None, Opt("--max-file-bytes", help="git/docs: skip larger files.")
    ] = None,
    redact_pii: Annotated[list[str] | None, Opt("--redact-pii", help="email | phone (repeatable).")] = None,
    forget_on_delete: Annotated[
        bool, Opt("--forget-on-delete", help="Forget items deleted at the source (out of the weights too).")
    ] = False,
    restrict: Annotated[
        list[str] | None,
        Opt("--restrict", help="GLOB=GROUP: matching paths train GROUP's memory, not the org's (repeat it)."),
    ] = None,
    config_json: Annotated[str | None, Opt("--config", help="Full config as JSON (flags override).")] = None,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a source; its config is validated and the source checked now (path under the source roots,
    repository and branch, zip layout, feed answers), with the error a sync would give."""
    from orgmem.ingest import add_source
    from orgmem.lineage import get_org

    config = build_config(
        config_json,
        {
            "path": absolute(path),
            "url": url,
            "branch": branch,
            "zip": absolute(zip_path),
            "channels": channel or [],
            "token_env": token_env,
            "base_url": base_url,
            "include_private": include_private,
            "fetch_linked": fetch_linked,
            "max_file_bytes": max_file_bytes,
            "redact_pii": redact_pii or [],
            "forget_on_delete": forget_on_delete,
            "restricted": parse_restrict(restrict) if restrict else None,
        },
    )
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
    org: Annotated[str, typer.Argument(help="Org slug.")],
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
def list_(org: Annotated[str, typer.Argument(help="Org slug.")], as_json: JsonFlag = False) -> None:
    """Sources of an org with their documents, pending chunks and last sync."""
    from orgmem.ingest import list_sources, source_stats
    from orgmem.lineage import get_org

    with db_session() as session:
        rows = [
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
    emit(
        rows,
        as_json,
        lambda: (
            format_table(
                ["NAME", "KIND", "AUDIENCE", "ENABLED", "DOCS", "PENDING", "LAST SYNC", "LAST ERROR"], table
            )
            if table
            else f"org {org!r} has no sources yet: `orgmem source add {org} KIND ...`"
        ),
    )


@app.command("remove")
def remove(
    org: Annotated[str, typer.Argument(help="Org slug.")],
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
