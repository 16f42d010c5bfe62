"""Org-scoped API keys: created once and shown once, stored only as a hash.

Public API: ``create_key(session, org, role, name=None, actor=...) -> CreatedKey`` (``.key`` is
the plaintext, shown once), ``list_keys(session, org)``, ``revoke_key(session, org, ref, actor=...)``
(``ref`` = key id or prefix), ``authenticate(session, presented) -> ApiKeyIdentity`` (raises
``AuthenticationError``), ``key_dict(row, org_slug)`` for JSON output.
"""

from orgmem.keys.api_keys import (
    KEY_PREFIX,
    ApiKeyIdentity,
    AuthenticationError,
    CreatedKey,
    authenticate,
    create_key,
    hash_key,
    key_dict,
    list_keys,
    revoke_key,
    touch_last_used,
)

__all__ = [
    "KEY_PREFIX",
    "ApiKeyIdentity",
    "AuthenticationError",
    "CreatedKey",
    "authenticate",
    "create_key",
    "hash_key",
    "key_dict",
    "list_keys",
    "revoke_key",
    "touch_last_used",
]
