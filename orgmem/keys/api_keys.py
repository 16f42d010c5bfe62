"""Creating, listing, revoking and checking API keys.

A key is ``omk_`` + 43 url-safe characters (256 random bits). Only its sha256 is stored: with
that much entropy a fast hash cannot be brute-forced, so no slow KDF is needed on every request.
The first 12 characters (``key_prefix``) are stored in clear to find the row and to name a key
in listings; the hash comparison is constant-time. Revocation takes effect on the next request.
A key carries its ``groups``: the group audiences whose memories it is served on top of the org's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from orgmem.db.enums import ApiKeyRole
from orgmem.db.models import ApiKey, Org
from orgmem.db.types import row_id, utcnow
from orgmem.errors import ConflictError, NotFoundError, OrgmemError
from orgmem.lineage.audiences import validate_groups
from orgmem.lineage.audit import record_audit
from orgmem.lineage.orgs import resolve_org

logger = logging.getLogger(__name__)

KEY_PREFIX = "omk_"
PREFIX_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(seconds=60)  # write last_used_at at most once a minute per key


class AuthenticationError(OrgmemError):
    """Missing, malformed, unknown or revoked key (HTTP 401)."""


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    org_slug: str
    key: str  # the plaintext: shown once, never stored


@dataclass(frozen=True)
class ApiKeyIdentity:
    """Who a request is: the key's id, name, role, org and groups."""

    key_id: int
    name: str
    role: str
    prefix: str
    org_id: int
    org_slug: str
    last_used_stale: bool = False  # last_used_at is older than LAST_USED_RESOLUTION: worth a write
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == ApiKeyRole.ADMIN.value

    @property
    def actor(self) -> str:
        return f"key:{self.org_slug}/{self.name}({self.prefix})"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _role(role: str) -> ApiKeyRole:
    try:
        return ApiKeyRole(role)
    except ValueError:
        raise OrgmemError(f"invalid key role {role!r}: use one of {[r.value for r in ApiKeyRole]}") from None


def create_key(session: Session, org: Org | str, role: str, name: str | None = None, *,
               actor: str = "system", groups: list[str] | tuple[str, ...] | None = None) -> CreatedKey:
    """A new key for ``org``; the returned ``key`` is the only time the plaintext exists."""
    org = resolve_org(session, org)
    role_value = _role(role).value
    group_list = validate_groups(groups)
    if name is not None and not (0 < len(name) <= 100):
        raise OrgmemError(f"key name {name!r} must be 1-100 characters")
    if name is None:
        count = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.org_id == org.id)) or 0
        name = f"{role_value}-{count + 1}"
    if session.scalar(select(ApiKey.id).where(ApiKey.org_id == org.id, ApiKey.name == name,
                                              ApiKey.revoked_at.is_(None))) is not None:
        raise ConflictError(f"org {org.slug!r} already has an active key named {name!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(org_id=org.id, name=name, role=role_value, key_prefix=key[:PREFIX_LENGTH],
                 key_hash=hash_key(key), created_at=utcnow(), groups=group_list)
    session.add(row)
    session.flush()
    record_audit(session, org_id=org.id, actor=actor, action="key.create", target=row.key_prefix,
                 data={"name": name, "role": role_value, "key_id": row.id, "groups": group_list})
    logger.info("api key created", extra={"org": org.slug, "key": row.key_prefix, "role": role_value})
    return CreatedKey(row=row, org_slug=org.slug, key=key)


def list_keys(session: Session, org: Org | str) -> list[ApiKey]:
    org = resolve_org(session, org)
    return list(session.scalars(select(ApiKey).where(ApiKey.org_id == org.id).order_by(ApiKey.id)))


def _find(session: Session, org: Org, ref: int | str) -> ApiKey:
    """A key of ``org`` by id (``12``) or prefix (``omk_AbCdEfGh``)."""
    text = str(ref).strip()
    if text.isascii() and text.isdigit():  # an id (one past 64 bits matches nothing)
        key_id = row_id(text)
        row = session.get(ApiKey, key_id) if key_id is not None else None
        rows = [row] if row is not None and row.org_id == org.id else []
    else:
        rows = list(session.scalars(select(ApiKey).where(ApiKey.org_id == org.id,
                                                         ApiKey.key_prefix == text[:PREFIX_LENGTH])))
    if not rows:
        raise NotFoundError(f"org {org.slug!r} has no API key {text!r} (see `orgmem keys list {org.slug}`)")
    if len(rows) > 1:
        raise ConflictError(f"prefix {text!r} matches {len(rows)} keys of org {org.slug!r}; revoke by id")
    return rows[0]


def revoke_key(session: Session, org: Org | str, ref: int | str, *, actor: str = "system") -> ApiKey:
    """Revoke a key of ``org``; it is refused from the next request on."""
    org = resolve_org(session, org)
    row = _find(session, org, ref)
    if row.revoked_at is not None:
        raise ConflictError(f"API key {row.key_prefix!r} ({row.name}) of org {org.slug!r} is already revoked")
    row.revoked_at = utcnow()
    record_audit(session, org_id=org.id, actor=actor, action="key.revoke", target=row.key_prefix,
                 data={"name": row.name, "key_id": row.id})
    session.flush()
    logger.info("api key revoked", extra={"org": org.slug, "key": row.key_prefix})
    return row


def authenticate(session: Session, presented: str | None) -> ApiKeyIdentity:
    """The identity of a presented key, or ``AuthenticationError`` saying why not."""
    if not presented:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
    if not presented.startswith(KEY_PREFIX) or len(presented) < PREFIX_LENGTH + 8:
        raise AuthenticationError("malformed API key: orgmem keys start with 'omk_'")
    digest = hash_key(presented)
    candidates = session.scalars(select(ApiKey).where(ApiKey.key_prefix == presented[:PREFIX_LENGTH]))
    row = next((r for r in candidates if hmac.compare_digest(r.key_hash, digest)), None)
    if row is None:
        raise AuthenticationError(f"invalid API key {presented[:PREFIX_LENGTH]}…")
    if row.revoked_at is not None:
        raise AuthenticationError(f"API key {row.key_prefix}… was revoked")
    org = session.get(Org, row.org_id)
    if org is None:  # org deleted under the key (cascade should prevent it)
        raise AuthenticationError(f"API key {row.key_prefix}… belongs to no org")
    stale = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return ApiKeyIdentity(row.id, row.name, row.role, row.key_prefix, org.id, org.slug, stale,
                          tuple(row.groups or ()))


def touch_last_used(session: Session, key_id: int) -> None:
    """Record use of a key (a separate write, so authentication itself only reads)."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


def key_dict(row: ApiKey, org_slug: str) -> dict[str, Any]:
    """What listings show: never the hash, never the key."""
    return {
        "id": row.id,
        "org": org_slug,
        "name": row.name,
        "role": row.role,
        "groups": list(row.groups or []),
        "prefix": row.key_prefix,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "active": row.revoked_at is None,
    }
