"""Serving in bf16: the base's weights are bf16, every memory kind still applies in fp32 and gives
nearly the fp32 function; the dtype choice follows the device and the CPU's bf16 support."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from orgmem.errors import OrgmemError
from orgmem.models import load_base
from orgmem.models.precision import cpu_has_native_bf16, serving_dtype
from orgmem.serving.engine import Finished, GenerationEngine, GenerationRequest
from orgmem.serving.routing import MemoryRouter
from orgmem.serving.sampling import SamplingParams
from tests.serving.test_serving_engine import perturbed_memory, row_memory


@pytest.fixture(scope="module")
def bf16_base():
    return load_base("tiny-random", device="cpu", dtype=torch.bfloat16)


def test_bf16_base_keeps_fingerprint_and_halves_weights(tiny_base, bf16_base):
    assert bf16_base.dtype == torch.bfloat16
    assert next(bf16_base.model.parameters()).dtype == torch.bfloat16
    assert bf16_base.fingerprint == tiny_base.fingerprint, "a memory trained in fp32 must load on it"


@pytest.mark.parametrize("spec", ["cms", "lora", "titans"])
def test_memory_on_a_bf16_base_matches_fp32_within_bf16_error(tiny_base, bf16_base, spec):
    data, ids, expected = perturbed_memory(tiny_base, spec, seed=2)
    memory = row_memory(bf16_base, data)
    assert all(p.dtype == torch.float32 for m in memory.modules for p in m.parameters()), \
        "memories keep their fp32 weights on a bf16 base"
    router = MemoryRouter(bf16_base.model)
    router.ensure_hooks(memory.paths)
    try:
        with torch.inference_mode():
            bare = bf16_base.model(input_ids=ids).logits.float()
            with router.route([memory]):
                routed = bf16_base.model(input_ids=ids).logits.float()
    finally:
        router.remove_hooks()
    with torch.inference_mode():
        bare32 = tiny_base.model(input_ids=ids).logits
    effect = (expected - bare32).abs().max()
    error = (routed - expected).abs().max()
    assert effect > 1e-3
    assert error < 0.1 * max(1.0, float(expected.abs().max())), f"bf16 error {error} too large"
    assert (routed - bare).abs().max() > 0.5 * effect, "the memory must still change the bf16 output"


def test_engine_decodes_on_a_bf16_base(bf16_base, tiny_base):
    data, _, _ = perturbed_memory(tiny_base, "cms", seed=3)
    memory = row_memory(bf16_base, data)
    done: list[Finished] = []
    engine = GenerationEngine(bf16_base, max_batch=4).start()
    try:
        for mem in (memory, None):
            engine.submit(GenerationRequest([5, 6, 7, 8], SamplingParams(max_tokens=6, min_tokens=6), mem,
                                            lambda e: done.append(e) if isinstance(e, Finished) else None))
        deadline = time.monotonic() + 30
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        engine.stop()
    assert len(done) == 2 and all(f.completion_tokens == 6 for f in done)


def test_serving_dtype_choice(tmp_path: Path):
    cpu = torch.device("cpu")
    assert serving_dtype("float32", cpu) == torch.float32
    assert serving_dtype("bfloat16", cpu) == torch.bfloat16
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert serving_dtype("auto", cpu) == expected
    with pytest.raises(OrgmemError, match="float16"):
        serving_dtype("float16", cpu)
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16.__wrapped__(flags) is True
    flags.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert cpu_has_native_bf16.__wrapped__(flags) is False
    assert cpu_has_native_bf16.__wrapped__(tmp_path / "missing") is False
