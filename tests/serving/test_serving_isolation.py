"""Two orgs taught contradicting facts, served concurrently from one base: no answer leaks across."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.serving.engine_gate import held_admission
from tests.serving.support import FACTS, PREFIX


def test_concurrent_requests_of_two_orgs_are_batched_and_isolated(deployment):
    expected = {"acme": FACTS["acme-2"], "globex": FACTS["globex-1"]}
    start = threading.Barrier(16)

    def ask(i: int) -> tuple[str, str, str]:
        org = ("acme", "globex")[i % 2]
        client = deployment.client(f"{org}-employee")
        start.wait()
        raw = client.completions.with_raw_response.create(model=org, prompt=PREFIX, max_tokens=48,
                                                          temperature=0)
        return org, raw.headers["x-orgmem-checkpoint"], raw.parse().choices[0].text

    engine = deployment.state.engine
    steps_before, prefills_before = engine.stats.steps, engine.stats.prefills
    # all 16 are queued before the engine admits any, so batching is the engine's doing, not the clock's
    with held_admission(engine, deployment.state.base, until_waiting=16) as hold, \
            ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, range(16)))
    assert hold["held"] and not hold["timed_out"], "the 16 requests never all reached the engine's queue"
    for org, header, text in results:
        assert header == deployment.checkpoints["acme-2" if org == "acme" else "globex-1"]
        assert text.startswith(f" {expected[org]}"), (org, text)
        other = expected["globex" if org == "acme" else "acme"]
        assert other not in text
    # every org answers identically whatever shared its batch
    for org in ("acme", "globex"):
        assert len({text for o, _, text in results if o == org}) == 1
    stats = engine.stats
    # the hold's own request and then one prefill of all 16; every later step decodes them together
    assert stats.prefills - prefills_before == 2, "the 16 queued requests were not admitted together"
    assert stats.max_batch_seen == 16, "concurrent requests of both orgs should share forward passes"
    assert stats.steps - steps_before <= 47, "16 requests x 48 tokens take 1 prefill + 47 shared steps"
