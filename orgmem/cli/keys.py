"""``orgmem keys create|list|revoke``: org-scoped API keys for the server (issue #6).

``create`` prints the key once; only its sha256 is stored, so a lost key is revoked and replaced,
never recovered.
"""

from __future__ import annotations

from typing import Annotated

import typer

from orgmem.cli.common import ActorOption, JsonFlag, OrgArg, actor_or_default, db_session, emit, emit_table

app = typer.Typer(help="Create, list and revoke API keys (org-scoped, role employee|admin).",
                  no_args_is_help=True)


@app.command("create")
def create(
    org: Annotated[str, typer.Argument(help="Org slug the key belongs to.")],
    role: Annotated[str, typer.Option("--role", help="employee | admin (also /api).")] = "employee",
    name: Annotated[str | None, typer.Option("--name", help="Label in listings (default: role-N).")] = None,
    group: Annotated[list[str] | None, typer.Option(
        "--group", help="A group whose memory the key also reaches (repeatable).")] = None,
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once (it is not stored; keep it now)."""
    from orgmem.ops import keys

    with db_session(write=True) as session:
        data = keys.create(session, org, role, name, actor=actor_or_default(actor), groups=group)
    emit(data, as_json, lambda: (
        f"created {data['role']} key {data['name']!r} (id {data['id']}) for org {org!r}"
        f"{' with groups ' + ', '.join(data['groups']) if data['groups'] else ''}:\n\n"
        f"    {data['key']}\n\nIt is shown only now; only its hash is stored."))


@app.command("list")
def list_(org: OrgArg, as_json: JsonFlag = False) -> None:
    """List an org's keys (prefix, role, last use; never the keys)."""
    from orgmem.ops.keys import listing

    with db_session() as session:
        keys = listing(session, org)
    rows = [(k["id"], k["prefix"] + "…", k["name"], k["role"], ",".join(k["groups"]) or "-",
             "active" if k["active"] else "revoked", (k["last_used_at"] or "-")[:19]) for k in keys]
    headers = ["ID", "PREFIX", "NAME", "ROLE", "GROUPS", "STATE", "LAST USED"]
    emit_table(keys, as_json, headers, rows,
               f"org {org!r} has no API keys: `orgmem keys create {org} --role employee`")


@app.command("revoke")
def revoke(
    org: OrgArg,
    key: Annotated[str, typer.Argument(help="Key id or prefix (as `keys list` shows).")],
    actor: ActorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: refused from the next request on."""
    from orgmem.ops.keys import revoke as revoke_key

    with db_session(write=True) as session:
        data = revoke_key(session, org, key, actor=actor_or_default(actor))
    emit(data, as_json, f"revoked key {data['prefix']}… ({data['name']}) of org {org!r}")
