"""Equivalences the Titans memory must satisfy (tiny sizes, CPU, well under a second each)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.func import grad

from orgmem.memory.titans.memory_mlp import associative_grads, mlp_forward
from orgmem.memory.titans.neural_memory import MemoryState, NeuralMemory

DIM = 24


def make_memory(**kw) -> NeuralMemory:
    torch.manual_seed(0)
    opts = dict(heads=2, dim_head=8, chunk_size=4, seed=0) | kw
    mem = NeuralMemory(DIM, **opts)
    with torch.no_grad():  # open the gate and give the rates some data dependence
        mem.gate_scale.fill_(1.0)
        mem.to_rates.weight.normal_(0, 0.3)
        mem.to_gate.weight.normal_(0, 0.3)
        mem.center.normal_(0, 0.1)
    return mem


def hidden(batch: int, n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, n, DIM, generator=torch.Generator().manual_seed(seed))


def assert_states_equal(a: MemoryState, b: MemoryState, atol: float = 1e-6) -> None:
    ta, tb = a.to_tensors(), b.to_tensors()
    assert ta.keys() == tb.keys()
    for name in ta:
        assert ta[name].shape == tb[name].shape, name
        torch.testing.assert_close(ta[name], tb[name], atol=atol, rtol=0, msg=name)


@pytest.mark.parametrize("depth", [2, 3])
def test_closed_form_gradient_matches_autograd(depth):
    gen = torch.Generator().manual_seed(0)
    dims = [5] + [7] * (depth - 1) + [3]
    f64 = torch.float64
    shapes = zip(dims[:-1], dims[1:], strict=True)
    weights = [torch.randn(2, 3, i, o, generator=gen, dtype=f64) for i, o in shapes]
    k = torch.randn(2, 3, 6, 5, generator=gen, dtype=f64)
    v = torch.randn(2, 3, 6, 3, generator=gen, dtype=f64)
    tau = torch.rand(2, 3, 6, generator=gen, dtype=f64)

    def loss(ws, b, h):
        out = mlp_forward([w[b, h][None, None] for w in ws], k[b, h][None, None])[0, 0]
        return (tau[b, h][:, None] * (out - v[b, h]).pow(2)).sum()

    closed = associative_grads(weights, k, v, tau)
    for b in range(2):
        for h in range(3):
            auto = grad(loss)(weights, b, h)
            for g_closed, g_auto in zip(closed, auto, strict=True):
                torch.testing.assert_close(g_closed[b, h], g_auto[b, h], atol=1e-10, rtol=1e-10)


def test_one_call_equals_token_by_token():
    mem = make_memory()
    x = hidden(2, 19)
    y_all, s_all = mem(x)
    state, ys = None, []
    for t in range(x.shape[1]):
        y, state = mem(x[:, t: t + 1], state)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys, 1), y_all, atol=1e-6, rtol=0)
    assert_states_equal(state, s_all)
    assert s_all.pending == 19 % 4


def reference_write(mem: NeuralMemory, x: torch.Tensor) -> list[torch.Tensor]:
    """The update rule written plainly: autograd gradient per full chunk (step divided by the exact
    largest eigenvalue of the keys' Gram matrix), momentum, decay to W_0."""
    xn = mem.normalise(x)
    _, k, v, _ = mem.project(xn, mem.initial_state(x.shape[0]).tail)
    r = mem.rates(xn, None)
    w0 = mem.initial_weights(x.shape[0])
    weights, moms = list(w0), [torch.zeros_like(w) for w in w0]
    c = mem.chunk_size
    for s in range(0, x.shape[1] - c + 1, c):
        lr, eta, alpha, _ = r[:, :, s: s + c].unbind(-1)

        kc = k[:, :, s: s + c]
        spread = torch.linalg.eigvalsh(kc.transpose(-1, -2) @ kc)[..., -1].clamp(min=1.0)

        def chunk_loss(ws, kc=kc, s=s, lr=lr, spread=spread):
            err = mlp_forward(ws, kc) - v[:, :, s: s + c]
            return (lr[..., None] / spread[..., None, None] * err.pow(2)).sum()

        g = grad(chunk_loss)(weights)
        norm = sum(t.pow(2).sum(dim=(-1, -2)) for t in g).sqrt()[..., None, None]
        g = [t * (mem.max_grad_norm / norm).clamp(max=1.0) for t in g]
        e, a = eta.mean(-1)[..., None, None], alpha.mean(-1)[..., None, None]
        moms = [e * m - gi for m, gi in zip(moms, g, strict=True)]
        weights = [b0 + (1 - a) * (w - b0) + m for w, m, b0 in zip(weights, moms, w0, strict=True)]
    return weights


@pytest.mark.parametrize("opts", [{}, {"depth": 3, "conv_kernel": 1, "key_shift": False}])
def test_chunked_write_equals_sequential_reference(opts):
    mem = make_memory(**opts)
    x = hidden(2, 22, seed=3)
    with torch.no_grad():
        _, state = mem(x)
        expected = reference_write(mem, x)
    for got, want in zip(state.weights, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    pairs = zip(state.weights, mem.initial_weights(2), strict=True)
    assert any((w - w0).abs().max() > 1e-3 for w, w0 in pairs)


def test_writing_a_then_b_equals_writing_a_plus_b():
    mem = make_memory()
    a, b = hidden(1, 7, seed=4), hidden(1, 13, seed=5)
    y_ab, s_ab = mem(torch.cat([a, b], 1))
    y_a, s_a = mem(a)
    y_b, s_b = mem(b, s_a)
    torch.testing.assert_close(torch.cat([y_a, y_b], 1), y_ab, atol=1e-6, rtol=0)
    assert_states_equal(s_b, s_ab)


def test_save_load_gives_identical_outputs(tmp_path):
    mem = make_memory()
    _, state = mem(hidden(1, 10, seed=6))
    save_file(state.to_tensors(), str(tmp_path / "state.safetensors"))
    torch.save(mem.state_dict(), tmp_path / "meta.pt")

    fresh = NeuralMemory(DIM, heads=2, dim_head=8, chunk_size=4, seed=99)
    fresh.load_state_dict(torch.load(tmp_path / "meta.pt"))
    loaded = MemoryState.from_tensors(load_file(str(tmp_path / "state.safetensors")))
    probe = hidden(1, 9, seed=7)
    y1, s1 = mem(probe, state)
    y2, s2 = fresh(probe, loaded)
    assert torch.equal(y1, y2)
    assert_states_equal(s1, s2, atol=0)
    r1, _ = mem(probe, state, write=False)
    assert r1.abs().max() > 0


def test_state_with_missing_tensor_names_it():
    state = make_memory().initial_state(1).to_tensors()
    del state["pending_rates"]
    with pytest.raises(KeyError, match="pending_rates"):
        MemoryState.from_tensors(state)


def test_empty_memory_reads_zero_and_short_input_waits_for_its_chunk():
    mem = make_memory(chunk_size=16)
    x = hidden(1, 5)
    y, state = mem(x)
    assert torch.equal(y, torch.zeros_like(y))
    assert state.pending == 5
    for w, w0 in zip(state.weights, mem.initial_weights(1), strict=True):
        assert torch.equal(w, w0)
    y_empty, same = mem(x[:, :0], state)
    assert y_empty.shape == (1, 0, DIM) and same is state


def test_closed_gate_contributes_exactly_zero_after_writes():
    mem = make_memory()
    with torch.no_grad():
        mem.gate_scale.zero_()
    y, state = mem(hidden(1, 40))
    assert torch.equal(y, torch.zeros_like(y))
    assert state.weights[-1].abs().max() > 0


def test_padding_does_not_write():
    mem = make_memory()
    real = hidden(1, 8, seed=8)
    padded = torch.cat([real, hidden(1, 4, seed=9) * 50], 1)
    mask = torch.tensor([[1] * 8 + [0] * 4])
    _, s_real = mem(real)
    _, s_pad = mem(padded, mask=mask)
    for a, b in zip(s_real.weights, s_pad.weights, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_long_sequence_stays_finite_and_bounded():
    mem = make_memory(max_lr=0.95, chunk_size=8)
    with torch.no_grad():
        mem.to_rates.bias[4:].fill_(-20.0)  # no decay: the worst case for growth
    x = hidden(1, 4096, seed=10) * 1e3
    with torch.no_grad():
        y, state = mem(x)
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(w).all() for w in state.weights)
    assert max(w.abs().max().item() for w in state.weights) < 1e3


def test_writes_are_differentiable_for_meta_training():
    mem = make_memory()
    x = hidden(1, 12)
    _, state = mem(x[:, :8])
    y, _ = mem(x[:, 8:], state, write=False)
    y.pow(2).sum().backward()
    for name in ("to_qkv.weight", "to_rates.weight", "init_w.0", "gate_scale", "to_out.weight"):
        g = dict(mem.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


def test_bad_input_is_refused_with_a_clear_message():
    mem = make_memory()
    with pytest.raises(ValueError, match=r"\(batch, tokens, 24\).*\(3, 24\)"):
        mem(torch.zeros(3, DIM))
    with pytest.raises(ValueError, match="depth must be >= 2"):
        NeuralMemory(DIM, depth=1)
    with pytest.raises(ValueError, match="max_lr"):
        NeuralMemory(DIM, max_lr=1.5)
