"""The knowledge benchmark's quick path end to end on the tiny base, and its corpus's consistency."""

from __future__ import annotations

import json

import pytest

from benchmarks import knowledge
from orgmem.eval.corpus import load_corpus


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
