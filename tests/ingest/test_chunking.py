"""Chunking: token-sized pieces, code-aware splits, stable keys, provenance headers."""

from __future__ import annotations

import pytest

from orgmem.chunking import ChunkingConfig, chunk_document, chunk_key, language_for, token_counter
from orgmem.models.tiny import build_tiny_tokenizer

COUNT = token_counter(build_tiny_tokenizer())  # byte-level: one token per byte
CODE = "\n\n".join(
    f"class Service{i}:\n    def run(self, job):\n        '''Run job {i}.'''\n        return job * {i}\n"
    for i in range(40)
)


def chunks(text, path="src/services.py", kind="git", **kw):
    return chunk_document(
        "acme",
        path,
        text,
        source_kind=kind,
        source_name="backend",
        title=path,
        path=path,
        count_tokens=COUNT,
        config=ChunkingConfig(**kw) if kw else None,
    )


def test_sizes_in_tokens_and_headers():
    out = chunks(CODE, chunk_tokens=128, overlap_tokens=0)
    assert len(out) > 5
    assert all(c.n_tokens <= 128 for c in out) and all(c.n_tokens == COUNT(c.text) for c in out)
    assert all(c.text.startswith("[git:backend] src/services.py\n") for c in out)
    assert [c.seq for c in out] == list(range(len(out)))


def test_code_splits_on_class_boundaries():
    out = chunks(CODE, chunk_tokens=200, overlap_tokens=0)
    bodies = [c.text.split("\n", 1)[1] for c in out]
    assert all(b.startswith("class Service") for b in bodies)


def test_keys_are_stable_and_only_changed_text_gets_new_keys():
    first = chunks(CODE, chunk_tokens=200, overlap_tokens=0)
    again = chunks(CODE, chunk_tokens=200, overlap_tokens=0)
    assert [c.key for c in first] == [c.key for c in again]
    edited = CODE.replace("Run job 39.", "Run job thirty-nine.")
    changed = chunks(edited, chunk_tokens=200, overlap_tokens=0)
    new_keys = {c.key for c in changed} - {c.key for c in first}
    assert len(new_keys) == 1
    assert chunk_key("acme", "a", "x  y\n") == chunk_key("acme", "a", "x y")  # whitespace-insensitive
    assert chunk_key("acme", "a", "x") != chunk_key("other", "a", "x")


def test_duplicate_passages_are_kept_once():
    text = "\n\n".join(["Same paragraph about the Heron gateway."] * 5)
    out = chunks(text, path="notes.txt", kind="slack", chunk_tokens=80, overlap_tokens=0)
    assert len(out) == 1


def test_language_selection():
    assert language_for("git", "a/b.py").value == "python"
    assert language_for("docs", "guide.md").value == "markdown"
    assert language_for("docs", "page.html") is None  # already text
    assert language_for("slack", "C1/thread/1.2") is None
    assert language_for("git", "data.csv") is None


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="chunk_tokens"):
        ChunkingConfig(chunk_tokens=16)
