"""The knowledge benchmark's code judged by what it measures: its scoring gives an answer that is in
the prompt a hit and one that is not a miss, a replaced value counts as stale; the quick path end
to end on the tiny base applies each memory (its replies differ from the base's) and reports every
arm; and its corpus is consistent."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from benchmarks import baselines, knowledge
from orgmem.eval.corpus import load_corpus
from orgmem.models import load_tokenizer


def test_corpus_probes_agree_with_documents():
    corpus = load_corpus(knowledge.ROOT / "corpus")
    assert corpus.check() == []
    night1 = [p for p in corpus.probes if p.night == 1]
    updates = [p for p in corpus.probes if p.night == 2 and p.replaces]
    new = [p for p in corpus.probes if p.night == 2 and not p.replaces]
    assert len(night1) >= 40 and len(updates) >= 10 and new
    assert all(p.question and p.source for p in corpus.probes)
    # Changed documents are re-delivered, so their old versions are no longer replayed.
    replayed = {d.path for d in corpus.replay(2)}
    assert replayed and not replayed & {d.path for d in corpus.delivered(2)}
    assert {d.source_kind for d in corpus.delivered(1)} == {"git", "docs", "slack", "rss"}


def test_quick_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "results"
    assert knowledge.main(["--base", "tiny-random", "--quick", "--kinds", "cms,lora", "--out", str(out),
                           "--keep", str(tmp_path / "kept")]) == 0
    assert sorted(p.name for p in (tmp_path / "kept").iterdir())[0] == "cms-seed0-night1.safetensors"
    data = json.loads((out / "knowledge.json").read_text())
    kinds = [line["kind"] for line in data["summary"]]
    assert kinds == ["base", "base (closed book)", "base+oracle chunk", "base+BM25 top-3", "cms", "lora"]
    conditions = data["baselines"]["conditions"]
    oracle = conditions["oracle"]["night1"]
    assert oracle["oracle_in_context"] == oracle["n"] and oracle["oracle_missing"] == 0
    assert all(len(p["chunks"]) == 3 for p in conditions["bm25_top3"]["night2"]["probes"])
    assert set(data["runs"][0]["diagnosis"]) == {"night1", "night2"}
    runs = {r["kind"]: r for r in data["runs"]}
    assert runs["base"]["kl"] == 0 and runs["base"]["replies_changed"] == 0
    for kind in ("cms", "lora"):
        r = runs[kind]
        assert r["kl"] > 0, f"{kind}: the evaluation did not apply the trained memory"
        assert r["steps"] == [3, 3] and r["tokens_per_s"] > 0 and r["checkpoint_bytes"] > 0
        assert r["consolidation"][1]["consolidations"] == 2  # night 2 continued night 1's state
        assert r["reports"]["night2"]["groups"]["updated"]["n"] == 3
        assert r["trainable_params"] > 0
    table = (out / "knowledge.md").read_text()
    assert "| cms | 1 |" in table and "| lora | 1 |" in table
    assert "**Baselines**" in table and "| base+BM25 top-3 |" in table and "**Per-probe diagnosis**" in table
    assert "# Knowledge benchmark (tiny-random, quick)" in capsys.readouterr().out


def test_engine_overrides_are_parsed_and_checked(capsys):
    cfg = knowledge.parse_args(["--engine", "epochs=20", "--engine", "chat_forms=false"])
    assert cfg.engine == {"epochs": 20, "chat_forms": False}
    with pytest.raises(SystemExit) as exc:
        knowledge.parse_args(["--engine", "max_steps=3"])  # the step budget has its own flag
    assert exc.value.code == 2
    assert "max_steps=3" in capsys.readouterr().err


def test_unregistered_kind_is_explained_and_quick_probe_selection():
    assert "nosuch" in knowledge.missing_kind("cms+nosuch")
    assert knowledge.missing_kind("cms") is None
    corpus = load_corpus(knowledge.ROOT / "corpus")
    chosen = knowledge.select_probes(corpus.probes, quick=True)
    updates = [p for p in chosen if p.night == 2 and p.replaces]
    assert len(updates) == 3 and all(any(q.fact == u.fact and q.night == 1 for q in chosen) for u in updates)


def test_kept_of_learned_counts_only_facts_known_after_night_1(tmp_path):
    def probe(key, hit, group="retained"):
        return {"key": key, "cloze_hit": hit, "group": group}

    row = {"kind": "cms", "seed": 0, "reports": {
        "night1": {"probes": [probe("a@1", True, "new"), probe("b@1", True, "new"),
                              probe("c@1", False, "new")]},
        "night2": {"probes": [probe("a@1", True), probe("b@1", False), probe("c@1", True),
                              probe("d@2", True, "new")]},
    }}
    assert knowledge.kept_of_learned(row) == 0.5
    assert knowledge.kept_of_learned({"kind": "base"}) is None
    # --render rebuilds the table from a results file without running anything.
    results = tmp_path / "in.json"
    results.write_text(json.dumps({"base": "x", "quick": True, "steps": 1, "n_facts_night1": 3,
                                   "n_updates": 0, "n_new_night2": 1, "wall_seconds": 1.0, "machine": "m",
                                   "skipped": {}, "runs": [row]}))
    out = tmp_path / "out"
    assert knowledge.main(["--render", str(results), "--out", str(out)]) == 0
    assert json.loads((out / "knowledge.json").read_text())["summary"][0]["kept_of_learned"] == 0.5
    assert "| cms | 1 |" in (out / "knowledge.md").read_text()


def test_baselines_only_runs_no_memory_kind(tmp_path):
    out = tmp_path / "results"
    assert knowledge.main(["--base", "tiny-random", "--quick", "--baselines-only", "--out", str(out)]) == 0
    data = json.loads((out / "knowledge.json").read_text())
    assert [r["kind"] for r in data["runs"]] == ["base", "base (closed book)", "base+oracle chunk",
                                                 "base+BM25 top-3"]
    assert data["baselines"]["conditions"]["closed_book"]["night1"]["prompt_tokens_mean"] > 0
    # --render rebuilds the tables (baselines and diagnosis included) from the JSON alone.
    assert knowledge.main(["--render", str(out / "knowledge.json"), "--out", str(tmp_path / "again")]) == 0
    table = (tmp_path / "again" / "knowledge.md").read_text()
    assert "| base+oracle chunk |" in table and "- **base+BM25 top-3**" in table


# -- the baselines' scoring, with a stand-in reader so the check does not depend on a model's skill -----

@pytest.fixture(scope="module")
def quick_bench():
    corpus = load_corpus(knowledge.ROOT / "corpus")
    base = SimpleNamespace(tokenizer=load_tokenizer("tiny-random"), model=None)
    return corpus, knowledge.select_probes(corpus.probes, quick=True), base


def _run(monkeypatch, quick_bench, night: int, condition: str, reader) -> dict:
    corpus, probes, base = quick_bench
    monkeypatch.setattr(baselines, "answer_all", lambda base, prompts, *_: [reader(p) for p in prompts])
    state = baselines.night_state(corpus, night, base.tokenizer)
    return baselines.run_condition(base, probes, state, night, condition)


@pytest.mark.parametrize("night", [1, 2])
def test_a_fact_in_the_prompt_scores_and_one_not_in_it_does_not(monkeypatch, quick_bench, night):
    """A reader that repeats its prompt answers exactly what the prompt holds."""
    def echo(prompt: str) -> str:
        return prompt

    closed = _run(monkeypatch, quick_bench, night, "closed_book", echo)
    oracle = _run(monkeypatch, quick_bench, night, "oracle", echo)
    bm25 = _run(monkeypatch, quick_bench, night, "bm25_top3", echo)
    assert closed["n"] == oracle["n"] == bm25["n"] > 0
    # the bare question gives nothing away; the oracle chunk states every answer, the new value of
    # every update and none of the replaced ones
    assert (closed["hits"], closed["oracle_in_context"]) == (0, 0)
    assert oracle["hits"] == oracle["oracle_in_context"] == oracle["n"] and oracle["oracle_missing"] == 0
    assert oracle["stale"] == 0 and oracle["updates"]["hits"] == oracle["updates"]["n"]
    assert oracle["recall"] > closed["recall"]
    pairs = zip(oracle["probes"], closed["probes"], strict=True)
    assert all(r["prompt_tokens"] > c["prompt_tokens"] for r, c in pairs)
    # with BM25 a probe whose oracle chunk was retrieved is answered (else it is marked stale)
    assert all(r["question_hit"] or r["question_stale"] for r in bm25["probes"] if r["oracle_in_context"])
    assert all(len(r["chunks"]) == baselines.TOP_K for r in bm25["probes"])


def test_the_reference_answer_scores_and_the_replaced_value_is_stale(monkeypatch, quick_bench):
    _, probes, _ = quick_bench
    by_question = {p.question: p for p in probes if p.question}

    def probe_of(prompt: str):
        return by_question[prompt]  # closed book: the prompt is the bare question

    right = _run(monkeypatch, quick_bench, 2, "closed_book", lambda q: f"It is {probe_of(q).answer}.")
    assert right["hits"] == right["n"] and right["recall"] == 1 and right["stale"] == 0
    old = _run(monkeypatch, quick_bench, 2, "closed_book",
               lambda q: f"It is {(probe_of(q).replaces or ('no idea',))[0]}.")
    assert old["updates"]["n"] > 0 and old["stale"] == old["updates"]["n"] and old["hits"] == 0
    both = _run(monkeypatch, quick_bench, 2, "closed_book",
                lambda q: " or ".join([probe_of(q).answer, *probe_of(q).replaces]))
    # naming the old value beside the new one is not an update answered
    assert both["updates"]["hits"] == 0 and both["hits"] == both["n"] - both["updates"]["n"]
