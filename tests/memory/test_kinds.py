"""Every memory kind through one battery: exact base function at attach, disabled/detach restore
the base, save → load identical outputs, foreign base refused, corrupt blobs refused."""

from __future__ import annotations

import pytest
import torch

from orgmem.errors import ConflictError, IncompatibleBaseError, IntegrityError
from orgmem.memory import attach, load_memory, load_memory_into, read_metadata, save_memory
from orgmem.models import load_base
from orgmem.models.fingerprint import model_fingerprint
from orgmem.models.loader import BaseModel
from orgmem.models.tiny import build_tiny_model, build_tiny_tokenizer

# The shared table every kind joins (peft's test_custom_models idea): add a spec, get the battery.
MEMORY_SPECS = ["cms", "lora", "cms+lora"]


@pytest.fixture(scope="module")
def base():
    return load_base("tiny-random")


@pytest.fixture
def ids():
    g = torch.Generator().manual_seed(7)
    return torch.randint(3, 512, (3, 17), generator=g)


def _perturb(handle, scale: float = 0.05) -> None:
    """Stand-in for training: move every trainable memory weight (deterministically)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for group in handle.param_groups():
            for p in group.params:
                p.add_(torch.randn(p.shape, generator=g) * scale)


@pytest.mark.parametrize("spec", MEMORY_SPECS)
def test_attach_preserves_base_function_exactly(base, ids, spec):
    ref = base.model(ids).logits
    with attach(base, spec) as handle:
        assert handle.num_trainable() > 0
        assert (handle(ids).logits - ref).abs().max().item() <= 1e-6
        assert all(not p.requires_grad for n, p in base.model.named_parameters() if "lora_" not in n)


@pytest.mark.parametrize("spec", MEMORY_SPECS)
def test_memory_changes_output_disabled_and_detach_restore_base(base, ids, spec):
    ref = base.model(ids).logits
    handle = attach(base, spec)
    _perturb(handle)
    assert (handle(ids).logits - ref).abs().max().item() > 1e-3
    with handle.disabled():
        assert torch.equal(handle(ids).logits, ref)
    assert (handle(ids).logits - ref).abs().max().item() > 1e-3  # re-enabled after the block
    handle.detach()
    assert torch.equal(base.model(ids).logits, ref)


@pytest.mark.parametrize("spec", MEMORY_SPECS)
def test_save_load_gives_identical_outputs_and_only_memory_weights(base, ids, spec):
    handle = attach(base, spec)
    _perturb(handle)
    expected = handle(ids).logits
    data = save_memory(handle)
    meta = read_metadata(data)
    assert meta["kind"] == spec and meta["base_fingerprint"] == base.fingerprint
    base_params = sum(p.numel() for n, p in base.model.named_parameters() if "lora_" not in n)
    memory_params = sum(v.numel() for v in handle.memory_state_dict().values())
    assert len(data) < 4 * base_params * 0.5  # smaller than the base: no base weights inside
    assert len(data) < 4 * memory_params + 64_000  # the memory's own tensors plus the header
    handle.detach()
    with load_memory(base, data) as loaded:
        assert loaded.config == handle.config
        assert torch.equal(loaded(ids).logits, expected)
        for key, value in handle.memory_state_dict().items():
            assert torch.equal(loaded.memory_state_dict()[key], value)


@pytest.mark.parametrize("spec", MEMORY_SPECS)
def test_foreign_base_is_refused_naming_both(base, spec):
    with attach(base, spec) as handle:
        data = save_memory(handle)
    other_model = build_tiny_model(seed=5)
    other = BaseModel("other-tiny", other_model, build_tiny_tokenizer(), model_fingerprint(other_model),
                      torch.device("cpu"), torch.float32)
    with pytest.raises(IncompatibleBaseError) as err:
        load_memory(other, data, source="orgs/acme/checkpoints/ck1/memory.safetensors")
    msg = str(err.value)
    assert "ck1" in msg and base.fingerprint[:16] in msg and other.fingerprint[:16] in msg
    assert "tiny-random" in msg and "other-tiny" in msg


def test_corrupt_or_foreign_blobs_are_integrity_errors(base):
    with attach(base, "cms") as handle:
        data = save_memory(handle)
    with pytest.raises(IntegrityError, match="ck9"):
        load_memory(base, b"garbage", source="ck9")
    with pytest.raises(IntegrityError, match="not an orgmem memory"):
        from safetensors.torch import save

        load_memory(base, save({"x": torch.zeros(2)}))
    truncated = data[: len(data) // 2]
    with pytest.raises(IntegrityError):
        load_memory(base, truncated)
    assert base.extra.get("attached_memory") is None or not base.extra["attached_memory"].attached


def test_second_attach_on_same_base_is_refused(base):
    with attach(base, "cms"):
        with pytest.raises(ConflictError, match="tiny-random"):
            attach(base, "lora")
    attach(base, "lora").detach()  # fine once the first is gone


def test_hot_swap_into_attached_handle(base, ids):
    with attach(base, "cms") as handle:
        _perturb(handle)
        first, first_out = save_memory(handle), handle(ids).logits
        _perturb(handle)
        assert not torch.equal(handle(ids).logits, first_out)
        load_memory_into(handle, first)
        assert torch.equal(handle(ids).logits, first_out)
    with attach(base, "lora") as other, pytest.raises(IntegrityError, match="config differs"):
        load_memory_into(other, first)


@pytest.mark.slow
def test_smollm2_cms_attach_is_exact():
    smol = load_base("smollm2-135m-instruct", device="cpu")
    ids = torch.randint(0, 49152, (1, 12), generator=torch.Generator().manual_seed(0))
    ref = smol.model(ids).logits
    with attach(smol, "cms") as handle:
        assert handle.components[0].layers == list(range(22, 30))
        assert (handle(ids).logits - ref).abs().max().item() <= 1e-6
