"""Pick a text splitter for a document: code-aware by file extension, markdown-aware, or plain.

Splitting on class/function boundaries (langchain-text-splitters ``from_language``) keeps a
function and its docstring in one chunk, which is what the model should learn as one unit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

EXTENSION_LANGUAGE: dict[str, Language] = {
    ".py": Language.PYTHON,
    ".pyi": Language.PYTHON,
    ".js": Language.JS,
    ".jsx": Language.JS,
    ".mjs": Language.JS,
    ".cjs": Language.JS,
    ".ts": Language.TS,
    ".tsx": Language.TS,
    ".go": Language.GO,
    ".java": Language.JAVA,
    ".kt": Language.KOTLIN,
    ".kts": Language.KOTLIN,
    ".rs": Language.RUST,
    ".rb": Language.RUBY,
    ".php": Language.PHP,
    ".scala": Language.SCALA,
    ".swift": Language.SWIFT,
    ".c": Language.C,
    ".h": Language.C,
    ".cpp": Language.CPP,
    ".cc": Language.CPP,
    ".cxx": Language.CPP,
    ".hpp": Language.CPP,
    ".hh": Language.CPP,
    ".cs": Language.CSHARP,
    ".proto": Language.PROTO,
    ".sol": Language.SOL,
    ".lua": Language.LUA,
    ".pl": Language.PERL,
    ".pm": Language.PERL,
    ".hs": Language.HASKELL,
    ".ex": Language.ELIXIR,
    ".exs": Language.ELIXIR,
    ".ps1": Language.POWERSHELL,
    ".r": Language.R,
    ".tex": Language.LATEX,
    ".md": Language.MARKDOWN,
    ".markdown": Language.MARKDOWN,
    ".rst": Language.RST,
    ".html": Language.HTML,
    ".htm": Language.HTML,
}
# Kinds whose documents are prose or chat: split on paragraphs and sentences, whatever the title says.
PLAIN_KINDS = frozenset({"slack", "rss"})


def language_for(source_kind: str, path: str) -> Language | None:
    """The splitter language for a document, or None for plain prose."""
    if source_kind in PLAIN_KINDS:
        return None
    suffix = PurePosixPath(path).suffix.lower()
    if source_kind == "docs" and suffix in (".html", ".htm", ".pdf"):
        return None  # already reduced to plain text by the connector
    return EXTENSION_LANGUAGE.get(suffix)


@lru_cache(maxsize=256)
def splitter(
    language: Language | None, chunk_tokens: int, overlap_tokens: int, count_tokens: Callable[[str], int]
) -> RecursiveCharacterTextSplitter:
    """A splitter whose sizes are measured in tokens of the base tokenizer (cached per shape)."""
    kwargs: dict[str, Any] = {"chunk_size": chunk_tokens, "chunk_overlap": overlap_tokens,
                              "length_function": count_tokens}
    if language is None:
        return RecursiveCharacterTextSplitter(**kwargs)
    return RecursiveCharacterTextSplitter.from_language(language, **kwargs)
