"""The engine's parts on the tiny base: row adapters equal ``attach``, mixed-org batches equal solo runs,
the batch KV cache equals per-request caches, and bad memories are refused by name."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from transformers import DynamicCache

from orgmem.errors import IncompatibleBaseError, IntegrityError, OrgmemError
from orgmem.memory import attach, build_row_memory, load_memory, save_memory
from orgmem.serving.engine import Failed, Finished, GenerationEngine, GenerationRequest, TextDelta
from orgmem.serving.kvcache import BatchCache
from orgmem.serving.routing import MemoryRouter
from orgmem.serving.sampling import SamplingParams
from orgmem.store.base import sha256_hex


def perturbed_memory(base, spec: str, seed: int) -> tuple[bytes, torch.Tensor, torch.Tensor]:
    """A memory with random non-zero weights; returns (bytes, input ids, logits computed via attach)."""
    gen = torch.Generator().manual_seed(seed)
    with attach(base, spec) as handle:
        state = {k: v + 0.3 * torch.randn(v.shape, generator=gen)
                 for k, v in handle.memory_state_dict().items()}
        handle.load_memory_state_dict(state)
        handle.eval()
        ids = torch.randint(3, 250, (1, 9), generator=gen)
        with torch.no_grad():
            logits = handle(input_ids=ids).logits
        return save_memory(handle), ids, logits


def row_memory(base, data: bytes):
    return build_row_memory(base, data, sha256=sha256_hex(data), source="test memory")


@pytest.mark.parametrize("spec", ["cms", "lora", "titans", "cms+titans", "cms+lora"])
def test_row_adapter_equals_attached_memory_and_leaves_other_rows_alone(tiny_base, spec):
    data, ids, expected = perturbed_memory(tiny_base, spec, seed=1)
    memory = row_memory(tiny_base, data)
    router = MemoryRouter(tiny_base.model)
    router.ensure_hooks(memory.paths)
    try:
        batch = ids.repeat(3, 1)
        with torch.inference_mode():
            bare = tiny_base.model(input_ids=batch).logits
            with router.route([None, memory, None]):
                routed = tiny_base.model(input_ids=batch).logits
            after = tiny_base.model(input_ids=batch).logits  # outside route(): hooks do nothing
    finally:
        router.remove_hooks()
    assert (expected[0] - bare[0]).abs().max() > 1e-3, "the memory must change the output"
    torch.testing.assert_close(routed[1], expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(routed[0], bare[0], atol=0, rtol=0)
    torch.testing.assert_close(routed[2], bare[2], atol=0, rtol=0)
    torch.testing.assert_close(after, bare, atol=0, rtol=0)


def test_two_memories_in_one_batch_each_get_their_own(tiny_base):
    data_a, ids, logits_a = perturbed_memory(tiny_base, "cms", seed=2)
    data_b, _, _ = perturbed_memory(tiny_base, "cms", seed=3)
    with load_memory(tiny_base, data_b) as handle, torch.no_grad():
        logits_b = handle(input_ids=ids).logits
    a, b = row_memory(tiny_base, data_a), row_memory(tiny_base, data_b)
    router = MemoryRouter(tiny_base.model)
    router.ensure_hooks(a.paths)
    try:
        with torch.inference_mode(), router.route([b, a, b, a]):
            out = tiny_base.model(input_ids=ids.repeat(4, 1)).logits
    finally:
        router.remove_hooks()
    for row, ref in ((0, logits_b), (1, logits_a), (2, logits_b), (3, logits_a)):
        torch.testing.assert_close(out[row], ref[0], atol=1e-5, rtol=0)


def _solo_logits(model, prompt: torch.Tensor, steps: int) -> list[torch.Tensor]:
    cache, out = DynamicCache(), []
    with torch.inference_mode():
        logits = model(input_ids=prompt, cache=cache, use_cache=True).logits[0, -1]
        for _ in range(steps):
            out.append(logits)
            token = logits.argmax().view(1, 1)
            logits = model(input_ids=token, cache=cache, use_cache=True).logits[0, -1]
    return out


def test_batch_cache_with_joining_and_leaving_rows_equals_solo_decoding(tiny_base):
    model = tiny_base.model
    prompts = [torch.randint(3, 250, (1, n), generator=torch.Generator().manual_seed(n)) for n in (5, 11, 3)]
    solo = [_solo_logits(model, p, 8) for p in prompts]
    cache, rows, got, tokens = BatchCache(tiny_base.num_layers), [], {0: [], 1: [], 2: []}, []

    def join(i: int) -> None:
        tmp = DynamicCache()
        logits = model(input_ids=prompts[i], cache=tmp, use_cache=True).logits[0, -1]
        cache.add_rows([(layer.keys, layer.values) for layer in tmp.layers],
                       torch.ones((1, prompts[i].shape[1]), dtype=torch.long))
        rows.append(i)
        got[i].append(logits)
        tokens.append(int(logits.argmax()))

    with torch.inference_mode():
        join(0)
        join(1)
        for step in range(9):
            if step == 2:
                join(2)
            if step == 5:  # the longest row leaves; its columns are compacted away
                keep = [j for j, r in enumerate(rows) if r != 1]
                cache.keep_rows(keep)
                rows[:] = [rows[j] for j in keep]
                tokens[:] = [tokens[j] for j in keep]
            positions = cache.positions()
            mask = cache.extend_mask()
            ids = torch.tensor([[t] for t in tokens])
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                           use_cache=True).logits[:, -1]
            for j, r in enumerate(rows):
                got[r].append(logits[j])
            tokens[:] = logits.argmax(-1).tolist()
    assert cache.length == cache.mask.sum(1).max()  # padding-only columns were dropped
    for i in range(3):
        n = min(len(got[i]), len(solo[i]))
        assert n >= 5
        for a, b in zip(got[i][:n], solo[i][:n], strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _collect(engine: GenerationEngine, prompt: list[int], memory, max_tokens: int = 10, **params):
    done, box = threading.Event(), {"deltas": []}

    def on_event(event):
        if isinstance(event, TextDelta):
            box["deltas"].append(event.text)
        elif isinstance(event, Finished | Failed):
            box["end"] = event
            done.set()

    req = GenerationRequest(prompt_ids=prompt, memory=memory, on_event=on_event,
                            params=SamplingParams(max_tokens=max_tokens, temperature=0, **params))
    engine.submit(req)
    return req, done, box


def test_mixed_org_batch_decodes_each_row_as_if_alone(tiny_base):
    memories = [row_memory(tiny_base, perturbed_memory(tiny_base, "cms", seed=s)[0]) for s in (4, 5)]
    prompt = [40, 41, 42, 43, 44]
    engine = GenerationEngine(tiny_base, max_batch=8)
    # submitted before start: the first engine step prefills all six together in one forward
    jobs = [_collect(engine, prompt, [memories[0], memories[1], None][i % 3]) for i in range(6)]
    engine.start()
    try:
        for _, done, _ in jobs:
            assert done.wait(30)
        assert engine.stats.max_batch_seen == 6
        solo = []
        for memory in (memories[0], memories[1], None):
            _, done, box = _collect(engine, prompt, memory)
            assert done.wait(30)
            solo.append(box["end"].text)
    finally:
        engine.stop()
    assert len(set(solo)) == 3, "the two memories and the base must answer differently"
    for i, (_, _, box) in enumerate(jobs):
        assert box["end"].text == solo[i % 3]
        assert "".join(box["deltas"]) == box["end"].text
        assert box["end"].completion_tokens == 10 and box["end"].reason == "length"


def test_cancelled_request_leaves_the_batch(tiny_base):
    engine = GenerationEngine(tiny_base).start()
    try:
        req, done, box = _collect(engine, [5, 6, 7], None, max_tokens=100_000)
        other, other_done, other_box = _collect(engine, [5, 6, 7], None, max_tokens=5)
        assert other_done.wait(30)
        req.cancel()
        assert done.wait(30)
        assert box["end"].reason == "cancelled"
        assert other_box["end"].reason == "length"
        deadline = time.monotonic() + 10
        while engine.active and time.monotonic() < deadline:  # the row is dropped right after its event
            time.sleep(0.01)
        assert engine.active == 0
    finally:
        engine.stop()


def test_full_queue_is_refused(tiny_base):
    engine = GenerationEngine(tiny_base, max_queue=2)  # not started: requests stay queued
    _collect(engine, [5], None)
    _collect(engine, [5], None)
    with pytest.raises(OrgmemError, match="waiting"):
        _collect(engine, [5], None)
    engine.stop()


def test_memory_of_another_base_is_refused(tiny_base):
    data, _, _ = perturbed_memory(tiny_base, "cms", seed=6)
    other = type(tiny_base)(**{**vars(tiny_base), "fingerprint": "f" * 64, "extra": {}})
    with pytest.raises(IncompatibleBaseError, match="test memory"):
        build_row_memory(other, data, sha256=sha256_hex(data), source="test memory")


def test_corrupt_or_foreign_bytes_are_refused(tiny_base):
    data, _, _ = perturbed_memory(tiny_base, "cms", seed=7)
    with pytest.raises(IntegrityError, match="test memory"):
        build_row_memory(tiny_base, b"not a safetensors file", sha256="0", source="test memory")
    truncated = data[: len(data) - 100]
    with pytest.raises(IntegrityError, match="test memory"):
        build_row_memory(tiny_base, truncated, sha256="0", source="test memory")


def test_min_tokens_suppresses_end_of_turn_until_reached(tiny_base):
    engine = GenerationEngine(tiny_base).start()
    try:
        _, done, box = _collect(engine, [40, 41, 42], None, max_tokens=8)
        assert done.wait(30)
        first = tiny_base.tokenizer(box["end"].text, add_special_tokens=False)["input_ids"][0]
        engine.stop_ids = frozenset({first})  # make the greedy first token an end-of-turn token
        _, done, box = _collect(engine, [40, 41, 42], None, max_tokens=8)
        assert done.wait(30) and box["end"].completion_tokens == 0 and box["end"].reason == "stop"
        _, done, box = _collect(engine, [40, 41, 42], None, max_tokens=8, min_tokens=5)
        assert done.wait(30) and box["end"].completion_tokens >= 5
        ids = tiny_base.tokenizer(box["end"].text, add_special_tokens=False)["input_ids"]
        assert first not in ids[:5]
    finally:
        engine.stop()


class _OnlyTokens:
    """A ``TokenConstraint`` that allows a fixed sequence of token ids, then is finished."""

    def __init__(self, sequence: list[int]) -> None:
        self.sequence, self.taken = sequence, []

    def allowed(self, vocab_size: int) -> torch.Tensor | None:
        mask = torch.zeros(vocab_size, dtype=torch.bool)
        mask[self.sequence[len(self.taken)]] = True
        return mask

    def advance(self, token: int) -> None:
        self.taken.append(token)

    @property
    def finished(self) -> bool:
        return len(self.taken) == len(self.sequence)


def test_a_constrained_row_takes_only_allowed_tokens_and_stops_when_its_grammar_is_complete(tiny_base):
    engine = GenerationEngine(tiny_base, max_batch=4)
    sequence = [61, 62, 63]
    constraint = _OnlyTokens(sequence)
    free_req, free_done, free_box = _collect(engine, [40, 41, 42], None, max_tokens=6)
    req, done, box = _collect(engine, [40, 41, 42], None, max_tokens=6)
    req.constraint = constraint  # set before the engine starts: both rows share one batch
    engine.start()
    try:
        assert done.wait(30) and free_done.wait(30)
    finally:
        engine.stop()
    assert constraint.taken == sequence
    assert box["end"].reason == "stop" and box["end"].completion_tokens == 3
    assert box["end"].text == tiny_base.tokenizer.decode(sequence)
    assert free_box["end"].completion_tokens == 6, "the unconstrained row of the batch is not affected"
