"""``orgmem consolidate ORG --audience GROUP`` as a job: the group's own checkpoint, the org untouched."""

from __future__ import annotations

from sqlalchemy import update

from orgmem.db import session_scope
from orgmem.db.models import Chunk, Document, DocumentVersion
from tests.pipeline.conftest import NIGHT1, NIGHT2, add_chunks
from tests.workers.test_cli_jobs import cli

FAST = ("--engine", '{"epochs": 1, "max_steps": 2, "num_threads": 1}', "--pipeline", '{"progress": false}')


def test_consolidate_a_group_inline(org, monkeypatch):
    monkeypatch.setenv("ORGMEM_BASE_MODEL", "tiny-random")
    from orgmem.config import get_settings

    get_settings.cache_clear()
    add_chunks(org, NIGHT1)
    eng = add_chunks(org, NIGHT2)
    with session_scope(write=True) as s:
        versions = s.query(Chunk.document_version_id).filter(Chunk.id.in_(eng)).scalar_subquery()
        docs = s.query(DocumentVersion.document_id).filter(DocumentVersion.id.in_(versions)).scalar_subquery()
        s.execute(update(Document).where(Document.id.in_(docs)).values(audience="eng"))
    view = cli("consolidate", "acme", "--inline", "--audience", "eng", *FAST, "--json")
    result = view["result"]
    assert view["status"] == "succeeded" and result["status"] == "promoted" and result["audience"] == "eng"
    assert result["n_new"] == len(eng)
    text = cli("jobs", "show", view["id"]).stdout
    assert f"checkpoint {result['checkpoint_id']} promoted (group 'eng')" in text
    assert cli("checkpoints", "acme", "--json")["checkpoints"] == [], "the org memory saw nothing"
    assert "nothing pending for org 'acme' group 'eng'" in cli(
        "consolidate", "acme", "--inline", "--audience", "eng", *FAST).stdout
    assert "invalid audience 'ENG'" in cli("consolidate", "acme", "--audience", "ENG", code=1).stderr
