"""The in-context baselines' pieces: prompt format, oracle chunk, BM25 retrieval."""

from __future__ import annotations

from benchmarks import baselines
from orgmem.eval.probes import Probe


def probe(**kw) -> Probe:
    base = {"fact": "port", "cloze": "DISPATCH_PORT =", "answer": "8843", "question": "Which port?",
            "source": "repo/config.py"}
    return Probe(**{**base, **kw})


def test_closed_book_prompt_is_the_bare_question_and_context_comes_first():
    assert baselines.context_prompt("Which port?", []) == "Which port?"
    text = baselines.context_prompt("Which port?", ["chunk one", "chunk two "])
    assert text.index("chunk one") < text.index("chunk two") < text.index("Question: Which port?")
    assert "chunk one\n\n---\n\nchunk two\n\nQuestion: Which port?" in text


def test_oracle_chunk_is_the_source_documents_chunk_that_writes_the_answer():
    state = baselines.NightState(
        chunks=["DISPATCH_PORT = 8843 elsewhere", "intro", "the port 8843 again", "DISPATCH_PORT = 8843"],
        doc_of=["other.py", "repo/config.py", "repo/config.py", "repo/config.py"])
    assert baselines.oracle_chunk(probe(), state) == 3
    state2 = baselines.NightState(chunks=["intro", "the port 8843 again"], doc_of=["repo/config.py"] * 2)
    assert baselines.oracle_chunk(probe(), state2) == 1
    assert baselines.oracle_chunk(probe(answer="9999"), state2) is None


def test_bm25_ranks_the_chunk_sharing_the_questions_words_first():
    retriever = baselines.Retriever(["the cafeteria menu for monday",
                                     "DISPATCH_PORT = 8843 # dispatch api port",
                                     "release train called Cormorant", "hub opening hours"])
    assert baselines.bm25_tokens("DISPATCH_PORT = 8843") == ["dispatch", "port", "8843"]
    assert retriever.top("Which port does the dispatch API listen on?", k=2)[0] == 1
    assert len(retriever.top("anything", k=3)) == 3
