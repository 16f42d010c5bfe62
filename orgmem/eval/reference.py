"""What the base model does on the generic set, computed once per base and cached on disk.

Drift metrics compare an adapted model with its base: the base's greedy replies to the generic
prompts, its next-token distributions along those replies (for KL) and its generic perplexity.
Those depend only on the base, so they are computed once, stored under
``<home>/eval_cache/<base fingerprint>/`` and reused: each evaluation then runs only the adapted
model. The cache key also covers the generic data and settings, so editing them never reuses a
stale reference.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from orgmem.config import get_settings
from orgmem.errors import IntegrityError
from orgmem.eval.generation import Generated, greedy_generate
from orgmem.eval.generic import TopK, generic_prompts, generic_texts, perplexity, summarise_topk
from orgmem.eval.scoring import score_targets, target_logprobs, text_pairs
from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReferenceConfig:
    """How the generic set is measured; part of the cache key."""

    max_new_tokens: int = 32
    batch_size: int = 10
    topk: int = 256


@dataclass
class BaseReference:
    """The base model's behaviour on the generic set (see module docstring)."""

    fingerprint: str
    config: ReferenceConfig
    prompts: tuple[str, ...]
    replies: list[Generated]
    reply_texts: list[str]
    topk: list[TopK]
    text_nll_sum: float
    text_tokens: int
    key: str

    @property
    def ppl(self) -> float:
        return perplexity(self.text_nll_sum, self.text_tokens)


def reference_key(prompts: Sequence[str], texts: Sequence[str], config: ReferenceConfig) -> str:
    """Hash of everything besides the base that the reference depends on."""
    blob = json.dumps({"v": FORMAT_VERSION, "prompts": list(prompts), "texts": list(texts),
                       "config": asdict(config)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def compute_reference(model, tokenizer, fingerprint: str, config: ReferenceConfig = ReferenceConfig(), *,
                      prompts: Sequence[str] | None = None, texts: Sequence[str] | None = None,
                      progress: bool = False) -> BaseReference:
    """Run the base once on the generic set. ``model`` must compute the *base* function."""
    prompts = tuple(prompts if prompts is not None else generic_prompts())
    texts = tuple(texts if texts is not None else generic_texts())
    pad = pad_token_id(tokenizer)
    chats = [encode_chat(tokenizer, p) for p in prompts]
    replies = greedy_generate(model, chats, pad_id=pad, stop_ids=stop_token_ids(tokenizer, model),
                              max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                              desc="base replies" if progress else None)
    pairs = [(c, r.scored_ids) for c, r in zip(chats, replies, strict=True) if r.scored_ids]
    if len(pairs) != len(chats):
        raise IntegrityError("base produced an empty reply with no stop token: cannot build a reference")
    logps = target_logprobs(model, pairs, pad_id=pad, batch_size=config.batch_size)
    text_scores = score_targets(model, text_pairs(tokenizer, texts), pad_id=pad, batch_size=config.batch_size)
    return BaseReference(
        fingerprint=fingerprint, config=config, prompts=prompts, replies=replies,
        reply_texts=[tokenizer.decode(r.ids, skip_special_tokens=True).strip() for r in replies],
        topk=[summarise_topk(lp, config.topk) for lp in logps],
        text_nll_sum=sum(s.nll_sum for s in text_scores), text_tokens=sum(s.n_tokens for s in text_scores),
        key=reference_key(prompts, texts, config),
    )


def save_reference(ref: BaseReference, path: Path) -> None:
    """One safetensors file: concatenated top-k tensors + JSON metadata. Written atomically."""
    offsets = torch.tensor([0] + [int(t.ids.shape[0]) for t in ref.topk]).cumsum(0)
    tensors = {
        "topk_ids": torch.cat([t.ids for t in ref.topk]).contiguous(),
        "topk_logp": torch.cat([t.logp for t in ref.topk]).contiguous(),
        "rest_logp": torch.cat([t.rest_logp for t in ref.topk]).contiguous(),
        "offsets": offsets.contiguous(),
    }
    meta = {"v": FORMAT_VERSION, "fingerprint": ref.fingerprint, "config": asdict(ref.config),
            "prompts": list(ref.prompts), "replies": [[r.ids, r.stop_id] for r in ref.replies],
            "reply_texts": ref.reply_texts, "text_nll_sum": ref.text_nll_sum,
            "text_tokens": ref.text_tokens, "key": ref.key}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"orgmem_reference": json.dumps(meta)})
    tmp.replace(path)


def load_reference(path: Path) -> BaseReference:
    """Read a reference file; a damaged or foreign file raises IntegrityError naming the path."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["orgmem_reference"])
        tensors = load_file(str(path))
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise IntegrityError(f"evaluation reference {path} is unreadable: {exc}") from exc
    if meta.get("v") != FORMAT_VERSION:
        raise IntegrityError(f"evaluation reference {path} has format {meta.get('v')}, "
                             f"expected {FORMAT_VERSION}")
    off = tensors["offsets"].tolist()
    topk = [TopK(ids=tensors["topk_ids"][a:b], logp=tensors["topk_logp"][a:b],
                 rest_logp=tensors["rest_logp"][a:b]) for a, b in zip(off[:-1], off[1:], strict=True)]
    return BaseReference(
        fingerprint=meta["fingerprint"], config=ReferenceConfig(**meta["config"]),
        prompts=tuple(meta["prompts"]), replies=[Generated(ids=i, stop_id=s) for i, s in meta["replies"]],
        reply_texts=meta["reply_texts"], topk=topk, text_nll_sum=meta["text_nll_sum"],
        text_tokens=meta["text_tokens"], key=meta["key"],
    )


def reference_path(fingerprint: str, key: str, cache_dir: Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else get_settings().home / "eval_cache"
    return root / fingerprint / f"reference-{key}.safetensors"


def get_reference(model, tokenizer, fingerprint: str, config: ReferenceConfig = ReferenceConfig(), *,
                  cache_dir: Path | None = None, progress: bool = False) -> BaseReference:
    """Cached reference for this base + generic set, computed (from ``model``) on first use.

    ``model`` must compute the base function (e.g. inside a memory handle's ``disabled()``).
    """
    if not fingerprint:
        raise ValueError("a base fingerprint is required to key the evaluation reference cache")
    key = reference_key(generic_prompts(), generic_texts(), config)
    path = reference_path(fingerprint, key, cache_dir)
    if path.is_file():
        try:
            ref = load_reference(path)
            if ref.fingerprint == fingerprint and ref.key == key:
                return ref
            logger.warning("evaluation reference does not match, recomputing", extra={"path": str(path)})
        except IntegrityError as exc:  # a derived cache: recompute rather than fail the evaluation
            logger.warning("evaluation reference unreadable, recomputing",
                           extra={"path": str(path), "error": str(exc)})
    logger.info("computing evaluation reference", extra={"base": fingerprint[:12], "path": str(path)})
    ref = compute_reference(model, tokenizer, fingerprint, config, progress=progress)
    save_reference(ref, path)
    return ref
