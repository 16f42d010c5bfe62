"""No-memory baselines of the knowledge benchmark: what a user gets from the bare base.

The memory rows only mean something beside what the same base answers without memory, on the
same probes with the same answer check (the greedy reply contains the answer or an alias, and no
replaced value): closed book; the *oracle* chunk (the chunk of the probe's source document, as
orgmem's chunker cuts it, that states the answer) pasted into the user turn; and the RAG a user
would build, the BM25 top-3 chunks of the night's state (query = the question). For BM25 the
retriever's own hit rate (is the oracle chunk among the 3) is recorded, so a RAG miss can be told
apart from a reading miss. Night N uses the documents current after night N.

    python benchmarks/knowledge.py --baselines-only            # these rows, no training
    from benchmarks import baselines; baselines.run_baselines(bench)   # from knowledge_tune.py
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

CONDITIONS = ("closed_book", "oracle", "bm25_top3")
ROW_KIND = {"closed_book": "base (closed book)", "oracle": "base+oracle chunk",
            "bm25_top3": "base+BM25 top-3"}
TOP_K = 3
WORD = re.compile(r"[a-z0-9]+")


def context_prompt(question: str, chunks: Sequence[str]) -> str:
    """The user turn of every baseline: the context chunks, then the question.

    Closed book (no chunks) is the bare question, exactly what the memory rows are asked. With
    chunks: ``"Answer the question using these documents.\\n\\n"``, the chunks as the chunker
    wrote them (their ``[kind:source] path`` header line included) separated by a blank line and
    ``---``, then ``"\\n\\nQuestion: <question>"``. It goes through the base's chat template
    (``encode_chat``), one turn, like the probes."""
    if not chunks:
        return question
    context = "\n\n---\n\n".join(c.strip() for c in chunks)
    return f"Answer the question using these documents.\n\n{context}\n\nQuestion: {question}"


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric runs: ``DISPATCH_PORT`` -> dispatch, port (no stemming, no stopwords)."""
    return WORD.findall(text.lower())


class Retriever:
    """BM25 (Okapi, rank-bm25's defaults k1=1.5, b=0.75) over one night's chunks."""

    def __init__(self, chunks: Sequence[str]) -> None:
        from rank_bm25 import BM25Okapi

        self.chunks = list(chunks)
        self._bm25 = BM25Okapi([bm25_tokens(c) for c in self.chunks])

    def top(self, query: str, k: int = TOP_K) -> list[int]:
        """Indices of the ``k`` best chunks, best first (ties: the earlier chunk)."""
        scores = self._bm25.get_scores(bm25_tokens(query))
        return sorted(range(len(self.chunks)), key=lambda i: (-scores[i], i))[:k]


@dataclass(frozen=True)
class NightState:
    """The chunks of every document current after one night, in document order."""

    chunks: list[str]
    doc_of: list[str]  # chunk index -> document path

    def of_doc(self, path: str) -> list[int]:
        return [i for i, p in enumerate(self.doc_of) if p == path]


def night_state(corpus, night: int, tokenizer) -> NightState:
    """Chunked exactly as the benchmark gives them to the engine (``chunk_docs``), per document."""
    from orgmem.eval.corpus import chunk_docs

    chunks, doc_of = [], []
    for path, doc in sorted(corpus.current(night).items()):
        texts = chunk_docs([doc], tokenizer)
        chunks += texts
        doc_of += [path] * len(texts)
    return NightState(chunks, doc_of)


def oracle_chunk(probe, state: NightState) -> int | None:
    """The chunk of the probe's source document that states its answer: the first containing the
    cloze and answer as written; else the first containing the answer; None if no chunk does."""
    from orgmem.eval.probes import contains_answer, join_cloze

    own = state.of_doc(probe.source)
    written = join_cloze(probe.cloze, probe.answer)
    for i in own:
        if written in state.chunks[i]:
            return i
    return next((i for i in own if contains_answer(state.chunks[i], probe.accepted)), None)


def condition_contexts(condition: str, probes, state: NightState) -> list[tuple[list[int], int | None]]:
    """Per probe: (chunk indices put in its prompt, its oracle chunk)."""
    retriever = Retriever(state.chunks) if condition == "bm25_top3" else None
    out = []
    for p in probes:
        oracle = oracle_chunk(p, state)
        if condition == "closed_book":
            picked = []
        elif condition == "oracle":
            picked = [oracle] if oracle is not None else []
        else:
            picked = retriever.top(p.question)
        out.append((picked, oracle))
    return out


def answer_all(base, prompts: Sequence[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy replies through the chat template, decoded as the evaluation decodes them."""
    from orgmem.eval.generation import greedy_generate
    from orgmem.models.tokens import encode_chat, pad_token_id, stop_token_ids

    tok = base.tokenizer
    ids = [encode_chat(tok, p) for p in prompts]
    gens = greedy_generate(base.model, ids, pad_id=pad_token_id(tok),
                           stop_ids=stop_token_ids(tok, base.model), max_new_tokens=max_new_tokens,
                           batch_size=batch_size)
    return [tok.decode(g.ids, skip_special_tokens=True).strip() for g in gens]


def probe_record(probe, night: int, reply: str, picked: list[int], oracle: int | None, n_tokens: int) -> dict:
    """One probe's result, with the keys of the evaluation's ``ProbeResult`` (no cloze: None)."""
    from orgmem.eval.evaluate import group_of
    from orgmem.eval.probes import contains_answer

    stale = bool(probe.replaces) and contains_answer(reply, probe.replaces)
    return {"key": probe.key, "fact": probe.fact, "night": probe.night, "group": group_of(probe, night),
            "answer": probe.answer, "question": probe.question, "reply": reply,
            "question_hit": contains_answer(reply, probe.accepted) and not stale, "question_stale": stale,
            "cloze_hit": None, "chunks": picked, "oracle_chunk": oracle,
            "oracle_in_context": oracle is not None and oracle in picked, "prompt_tokens": n_tokens}


def summarise(records: list[dict], accepted: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Counts for one condition and night: all probes, updates, the oracle chunk's presence, and
    the diagnosis of the misses (``accepted``: key -> answer and aliases, for interference)."""
    from orgmem.eval.diagnosis import diagnose, diagnosis_counts

    updates = [r for r in records if r["group"] == "updated"]
    hits = sum(r["question_hit"] for r in records)
    return {"n": len(records), "hits": hits, "recall": hits / len(records) if records else None,
            "stale": sum(r["question_stale"] for r in records),
            "updates": {"n": len(updates), "hits": sum(r["question_hit"] for r in updates)},
            "oracle_in_context": sum(r["oracle_in_context"] for r in records),
            "oracle_missing": sum(r["oracle_chunk"] is None for r in records),
            "prompt_tokens_mean": statistics.fmean(r["prompt_tokens"] for r in records) if records else None,
            "diagnosis": diagnosis_counts(diagnose(records, accepted))}


def run_condition(base, corpus_probes, state: NightState, night: int, condition: str,
                  max_new_tokens: int = 32, batch_size: int = 16) -> dict:
    """One baseline on the probes true after ``night``: summary counts and every probe's record."""
    from orgmem.eval.probes import active_probes
    from orgmem.models.tokens import encode_chat

    t0 = time.perf_counter()
    probes = [p for p in active_probes(corpus_probes, night) if p.question]
    contexts = condition_contexts(condition, probes, state)
    prompts = [context_prompt(p.question, [state.chunks[i] for i in picked])
               for p, (picked, _) in zip(probes, contexts, strict=True)]
    replies = answer_all(base, prompts, max_new_tokens, batch_size)
    records = [probe_record(p, night, reply, picked, oracle, len(encode_chat(base.tokenizer, prompt)))
               for p, (picked, oracle), reply, prompt in zip(probes, contexts, replies, prompts, strict=True)]
    summary = summarise(records, {p.key: p.accepted for p in probes})
    return {**summary, "seconds": time.perf_counter() - t0, "probes": records}


def run_baselines(bench, nights: Sequence[int] = (1, 2), conditions: Sequence[str] = CONDITIONS,
                  progress: bool = True) -> dict:
    """Every baseline on every night for a started benchmark session (``knowledge.start``)."""
    import sys

    from orgmem.eval.corpus import load_corpus
    from orgmem.eval.evaluate import EvalConfig

    corpus = load_corpus(bench.cfg.corpus)
    keep = {p.key for p in bench.probes}  # --quick keeps a subset
    corpus.probes = [p for p in corpus.probes if p.key in keep]
    nights = [n for n in nights if n in corpus.nights]
    out: dict = {"prompt_format": context_prompt.__doc__, "top_k": TOP_K,
                 "retriever": "rank_bm25.BM25Okapi (k1=1.5, b=0.75) over bm25_tokens", "conditions": {}}
    for night in nights:
        state = night_state(corpus, night, bench.base.tokenizer)
        for condition in conditions:
            if progress:
                print(f"== baseline {condition} night {night} ({len(state.chunks)} chunks)", file=sys.stderr,
                      flush=True)
            out["conditions"].setdefault(condition, {})[f"night{night}"] = run_condition(
                bench.base, corpus.probes, state, night, condition,
                max_new_tokens=EvalConfig().question_max_new_tokens)
    return out


def rediagnose(baselines: dict, accepted: dict[str, list[str]]) -> None:
    """Recount each condition's diagnosis from its stored probes (``knowledge.py --render``)."""
    from orgmem.eval.diagnosis import diagnose, diagnosis_counts

    for nights in baselines["conditions"].values():
        for result in nights.values():
            result["diagnosis"] = diagnosis_counts(diagnose(result["probes"], accepted))


def baseline_rows(baselines: dict) -> list[dict]:
    """The baselines as rows of the knowledge table (question columns only: no cloze in context)."""
    rows = []
    for condition, nights in baselines["conditions"].items():
        row = {"kind": ROW_KIND[condition], "seed": 0, "baseline": condition}
        if "night1" in nights:
            row["n1_question_recall"] = nights["night1"]["recall"]
        if "night2" in nights:
            n2 = nights["night2"]
            row["question_recall"] = n2["recall"]
            u = n2["updates"]
            row["update_accuracy_question"] = u["hits"] / u["n"] if u["n"] else None
        rows.append(row)
    return rows


def markdown(baselines: dict) -> list[str]:
    """The baselines table: counts per night, and the retriever's top-3 hit rate."""
    nights = sorted({n for c in baselines["conditions"].values() for n in c})
    heads = (["baseline"] + [f"question {n}" for n in nights]
             + [f"oracle chunk in prompt {n}" for n in nights] + [f"prompt tokens {n}" for n in nights])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for condition, per_night in baselines["conditions"].items():
        cells = [ROW_KIND[condition]]
        cells += [_count(per_night[n]["hits"], per_night[n]["n"]) if n in per_night else "–" for n in nights]
        cells += [_count(per_night[n]["oracle_in_context"], per_night[n]["n"]) if n in per_night else "–"
                  for n in nights]
        cells += [f"{per_night[n]['prompt_tokens_mean']:.0f}" if n in per_night else "–" for n in nights]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _count(hits: int, n: int) -> str:
    return f"{hits}/{n} ({hits / n:.0%})" if n else "–"
