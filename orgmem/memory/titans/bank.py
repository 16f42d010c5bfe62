"""A bank of tokenised episodes with the frozen lower layers' hidden states cached.

Every outer step of meta-training samples a batch from the bank and runs only the layers from the
first memory layer up; the states entering that layer never change (the layers below are frozen
and memory-free), so they are computed once per bank, on the base's device.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from orgmem.memory.titans.episodes import Episode, make_episode
from orgmem.memory.titans.night_episodes import NightShape, make_night_episode
from orgmem.models.layers import embed, run_layers
from orgmem.models.tokens import pad_token_id


@dataclass
class EpisodeBank:
    """Right-padded write/query token ids, masks and the hidden states entering ``layer``."""

    layer: int
    write_ids: Tensor  # (e, lw)
    write_mask: Tensor  # (e, lw) bool: real tokens
    query_ids: Tensor  # (e, lq)
    answer_mask: Tensor  # (e, lq) bool: tokens scored (answers)
    write_hidden: Tensor  # (e, lw, d)
    query_hidden: Tensor  # (e, lq, d)
    window: int = 0  # tokens per separately encoded write window (0: the whole write is one)

    def __len__(self) -> int:
        return int(self.write_ids.shape[0])

    @property
    def write_window(self) -> int:
        return self.window or int(self.write_ids.shape[1])

    def windows(self) -> list[slice]:
        """Write positions of each window, in stream order (each was encoded in its own context)."""
        n, w = int(self.write_ids.shape[1]), self.write_window
        return [slice(s, min(s + w, n)) for s in range(0, n, w)]

    def batch(self, idx: Tensor) -> EpisodeBank:
        """The episodes ``idx``, cut to their own longest write / last answer (no wasted padding)."""
        w = int(self.write_mask[idx].sum(1).max()) if not self.window else \
            self.window * int(math.ceil(int(self.write_mask[idx].nonzero()[:, 1].max() + 1) / self.window))
        answers = self.answer_mask[idx]
        q = int(answers.nonzero()[:, 1].max()) + 1 if answers.any() else 1
        return EpisodeBank(self.layer, self.write_ids[idx, :w], self.write_mask[idx, :w],
                           self.query_ids[idx, :q], answers[:, :q], self.write_hidden[idx, :w],
                           self.query_hidden[idx, :q], self.window)

    def predictors(self) -> tuple[Tensor, Tensor]:
        """(positions whose logits predict an answer token (b, lq) bool, those tokens (m,))."""
        answers = self.answer_mask
        pred = torch.zeros_like(answers)
        pred[:, :-1] = answers[:, 1:]
        return pred, self.query_ids[:, 1:][answers[:, 1:]]


def _prefix_ids(tokenizer) -> list[int]:
    """Special tokens the tokenizer puts before any text (a BOS for Llama-2/3, nothing for SmolLM2)."""
    return list(tokenizer("", add_special_tokens=True)["input_ids"])


def tokenize_episode(tokenizer, episode: Episode, max_tokens: int = 512
                     ) -> tuple[list[int], list[int], list[bool]]:
    """(write ids, query ids, answer flags) of one episode, each sequence capped at ``max_tokens``."""
    prefix = _prefix_ids(tokenizer)
    write = prefix + tokenizer(episode.write, add_special_tokens=False)["input_ids"]
    query, flags = list(prefix), [False] * len(prefix)
    for text, is_answer in episode.query:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        query += ids
        flags += [is_answer] * len(ids)
    return write[:max_tokens], query[:max_tokens], flags[:max_tokens]


def tokenize_night(tokenizer, episode: Episode, window: int, max_query: int = 512
                   ) -> tuple[list[int], list[bool], list[int], list[bool]]:
    """(write ids in windows of ``window`` tokens, their real-token mask, query ids, answer flags).

    A night is too long for one context: like a night's chunks, each window is its own forward
    (prefix tokens first), and the memory writes the windows one after the other."""
    prefix = _prefix_ids(tokenizer)
    step = window - len(prefix)
    if step < 1:
        raise ValueError(f"write window {window} leaves no room after {len(prefix)} prefix tokens")
    body = tokenizer(episode.write, add_special_tokens=False)["input_ids"]
    pad = pad_token_id(tokenizer)
    ids: list[int] = []
    mask: list[bool] = []
    for s in range(0, max(len(body), 1), step):
        part = prefix + body[s: s + step]
        ids += part + [pad] * (window - len(part))
        mask += [True] * len(part) + [False] * (window - len(part))
    _, query, flags = tokenize_episode(tokenizer, replace(episode, write=""), max_query)
    return ids, mask, query, flags


@torch.no_grad()
def build_night_bank(base, layer: int, seed: int, size: int, shape: NightShape, *, window: int = 512,  # noqa: PLR0913  # keyword-only episode shape
                     encode_batch: int = 16, progress: bool = False) -> EpisodeBank:
    """``size`` night-shaped episodes (``night_episodes.py``) from ``seed``, lower layers cached per
    write window."""
    rng, tok, model = random.Random(seed), base.tokenizer, base.model  # nosec B311  # seeded data
    rows = [tokenize_night(tok, make_night_episode(rng, tok, shape), window) for _ in range(size)]
    pad = pad_token_id(tok)
    write_ids, write_mask = _pad([r[0] for r in rows], pad), _pad([r[1] for r in rows], False)
    query_ids, answer_mask = _pad([r[2] for r in rows], pad), _pad([r[3] for r in rows], False)
    e, n = write_ids.shape
    flat = _encode(model, write_ids.view(-1, window), layer, base.device, encode_batch, progress)
    write_hidden = flat.view(e, n, -1)
    query_hidden = _encode(model, query_ids, layer, base.device, encode_batch, progress)
    dev = base.device
    return EpisodeBank(layer, write_ids.to(dev), write_mask.to(dev), query_ids.to(dev), answer_mask.to(dev),
                       write_hidden, query_hidden, window)


def _encode(model, ids: Tensor, layer: int, device, encode_batch: int, progress: bool) -> Tensor:
    """Hidden states entering ``layer`` for rows of token ids (right padding is causal: harmless)."""
    parts = []
    for s in tqdm(range(0, len(ids), encode_batch), desc=f"caching layer-{layer} states",
                  disable=not progress, leave=False):
        parts.append(run_layers(model, embed(model, ids[s: s + encode_batch].to(device)), 0, layer))
    return torch.cat(parts)


def _pad(rows: list[list], value) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


@torch.no_grad()
def build_bank(base, layer: int, seed: int, size: int, *, facts: tuple[int, int] = (4, 10), queries: int = 4,  # noqa: PLR0913  # keyword-only episode shape
               chat_prob: float = 0.5, encode_batch: int = 16, progress: bool = False) -> EpisodeBank:
    """``size`` episodes from ``seed`` with their states entering ``layer`` cached."""
    rng, tok, model = random.Random(seed), base.tokenizer, base.model  # nosec B311  # seeded data
    rows = [tokenize_episode(tok, make_episode(rng, tok, facts=facts, queries=queries, chat_prob=chat_prob))
            for _ in range(size)]
    pad = pad_token_id(tok)
    write_ids, query_ids = _pad([r[0] for r in rows], pad), _pad([r[1] for r in rows], pad)
    write_mask = _pad([[True] * len(r[0]) for r in rows], False)
    answer_mask = _pad([r[2] for r in rows], False)
    dev = base.device
    hidden = [_encode(model, ids, layer, dev, encode_batch, progress) for ids in (write_ids, query_ids)]
    return EpisodeBank(layer, write_ids.to(dev), write_mask.to(dev), query_ids.to(dev), answer_mask.to(dev),
                       hidden[0], hidden[1])
