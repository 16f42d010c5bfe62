"""The 500s schemathesis found (test_schemathesis_fuzz.py), and those found probing the values it
rarely draws (ids past 64 bits, durations past year 1), each pinned here so it stays fixed whatever
examples a later fuzz run happens to draw."""

from __future__ import annotations

import httpx
import pytest
import torch

from orgmem.db.types import row_id
from orgmem.errors import ApiError, OrgmemError
from orgmem.jobs import list_jobs
from orgmem.lineage.audit import parse_since
from orgmem.serving.generation import encode_prompt
from orgmem.serving.sampling import Sampler, SamplingParams


def test_an_empty_prompt_list_is_a_400_not_an_index_error():
    with pytest.raises(ApiError) as err:
        encode_prompt(None, [])
    assert err.value.status == 400 and err.value.param == "prompt"


@pytest.mark.parametrize("params", [SamplingParams(top_p=5e-324, seed=1),  # 0 in float32
                                    SamplingParams(temperature=1e-45, seed=1),  # logits / t overflow
                                    SamplingParams(temperature=1e-45, top_p=0.5, seed=1)])
def test_extreme_but_valid_sampling_parameters_pick_the_most_likely_token(params):
    logits = torch.tensor([0.1, 3.0, -2.0, 1.0])
    assert Sampler(params)(logits) == 1


def test_an_unknown_job_kind_or_status_is_an_orgmem_error():
    for kwargs in ({"kind": "nightly"}, {"status": "done-ish"}):
        with pytest.raises(OrgmemError, match="one of"):
            list_jobs(None, **kwargs)  # refused before any query


def test_row_ids_past_64_bits_or_of_other_digits_are_no_ids():
    assert row_id("42") == 42 and row_id(str(2**63 - 1)) == 2**63 - 1
    assert row_id(str(2**63)) is None and row_id("9" * 400) is None and row_id("²") is None


def test_a_duration_before_year_one_is_an_orgmem_error():
    with pytest.raises(OrgmemError, match="before the year 1"):
        parse_since("99999999d")


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("DELETE", "/api/orgs/acme/keys/" + "9" * 20, None, 404),
    ("DELETE", "/api/orgs/acme/keys/²", None, 404),
    ("POST", "/api/orgs/acme/forget", {"document": "9" * 30}, 404),
    ("GET", "/api/orgs/acme/audit?since=99999999d", None, 400),
])
def test_the_api_answers_these_with_a_4xx(deployment, method, path, body, status):
    resp = httpx.request(method, f"{deployment.url}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {deployment.keys['acme-admin']}"})
    assert resp.status_code == status, resp.text
