"""The base reference is computed once per base fingerprint, cached on disk and reused."""

from __future__ import annotations

import pytest
import torch

from orgmem.errors import IntegrityError
from orgmem.eval import reference as reference_mod
from orgmem.eval.generic import bucketed_kl, summarise_topk
from orgmem.eval.reference import get_reference, load_reference, reference_path, save_reference


def test_save_load_round_trip(tmp_path, reference):
    path = tmp_path / "ref.safetensors"
    save_reference(reference, path)
    loaded = load_reference(path)
    assert loaded.key == reference.key and loaded.fingerprint == reference.fingerprint
    assert [r.ids for r in loaded.replies] == [r.ids for r in reference.replies]
    assert loaded.ppl == pytest.approx(reference.ppl)
    for a, b in zip(loaded.topk, reference.topk, strict=True):
        assert torch.equal(a.ids, b.ids) and torch.equal(a.logp, b.logp)


def test_cached_per_fingerprint_and_computed_once(tmp_path, tiny, monkeypatch):
    first = get_reference(tiny.model, tiny.tokenizer, tiny.fingerprint, cache_dir=tmp_path)
    assert reference_path(tiny.fingerprint, first.key, tmp_path).is_file()

    def boom(*args, **kwargs):
        raise AssertionError("reference recomputed although cached")

    monkeypatch.setattr(reference_mod, "compute_reference", boom)
    again = get_reference(tiny.model, tiny.tokenizer, tiny.fingerprint, cache_dir=tmp_path)
    assert again.key == first.key
    with pytest.raises(AssertionError, match="recomputed"):  # another base gets its own entry
        get_reference(tiny.model, tiny.tokenizer, "f" * 64, cache_dir=tmp_path)


def test_default_cache_lives_under_orgmem_home(tmp_path, tiny):
    ref = get_reference(tiny.model, tiny.tokenizer, tiny.fingerprint)
    folder = tmp_path / "orgmem-home" / "eval_cache" / tiny.fingerprint
    assert (folder / f"reference-{ref.key}.safetensors").is_file()


def test_damaged_cache_file_is_named_and_recomputed(tmp_path, tiny, reference):
    path = reference_path(tiny.fingerprint, reference.key, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(IntegrityError, match=str(path)):
        load_reference(path)
    ref = get_reference(tiny.model, tiny.tokenizer, tiny.fingerprint, cache_dir=tmp_path)
    assert ref.key == reference.key and load_reference(path).key == reference.key


def test_missing_fingerprint_is_refused(tiny):
    with pytest.raises(ValueError, match="fingerprint"):
        get_reference(tiny.model, tiny.tokenizer, "")


def test_bucketed_kl_is_exact_for_full_topk_and_a_lower_bound_otherwise():
    torch.manual_seed(0)
    p = torch.log_softmax(torch.randn(5, 50), -1)
    q = torch.log_softmax(torch.randn(5, 50), -1)
    exact = (p.exp() * (p - q)).sum(-1)
    assert torch.allclose(bucketed_kl(summarise_topk(p, 50), q), exact, atol=1e-5)
    coarse = bucketed_kl(summarise_topk(p, 5), q)
    assert torch.all(coarse <= exact + 1e-6) and torch.all(coarse > 0)
    assert torch.allclose(bucketed_kl(summarise_topk(p, 5), p), torch.zeros(5), atol=1e-6)
