"""Night-shaped episodes, the curriculum, the generic-text term, and a night written in one pass."""

from __future__ import annotations

import random
import re

import pytest
import torch

from orgmem.errors import OrgmemError
from orgmem.memory import attach
from orgmem.memory.titans import TitansConfig
from orgmem.memory.titans.bank import build_night_bank, tokenize_night
from orgmem.memory.titans.generic import build_generic
from orgmem.memory.titans.meta_train import (
    LossWeights,
    MetaTrainConfig,
    _prepare,
    episode_losses,
    meta_train,
)
from orgmem.memory.titans.night_episodes import NightShape, make_night_episode
from orgmem.memory.titans.write_pass import night_windows, write_night

pytestmark = pytest.mark.usefixtures("private_models_dir")
TITANS = TitansConfig(heads=2, dim_head=16, chunk_size=8)
NIGHT = MetaTrainConfig(batch_size=2, bank_size=4, bank_refresh=2, eval_episodes=3, checkpoint_every=2,
                        queries=2, curriculum_tokens=(96, 256), curriculum_steps=(3,),
                        curriculum_batch=(3, 2), window_tokens=48, generic_items=4, lr=3e-3)


def test_a_night_mixes_forms_spreads_facts_and_asks_the_later_value(base):
    rng = random.Random(0)
    episode = make_night_episode(rng, base.tokenizer, NightShape(tokens=3000, facts_per_k=4, update_share=0.5,
                                                                 queries=6, chat_prob=0.0))
    n_tokens = len(base.tokenizer(episode.write)["input_ids"])
    assert n_tokens >= 3000
    assert len(episode.facts) == 12 and len(episode.updated) == 6
    first_lines = {d.splitlines()[0] for d in episode.documents}
    assert any(line.startswith('"""') for line in first_lines)  # code
    assert any(line.startswith("# ") for line in first_lines)  # docs
    assert any(re.match(r"#\w+ — ", line) for line in first_lines)  # chat
    assert "def " in episode.write and re.search(r"\[\d\d:\d\d\] \w+: ", episode.write)
    answers = {text.strip() for text, is_answer in episode.query if is_answer}
    finals = {f.answer for f in episode.facts}
    assert answers <= finals
    # a changed fact: its first value is stated in an earlier document than its final value, and the
    # final value is the one asked for
    changed = [f for f in episode.facts if f.question in episode.updated]
    assert [f.question for f in episode.earlier] == [f.question for f in changed]
    for old, new in zip(episode.earlier, changed, strict=True):
        assert old.answer != new.answer
        where = {f: next(i for i, d in enumerate(episode.documents) if f.statement in d) for f in (old, new)}
        assert where[old] < where[new]
    asked = {episode.query[i][0]: episode.query[i + 1][0].strip() for i in range(0, len(episode.query), 3)}
    asked_changed = [new for new in changed if new.cloze in asked]
    assert asked_changed and all(asked[new.cloze] == new.answer for new in asked_changed)


def test_night_windows_are_separate_contexts_in_order(base):
    episode = make_night_episode(random.Random(1), base.tokenizer, NightShape(tokens=300))
    ids, mask, query, flags = tokenize_night(base.tokenizer, episode, window=64)
    assert len(ids) % 64 == 0 and len(ids) == len(mask)
    body = base.tokenizer(episode.write, add_special_tokens=False)["input_ids"]
    assert [t for t, m in zip(ids, mask, strict=True) if m] == body  # no prefix on this tokenizer
    assert any(flags) and len(query) == len(flags)
    bank = build_night_bank(base, 3, seed=5, size=3, shape=NightShape(tokens=150), window=64)
    assert bank.write_hidden.shape[:2] == bank.write_ids.shape and bank.write_ids.shape[1] % 64 == 0
    batch = bank.batch(torch.tensor([0, 2]))
    assert batch.write_ids.shape[1] % 64 == 0 and [s.stop - s.start for s in batch.windows()][0] == 64


def test_curriculum_stages_and_their_batches():
    cfg = MetaTrainConfig(curriculum_tokens=(256, 1024, 4096), curriculum_steps=(10, 20),
                          curriculum_batch=(8, 4, 2))
    assert [cfg.stage(s) for s in (0, 9, 10, 29, 30, 10_000)] == [0, 0, 1, 1, 2, 2]
    assert [cfg.batch_for(s) for s in range(3)] == [8, 4, 2] and cfg.stage_start(2) == 30
    with pytest.raises(ValueError, match="2 curriculum_steps"):
        MetaTrainConfig(curriculum_tokens=(1, 2, 3), curriculum_steps=(5,))


def test_checkpointed_writes_give_the_same_loss_and_gradients(base):
    kind = _prepare(base, TITANS)
    try:
        bank = build_night_bank(base, kind.layers[0], seed=2, size=3, shape=NightShape(tokens=120), window=40)
        with torch.no_grad():
            for memory in kind.layer_memories.values():
                memory.gate_scale.fill_(1.0)
        idx = torch.tensor([0, 1, 2])
        grads = []
        for checkpointed in (False, True):
            loss, _ = episode_losses(kind, base.model, bank, idx, LossWeights(generic=0.0),
                                     checkpoint_writes=checkpointed)
            params = kind.meta_parameters()
            for p in params:
                p.grad = None
            loss.backward()
            grads.append((loss.item(), [p.grad.clone() if p.grad is not None else None for p in params]))
        assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
        for a, b in zip(grads[0][1], grads[1][1], strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert any(g is not None and g.abs().sum() > 0 for g in grads[1][1])
    finally:
        kind.detach()


def test_curriculum_meta_training_lowers_the_loss_logs_generic_kl_and_resumes(base, tmp_path):
    straight = meta_train(base, 6, titans=TITANS, config=NIGHT, progress=False, out_dir=tmp_path / "a")
    stages = [h["stage"] for h in straight.history]
    assert stages == [0, 0, 0, 1, 1, 1]
    for h in straight.history:
        assert {"kl_generic", "gate_generic", "gate_query", "gap", "loss"} <= h.keys()
    assert "kl_generic" in straight.before and "kl_generic" in straight.after
    # the same episodes scored before and after: the outer loss went down
    assert straight.after["loss"] < straight.before["loss"]
    meta_train(base, 4, titans=TITANS, config=NIGHT, progress=False, out_dir=tmp_path / "b")
    resumed = meta_train(base, 6, titans=TITANS, config=NIGHT, progress=False, out_dir=tmp_path / "b",
                         resume=True)
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert resumed.after == straight.after


def test_a_night_is_written_in_one_pass_without_gradients(base):
    chunks = ["Fenvin listens on port 6225. " * 8, "The routing team is led by Ines Costa. " * 6, "ok"]
    rows = night_windows(base.tokenizer, chunks, window=32)
    assert all(len(r) <= 32 for r in rows)
    with attach(base, "cms+titans") as handle:
        titans = handle.components[1]
        cms = handle.components[0]
        empty = [w.clone() for w in titans.states[str(titans.layers[0])].weights]
        cms_before = {k: v.clone() for k, v in cms.memory_state_dict().items()}
        stats = write_night(base, handle, chunks, window=32, batch=2)
        after = titans.states[str(titans.layers[0])]
        assert stats["tokens"] == sum(len(r) for r in rows) and stats["windows"] == len(rows)
        assert not torch.equal(after.weights[-1], empty[-1])  # the memory now holds the night
        assert after.pending == 0  # flushed: the night's last tokens are written too
        assert all(not w.requires_grad for w in after.weights)
        assert all(torch.equal(v, cms_before[k]) for k, v in cms.memory_state_dict().items())
        assert cms.enabled and not titans.training  # restored: read-only, every component on
    with attach(base, "cms") as handle, pytest.raises(OrgmemError, match="no titans component"):
        write_night(base, handle, chunks)


def test_generic_texts_are_the_bases_own_and_a_closed_gate_costs_no_kl(base):
    kind = _prepare(base, TITANS)
    try:
        kind.set_enabled(False)
        generic = build_generic(base, kind.layers[0], count=4, reply_tokens=8)
        kind.set_enabled(True)
        assert len(generic) == 4 and generic.hidden.shape[:2] == generic.ids.shape
        assert generic.mask.sum(1).min() > 0
        bank = build_night_bank(base, kind.layers[0], seed=3, size=2, shape=NightShape(tokens=80), window=40)
        idx, gidx = torch.tensor([0, 1]), torch.tensor([0, 1])
        # gate_scale starts at zero: a written memory is read with a closed gate -> the base function
        _, closed = episode_losses(kind, base.model, bank, idx, LossWeights(), generic, gidx)
        assert closed["kl_generic"] == 0.0 and closed["gate_generic"] == 0.0
        with torch.no_grad():
            for memory in kind.layer_memories.values():
                memory.gate_scale.fill_(1.0)
                memory.to_gate.bias.fill_(4.0)
        _, opened = episode_losses(kind, base.model, bank, idx, LossWeights(), generic, gidx)
        assert opened["kl_generic"] > 0 and opened["gate_generic"] > 0.9
    finally:
        kind.detach()
