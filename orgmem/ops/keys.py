"""API keys of an org (``orgmem keys``, ``/api/orgs/{org}/keys``): create, list, revoke.

Results are the listing form (``key_dict``: never the hash); ``create`` adds the plaintext key,
the only time it exists. Who may create which key is the face's check (the API refuses groups
the calling key lacks). Each runs in the caller's session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orgmem.keys import create_key, key_dict, list_keys, revoke_key


def create(session: Session, org: str, role: str, name: str | None = None, *, actor: str,
           groups: list[str] | None = None) -> dict[str, Any]:
    """A new key of ``org``: its listing form plus ``key``, the plaintext (shown once)."""
    created = create_key(session, org, role, name, actor=actor, groups=groups)
    return {**key_dict(created.row, org), "key": created.key}


def listing(session: Session, org: str) -> list[dict[str, Any]]:
    """The org's keys, active and revoked."""
    return [key_dict(row, org) for row in list_keys(session, org)]


def revoke(session: Session, org: str, ref: str, *, actor: str) -> dict[str, Any]:
    """Revoke the key with id or prefix ``ref``: refused from the next request on."""
    return key_dict(revoke_key(session, org, ref, actor=actor), org)
