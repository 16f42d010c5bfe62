"""A checkpoint's metrics in named sections, and the flat objects older checkpoints stored."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from orgmem.checkpoints import MEMORY, CheckpointDraft, CheckpointMetrics, commit_checkpoint
from orgmem.db.models import Checkpoint
from orgmem.governance.record import checkpoint_ruleset
from orgmem.lineage import create_org
from orgmem.store.base import ObjectStore
from tests.lineage_factories import add_chunks, record

#: What the pipeline stored for an org's checkpoint before the sections were named.
OLD_PIPELINE = {
    "new_nll_improvement": 0.42,
    "kl": 0.01,
    "eval_seconds": 1.5,
    "secret_leak_details": [],
    "engine": {"steps": 8, "loss_first": 3.1, "loss_last": 2.4, "procs": 1},
    "gate": {"passed": True, "reasons": [], "checks": []},
    "governance": {"ruleset_version": "r1", "redactions": {}, "redactions_total": 0},
}


def test_an_old_flat_object_reads_into_sections_and_back() -> None:
    metrics = CheckpointMetrics.from_json(OLD_PIPELINE)
    assert metrics.evaluation == {"new_nll_improvement": 0.42, "kl": 0.01, "eval_seconds": 1.5,
                                  "secret_leak_details": []}  # fmt: skip
    assert metrics.engine == OLD_PIPELINE["engine"] and metrics.gate == OLD_PIPELINE["gate"]
    assert metrics.governance == OLD_PIPELINE["governance"] and metrics.underlay is None
    assert metrics.to_json() == OLD_PIPELINE


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        {"recall": 0.5},  # a hand-made checkpoint: numbers only, no section
        {"new_cloze_recall": 0.2, "engine": {"steps": 1}},  # made before gate and governance were stored
        {"gate": None, "engine": "n/a"},  # a section name whose value is no object: kept as it was
    ],
)
def test_any_stored_object_round_trips(stored) -> None:
    assert CheckpointMetrics.from_json(stored).to_json() == (stored or {})


def test_a_section_name_that_is_no_object_stays_among_the_numbers() -> None:
    metrics = CheckpointMetrics.from_json({"gate": None, "kl": 0.1})
    assert metrics.gate is None and metrics.evaluation == {"gate": None, "kl": 0.1}


def test_unset_sections_are_not_stored_and_numbers_stay_flat() -> None:
    stored = CheckpointMetrics(evaluation={"kl": 0.1}, gate={"passed": False}).to_json()
    assert stored == {"kl": 0.1, "gate": {"passed": False}}


def test_an_evaluation_key_may_not_shadow_a_section() -> None:
    with pytest.raises(ValueError, match=r"\['gate'\]"):
        CheckpointMetrics(evaluation={"gate": 1}, gate={"passed": True})


def test_commit_stores_the_sections_where_readers_look(session: Session, store: ObjectStore) -> None:
    org = create_org(session, "acme", "Acme", actor="test")
    session.commit()
    chunk = add_chunks(session, org, ["alpha"])[0]
    metrics = CheckpointMetrics(
        evaluation={"new_cloze_recall": 0.3},
        engine={"steps": 2},
        gate={"passed": True, "reasons": [], "checks": []},
        governance={"ruleset_version": "r9"},
    )
    draft = CheckpointDraft(org=org, parent_id=None, objects={MEMORY: b"m"}, inputs=[chunk.id],
                            metrics=metrics, base_model="b", base_fingerprint="f", memory_kind="cms")
    ck = commit_checkpoint(session, store, draft).checkpoint
    stored = session.get(Checkpoint, ck.id)
    assert stored.metrics["new_cloze_recall"] == 0.3, "the console's charts and the gate read it flat"
    assert checkpoint_ruleset(stored) == "r9", "governance reads its stored key"
    assert CheckpointMetrics.from_json(stored.metrics) == metrics


def test_a_plain_dict_is_stored_as_given(session: Session, store: ObjectStore) -> None:
    org = create_org(session, "acme", "Acme", actor="test")
    session.commit()
    ck = record(session, store, org, None, add_chunks(session, org, ["beta"]), metrics={"recall": 0.5})
    assert session.get(Checkpoint, ck.id).metrics == {"recall": 0.5}
