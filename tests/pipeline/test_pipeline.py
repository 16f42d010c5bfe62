"""The consolidation pipeline on the tiny base, SQLite and a local store: two nights, idempotent
retries, the gate keeping the served checkpoint, failures that commit nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orgmem.checkpoints import MEMORY, TRAIN_STATE, load_checkpoint_objects
from orgmem.db import session_scope
from orgmem.db.models import Checkpoint, Chunk, ServingEvent
from orgmem.errors import OrgmemError
from orgmem.jobs import JobCancelled
from orgmem.lineage import get_org
from orgmem.pipeline import LogReporter, consolidate_org
from orgmem.store import StoreUnavailableError, open_store
from orgmem.store.file import LocalFolderStore
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, NIGHT2, add_chunks


def _state(org_slug):
    with session_scope() as s:
        org = get_org(s, org_slug)
        cks = list(
            s.scalars(select(Checkpoint).where(Checkpoint.org_id == org.id).order_by(Checkpoint.created_at))
        )
        chunks = {c.id: c.status for c in s.scalars(select(Chunk).where(Chunk.org_id == org.id))}
        return (
            org.head_checkpoint_id,
            org.served_checkpoint_id,
            [(c.id, c.parent_id, c.status) for c in cks],
            chunks,
        )


def _objects(org_slug):
    return sorted(o.key for o in open_store().list(f"orgs/{org_slug}/checkpoints/"))


def test_two_nights_promote_and_continue(org):
    first_ids = add_chunks(org, NIGHT1)
    night1 = consolidate_org(org, params=FAST_PARAMS)
    assert night1.status == "promoted" and night1.created and night1.parent_id is None
    assert night1.n_new == 2 and night1.n_replay == 0
    head, served, cks, chunks = _state(org)
    assert head == served == night1.checkpoint_id
    assert all(chunks[i] == "consumed" for i in first_ids)
    with session_scope() as s:  # objects were stored and read back against their checksums
        blobs = load_checkpoint_objects(s, open_store(), night1.checkpoint_id, [MEMORY, TRAIN_STATE])
    assert blobs[MEMORY] and blobs[TRAIN_STATE]
    metrics = night1.metrics
    assert metrics["n_new_probes"] > 0 and metrics["new_nll_improvement"] is not None
    assert metrics["retention_nll_increase"] is None, "nothing earlier to retain on the first night"

    second_ids = add_chunks(org, NIGHT2)
    night2 = consolidate_org(org, params=FAST_PARAMS)
    assert night2.status == "promoted" and night2.parent_id == night1.checkpoint_id
    assert night2.n_new == 1 and night2.n_replay == 2, "earlier chunks are replayed"
    assert night2.metrics["engine"]["consolidations"] == 2, "the train state continued from night 1"
    assert night2.metrics["retention_nll_increase"] is not None
    head, _, cks, chunks = _state(org)
    assert head == night2.checkpoint_id and [c[1] for c in cks] == [None, night1.checkpoint_id]
    assert all(chunks[i] == "consumed" for i in first_ids + second_ids)
    assert consolidate_org(org, params=FAST_PARAMS).status == "nothing_to_do"


def test_gate_failure_keeps_serving_previous_and_data_pending(org):
    add_chunks(org, NIGHT1)
    night1 = consolidate_org(org, params=FAST_PARAMS)
    with session_scope(write=True) as s:
        get_org(s, org).gate_config = {"min_new_nll_improvement": 100.0}
    new_ids = add_chunks(org, NIGHT2)
    night2 = consolidate_org(org, params=FAST_PARAMS)
    assert night2.status == "rejected"
    assert any("new-material NLL improvement" in r and "FAILED" in r for r in night2.gate["reasons"])
    head, served, cks, chunks = _state(org)
    assert head == served == night1.checkpoint_id, "the org keeps serving night 1"
    assert cks[-1] == (night2.checkpoint_id, night1.checkpoint_id, "rejected")
    assert all(chunks[i] == "pending" for i in new_ids), "rejected material waits for the next night"
    with session_scope() as s:
        event = s.scalars(
            select(ServingEvent).where(ServingEvent.checkpoint_id == night2.checkpoint_id)
        ).one()
    assert event.action == "reject" and event.actor == "gate" and "FAILED" in event.reason
    again = consolidate_org(org, params=FAST_PARAMS)
    assert (again.checkpoint_id, again.status, again.created) == (night2.checkpoint_id, "rejected", False)


def test_retry_after_commit_finishes_without_training_again(org, monkeypatch):
    add_chunks(org, NIGHT1)
    import orgmem.pipeline.run as run

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed between commit and gate")

    monkeypatch.setattr(run, "apply_decision", crash)
    with pytest.raises(RuntimeError, match="between commit and gate"):
        consolidate_org(org, params=FAST_PARAMS)
    monkeypatch.undo()
    _, served, cks, _ = _state(org)
    assert served is None and [c[2] for c in cks] == ["candidate"]
    monkeypatch.setattr("orgmem.engine.consolidation.consolidate",
                        lambda *a, **k: pytest.fail("trained again"))
    retry = consolidate_org(org, params=FAST_PARAMS)
    assert retry.status == "promoted" and not retry.created and retry.checkpoint_id == cks[0][0]
    assert len(_state(org)[2]) == 1


class FlakyStore(LocalFolderStore):
    """A local store whose server goes away after ``ok_puts`` successful uploads."""

    def __init__(self, root, ok_puts: int) -> None:
        super().__init__(root)
        self.ok_puts = ok_puts

    def put(self, key, data):
        if self.ok_puts <= 0:
            raise StoreUnavailableError(f"object store {self.url} unreachable while writing {key!r}")
        self.ok_puts -= 1
        return super().put(key, data)


def test_store_down_during_upload_commits_nothing_and_retry_cleans_up(org, tmp_path):
    ids = add_chunks(org, NIGHT1)
    root = open_store().url.removeprefix("file://")
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        consolidate_org(org, params=FAST_PARAMS, store=FlakyStore(root, ok_puts=2))
    head, _, cks, chunks = _state(org)
    assert head is None and cks == [] and all(chunks[i] == "pending" for i in ids)
    assert len(_objects(org)) == 2, "two objects of the failed attempt were uploaded"
    retry = consolidate_org(org, params=FAST_PARAMS)
    assert retry.status == "promoted"
    objects = _objects(org)
    assert len(objects) == 3 and all(retry.checkpoint_id in key for key in objects), "no orphans left"


def test_cancel_stops_before_anything_is_committed(org):
    add_chunks(org, NIGHT1)

    class Cancelled(LogReporter):
        def check(self):
            raise JobCancelled("job jb_x was cancelled")

    with pytest.raises(JobCancelled):
        consolidate_org(org, params=FAST_PARAMS, ctx=Cancelled(org))
    assert _state(org)[2] == [] and _objects(org) == []


def test_bad_configuration_is_named_before_any_work(org):
    add_chunks(org, NIGHT1)
    with pytest.raises(OrgmemError, match=r"unknown field\(s\) \['epochz'\]"):
        consolidate_org(org, params={"engine": {"epochz": 1}})
    with session_scope(write=True) as s:
        get_org(s, org).gate_config = {"max_kl": "high"}
    with pytest.raises(OrgmemError, match="'max_kl' must be a number"):
        consolidate_org(org, params=FAST_PARAMS)
    assert _state(org)[2] == []


def test_training_reports_step_progress_to_the_job(org):
    """Progress moves through training step by step (throttled), ending with the last step."""
    add_chunks(org, NIGHT1)

    class Recording(LogReporter):
        def __init__(self, org_slug):
            super().__init__(org_slug)
            self.calls: list[tuple[float, str | None]] = []

        def progress(self, fraction, message=None):
            self.calls.append((fraction, message))

    ctx = Recording(org)
    consolidate_org(org, params=FAST_PARAMS, ctx=ctx)
    steps = [(f, m) for f, m in ctx.calls if m and m.startswith("training step")]
    assert steps, ctx.calls
    last_fraction, last_message = steps[-1]
    done, total = last_message.split()[2].split("/")
    assert done == total and last_fraction == pytest.approx(0.6)
    fractions = [f for f, _ in ctx.calls]
    assert fractions == sorted(fractions), "progress never goes backwards"


def test_training_progress_is_throttled():
    from orgmem.pipeline.run import training_progress

    calls = []

    class Ctx:
        def progress(self, fraction, message=None):
            calls.append((fraction, message))

    on_step = training_progress(Ctx(), start=0.1, end=0.5, every_s=3600)
    for i in range(1, 101):
        on_step(i, 100, {"ce": 1.5})
    assert [c[0] for c in calls] == [pytest.approx(0.104), pytest.approx(0.5)]
    assert calls[-1][1] == "training step 100/100 (loss 1.500)"
