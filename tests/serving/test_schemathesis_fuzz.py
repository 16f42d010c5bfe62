"""Schemathesis over every operation of the running app's OpenAPI spec, with the admin and employee
keys of both orgs: no 5xx, every response as the spec documents it (status, content type, body
schema, errors in OpenAI's shape included), and no answer to one org's key containing the other
org's identifiers (a marker planted in its source, documents, job, key and receipt, and its ids).

Bounded and deterministic: ``FUZZ_EXAMPLES`` positive and ``FUZZ_NEGATIVE`` schema-violating
examples per operation (hypothesis derandomised, no shrinking), sent to the real uvicorn server of
the serving tests. The count of requests sent is printed as ``schemathesis: N requests over M
operations`` (past pytest's capture, so the CI log shows it) and recorded in the junit properties.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from orgmem.config import get_settings
from orgmem.db.models import ApiKey
from orgmem.db.session import session_scope
from tests.serving.planted import Planted, plant

FUZZ_EXAMPLES = int(os.environ.get("ORGMEM_FUZZ_EXAMPLES", "25"))
FUZZ_NEGATIVE = int(os.environ.get("ORGMEM_FUZZ_NEGATIVE", "8"))
CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance")
KEYS = ("acme-admin", "acme-employee", "globex-admin", "globex-employee")
OTHER = {"acme": "globex", "globex": "acme"}
MAX_TOKENS = 4  # a fuzzed completion of the own org's model decodes at most this many tokens


@dataclass
class FuzzRun:
    """What the run sent and what it found (failures are collected, so one run reports them all)."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def planted(deployment) -> dict[str, Planted]:
    """Both orgs' data, each with its own marker."""
    return {"acme": plant(deployment, "acme", "zq7acmeplant", deployment.checkpoints["acme-2"]),
            "globex": plant(deployment, "globex", "zq7globexplant", deployment.checkpoints["globex-1"])}


@pytest.fixture
def configured(deployment, monkeypatch) -> None:
    """The job and schedule routes read the configured settings (ORGMEM_*, as the CLI does): this
    deployment's (set per test: the suite's autouse fixture gives every test its own home)."""
    for name, value in (("ORGMEM_HOME", str(deployment.root)),
                        ("ORGMEM_DATABASE_URL", deployment.settings.database_url),
                        ("ORGMEM_STORE_URL", deployment.settings.store_url)):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def _key_ids(dep) -> set[str]:
    """Ids of every key of the deployment: a fuzzed DELETE /keys/{ref} must not revoke the fuzzer's."""
    with session_scope(dep.settings.database_url) as s:
        return {str(i) for i in s.query(ApiKey.id)}


def _aim(case: Any, org: str, own: bool, protected: set[str]) -> None:
    """Point a generated case at the key's org (mostly) or the other one, keep completions short,
    and never let it revoke the keys the run uses."""
    target = org if own else OTHER[org]
    if case.path_parameters and "org" in case.path_parameters:
        case.path_parameters["org"] = target
    if case.path_parameters and str(case.path_parameters.get("ref", "")).strip().lstrip("0") in protected:
        case.path_parameters["ref"] = "999999"
    if isinstance(case.body, dict) and case.operation.path.startswith("/v1/"):
        if own:
            case.body["model"] = org
        for name in ("max_tokens", "max_completion_tokens"):
            if isinstance(case.body.get(name), int) and not isinstance(case.body[name], bool):
                case.body[name] = max(1, min(case.body[name], MAX_TOKENS))
        if "max_tokens" not in case.body:
            case.body["max_tokens"] = MAX_TOKENS


def _leaks(text: str, other: Planted, other_checkpoints: list[str]) -> list[str]:
    return [ident for ident in (*other.identifiers(), *other_checkpoints) if ident in text]


def _fuzz(operation, mode: GenerationMode, examples: int, send) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), key=st.sampled_from(KEYS),
           own=st.sampled_from((True, True, True, False)))
    def run(case, key: str, own: bool) -> None:
        send(case, key, own)

    try:
        run()
    except Unsatisfiable:  # nothing of the operation can violate its schema (no parameters, no body)
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_schemathesis_over_every_operation(deployment, planted, configured, record_property, capsys):
    load_all_checks()
    checks = [CHECKS.get_one(name) for name in CHECK_NAMES]
    schema = schemathesis.openapi.from_dict(deployment.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    protected = _key_ids(deployment)
    checkpoints = {org: [ck for name, ck in deployment.checkpoints.items() if name.startswith(org)]
                   for org in OTHER}
    run = FuzzRun()
    session = requests.Session()

    def send(case, key: str, own: bool) -> None:
        org = key.split("-")[0]
        _aim(case, org, own, protected)
        headers = {"Authorization": f"Bearer {deployment.keys[key]}"}
        response = case.call(base_url=deployment.url, session=session, headers=headers, timeout=60)
        run.requests += 1
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        where = f"{case.operation.label} as {key}"
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup: collected, the run goes on
            run.failures.append(f"{where}: {exc}")
        text = response.content.decode("utf-8", "replace")
        leaked = _leaks(text, planted[OTHER[org]], checkpoints[OTHER[org]])
        if leaked:
            run.failures.append(f"{where}: answer contains the other org's {leaked}")

    for operation in operations:
        _fuzz(operation, GenerationMode.POSITIVE, FUZZ_EXAMPLES, send)
        if FUZZ_NEGATIVE:
            _fuzz(operation, GenerationMode.NEGATIVE, FUZZ_NEGATIVE, send)
    line = f"schemathesis: {run.requests} requests over {len(operations)} operations, statuses {run.statuses}"
    with capsys.disabled():  # past pytest's capture: the CI log shows how much was sent
        print(f"\n{line}")
    record_property("schemathesis_requests", run.requests)
    assert run.requests >= len(operations) * FUZZ_EXAMPLES // 2, line
    assert not run.failures, "\n\n".join(run.failures[:10]) + f"\n\n({len(run.failures)} findings) {line}"
