"""The real-repository corpus: rebuilt from the pinned installed package, probes agree with it."""

from __future__ import annotations

import json

import pytest

from benchmarks import real_corpus
from orgmem.eval.corpus import load_corpus
from orgmem.eval.probes import contains_answer, load_probes


def test_probes_are_engineer_questions_that_do_not_give_their_answer_away():
    probes = load_probes(real_corpus.PROBES)
    assert len(probes) >= 30 and all(p.question and p.night == 1 for p in probes)
    assert not [p.key for p in probes if contains_answer(p.question, p.accepted)]
    candidates = {p.key for p in load_probes(real_corpus.CANDIDATES)}
    assert {p.key for p in probes} <= candidates
    screen = json.loads(real_corpus.SCREEN.read_text())
    assert screen["kept"] == len(probes) and screen["candidates"] == len(candidates)


def test_rebuilt_corpus_agrees_with_its_probes(tmp_path):
    pytest.importorskip(real_corpus.PACKAGE)
    out = real_corpus.build(tmp_path / "real")
    corpus = load_corpus(out)
    assert corpus.check() == []
    assert {d.path for d in corpus.docs} == {"repo/pybreaker/__init__.py", "docs/README.rst"}
    assert {d.source_kind for d in corpus.docs} == {"git", "docs"}
    source = json.loads((out / "SOURCE.json").read_text())
    assert source["version"] == real_corpus.VERSION and len(source["wheel_sha256"]) == 64
