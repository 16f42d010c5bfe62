"""``evaluate``: every metric of one model on one probe set, in one call.

Probe metrics (cloze recall, question recall, answer NLL, retention, update accuracy) run the
model on the probes; drift metrics (generic perplexity, KL to base, changed replies, leakage) run
it on the shipped generic set and compare with the cached base reference. The caller passes the
model it wants judged — a base, or a base with memory attached — and never needs the base itself
here, because the reference already holds what the base does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from orgmem.errors import IntegrityError
from orgmem.eval.generation import encode_text, greedy_generate
from orgmem.eval.generic import bucketed_kl, generic_prompts, generic_texts, leaked_strings, perplexity
from orgmem.eval.probes import Probe, active_probes, contains_answer, join_cloze
from orgmem.eval.reference import BaseReference, reference_key
from orgmem.eval.report import EvalReport, GenericStats, GroupStats, ProbeResult
from orgmem.eval.scoring import score_targets, target_logprobs, text_pairs
from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids


@dataclass(frozen=True)
class EvalConfig:
    """Generation budgets: replies are short because greedy decoding is slow on CPU."""

    cloze_max_new_tokens: int = 16
    question_max_new_tokens: int = 32
    batch_size: int = 8
    leak_min_chars: int = 4
    progress: bool = False


def answer_pair(tokenizer, probe: Probe) -> tuple[list[int], list[int]]:
    """(prefix ids, answer ids) so the answer tokens are the ones the full sentence would use."""
    prefix = encode_text(tokenizer, probe.cloze.rstrip())
    full = encode_text(tokenizer, join_cloze(probe.cloze.rstrip(), probe.answer))
    if full[: len(prefix)] == prefix and len(full) > len(prefix):
        return prefix, full[len(prefix) :]
    # Tokenisation merged across the boundary: score the answer tokenised on its own.
    return prefix, list(tokenizer(" " + probe.answer, add_special_tokens=False)["input_ids"])


def group_of(probe: Probe, night: int) -> str:
    if probe.night < night:
        return "retained"
    return "updated" if probe.replaces else "new"


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def _probe_results(model, tokenizer, probes: Sequence[Probe], night: int,
                   cfg: EvalConfig) -> list[ProbeResult]:
    pad, stops = pad_token_id(tokenizer), stop_token_ids(tokenizer, model)
    desc = (lambda s: s) if cfg.progress else (lambda s: None)
    pairs = [answer_pair(tokenizer, p) for p in probes]
    clozes = greedy_generate(model, [pre for pre, _ in pairs], pad_id=pad, stop_ids=stops,
                             max_new_tokens=cfg.cloze_max_new_tokens, batch_size=cfg.batch_size,
                             desc=desc("cloze"))
    asked = [i for i, p in enumerate(probes) if p.question]
    replies = greedy_generate(model, [encode_chat(tokenizer, probes[i].question) for i in asked], pad_id=pad,
                              stop_ids=stops, max_new_tokens=cfg.question_max_new_tokens,
                              batch_size=cfg.batch_size, desc=desc("questions")) if asked else []
    reply_of = dict(zip(asked, replies, strict=True))
    scores = score_targets(model, pairs, pad_id=pad, batch_size=cfg.batch_size)
    results = []
    for i, probe in enumerate(probes):
        completion = _decode(tokenizer, clozes[i].ids)
        stale = bool(probe.replaces) and contains_answer(completion, probe.replaces)
        result = ProbeResult(
            key=probe.key, fact=probe.fact, night=probe.night, kind=probe.kind, group=group_of(probe, night),
            answer=probe.answer, cloze_completion=completion,
            cloze_hit=contains_answer(completion, probe.accepted) and not stale, cloze_stale=stale,
            answer_nll=scores[i].mean_nll,
        )
        if i in reply_of:
            reply = _decode(tokenizer, reply_of[i].ids)
            q_stale = bool(probe.replaces) and contains_answer(reply, probe.replaces)
            result.reply = reply
            result.question_stale = q_stale
            result.question_hit = contains_answer(reply, probe.accepted) and not q_stale
        results.append(result)
    return results


def _stats(results: Sequence[ProbeResult]) -> GroupStats:
    asked = [r for r in results if r.question_hit is not None]
    nlls = [r.answer_nll for r in results if not math.isnan(r.answer_nll)]
    return GroupStats(
        n=len(results), cloze_hits=sum(r.cloze_hit for r in results),
        cloze_stale=sum(r.cloze_stale for r in results), n_question=len(asked),
        question_hits=sum(bool(r.question_hit) for r in asked),
        question_stale=sum(bool(r.question_stale) for r in asked),
        answer_nll=sum(nlls) / len(nlls) if nlls else float("nan"),
    )


def group_stats(results: Sequence[ProbeResult]) -> dict[str, GroupStats]:
    """Stats for all probes, each group (new/retained/updated) present, and — when the set mixes
    them — each kind and each night."""
    groups = {"all": _stats(results)}
    for name in ("new", "retained", "updated"):
        members = [r for r in results if r.group == name]
        if members:
            groups[name] = _stats(members)
    kinds, nights = sorted({r.kind for r in results}), sorted({r.night for r in results})
    for kind in kinds if len(kinds) > 1 else []:
        groups[kind] = _stats([r for r in results if r.kind == kind])
    for n in nights if len(nights) > 1 else []:
        groups[f"night{n}"] = _stats([r for r in results if r.night == n])
    return groups


def org_strings(probes: Sequence[Probe], min_chars: int) -> list[str]:
    """Org-specific strings whose appearance in an unrelated reply counts as leakage."""
    found: set[str] = set()
    for p in probes:
        if p.kind == "fact" or " " not in p.answer.strip():
            found.update(s for s in (*p.accepted, *p.replaces) if len(s.strip()) >= min_chars)
    return sorted(found)


def generic_stats(model, tokenizer, reference: BaseReference, probes: Sequence[Probe],
                  cfg: EvalConfig) -> GenericStats:
    """Drift of ``model`` on the generic set relative to ``reference`` (same batches as the base)."""
    if reference.key != reference_key(generic_prompts(), generic_texts(), reference.config):
        raise IntegrityError(f"evaluation reference {reference.key} was built from other generic data or "
                             "settings than this orgmem ships: recompute it")
    rcfg, pad = reference.config, pad_token_id(tokenizer)
    chats = [encode_chat(tokenizer, p) for p in reference.prompts]
    replies = greedy_generate(model, chats, pad_id=pad, stop_ids=stop_token_ids(tokenizer, model),
                              max_new_tokens=rcfg.max_new_tokens, batch_size=rcfg.batch_size,
                              desc="generic replies" if cfg.progress else None)
    changed = sum(r.scored_ids != b.scored_ids for r, b in zip(replies, reference.replies, strict=True))
    pairs = [(c, b.scored_ids) for c, b in zip(chats, reference.replies, strict=True)]
    logps = target_logprobs(model, pairs, pad_id=pad, batch_size=rcfg.batch_size)
    kls = torch.cat([bucketed_kl(top, lp) for top, lp in zip(reference.topk, logps, strict=True)])
    text_scores = score_targets(model, text_pairs(tokenizer, generic_texts()), pad_id=pad,
                                batch_size=rcfg.batch_size)
    candidates = org_strings(probes, cfg.leak_min_chars)
    leaks = []
    for prompt, reply, base_text in zip(reference.prompts, replies, reference.reply_texts, strict=True):
        text = _decode(tokenizer, reply.ids)
        found = leaked_strings(text, base_text, prompt, candidates)
        if found:
            leaks.append({"prompt": prompt, "strings": found, "reply": text})
    return GenericStats(
        n_prompts=len(chats), replies_changed=int(changed), kl=float(kls.mean()) if len(kls) else 0.0,
        ppl=perplexity(sum(s.nll_sum for s in text_scores), sum(s.n_tokens for s in text_scores)),
        base_ppl=reference.ppl, leakage=len(leaks), leaks=leaks,
    )


def evaluate(model, tokenizer, probes: Sequence[Probe], *, reference: BaseReference | None = None,
             night: int | None = None, config: EvalConfig = EvalConfig(),
             meta: dict | None = None) -> EvalReport:
    """Evaluate ``model`` on the probes true after ``night`` (default: the last night in the set).

    Without ``reference`` only the probe metrics are computed. The model is put in eval mode and
    run without gradients; its training mode is restored afterwards.
    """
    t0 = time.perf_counter()
    current = night if night is not None else max((p.night for p in probes), default=1)
    active = active_probes(probes, current)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            results = _probe_results(model, tokenizer, active, current, config) if active else []
            generic = generic_stats(model, tokenizer, reference, probes, config) if reference else None
    finally:
        model.train(was_training)
    info = {"reference": reference.key, "base_fingerprint": reference.fingerprint} if reference else {}
    return EvalReport(night=current, groups=group_stats(results), probes=results, generic=generic,
                      seconds=time.perf_counter() - t0, meta={**info, **(meta or {})})
