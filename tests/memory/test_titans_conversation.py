"""Conversation memory: bounded, expired, isolated per key; an earlier segment's write is read later."""

from __future__ import annotations

import pytest
import torch

from orgmem.errors import OrgmemError
from orgmem.memory.titans import TitansConfig
from orgmem.memory.titans.conversation import ConversationLimits, ConversationMemory
from orgmem.memory.titans.neural_memory import NeuralMemory
from orgmem.models.layers import embed, run_layers

pytestmark = pytest.mark.usefixtures("private_models_dir")
DIM = 24


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def memories() -> dict[str, NeuralMemory]:
    memory = NeuralMemory(DIM, heads=2, dim_head=8, chunk_size=4, seed=0)
    with torch.no_grad():
        memory.gate_scale.fill_(1.0)
        memory.to_gate.bias.fill_(3.0)  # open: a written memory changes the read
    return {"1": memory}


def segment(seed: int, n: int = 12) -> torch.Tensor:
    return torch.randn(1, n, DIM, generator=torch.Generator().manual_seed(seed))


def test_a_fact_written_in_an_earlier_segment_changes_a_later_read():
    store = ConversationMemory(memories())
    fact, later = segment(1), segment(2, 6)
    fresh = store.state_for("key-a", "conv-1").read("1", later)
    assert torch.count_nonzero(fresh) == 0  # an empty memory reads exactly zero: the base unchanged
    store.state_for("key-a", "conv-1").write("1", fact)
    after = store.state_for("key-a", "conv-1").read("1", later)
    assert after.abs().sum() > 0
    other = store.state_for("key-a", "conv-2").read("1", later)
    assert torch.count_nonzero(other) == 0  # another conversation saw none of it


def test_segments_written_one_by_one_equal_one_write():
    store = ConversationMemory(memories())
    whole = segment(3, 16)
    a = store.state_for("k", "split")
    a.forward("1", whole[:, :5])
    a.forward("1", whole[:, 5:])
    b = store.state_for("k", "whole")
    b.forward("1", whole)
    probe = segment(4, 3)
    torch.testing.assert_close(a.read("1", probe), b.read("1", probe))
    assert a.tokens_written == b.tokens_written == 16


def test_same_conversation_id_under_another_key_is_isolated():
    store = ConversationMemory(memories())
    store.state_for("key-a", "shared-id").write("1", segment(5))
    theirs = store.state_for("key-b", "shared-id")
    assert theirs is not store.state_for("key-a", "shared-id")
    assert torch.count_nonzero(theirs.read("1", segment(6, 4))) == 0
    assert store.conversations("key-a") == ["shared-id"] and store.conversations("key-b") == ["shared-id"]
    assert store.drop_key("key-a") == 1
    assert store.get("key-a", "shared-id") is None and store.get("key-b", "shared-id") is theirs


def test_least_recently_used_conversation_is_evicted_past_the_count_limit():
    store = ConversationMemory(memories(), ConversationLimits(max_conversations=2))
    store.state_for("k", "a")
    store.state_for("k", "b")
    store.state_for("k", "a")  # a is now the most recent
    store.state_for("k", "c")
    assert sorted(store.conversations("k")) == ["a", "c"] and store.evicted == 1


def test_byte_limit_evicts_oldest_states():
    probe = ConversationMemory(memories())
    one = probe.state_for("k", "x")
    one.write("1", segment(7))
    size = one.nbytes()
    store = ConversationMemory(memories(), ConversationLimits(max_bytes=int(size * 2.5)))
    for i in range(4):
        store.state_for("k", f"c{i}").write("1", segment(10 + i))
    assert store.nbytes() <= size * 2.5
    assert store.conversations("k") == ["c2", "c3"] and store.evicted == 2


def test_states_expire_after_the_ttl_since_last_use():
    clock = Clock()
    store = ConversationMemory(memories(), ConversationLimits(ttl_seconds=60), clock=clock)
    store.state_for("k", "old").write("1", segment(8))
    clock.now = 50
    store.state_for("k", "kept")
    clock.now = 100  # "old" last used at 0, "kept" at 50
    assert store.get("k", "old") is None and store.get("k", "kept") is not None
    assert store.expired == 1
    fresh = store.state_for("k", "old")
    assert fresh.tokens_written == 0 and torch.count_nonzero(fresh.read("1", segment(9, 3))) == 0


def test_unknown_layer_and_missing_ids_are_refused():
    store = ConversationMemory(memories())
    with pytest.raises(OrgmemError, match="no Titans layer '7'"):
        store.state_for("k", "c").read("7", segment(1))
    with pytest.raises(OrgmemError, match="conversation id"):
        store.state_for("k", "")


def test_on_a_base_an_earlier_segment_changes_the_read_of_a_later_one(base):
    cfg = TitansConfig(heads=2, dim_head=16, chunk_size=8, meta_init="none")
    store = ConversationMemory.for_base(base, cfg)
    layer = cfg.resolve_layers(base.num_layers)[0]
    memory = store.memories[str(layer)]
    with torch.no_grad():
        memory.gate_scale.fill_(1.0)

    def states(text: str) -> torch.Tensor:
        ids = torch.tensor([base.tokenizer(text)["input_ids"]])
        with torch.no_grad():
            return run_layers(base.model, embed(base.model, ids), 0, layer)

    told, asked = states("My locker code is 4417, remember it."), states("What is my locker code?")
    conv = store.state_for("key", "conv")
    before = conv.read(str(layer), asked)
    conv.forward(str(layer), told)
    assert not torch.allclose(conv.read(str(layer), asked), before)
