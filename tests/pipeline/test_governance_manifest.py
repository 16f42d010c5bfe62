"""A consolidated checkpoint records the governance of its training data in its manifest and its
metrics: scanner and rule-set versions, and the redaction counts of its input versions."""

from __future__ import annotations

from orgmem.checkpoints import load_manifest
from orgmem.db import session_scope
from orgmem.db.models import Chunk, Redaction
from orgmem.governance.record import ruleset_version
from orgmem.pipeline import consolidate_org
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, add_chunks


def test_checkpoint_records_governance(org):
    ids = add_chunks(org, NIGHT1)
    with session_scope(write=True) as s:
        version = s.get(Chunk, ids[0]).document_version_id
        for rule in ("aws-access-key", "aws-access-key", "jwt"):
            s.add(Redaction(document_version_id=version, rule=rule, start=0, end=1, placeholder="[R]"))
    night = consolidate_org(org, params=FAST_PARAMS)
    assert night.created
    with session_scope() as s:
        manifest = load_manifest(s, open_store(), night.checkpoint_id)
    for block in (manifest["governance"], night.metrics["governance"]):
        assert block["ruleset_version"] == ruleset_version() and block["scanner"] == "detect-secrets"
        assert block["redactions"] == {"aws-access-key": 2, "jwt": 1} and block["document_versions"] == 2
