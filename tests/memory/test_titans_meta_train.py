"""Titans meta-training on the tiny base: few steps, resumable, stored as the base's initialisation."""

from __future__ import annotations

import random

import pytest
import torch

from orgmem.errors import ConflictError, IncompatibleBaseError
from orgmem.memory import attach
from orgmem.memory.titans import TitansConfig
from orgmem.memory.titans.bank import tokenize_episode
from orgmem.memory.titans.episodes import make_episode
from orgmem.memory.titans.init_store import INIT_FILE, meta_dir, read_meta_init
from orgmem.memory.titans.meta_train import CHECKPOINT_FILE, MetaTrainConfig, meta_train
from orgmem.models import BaseModel, model_fingerprint
from orgmem.models.tiny import build_tiny_model, build_tiny_tokenizer

pytestmark = pytest.mark.usefixtures("private_models_dir")
TITANS = TitansConfig(heads=2, dim_head=16, chunk_size=8)
CFG = MetaTrainConfig(batch_size=3, bank_size=6, bank_refresh=3, eval_episodes=4, checkpoint_every=2,
                      facts=(2, 4), queries=2, curriculum_tokens=(), curriculum_steps=(), curriculum_batch=(),
                      generic_items=4)


def run(base, steps, **kw):
    return meta_train(base, steps, titans=TITANS, config=kw.pop("config", CFG), progress=False, **kw)


def test_episode_tokens_mark_exactly_the_answers(base):
    rng = random.Random(3)
    for chat in (0.0, 1.0):
        episode = make_episode(rng, base.tokenizer, facts=(3, 3), queries=2, chat_prob=chat)
        write, query, flags = tokenize_episode(base.tokenizer, episode)
        answers = base.tokenizer.decode([t for t, f in zip(query, flags, strict=True) if f])
        asked = [text for text, is_answer in episode.query if is_answer]
        assert answers.replace(" ", "") == "".join(asked).replace(" ", "")
        assert all(a.strip() in base.tokenizer.decode(write) for a in asked)


def test_meta_train_stores_the_init_that_attach_loads(base):
    result = run(base, 3)
    assert result.complete and result.steps == 3 and len(result.history) == 3
    assert result.init_path == meta_dir(base) / INIT_FILE
    for metrics in (result.before, result.after, *result.history):
        assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k != "step")
    assert result.before["nll_base"] == result.after["nll_base"]  # the base itself never changes
    assert result.before != result.after  # the meta-parameters moved
    tensors, arch, info = read_meta_init(result.init_path, base)
    assert arch["layers"] == [3] and info["steps"] == 3
    with attach(base, TitansConfig(heads=2, dim_head=16, chunk_size=8)) as handle:
        loaded = handle.components[0].meta_tensors()
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert tensors["3.gate_scale"].abs().max() > 0


def test_resume_equals_one_uninterrupted_run(base, tmp_path):
    straight = run(base, 4, out_dir=tmp_path / "a")
    run(base, 2, out_dir=tmp_path / "b")
    resumed = run(base, 4, out_dir=tmp_path / "b", resume=True)
    assert resumed.steps == 4 and [h["step"] for h in resumed.history] == [1, 2, 3, 4]
    a, _, _ = read_meta_init(straight.init_path, base)
    b, _, _ = read_meta_init(resumed.init_path, base)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=k)
    assert resumed.after == straight.after


def test_checkpoint_is_not_overwritten_or_resumed_with_other_settings(base, tmp_path):
    run(base, 2, out_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).exists()
    with pytest.raises(ConflictError, match="--resume"):
        run(base, 4, out_dir=tmp_path)
    other = MetaTrainConfig(**{**CFG.__dict__, "lr": 5e-3})
    with pytest.raises(ConflictError, match=r"\['lr'\]"):
        run(base, 4, out_dir=tmp_path, resume=True, config=other)
    model = build_tiny_model(seed=1)
    foreign = BaseModel("tiny-other", model.requires_grad_(False), build_tiny_tokenizer(),
                        model_fingerprint(model), torch.device("cpu"), torch.float32)
    with pytest.raises(IncompatibleBaseError, match="tiny-other"):
        run(foreign, 4, out_dir=tmp_path, resume=True)


def test_time_budget_stops_early_with_a_checkpoint(base, tmp_path):
    result = run(base, 50, out_dir=tmp_path, max_seconds=0.0)
    assert result.steps == 1 and not result.complete
    assert torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)["step"] == 1


def test_meta_training_refuses_a_base_with_memory_attached(base, tmp_path):
    with attach(base, "cms"), pytest.raises(ConflictError, match="detach"):
        run(base, 1, out_dir=tmp_path)
