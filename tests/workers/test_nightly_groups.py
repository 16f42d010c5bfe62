"""The nightly chain consolidates the org, then every group with pending chunks, one job after
another (each an ordinary consolidation job under the org's lease), each group once a night."""

from __future__ import annotations

from sqlalchemy import select

from orgmem.db import session_scope
from orgmem.db.models import Chunk, Job
from orgmem.ingest import add_source
from orgmem.lineage import get_org
from orgmem.lineage.audiences import pending_groups
from orgmem.ops.chain import CHAIN_KEY, next_group
from orgmem.ops.jobs import create_consolidation, create_sync, run_inline
from tests.pipeline.conftest import FAST_PARAMS
from tests.workers.test_enqueue import tiny  # noqa: F401  (fixture)

DOCS = {
    "handbook": ("org", "Heron listens on port 7415 and keeps its route cache in Redis database 3."),
    "eng-wiki": ("eng", "The eng on-call rotation hands over at 09:30 and the pager alias is eng-heron-7."),
    "legal-drive": ("legal", "Project Nightjar closes on March 3; the data room password rotates weekly."),
}


def _sources(org: str, root) -> None:
    with session_scope(write=True) as s:
        for name, (audience, text) in DOCS.items():
            folder = root / name
            folder.mkdir()
            (folder / "notes.md").write_text(f"# {name}\n\n{text}\n")
            config = {"path": str(folder)}
            add_source(s, get_org(s, org), "docs", name, config, audience=audience, actor="test")


def _consolidations(org: str) -> list[Job]:
    with session_scope() as s:
        query = select(Job).where(Job.org_id == get_org(s, org).id, Job.kind == "consolidate")
        jobs = list(s.scalars(query.order_by(Job.created_at, Job.id)))
        s.expunge_all()
        return jobs


def test_nightly_run_consolidates_the_org_then_each_pending_group(tiny, org, tmp_path, monkeypatch):  # noqa: F811
    _sources(org, tmp_path)
    monkeypatch.setenv("ORGMEM_PIPELINE_ENGINE", '{"epochs": 1, "max_steps": 2, "num_threads": 1}')
    monkeypatch.setenv("ORGMEM_PIPELINE_OPTIONS", '{"new_probes": 2, "old_probes": 2, "progress": false}')
    sync = create_sync(org, actor="scheduler", then_consolidate=True)
    assert run_inline(sync).status == "succeeded"

    jobs = _consolidations(org)
    audiences = [j.params.get("audience", "org") for j in jobs]
    assert audiences == ["org", "eng", "legal"], "org first, then the groups by name"
    assert jobs[0].params["after_sync"] == sync
    assert [j.params.get("after") for j in jobs[1:]] == [jobs[0].id, jobs[1].id], "one after another"
    assert [(j.status, j.result["status"]) for j in jobs] == [("succeeded", "promoted")] * 3
    assert [j.result["audience"] for j in jobs] == ["org", "eng", "legal"]
    org_ck = jobs[0].result["checkpoint_id"]
    for group in jobs[1:]:
        assert group.result["metrics"]["underlay"]["checkpoint_id"] == org_ck, "on tonight's org memory"
    with session_scope() as s:
        assert pending_groups(s, get_org(s, org)) == []
        assert set(s.scalars(select(Chunk.status))) == {"consumed"}

    again = create_sync(org, actor="scheduler", then_consolidate=True)
    assert run_inline(again).status == "succeeded"
    later = _consolidations(org)[3:]
    done = [(j.params.get("audience", "org"), j.result["status"]) for j in later]
    assert done == [("org", "nothing_to_do")], "no group job when no group has anything pending"


def test_each_group_once_a_night_and_only_in_a_nightly_chain(tiny, org, tmp_path):  # noqa: F811
    _sources(org, tmp_path)
    assert run_inline(create_sync(org, actor="test")).status == "succeeded"
    with session_scope() as s:
        assert pending_groups(s, get_org(s, org)) == ["eng", "legal"]
    manual = create_consolidation(org, actor="test", params=FAST_PARAMS)
    with session_scope(write=True) as s:
        job = s.get(Job, manual)
        assert next_group(s, job) is None, "a consolidation outside the nightly chain chains nothing"
        job.params = {**job.params, CHAIN_KEY: True}
        assert next_group(s, job) == {"audience": "eng", "after": manual, CHAIN_KEY: True}
        job.params = {**job.params, "audience": "eng"}
        assert next_group(s, job)["audience"] == "legal"
        job.params = {**job.params, "audience": "legal"}
        assert next_group(s, job) is None, "legal still pending (say, rejected) is not run again tonight"
