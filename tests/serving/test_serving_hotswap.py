"""Hot swap: pin, unpin, rollback and promotion take effect without restart and fail nothing in flight.

acme's checkpoints answer the vault prefix with 1234 (acme-1) and 5555 (acme-2, the head); a
reply's text therefore proves which memory produced it, and its header says which checkpoint
the server claims answered. Every reply must agree with its header.
"""

from __future__ import annotations

import threading

import httpx

from tests.serving.engine_gate import HANG_GUARD_S, StreamPause
from tests.serving.support import FACTS, PREFIX


def _admin(dep, path: str, body: dict | None = None) -> dict:
    resp = httpx.post(f"{dep.url}/api/orgs/acme/{path}", json=body or {},
                      headers={"Authorization": f"Bearer {dep.keys['acme-admin']}"}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _ask(dep, key: str, org: str) -> tuple[str, str]:
    raw = dep.client(key).completions.with_raw_response.create(model=org, prompt=PREFIX, max_tokens=6,
                                                               temperature=0)
    return raw.headers["x-orgmem-checkpoint"], raw.parse().choices[0].text


def test_in_flight_stream_finishes_on_its_checkpoint_while_new_requests_see_the_pin(deployment, monkeypatch):
    ck1, ck2 = deployment.checkpoints["acme-1"], deployment.checkpoints["acme-2"]
    # the stream decodes only alongside another request until released: it is certainly still in
    # flight when the pin lands and the pinned request is answered, however fast the machine
    pause = StreamPause(deployment.state.engine, monkeypatch)
    stream = deployment.client("acme-employee").completions.with_streaming_response.create(
        model="acme", prompt=PREFIX, max_tokens=400, temperature=0, stream=True)
    with stream as response:
        assert response.headers["x-orgmem-checkpoint"] == ck2
        chunks = response.parse()
        first = next(iter(chunks))
        _admin(deployment, "pin", {"checkpoint_id": ck1, "reason": "test"})
        assert deployment.state.engine.active >= 1, "the long stream should still be decoding"
        header, text = _ask(deployment, "acme-employee", "acme")
        assert header == ck1 and text.startswith(" 1234")
        assert not pause.stream_done
        pause.release()
        rest = list(chunks)
    assert not pause.timed_out
    text = first.choices[0].text + "".join(c.choices[0].text for c in rest)
    assert text.startswith(" 5555")
    assert rest[-1].choices[0].finish_reason == "length"
    assert all(c.system_fingerprint == ck2 for c in rest)
    _admin(deployment, "unpin")
    assert _ask(deployment, "acme-employee", "acme")[0] == ck2


def test_swaps_under_load_never_fail_or_mix_orgs(deployment):
    ck1, ck2 = deployment.checkpoints["acme-1"], deployment.checkpoints["acme-2"]
    expected = {ck: FACTS[name] for name, ck in deployment.checkpoints.items()}
    seen: dict[str, set[str]] = {"acme": set(), "globex": set()}
    errors: list[str] = []
    stop = threading.Event()
    swaps_before = _swaps(deployment, "acme")
    # phase k = after the k-th swap returned; a reply is filed under the phase its request began in
    phase = [0]
    first_reply: dict[tuple[str, int], str] = {}  # (org, phase) -> header of its first reply
    progress = threading.Condition()

    def hammer(org: str) -> None:
        while not stop.is_set():
            began = phase[0]
            try:
                header, text = _ask(deployment, f"{org}-employee", org)
            except Exception as exc:  # any failure is a test failure, reported below
                errors.append(f"{org}: {exc!r}")
                continue
            seen[org].add(header)
            if not text.startswith(f" {expected[header]}"):
                errors.append(f"{org}: header {header} but text {text!r}")
            with progress:
                first_reply.setdefault((org, began), header)
                progress.notify_all()

    def answered_in(k: int) -> None:
        """Both orgs answered a request begun after swap k returned (the others keep hammering)."""
        with progress:
            done = progress.wait_for(lambda: all((org, k) in first_reply for org in seen), HANG_GUARD_S)
        assert done, f"no reply to a request begun in phase {k}: {sorted(first_reply)} errors {errors}"

    threads = [threading.Thread(target=hammer, args=(org,)) for org in ("acme", "acme", "globex", "globex")]
    for t in threads:
        t.start()
    steps = [("pin", {"checkpoint_id": ck1}, ck1), ("unpin", None, ck2),
             ("rollback", {"checkpoint_id": ck1}, ck1),
             (f"checkpoints/{ck2}/promote", {"reason": "restore head"}, ck2)]  # path, body, then serving
    try:
        answered_in(0)
        for k, (path, body, _) in enumerate(steps, start=1):
            _admin(deployment, path, body)
            with progress:
                phase[0] = k
            answered_in(k)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    # each swap had taken effect for every acme request begun after it returned
    assert [first_reply[("acme", k)] for k in range(5)] == [ck2] + [ck for _, _, ck in steps]
    assert {first_reply[("globex", k)] for k in range(5)} == {deployment.checkpoints["globex-1"]}
    assert seen["acme"] == {ck1, ck2}
    assert seen["globex"] == {deployment.checkpoints["globex-1"]}
    assert _swaps(deployment, "acme") - swaps_before >= 3
    assert _ask(deployment, "acme-employee", "acme")[0] == ck2


def test_pinning_back_reuses_the_loaded_memory(deployment):
    ck1 = deployment.checkpoints["acme-1"]
    _ask(deployment, "acme-admin", f"acme@{ck1}")  # loaded (or already cached) by content hash
    loads = deployment.state.cache.stats.misses
    _admin(deployment, "pin", {"checkpoint_id": ck1})
    assert _ask(deployment, "acme-employee", "acme")[0] == ck1
    _admin(deployment, "unpin")
    _ask(deployment, "acme-employee", "acme")
    assert deployment.state.cache.stats.misses == loads


def _swaps(dep, org: str) -> float:
    text = httpx.get(f"{dep.url}/metrics").text
    for line in text.splitlines():
        if line.startswith(f'orgmem_swaps_total{{org="{org}"}}'):
            return float(line.split()[-1])
    return 0.0
