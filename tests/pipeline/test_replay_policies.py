"""Replay policies: what each chooses, that the draw is retry-stable, and that ``budget`` spends
half its slots on what the parent memory has forgotten; on the pipeline, the policy is applied."""

from __future__ import annotations

import pytest

from orgmem.errors import OrgmemError
from orgmem.pipeline import consolidate_org
from orgmem.pipeline.config import PipelineConfig
from orgmem.pipeline.replay import ReplayCandidate, by_age, choose_replay
from tests.pipeline.conftest import FAST_PARAMS, NIGHT1, NIGHT2, add_chunks

DIGEST = "ab" * 32
POOL = [ReplayCandidate(i, f"k{i}", f"text {i}") for i in range(1, 101)]


def test_none_and_full():
    assert choose_replay(POOL, "none", 10, DIGEST) == []
    assert choose_replay(POOL, "full", 10, DIGEST) == POOL


def test_sample_is_k_chunks_seeded_by_the_digest():
    first = choose_replay(POOL, "sample", 10, DIGEST)
    assert len(first) == 10 and len({c.id for c in first}) == 10
    assert choose_replay(POOL, "sample", 10, DIGEST) == first, "a retry replays the same chunks"
    assert choose_replay(POOL, "sample", 10, "cd" * 32) != first


def test_by_age_takes_one_chunk_from_each_slice_of_history():
    picked = by_age(POOL, 10, DIGEST)
    assert [(c.id - 1) // 10 for c in picked] == list(range(10)), "oldest to newest, one per tenth"
    assert by_age(POOL[:3], 10, DIGEST) == POOL[:3]


def test_budget_replays_the_most_forgotten_half():
    forgotten = {7, 42, 77, 93, 12}

    def scorer(texts):
        return [1.0 if int(t.split()[1]) in forgotten else -1.0 for t in texts]

    picked = choose_replay(POOL, "budget", 10, DIGEST, scorer=scorer, pool=10)
    ids = {c.id for c in picked}
    assert len(picked) == 10 and forgotten <= ids, "every forgotten chunk of the pool is replayed"
    assert [c.id for c in picked] == sorted(ids)
    assert choose_replay(POOL, "budget", 10, DIGEST, scorer=scorer, pool=10) == picked
    without = choose_replay(POOL, "budget", 10, DIGEST)
    assert [(c.id - 1) // 10 for c in without] == list(range(10)), "no scorer: all by age"


def test_unknown_policy_is_named():
    with pytest.raises(OrgmemError, match="replay_policy"):
        PipelineConfig(replay_policy="everything")


@pytest.mark.parametrize(("policy", "replayed"), [("none", 0), ("full", 2), ("budget", 2)])
def test_the_pipeline_applies_the_policy(org, policy, replayed):
    add_chunks(org, NIGHT1)
    assert consolidate_org(org, params=FAST_PARAMS).status == "promoted"
    add_chunks(org, NIGHT2)
    params = {**FAST_PARAMS, "pipeline": {**FAST_PARAMS["pipeline"], "replay_policy": policy,
                                          "replay_max_chunks": 4}}
    night2 = consolidate_org(org, params=params)
    assert night2.n_replay == replayed and night2.status == "promoted"
