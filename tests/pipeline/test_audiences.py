"""Audiences in consolidation: the org memory trains on org material only; a group trains its own
lineage on its own material; chunk status follows each audience's own head lineage."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from orgmem.checkpoints import MEMORY, CheckpointDraft, commit_checkpoint
from orgmem.db import session_scope
from orgmem.db.models import AudienceHead, Checkpoint, CheckpointInput, Chunk, Document, DocumentVersion
from orgmem.errors import ConflictError, OrgmemError
from orgmem.lineage import get_org, rollback
from orgmem.pipeline import consolidate_org
from orgmem.store import open_store
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, NIGHT2, add_chunks

ENG = ["The eng on-call rotation hands over at 09:30 and the pager alias is eng-heron-7."]
ENG2 = ["Staging deploys of Heron need the flag --canary=12 and a green build on branch release-41."]
PRIVATE = ["Project Nightjar acquires Globex for 41 million; announce on March 3."]


def _set_audience(chunk_ids: list[int], audience: str) -> None:
    with session_scope(write=True) as s:
        versions = select(Chunk.document_version_id).where(Chunk.id.in_(chunk_ids))
        docs = select(DocumentVersion.document_id).where(DocumentVersion.id.in_(versions))
        s.execute(update(Document).where(Document.id.in_(docs)).values(audience=audience))


def _add(org: str, texts: list[str], audience: str) -> list[int]:
    ids = add_chunks(org, texts)
    if audience != "org":
        _set_audience(ids, audience)
    return ids


def _inputs(checkpoint_id: str) -> set[int]:
    with session_scope() as s:
        query = select(CheckpointInput.chunk_id).where(CheckpointInput.checkpoint_id == checkpoint_id)
        return set(s.scalars(query))


def _status(ids: list[int]) -> set[str]:
    with session_scope() as s:
        return set(s.scalars(select(Chunk.status).where(Chunk.id.in_(ids))))


def _group_head(org: str, audience: str) -> str | None:
    with session_scope() as s:
        row = s.get(AudienceHead, (get_org(s, org).id, audience))
        return row.head_checkpoint_id if row else None


def test_org_memory_never_trains_on_group_or_private_material(org):
    org_ids = _add(org, NIGHT1, "org")
    eng_ids = _add(org, ENG, "eng")
    private_ids = _add(org, PRIVATE, "slack-private:nightjar")

    night = consolidate_org(org, params=FAST_PARAMS)
    assert night.status == "promoted" and night.audience == "org" and night.n_new == len(org_ids)
    assert _inputs(night.checkpoint_id) == set(org_ids), "only org material is in the org memory"
    assert _status(eng_ids) == _status(private_ids) == {"pending"}
    with session_scope() as s:
        assert s.get(Checkpoint, night.checkpoint_id).audience == "org"
    assert consolidate_org(org, params=FAST_PARAMS).status == "nothing_to_do", (
        "group and private chunks never count as pending for the org"
    )

    group = consolidate_org(org, params={**FAST_PARAMS, "audience": "eng"})
    assert group.status == "promoted" and group.audience == "eng" and group.parent_id is None
    assert _inputs(group.checkpoint_id) == set(eng_ids)
    assert _status(eng_ids) == {"consumed"} and _status(private_ids) == {"pending"}
    with session_scope() as s:
        org_row = get_org(s, org)
        assert org_row.head_checkpoint_id == night.checkpoint_id, "a group night leaves the org head alone"
        assert s.get(Checkpoint, group.checkpoint_id).audience == "eng"
    assert _group_head(org, "eng") == group.checkpoint_id
    assert _status(org_ids) == {"consumed"}


def test_group_lineage_continues_replays_and_rolls_back_on_its_own(org):
    org_ids = _add(org, NIGHT1, "org")
    first_eng = _add(org, ENG, "eng")
    org_night = consolidate_org(org, params=FAST_PARAMS)
    night1 = consolidate_org(org, params={**FAST_PARAMS, "audience": "eng"})
    second_eng = _add(org, ENG2, "eng")
    _add(org, NIGHT2, "org")
    night2 = consolidate_org(org, params={**FAST_PARAMS, "audience": "eng"})
    assert night2.parent_id == night1.checkpoint_id, "the group continues from its own head"
    assert night2.n_new == 1 and night2.n_replay == 1
    assert _inputs(night2.checkpoint_id) == set(first_eng + second_eng), "replay comes from the group only"

    with session_scope(write=True) as s:
        change = rollback(s, org, night1.checkpoint_id, actor="test", reason="bad eng night")
        s.commit()
        assert change.as_dict()["audience"] == "eng"
    assert _group_head(org, "eng") == night1.checkpoint_id
    assert _status(second_eng) == {"pending"} and _status(first_eng) == {"consumed"}
    assert _status(org_ids) == {"consumed"}, "a group rollback leaves org chunks alone"
    with session_scope() as s:
        assert get_org(s, org).head_checkpoint_id == org_night.checkpoint_id


def test_commit_refuses_chunks_of_another_audience(org):
    private_ids = _add(org, PRIVATE, "slack-private:nightjar")
    with session_scope() as s, pytest.raises(ConflictError, match=r"another audience than 'org'"):
        commit_checkpoint(s, open_store(), CheckpointDraft(
            org=org, parent_id=None, objects={MEMORY: b"x"}, manifest={}, inputs=private_ids, metrics={},
            base_model="tiny-random", base_fingerprint="f" * 64, memory_kind="cms"))
    with session_scope() as s:
        assert s.scalar(select(Checkpoint.id)) is None, "nothing half-written"


def test_bad_audience_is_named_before_any_work(org):
    with pytest.raises(OrgmemError, match="invalid audience 'Eng Team'"):
        consolidate_org(org, params={**FAST_PARAMS, "audience": "Eng Team"})
