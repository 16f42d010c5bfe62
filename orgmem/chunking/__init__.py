"""Chunking: governed documents → token-sized, stably keyed chunks with a provenance header."""

from orgmem.chunking.chunker import (
    Chunk,
    ChunkingConfig,
    chunk_document,
    chunk_key,
    header,
    normalize,
    token_counter,
)
from orgmem.chunking.splitters import language_for

__all__ = [
    "Chunk",
    "ChunkingConfig",
    "chunk_document",
    "chunk_key",
    "header",
    "language_for",
    "normalize",
    "token_counter",
]
