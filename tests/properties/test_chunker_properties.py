"""Property tests for the chunker: any text, any file type, chunks within the token budget that together
cover every non-blank character of the input; a bad chunking config is a clear ValueError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgmem.chunking import ChunkingConfig, chunk_document, header

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATHS = ["notes.md", "app.py", "main.go", "page.html", "README.rst", "data.txt", "", "x.unknown"]
KINDS = ["docs", "git", "slack", "rss"]


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


storable = st.characters(
    exclude_categories=("Cs",)
)  # connectors hand over valid Unicode (connectors/text.py)
lines = st.one_of(
    st.text(storable, max_size=120),
    st.sampled_from(["", "# Heading", "def f(x):", "    return x", "class A:", "```", "- item", "}", "\t"]),
)
texts = st.one_of(st.text(storable, max_size=3000), st.lists(lines, max_size=80).map("\n".join))


def _covered(text: str, bodies: list[str]) -> list[bool]:
    covered = [False] * len(text)
    for body in bodies:
        start = text.find(body)
        assert start != -1, f"chunk body is not a passage of the input: {body[:80]!r}"
        while start != -1:
            covered[start : start + len(body)] = [True] * len(body)
            start = text.find(body, start + 1)
    return covered


@BOUNDED
@given(texts, st.sampled_from(PATHS), st.sampled_from(KINDS), st.sampled_from([(48, 0), (64, 8), (256, 24)]))
def test_chunks_fit_and_cover_the_input(text, path, kind, sizes):
    config = ChunkingConfig(*sizes)
    chunks = chunk_document(
        "acme", "src/doc", text, source_kind=kind, source_name="src", title=path or "untitled", path=path,
        count_tokens=count_bytes, config=config,
    )  # fmt: skip
    head = header(kind, "src", path or "untitled") + "\n"
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert len({c.key for c in chunks}) == len(chunks)
    bodies = []
    for chunk in chunks:
        assert chunk.text.startswith(head)
        bodies.append(chunk.text[len(head) :])
        assert chunk.n_tokens == count_bytes(head) + count_bytes(bodies[-1])
        assert count_bytes(bodies[-1]) <= max(32, config.chunk_tokens - count_bytes(head))
    covered = _covered(text, bodies)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


@pytest.mark.parametrize("sizes", [(32, 0), (64, 32), (64, -1), (0, 0)])
def test_bad_chunking_config_is_a_clear_value_error(sizes):
    with pytest.raises(ValueError, match="chunk_tokens must exceed"):
        ChunkingConfig(*sizes)
