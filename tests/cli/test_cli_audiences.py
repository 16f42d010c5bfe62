"""Audiences through the CLI: a group's own lineage (checkpoints, pin, unpin, rollback, history)
next to the org's, and keys that carry groups."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY, CheckpointDraft, InputRef, commit_checkpoint
from orgmem.db.models import Chunk, Document, DocumentVersion
from orgmem.db.session import session_factory
from orgmem.lineage import get_org
from orgmem.store.base import ObjectStore
from tests.cli.test_cli_lineage import cli
from tests.lineage_factories import add_chunks, record


def _group_checkpoint(session: Session, store: ObjectStore, org, parent, chunks: list[Chunk], audience: str):
    result = commit_checkpoint(session, store, CheckpointDraft(
        org=org, parent_id=parent, objects={MEMORY: f"{audience}:{parent}".encode()}, manifest={},
        inputs=[InputRef(c.id) for c in chunks], metrics={}, status="promoted", created_by="test",
        base_model="tiny-random", base_fingerprint="f" * 64, memory_kind="cms", audience=audience,
    ))
    return result.checkpoint


def test_group_lineage_and_keys_through_the_cli(db_url: str, store: ObjectStore) -> None:
    cli("org", "create", "acme", "--json")
    session: Session = session_factory(db_url)()
    org = get_org(session, "acme")
    org_chunks = add_chunks(session, org, ["a"])
    eng_chunks = add_chunks(session, org, ["e1", "e2"], source_name="eng-wiki")
    versions = [c.document_version_id for c in eng_chunks]
    session.execute(update(Document).where(Document.id.in_(
        session.query(DocumentVersion.document_id).filter(DocumentVersion.id.in_(versions)).scalar_subquery()
    )).values(audience="eng"))
    session.commit()
    root = record(session, store, org, None, org_chunks, status="promoted")
    e1 = _group_checkpoint(session, store, org, None, eng_chunks[:1], "eng")
    e2 = _group_checkpoint(session, store, org, e1.id, eng_chunks[1:], "eng")
    session.close()

    org_tree = cli("checkpoints", "acme", "--json")
    assert [n["id"] for n in org_tree["checkpoints"]] == [root.id]
    assert org_tree["served_checkpoint_id"] == root.id
    eng_tree = cli("checkpoints", "acme", "--audience", "eng", "--json")
    assert [n["id"] for n in eng_tree["checkpoints"]] == [e1.id, e2.id]
    assert eng_tree["served_checkpoint_id"] == e2.id and eng_tree["audience"] == "eng"
    assert cli("checkpoint", "show", e2.id, "--json")["audience"] == "eng"

    pinned = cli("pin", "acme", e1.id, "--audience", "eng", "--json")
    assert pinned["served_checkpoint_id"] == e1.id and pinned["audience"] == "eng"
    assert cli("checkpoints", "acme", "--json")["served_checkpoint_id"] == root.id, "the org is untouched"
    refused = cli("pin", "acme", root.id, "--audience", "eng", code=3)
    assert "belongs to audience 'org', not 'eng'" in refused.output
    cli("unpin", "acme", "--audience", "eng", "--json")
    back = cli("rollback", "acme", e1.id, "--audience", "eng", "--json")
    assert back["head_checkpoint_id"] == e1.id and back["abandoned"] == [e2.id]
    assert back["chunks_to_pending"] == 1
    actions = [e["action"] for e in cli("history", "acme", "--audience", "eng", "--json")["events"]]
    assert actions == ["promote", "promote", "pin", "unpin", "rollback"]
    assert [e["action"] for e in cli("history", "acme", "--json")["events"]] == ["promote"]

    key = cli("keys", "create", "acme", "--role", "employee", "--group", "legal", "--group", "eng", "--json")
    assert key["groups"] == ["eng", "legal"]
    listing = cli("keys", "list", "acme")
    assert "eng,legal" in listing.output
    bad = cli("keys", "create", "acme", "--group", "Legal Team", code=1)
    assert "invalid audience 'Legal Team'" in bad.output
