"""Where a checkpoint's objects live in the store: ``orgs/<org>/checkpoints/<id>/<name>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orgmem.errors import OrgmemError

MEMORY = "memory.safetensors"
TRAIN_STATE = "train_state.safetensors"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "orgmem-checkpoint/1"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEY = re.compile(r"^orgs/(?P<org>[^/]+)/checkpoints/(?P<ck>[^/]+)/(?P<name>[^/]+)$")


def validate_object_name(name: str) -> str:
    """Object names are single path segments, so a name can never escape the checkpoint folder."""
    if not _NAME.match(name):
        raise OrgmemError(f"checkpoint object name {name!r} must match {_NAME.pattern}")
    return name


def checkpoint_prefix(org_slug: str, checkpoint_id: str) -> str:
    return f"orgs/{org_slug}/checkpoints/{checkpoint_id}/"


def object_key(org_slug: str, checkpoint_id: str, name: str) -> str:
    return checkpoint_prefix(org_slug, checkpoint_id) + validate_object_name(name)


@dataclass(frozen=True)
class ParsedKey:
    org: str
    checkpoint_id: str
    name: str

    @property
    def prefix(self) -> str:
        return checkpoint_prefix(self.org, self.checkpoint_id)


def parse_object_key(key: str) -> ParsedKey | None:
    """The parts of a checkpoint object key, None for any other key under ``orgs/``."""
    match = _KEY.match(key)
    return ParsedKey(match["org"], match["ck"], match["name"]) if match else None
