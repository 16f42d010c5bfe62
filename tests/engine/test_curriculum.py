"""Active-recall curriculum: draws by loss, stops stored facts, caps exposures, is deterministic."""

from __future__ import annotations

import random

import torch

from orgmem.engine.config import ConsolidationConfig
from orgmem.engine.consolidation import consolidate
from orgmem.engine.curriculum import Curriculum, CurriculumConfig, night_facts
from tests.engine.samples import CMS, NIGHT1


def _plan(base, **kw) -> Curriculum:
    return Curriculum(base.tokenizer, night_facts(NIGHT1), [], CurriculumConfig(**kw), 1024, 384,
                      random.Random(0))


def test_facts_come_from_every_chunk(base):
    facts = night_facts(NIGHT1)
    texts = " ".join(a for f in facts for a in f.answers)
    assert "7415" in texts and "21" in texts and len(facts) >= 3


def test_a_fact_recalled_twice_in_new_phrasings_stops_being_drawn(base):
    plan = _plan(base, stored_hits=2, min_exposures=1, review_rate=0.0)
    first = plan.states[0]
    asked = []
    for loss in (0.01, 0.01):
        item = plan._item(first)
        asked.append(item.ids.tolist())
        plan.observe([(item, first)], [loss])
    assert asked[0] != asked[1]  # another phrasing each time
    assert first not in plan.active() and len(plan.active()) == len(plan.states) - 1
    assert all(st is not first for _, st in plan.next_step())


def test_exposure_cap_ends_the_night(base):
    plan = _plan(base, max_exposures=3, review_rate=0.0)
    for _ in range(100):
        if plan.done:
            break
        drawn = plan.next_step()
        plan.observe(drawn, [5.0] * len(drawn))
    assert plan.done and all(s.seen == 3 for s in plan.states)


def test_curriculum_consolidation_is_deterministic_and_reports_storage(base):
    cfg = ConsolidationConfig(memory=CMS, num_threads=1, tokens_per_step=1024, max_seq_len=384,
                              max_exposures=4, doc_epochs=1, curriculum=True)
    r1 = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    r2 = consolidate(base, None, NIGHT1, [], cfg, progress=False)
    assert r1.memory == r2.memory
    m = r1.metrics
    assert m["facts"] == len(night_facts(NIGHT1)) and 0 <= m["facts_stored"] <= m["facts"]
    assert m["items"]["fact"] > 0 and m["items"]["chat"] == 0
    assert torch.isfinite(torch.tensor(m["loss_curve"])).all()


def test_curriculum_off_is_the_fixed_recipe(base):
    cfg = ConsolidationConfig(memory=CMS, num_threads=1, tokens_per_step=160, max_seq_len=128, epochs=1)
    m = consolidate(base, None, NIGHT1, [], cfg, progress=False).metrics
    assert m["items"]["chat"] > 0 and m["items"]["fact"] == 0 and "facts" not in m
